//! The fleet side of the dashboard: notification channel traffic, the
//! instance registry and the synced-state store, on the deployment's bus.
//!
//! The embedded default uses the in-process bus and registry (the demo's
//! instances live in the same process); scale-out uses Redis for both and
//! the SQL database for the synced state. The traffic observer subscribes
//! to every channel under the prefix, so services that do not use `coord`
//! show up too.

pub mod demo;
pub mod traffic;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use app::fleet::{ChannelsVm, InstanceRow, InstanceState, InstancesVm};
use coord::CoordError;
use coord::channels::{ChannelBus, ChannelName, LocalBus, RawEvent, RedisBus};
use coord::instances::{
    InstanceRegistry, InstanceStatus, InstanceView, LocalRegistry, RedisRegistry, Thresholds,
};
use coord::sync::StateStore;
use coord::time::now_ms;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::Database;
use traffic::Traffic;

/// Heartbeat interval of the instances the dashboard starts (the demo's);
/// instances are stale after three missed heartbeats.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Longest the fleet figures wait on Redis or the database per snapshot.
const TIMEOUT: Duration = Duration::from_secs(2);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Aborts the observer task when the last fleet handle goes.
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Channels, instances and synced state of one deployment. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    /// The bus services (and the demo) publish on.
    pub bus: Arc<dyn ChannelBus>,
    redis_bus: Option<RedisBus>,
    /// Where instances heartbeat.
    pub registry: Arc<dyn InstanceRegistry>,
    /// The synced-state source of truth.
    pub store: StateStore,
    /// When instances count as stale or are forgotten.
    pub thresholds: Thresholds,
    traffic: Arc<Mutex<Traffic>>,
    observing: watch::Receiver<bool>,
    _observer: Arc<TaskGuard>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").finish_non_exhaustive()
    }
}

impl Fleet {
    /// Connects the bus and registry of the deployment (`redis` given:
    /// Redis under `prefix`; else in process) and opens the store on `db`.
    /// `changed` is called after each observed message, so live pages can
    /// refresh.
    pub async fn start(
        redis: Option<(&str, &str)>,
        db: &Database,
        changed: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self, CoordError> {
        let store = match db {
            Database::Sqlite(pool) => StateStore::sqlite(pool.clone()).await?,
            Database::Postgres(pool) => StateStore::postgres(pool.clone()).await?,
        };
        let (bus, redis_bus, registry): (Arc<dyn ChannelBus>, _, Arc<dyn InstanceRegistry>) =
            match redis {
                Some((url, prefix)) => {
                    let bus = RedisBus::connect(url, prefix).await?;
                    let registry = RedisRegistry::connect(url, prefix).await?;
                    (Arc::new(bus.clone()), Some(bus), Arc::new(registry))
                }
                None => (
                    Arc::new(LocalBus::new()),
                    None,
                    Arc::new(LocalRegistry::new()),
                ),
            };
        let traffic = Arc::new(Mutex::new(Traffic::default()));
        let (observing_tx, observing) = watch::channel(false);
        let mut subscription = bus.observe().await?;
        let observed = traffic.clone();
        let task = tokio::spawn(async move {
            let mut connected = subscription.connected();
            observing_tx.send_replace(*connected.borrow());
            loop {
                tokio::select! {
                    event = subscription.recv() => match event {
                        Some(RawEvent::Message(m)) => {
                            lock(&observed).record(&m.channel, &m.payload, now_ms());
                            changed();
                        }
                        Some(RawEvent::Lagged(n)) => {
                            tracing::warn!(missed = n, "channel observer fell behind");
                        }
                        None => break,
                    },
                    up = connected.changed() => {
                        if up.is_err() { break }
                        observing_tx.send_replace(*connected.borrow_and_update());
                    }
                }
            }
        });
        Ok(Self {
            bus,
            redis_bus,
            registry,
            store,
            thresholds: Thresholds::for_interval(HEARTBEAT),
            traffic,
            observing,
            _observer: Arc::new(TaskGuard(task)),
        })
    }

    /// The channels page's view model, with subscriber counts on Redis.
    pub async fn channels(&self) -> ChannelsVm {
        let mut channels = lock(&self.traffic).rows(now_ms());
        if let Some(bus) = &self.redis_bus {
            for row in &mut channels {
                // Foreign channel names need not be valid ChannelNames;
                // those simply show no subscriber count.
                if let Ok(name) = ChannelName::new(row.name.clone())
                    && let Ok(Ok(n)) =
                        tokio::time::timeout(TIMEOUT, bus.subscriber_count(&name)).await
                {
                    row.subscribers = Some(n);
                }
            }
        }
        ChannelsVm {
            bus: if self.redis_bus.is_some() {
                "redis".into()
            } else {
                "in-process".into()
            },
            connected: *self.observing.borrow(),
            channels,
        }
    }

    /// The instances page's view model.
    pub async fn instances(&self) -> InstancesVm {
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
        InstancesVm {
            latest_version: latest,
            latest_hash: hash.clone(),
            stale_after_ms: self.thresholds.stale_after.as_millis() as i64,
            instances: views
                .into_iter()
                .map(|v| instance_row(v, now, latest, hash.as_deref()))
                .collect(),
        }
    }
}

fn instance_row(
    view: InstanceView,
    now: i64,
    latest: Option<i64>,
    latest_hash: Option<&str>,
) -> InstanceRow {
    let report = view.report;
    let sync = report.sync;
    let lag = latest.map(|l| (l - sync.applied_version).max(0));
    let behind = lag.is_some_and(|l| l > 0);
    InstanceRow {
        id: report.id.to_string(),
        role: report.role,
        version: report.version,
        state: match view.status {
            InstanceStatus::Live => InstanceState::Live,
            InstanceStatus::Stale => InstanceState::Stale,
            InstanceStatus::Gone => InstanceState::Gone,
        },
        heartbeat_age_ms: view.heartbeat_age_ms,
        uptime_ms: now.saturating_sub(report.started_at).max(0),
        applied_version: sync.applied_version,
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
        state_hash: sync.state_hash,
        received: sync.notifications_received,
        skipped_self: sync.skipped_self,
        processed: sync.processed,
        malformed: sync.malformed,
        batches: sync.debounce_batches,
        last_reload_ms: sync.processing_latency_ms,
        last_error: sync.last_error,
        bus_connected: sync.bus_connected,
        polling: sync.polling,
    }
}
