//! The instance registry: which instances are alive and how their sync is doing.
//!
//! Every running process of a service writes an [`InstanceReport`] every few
//! seconds (a [`Heartbeat`]); the dashboard [lists](InstanceRegistry::list)
//! them with a [`InstanceStatus`]. Without this an operator cannot tell a
//! fleet that agrees from one where an instance silently stopped applying
//! changes, or where a crashed process is still counted as a member.
//!
//! Two registries, one behaviour: [`LocalRegistry`] keeps the reports in
//! process (the embedded default, where demo instances share one process)
//! and [`RedisRegistry`] keeps them in Redis for a real fleet. Both expire an
//! entry that is not refreshed within its time to live, so a crashed
//! instance turns [`Stale`](InstanceStatus::Stale), then
//! [`Gone`](InstanceStatus::Gone), then is forgotten, while one that shuts
//! down cleanly disappears at once.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{CoordError, Result};
use crate::instance::InstanceId;

mod heartbeat;
mod local;
pub(crate) mod presence;
mod redis;

pub use heartbeat::{Heartbeat, HeartbeatConfig, HeartbeatHealth, ReportSource};
pub use local::LocalRegistry;
pub use redis::RedisRegistry;

/// How often an instance reports by default: often enough that a dashboard
/// notices a dead instance within seconds, rarely enough that a fleet of
/// hundreds costs Redis nothing noticeable.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Heartbeats an entry outlives by default. Larger than the default stale
/// threshold (3 intervals) so that a crashed instance is first shown as
/// `Stale` (something is wrong, maybe a long pause) before it is `Gone`.
pub const DEFAULT_TTL_INTERVALS: u32 = 6;

/// Cache namespaces one report carries at most: a report is rewritten at
/// every beat, so its size is bounded whatever a service opens.
pub const MAX_REPORTED_CACHES: usize = 64;

/// Longest accepted role or version text: a dashboard column, not a document.
pub const MAX_LABEL_LEN: usize = 64;

/// How far one instance's synced state has got, as the synced-state layer
/// measures it. Carried by the registry unchanged, so the dashboard can
/// compare instances (same version and hash = converged) and spot the one
/// that lags, drops messages or fell back to polling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncReport {
    /// The newest synced-state version this instance has applied.
    pub applied_version: i64,
    /// The database's newest version when the instance last checked, so the
    /// lag in changes is visible without the dashboard querying the database.
    pub latest_version: Option<i64>,
    /// Hex digest of the applied state: equal hashes mean equal caches.
    pub state_hash: String,
    /// When the instance last finished a sync (ms since the epoch).
    pub last_sync_at: Option<i64>,
    /// Notifications delivered to this instance, its own included.
    pub notifications_received: u64,
    /// Notifications skipped because this instance published them.
    pub skipped_self: u64,
    /// Notifications that led to a reload.
    pub processed: u64,
    /// Notifications that could not be decoded and were dropped.
    pub malformed: u64,
    /// Reloads run after debouncing (a burst of notifications counts once).
    pub debounce_batches: u64,
    /// How long the last reload took, in milliseconds.
    pub processing_latency_ms: Option<f64>,
    /// The last sync failure, kept until it is replaced, so an intermittent
    /// fault is still visible on the next dashboard refresh.
    pub last_error: Option<String>,
    /// Whether the instance is currently subscribed to the notification bus.
    pub bus_connected: bool,
    /// Whether the instance fell back to polling the database.
    pub polling: bool,
}

/// What one instance says about itself at each heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceReport {
    /// Which process this is; the registry key.
    pub id: InstanceId,
    /// What the process does (`api`, `worker`…), so a dashboard can group
    /// a fleet and tell a missing worker from a missing API server.
    pub role: String,
    /// The software version, so a half-finished rollout is visible.
    pub version: String,
    /// When the process started (ms since the epoch), for its uptime.
    pub started_at: i64,
    /// When this report was written (ms since the epoch), the liveness signal.
    pub heartbeat_at: i64,
    /// The synced-state figures at the time of writing.
    pub sync: SyncReport,
    /// Each cache namespace the instance has open (at most
    /// [`MAX_REPORTED_CACHES`]), so the dashboard can show hit ratios per
    /// instance and compare content hashes across them. Absent in reports
    /// of instances without caches, and in those of older releases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<crate::cache::CacheStats>,
}

impl InstanceReport {
    /// Rejects labels that would garble a dashboard or logs before they are
    /// stored, so every reader can show them as they are. The id is already
    /// checked by [`InstanceId`].
    pub fn validate(&self) -> Result<()> {
        check_label(&self.id, "role", &self.role)?;
        check_label(&self.id, "version", &self.version)
    }
}

fn check_label(id: &InstanceId, what: &str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        Some(format!("{what} must not be empty"))
    } else if value.chars().count() > MAX_LABEL_LEN {
        Some(format!("{what} must be at most {MAX_LABEL_LEN} characters"))
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(format!(
            "{what} must not contain whitespace or control characters"
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CoordError::InvalidInstance {
            name: id.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// How an instance looks from the outside, judged by its heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InstanceStatus {
    /// Heartbeats arrive on time.
    Live,
    /// The entry still exists but the last heartbeat is older than the
    /// stale threshold: the process is hung, paused or about to be `Gone`.
    Stale,
    /// The entry expired without the instance leaving: it most likely
    /// crashed. Kept visible until `forget_after` so the crash is noticed.
    Gone,
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Live => "live",
            Self::Stale => "stale",
            Self::Gone => "gone",
        })
    }
}

/// One row of the instances page: the last report and what it means now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// The last report the instance wrote (for a `Gone` one, its last words).
    pub report: InstanceReport,
    /// Live, stale or gone at the time of listing.
    pub status: InstanceStatus,
    /// How old the last heartbeat was at the time of listing (never
    /// negative, even when the writer's clock is ahead of the reader's).
    pub heartbeat_age_ms: i64,
}

/// The reader's judgement of heartbeats: readers choose them, not writers,
/// so one dashboard applies one rule to the whole fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// A heartbeat older than this makes a present entry `Stale`.
    pub stale_after: Duration,
    /// An expired entry whose last heartbeat is older than this is removed
    /// for good, so a fleet that scales up and down does not accumulate
    /// dead rows. Should exceed the entries' time to live.
    pub forget_after: Duration,
}

impl Thresholds {
    /// Stale after three missed heartbeats of `interval`, forgotten after
    /// 120 intervals (10 minutes at the default interval): one late
    /// heartbeat is noise, three are a problem, and a crash stays visible
    /// long enough for someone to look.
    pub fn for_interval(interval: Duration) -> Self {
        Self {
            stale_after: interval.saturating_mul(3),
            forget_after: interval.saturating_mul(120),
        }
    }

    /// Refuses thresholds that would flap every instance or forget a crash
    /// before it could be seen.
    pub fn validate(&self) -> Result<()> {
        if self.stale_after.is_zero() {
            return Err(CoordError::InvalidOptions(
                "stale_after must be greater than zero".into(),
            ));
        }
        if self.forget_after < self.stale_after {
            return Err(CoordError::InvalidOptions(
                "forget_after must not be shorter than stale_after".into(),
            ));
        }
        Ok(())
    }

    /// What to do with an entry whose last report was written at
    /// `heartbeat_at`: `None` means forget it. Workers live the same life.
    pub(crate) fn judge(
        &self,
        now_ms: i64,
        heartbeat_at: i64,
        expired: bool,
    ) -> Option<(InstanceStatus, i64)> {
        let age = now_ms.saturating_sub(heartbeat_at).max(0);
        if expired {
            if age > duration_ms(self.forget_after) {
                return None;
            }
            return Some((InstanceStatus::Gone, age));
        }
        let status = if age < duration_ms(self.stale_after) {
            InstanceStatus::Live
        } else {
            InstanceStatus::Stale
        };
        Some((status, age))
    }
}

impl Default for Thresholds {
    /// The thresholds that fit [`DEFAULT_HEARTBEAT_INTERVAL`].
    fn default() -> Self {
        Self::for_interval(DEFAULT_HEARTBEAT_INTERVAL)
    }
}

/// Where instances leave their reports. One trait so the heartbeat task and
/// the dashboard work the same on the embedded and the Redis deployment.
#[async_trait]
pub trait InstanceRegistry: Send + Sync + fmt::Debug {
    /// Stores `report` as the instance's current entry, to expire after
    /// `ttl` unless written again: expiry is how a crash becomes visible
    /// without anyone having to clean up after the dead process.
    async fn heartbeat(&self, report: &InstanceReport, ttl: Duration) -> Result<()>;

    /// Removes the instance at once (graceful leave), so a planned shutdown
    /// or a scale-down is not mistaken for a crash.
    async fn leave(&self, id: &InstanceId) -> Result<()>;

    /// Every known instance with its status at `now_ms`, sorted by id.
    /// Entries gone for longer than `forget_after` are removed as a side
    /// effect, by whoever lists, so no separate janitor has to run.
    async fn list(&self, now_ms: i64, thresholds: &Thresholds) -> Result<Vec<InstanceView>>;
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging_heartbeats() {
        let t = Thresholds {
            stale_after: Duration::from_millis(100),
            forget_after: Duration::from_millis(1000),
        };
        assert_eq!(t.judge(1050, 1000, false), Some((InstanceStatus::Live, 50)));
        assert_eq!(
            t.judge(1100, 1000, false),
            Some((InstanceStatus::Stale, 100))
        );
        assert_eq!(t.judge(900, 1000, false), Some((InstanceStatus::Live, 0)));
        assert_eq!(t.judge(1500, 1000, true), Some((InstanceStatus::Gone, 500)));
        assert_eq!(t.judge(2001, 1000, true), None);
        assert!(t.validate().is_ok());
        assert!(
            Thresholds {
                stale_after: Duration::ZERO,
                ..t
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn sync_report_is_camel_case() {
        let json = serde_json::to_value(SyncReport::default()).unwrap();
        assert!(json.get("appliedVersion").is_some());
        assert!(json.get("processingLatencyMs").is_some());
    }
}
