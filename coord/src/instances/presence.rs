//! Entries that say "I am alive" in Redis: the layout instances and workers
//! share.
//!
//! - `<live prefix><id>` string: the latest report as JSON, written with a
//!   time to live (`PX`). Its existence is the liveness signal: Redis
//!   deletes it when the owner stops refreshing it, with nobody having to
//!   clean up after a crash;
//! - `<members>` hash: id → the same JSON. The membership list (listing
//!   needs no `SCAN`), which keeps the last report of an entry whose key
//!   expired, so a dashboard can still show what a crashed process last
//!   said. Fields are removed by a graceful leave, or by whoever lists once
//!   the owner has been silent for `forget_after`.
//!
//! Every command touches one key, so the layout works on Redis Cluster
//! without hash tags (commands for several keys go per slot through
//! [`Conn::each_slot`]); the two writes of a heartbeat are not atomic, and
//! the next heartbeat repairs a half-applied one.

use std::time::Duration;

use redis::Cmd;
use serde::de::DeserializeOwned;

use crate::error::{CoordError, Result};
use crate::redis::Conn;

/// Where one kind of entry lives.
#[derive(Clone, Debug)]
pub(crate) struct Presence {
    live_prefix: String,
    members_key: String,
}

/// A command and the key that routes it.
pub(crate) type Routed = (Vec<u8>, Cmd);

impl Presence {
    pub(crate) fn new(live_prefix: String, members_key: String) -> Self {
        Self {
            live_prefix,
            members_key,
        }
    }

    /// The key of one entry's live copy.
    pub(crate) fn live_key(&self, id: &str) -> String {
        format!("{}{id}", self.live_prefix)
    }

    /// The hash listing every known entry.
    pub(crate) fn members_key(&self) -> &str {
        &self.members_key
    }

    /// A heartbeat's writes. The membership first: if only it lands, the
    /// entry shows as gone for one interval rather than not at all.
    pub(crate) fn beat(&self, id: &str, json: &str, ttl: Duration) -> Vec<Routed> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut member = redis::cmd("HSET");
        member.arg(&self.members_key).arg(id).arg(json);
        let live_key = self.live_key(id);
        let mut live = redis::cmd("SET");
        live.arg(&live_key).arg(json).arg("PX").arg(ttl_ms);
        vec![
            (self.members_key.clone().into_bytes(), member),
            (live_key.into_bytes(), live),
        ]
    }

    /// A graceful leave's deletes.
    pub(crate) fn leave(&self, id: &str) -> Vec<Routed> {
        let live_key = self.live_key(id);
        let mut live = redis::cmd("DEL");
        live.arg(&live_key);
        let mut member = redis::cmd("HDEL");
        member.arg(&self.members_key).arg(id);
        vec![
            (live_key.into_bytes(), live),
            (self.members_key.clone().into_bytes(), member),
        ]
    }

    /// Every entry's last report, and whether its live copy expired. An
    /// entry that does not decode, or is filed under another id, is logged
    /// and skipped (one bad entry must not hide the rest), and left in place
    /// for someone to inspect.
    pub(crate) async fn entries<T: DeserializeOwned>(
        &self,
        conn: &mut Conn,
        id_of: impl Fn(&T) -> &str,
    ) -> Result<Vec<(T, bool)>> {
        let members: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&self.members_key)
            .query_async(conn)
            .await
            .map_err(CoordError::from)?;
        let mut reports = Vec::with_capacity(members.len());
        for (field, json) in members {
            match serde_json::from_str::<T>(&json) {
                Ok(report) if id_of(&report) == field => reports.push(report),
                Ok(report) => tracing::warn!(
                    key = self.members_key,
                    field,
                    id = id_of(&report),
                    "entry filed under another id; skipped"
                ),
                Err(e) => {
                    tracing::warn!(key = self.members_key, field, error = %e, "corrupt entry; skipped")
                }
            }
        }
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let exists = reports
            .iter()
            .map(|report| {
                let key = self.live_key(id_of(report));
                let mut cmd = redis::cmd("EXISTS");
                cmd.arg(&key);
                (key.into_bytes(), cmd)
            })
            .collect();
        let present: Vec<bool> = conn.each_slot(exists).await.map_err(CoordError::from)?;
        if present.len() != reports.len() {
            return Err(CoordError::Corrupt(format!(
                "asked about {} keys under {}, Redis answered {}",
                reports.len(),
                self.live_prefix,
                present.len()
            )));
        }
        Ok(reports
            .into_iter()
            .zip(present)
            .map(|(report, present)| (report, !present))
            .collect())
    }

    /// Removes entries silent for too long from the membership. One that
    /// comes back between the listing and this re-adds itself with its
    /// next heartbeat.
    pub(crate) fn forget(&self, ids: &[&str]) -> Routed {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(&self.members_key).arg(ids);
        (self.members_key.clone().into_bytes(), cmd)
    }
}
