//! Instances of the deployment's services and their synced-state status:
//! the heartbeat registry (in process or Redis) read next to the synced
//! state's source of truth (the SQL database), so each instance's lag and
//! hash can be compared with the latest version.

pub mod routes;
pub mod vm;

use std::sync::Arc;
use std::time::Duration;

use coord::CoordError;
use coord::instances::{
    InstanceRegistry, InstanceStatus, InstanceView, LocalRegistry, RedisRegistry, Thresholds,
};
use coord::sync::StateStore;
use coord::time::now_ms;

use crate::db::Database;

/// Heartbeat interval of the instances the dashboard starts (the demo's);
/// instances are stale after three missed heartbeats.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Longest the figures wait on Redis or the database per snapshot.
const TIMEOUT: Duration = Duration::from_secs(2);

/// One instance as of a snapshot, with its sync status worked out.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceFacts {
    /// What the registry holds (its report and heartbeat age).
    pub view: InstanceView,
    /// How long it has been running (ms).
    pub uptime_ms: i64,
    /// Changes it is behind the database (latest − applied), when known.
    pub lag_changes: Option<i64>,
    /// How long ago it last synced when it is behind, 0 when it is not.
    pub lag_ms: Option<i64>,
    /// Whether its state hash equals the database's; `None` when it is
    /// behind (a different hash is then expected, not drift).
    pub hash_matches: Option<bool>,
}

impl InstanceFacts {
    /// Live, stale or gone.
    pub fn status(&self) -> InstanceStatus {
        self.view.status
    }
}

/// Instances and the synced state's latest version, as of a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceFigures {
    /// The database's latest synced-state version, when it answered.
    pub latest_version: Option<i64>,
    /// The hash of the database's state, when it answered.
    pub latest_hash: Option<String>,
    /// When an instance counts as stale (ms without a heartbeat).
    pub stale_after_ms: i64,
    /// Every instance the registry lists.
    pub instances: Vec<InstanceFacts>,
}

/// The registry instances heartbeat into and the synced state's store.
/// Cheap to clone.
#[derive(Clone)]
pub struct Instances {
    /// Where instances heartbeat.
    pub registry: Arc<dyn InstanceRegistry>,
    /// The synced-state source of truth.
    pub store: StateStore,
    /// When instances count as stale or are forgotten.
    pub thresholds: Thresholds,
}

impl std::fmt::Debug for Instances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instances").finish_non_exhaustive()
    }
}

impl Instances {
    /// Connects the registry of the deployment (`redis` given: Redis under
    /// `prefix`; else in process) and opens the store on `db`.
    pub async fn start(redis: Option<(&str, &str)>, db: &Database) -> Result<Self, CoordError> {
        let store = match db {
            Database::Sqlite(pool) => StateStore::sqlite(pool.clone()).await?,
            Database::Postgres(pool) => StateStore::postgres(pool.clone()).await?,
        };
        let registry: Arc<dyn InstanceRegistry> = match redis {
            Some((url, prefix)) => Arc::new(RedisRegistry::connect(url, prefix).await?),
            None => Arc::new(LocalRegistry::new()),
        };
        Ok(Self {
            registry,
            store,
            thresholds: Thresholds::for_interval(HEARTBEAT),
        })
    }

    /// Every instance with its lag and drift against the database.
    pub async fn figures(&self) -> InstanceFigures {
        let now = now_ms();
        let (views, latest, hash) = tokio::join!(
            tokio::time::timeout(TIMEOUT, self.registry.list(now, &self.thresholds)),
            tokio::time::timeout(TIMEOUT, self.store.latest_version()),
            tokio::time::timeout(TIMEOUT, self.store.state_hash()),
        );
        let latest = latest.ok().and_then(Result::ok);
        let hash = hash.ok().and_then(Result::ok).map(|h| h.to_string());
        let views = match views {
            Ok(Ok(views)) => views,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot list instances");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        InstanceFigures {
            instances: views
                .into_iter()
                .map(|v| facts(v, now, latest, hash.as_deref()))
                .collect(),
            latest_version: latest,
            latest_hash: hash,
            stale_after_ms: self.thresholds.stale_after.as_millis() as i64,
        }
    }
}

fn facts(
    view: InstanceView,
    now: i64,
    latest: Option<i64>,
    latest_hash: Option<&str>,
) -> InstanceFacts {
    let sync = &view.report.sync;
    let lag = latest.map(|l| (l - sync.applied_version).max(0));
    let behind = lag.is_some_and(|l| l > 0);
    InstanceFacts {
        uptime_ms: now.saturating_sub(view.report.started_at).max(0),
        lag_changes: lag,
        lag_ms: if behind {
            sync.last_sync_at.map(|at| now.saturating_sub(at).max(0))
        } else {
            Some(0)
        },
        hash_matches: match (latest_hash, behind) {
            (Some(h), false) => Some(h == sync.state_hash),
            _ => None,
        },
        view,
    }
}
