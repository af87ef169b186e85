//! The Redis registry of the scale-out deployment.
//!
//! Keys (all under the deployment's prefix `<p>`):
//!
//! - `<p>:instance:<id>` string: the instance's latest [`InstanceReport`] as
//!   JSON (camelCase), written with a time to live (`PX`). Its existence is
//!   the liveness signal: Redis deletes it when the instance stops
//!   refreshing it, with nobody having to clean up after a crash;
//! - `<p>:instances` hash: instance id → the same JSON. It is the
//!   membership list (listing needs no `SCAN`) and keeps the last report of
//!   an instance whose key expired, so the dashboard can still show what a
//!   crashed instance last said. Fields are removed by a graceful leave, or
//!   by whoever lists once the instance has been silent for `forget_after`.
//!
//! Every command touches one key, so the layout works on Redis Cluster
//! without hash tags (commands for several keys are grouped per slot);
//! the two writes of a heartbeat are pipelined, not atomic, and the next
//! heartbeat repairs a half-applied one.

use std::time::Duration;

use async_trait::async_trait;

use super::{InstanceRegistry, InstanceReport, InstanceView, Thresholds};
use crate::error::{CoordError, Result};
use crate::instance::InstanceId;
use crate::redis::{self as conn, Conn, Reconnect};

/// One command may take 2 s: a heartbeat that cannot be written within a
/// second or two is better retried at the next interval. One reconnection
/// attempt per failing command: the heartbeat loop is the real retry, so a
/// command reports an outage quickly.
const RECONNECT: Reconnect = Reconnect {
    connect_timeout: Duration::from_secs(1),
    response_timeout: Duration::from_secs(2),
    retries: 1,
    max_delay: Duration::from_millis(500),
};

/// Instance reports in Redis, shared by every process of a fleet that uses
/// the same Redis and prefix. Cheap to clone (one multiplexed connection).
#[derive(Clone)]
pub struct RedisRegistry {
    conn: Conn,
    prefix: String,
    members_key: String,
}

/// Shows where the registry keeps its state, never the URL (credentials).
impl std::fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRegistry")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRegistry {
    /// Connects and checks the server with `PING` within 5 s, so a
    /// dashboard or service with a wrong URL fails at start-up.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let registry = Self::connect_lazy(url, prefix)?;
        let mut conn = registry.conn.clone();
        let endpoint = conn::open(url)?;
        conn::within_connect_timeout(async {
            conn::probe(&endpoint).await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await
        })
        .await?;
        Ok(registry)
    }

    /// Sets up without touching the network, so an instance can start (and
    /// start heartbeating) while Redis is still down: its heartbeats fail
    /// and are retried until Redis comes up. Only a malformed URL or prefix
    /// is an error here.
    pub fn connect_lazy(url: &str, prefix: &str) -> Result<Self> {
        let conn = conn::open(url)?.lazy(RECONNECT).map_err(CoordError::from)?;
        Self::with_connection(conn, prefix)
    }

    /// Shares a connection the service already has (one connection per
    /// process instead of one per component).
    pub(crate) fn with_connection(conn: Conn, prefix: &str) -> Result<Self> {
        validate_prefix(prefix)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            members_key: format!("{prefix}:instances"),
        })
    }

    /// The key of one instance's live entry, for tools that inspect Redis.
    pub fn instance_key(&self, id: &InstanceId) -> String {
        format!("{}:instance:{}", self.prefix, id.as_str())
    }

    /// The hash listing every known instance.
    pub fn members_key(&self) -> &str {
        &self.members_key
    }
}

#[async_trait]
impl InstanceRegistry for RedisRegistry {
    async fn heartbeat(&self, report: &InstanceReport, ttl: Duration) -> Result<()> {
        report.validate()?;
        let json = serde_json::to_string(report)
            .map_err(|e| CoordError::Corrupt(format!("cannot encode instance report: {e}")))?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        // The membership first: if only it lands, the instance shows as
        // gone for one interval rather than not at all. (On a cluster the
        // two keys may live on different nodes and are written at once;
        // the next heartbeat repairs a half-applied one either way.)
        let mut member = redis::cmd("HSET");
        member
            .arg(&self.members_key)
            .arg(report.id.as_str())
            .arg(&json);
        let live_key = self.instance_key(&report.id);
        let mut live = redis::cmd("SET");
        live.arg(&live_key).arg(&json).arg("PX").arg(ttl_ms);
        self.conn
            .clone()
            .each_slot::<redis::Value>(vec![
                (self.members_key.clone().into_bytes(), member),
                (live_key.into_bytes(), live),
            ])
            .await
            .map(drop)
            .map_err(CoordError::from)
    }

    async fn leave(&self, id: &InstanceId) -> Result<()> {
        let live_key = self.instance_key(id);
        let mut live = redis::cmd("DEL");
        live.arg(&live_key);
        let mut member = redis::cmd("HDEL");
        member.arg(&self.members_key).arg(id.as_str());
        self.conn
            .clone()
            .each_slot::<redis::Value>(vec![
                (live_key.into_bytes(), live),
                (self.members_key.clone().into_bytes(), member),
            ])
            .await
            .map(drop)
            .map_err(CoordError::from)
    }

    async fn list(&self, now_ms: i64, thresholds: &Thresholds) -> Result<Vec<InstanceView>> {
        thresholds.validate()?;
        let mut conn = self.conn.clone();
        let members: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&self.members_key)
            .query_async(&mut conn)
            .await
            .map_err(CoordError::from)?;
        let mut reports = Vec::with_capacity(members.len());
        for (field, json) in members {
            match serde_json::from_str::<InstanceReport>(&json) {
                Ok(report) if report.id.as_str() == field => reports.push(report),
                // One bad entry must not hide the rest of the fleet; it is
                // left in place for someone to inspect.
                Ok(report) => tracing::warn!(
                    field,
                    id = %report.id,
                    "instance entry filed under another id; skipped"
                ),
                Err(e) => tracing::warn!(field, error = %e, "corrupt instance entry; skipped"),
            }
        }
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let exists = reports
            .iter()
            .map(|report| {
                let key = self.instance_key(&report.id);
                let mut cmd = redis::cmd("EXISTS");
                cmd.arg(&key);
                (key.into_bytes(), cmd)
            })
            .collect();
        let present: Vec<bool> = conn.each_slot(exists).await.map_err(CoordError::from)?;
        if present.len() != reports.len() {
            return Err(CoordError::Corrupt(format!(
                "asked about {} instance keys, Redis answered {}",
                reports.len(),
                present.len()
            )));
        }
        let mut views = Vec::with_capacity(reports.len());
        let mut forget = Vec::new();
        for (report, present) in reports.into_iter().zip(present) {
            match thresholds.judge(now_ms, report.heartbeat_at, !present) {
                Some((status, heartbeat_age_ms)) => views.push(InstanceView {
                    report,
                    status,
                    heartbeat_age_ms,
                }),
                None => forget.push(report.id),
            }
        }
        if !forget.is_empty() {
            // An instance that comes back between the check and this HDEL
            // re-adds itself with its next heartbeat.
            redis::cmd("HDEL")
                .arg(&self.members_key)
                .arg(forget.iter().map(InstanceId::as_str).collect::<Vec<_>>())
                .query_async::<()>(&mut conn)
                .await
                .map_err(CoordError::from)?;
        }
        views.sort_by(|a, b| a.report.id.cmp(&b.report.id));
        Ok(views)
    }
}

fn validate_prefix(prefix: &str) -> Result<()> {
    conn::check_prefix(prefix, &[], "whitespace")
}
