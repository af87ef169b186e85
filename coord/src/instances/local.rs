//! The in-process registry of the embedded deployment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::{InstanceRegistry, InstanceReport, InstanceView, Thresholds, duration_ms};
use crate::error::Result;
use crate::instance::InstanceId;
use crate::time::now_ms;

/// Instance reports kept in memory, for the embedded default where all
/// instances (the demo's simulated ones included) run in one process and a
/// network store would be pointless. Clones share one map, so every
/// instance's heartbeat and the dashboard see the same entries.
///
/// Entries expire like Redis keys (at write time plus the time to live,
/// by the process clock), so both registries report crashes the same way.
/// Unlike Redis, expiry is judged at the `now_ms` given to `list`.
#[derive(Clone, Debug, Default)]
pub struct LocalRegistry {
    entries: Arc<Mutex<HashMap<InstanceId, Entry>>>,
}

#[derive(Debug)]
struct Entry {
    report: InstanceReport,
    expires_at: i64,
}

impl LocalRegistry {
    /// An empty registry; clone it into every instance that should share it.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<InstanceId, Entry>> {
        // A poisoned lock only means a panic elsewhere during a plain map
        // update; the map itself is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl InstanceRegistry for LocalRegistry {
    async fn heartbeat(&self, report: &InstanceReport, ttl: Duration) -> Result<()> {
        report.validate()?;
        let expires_at = now_ms().saturating_add(duration_ms(ttl));
        self.entries().insert(
            report.id.clone(),
            Entry {
                report: report.clone(),
                expires_at,
            },
        );
        Ok(())
    }

    async fn leave(&self, id: &InstanceId) -> Result<()> {
        self.entries().remove(id);
        Ok(())
    }

    async fn list(&self, now_ms: i64, thresholds: &Thresholds) -> Result<Vec<InstanceView>> {
        thresholds.validate()?;
        let mut entries = self.entries();
        let mut views = Vec::with_capacity(entries.len());
        entries.retain(|_, entry| {
            let expired = now_ms >= entry.expires_at;
            match thresholds.judge(now_ms, entry.report.heartbeat_at, expired) {
                Some((status, heartbeat_age_ms)) => {
                    views.push(InstanceView {
                        report: entry.report.clone(),
                        status,
                        heartbeat_age_ms,
                    });
                    true
                }
                None => false,
            }
        });
        drop(entries);
        views.sort_by(|a, b| a.report.id.cmp(&b.report.id));
        Ok(views)
    }
}
