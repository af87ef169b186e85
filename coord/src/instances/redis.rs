//! The Redis registry of the scale-out deployment.
//!
//! Keys (all under the deployment's prefix `<p>`), laid out as
//! [`super::presence`] describes: `<p>:instance:<id>` (the live copy, with
//! a time to live) and the `<p>:instances` hash (the membership, keeping a
//! crashed instance's last report).

use std::time::Duration;

use async_trait::async_trait;

use super::presence::Presence;
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
    presence: Presence,
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
            presence: Presence::new(format!("{prefix}:instance:"), format!("{prefix}:instances")),
        })
    }

    /// The key of one instance's live entry, for tools that inspect Redis.
    pub fn instance_key(&self, id: &InstanceId) -> String {
        self.presence.live_key(id.as_str())
    }

    /// The hash listing every known instance.
    pub fn members_key(&self) -> &str {
        self.presence.members_key()
    }
}

#[async_trait]
impl InstanceRegistry for RedisRegistry {
    async fn heartbeat(&self, report: &InstanceReport, ttl: Duration) -> Result<()> {
        report.validate()?;
        let json = serde_json::to_string(report)
            .map_err(|e| CoordError::Corrupt(format!("cannot encode instance report: {e}")))?;
        self.conn
            .clone()
            .each_slot::<redis::Value>(self.presence.beat(report.id.as_str(), &json, ttl))
            .await
            .map(drop)
            .map_err(CoordError::from)
    }

    async fn leave(&self, id: &InstanceId) -> Result<()> {
        self.conn
            .clone()
            .each_slot::<redis::Value>(self.presence.leave(id.as_str()))
            .await
            .map(drop)
            .map_err(CoordError::from)
    }

    async fn list(&self, now_ms: i64, thresholds: &Thresholds) -> Result<Vec<InstanceView>> {
        thresholds.validate()?;
        let mut conn = self.conn.clone();
        let entries = self
            .presence
            .entries(&mut conn, |report: &InstanceReport| report.id.as_str())
            .await?;
        let mut views = Vec::with_capacity(entries.len());
        let mut forget = Vec::new();
        for (report, expired) in entries {
            match thresholds.judge(now_ms, report.heartbeat_at, expired) {
                Some((status, heartbeat_age_ms)) => views.push(InstanceView {
                    report,
                    status,
                    heartbeat_age_ms,
                }),
                None => forget.push(report.id),
            }
        }
        if !forget.is_empty() {
            let ids: Vec<&str> = forget.iter().map(InstanceId::as_str).collect();
            conn.each_slot::<redis::Value>(vec![self.presence.forget(&ids)])
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
