//! One instance's copy of the synced state, kept current from the store.
//!
//! The database ([`StateStore`]) is the source of truth; notifications only
//! say "something changed, up to version V". A change is written to the
//! database first and published after, so a failed write publishes nothing
//! and a receiver that reloads always finds what it was told about.
//! Receivers never apply a message's content: they fetch the changes newer
//! than the last version they applied, which makes lost, duplicated or
//! reordered messages harmless, and they never republish what they apply
//! (the loop-prevention rule: only local writes publish).
//!
//! Reloads are debounced, so a burst of changes costs each instance a
//! handful of reloads. While the bus is down (or disabled) an instance
//! polls the database's latest version instead, and on every reconnect it
//! catches up, so a gap in messages never leaves it stale for longer than
//! the poll interval.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Entry, StateHash, StateKey, StateStore, state_hash};
use crate::channels::{ChangeType, Channel, ChannelBus, ChannelName, ChannelStats, source};
use crate::debounce::{DebounceConfig, Debouncer, Notifier};
use crate::error::Result;
use crate::instance::InstanceId;
use crate::time::now_ms;

/// What a sync notification carries: the version the sender's change
/// produced. Receivers reload everything newer than what they applied, so
/// this is only a hint of how far to go (and lets them drop stale hints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateChanged {
    /// The version of the change.
    pub version: i64,
}

/// How an instance keeps its copy current.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// The channel changes are announced on.
    pub channel: ChannelName,
    /// How notifications are collapsed into reloads.
    pub debounce: DebounceConfig,
    /// How often to check the database while the bus is down or disabled.
    pub poll_interval: Duration,
    /// Changes fetched per query while catching up.
    pub page: usize,
}

impl ReplicaConfig {
    /// Defaults for `channel`: 50 ms debounce, polling every 2 s when the
    /// bus is down, pages of 500 changes.
    pub fn new(channel: ChannelName) -> Self {
        Self {
            channel,
            debounce: DebounceConfig::new(Duration::from_millis(50)),
            poll_interval: Duration::from_secs(2),
            page: 500,
        }
    }
}

/// An instance's sync figures, for its heartbeat and the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// The version this instance has applied.
    pub applied_version: i64,
    /// The database's latest version when last checked.
    pub latest_version: Option<i64>,
    /// Hash of the applied live state (compare across instances).
    pub state_hash: String,
    /// When the last reload finished (ms since the epoch).
    pub last_sync_at: Option<i64>,
    /// Notifications that arrived on the channel.
    pub received: u64,
    /// Notifications this instance sent itself, skipped.
    pub skipped_self: u64,
    /// Notifications from other instances handed to the reloader.
    pub processed: u64,
    /// Messages that were not valid notifications, skipped.
    pub malformed: u64,
    /// Reloads that covered more than one notification.
    pub batches: u64,
    /// Reloads run.
    pub reloads: u64,
    /// How long the last reload took.
    pub last_reload_ms: Option<f64>,
    /// The last error (reload, publish or poll), if any.
    pub last_error: Option<String>,
    /// Whether the notification bus is connected.
    pub bus_connected: bool,
    /// Whether the instance is polling the database instead.
    pub polling: bool,
}

struct Applied {
    version: i64,
    entries: BTreeMap<StateKey, Entry>,
}

struct Shared {
    store: StateStore,
    instance: InstanceId,
    page: usize,
    applied: Mutex<Applied>,
    latest: AtomicU64,
    last_sync_at: AtomicU64,
    last_reload_us: AtomicU64,
    last_error: Mutex<Option<String>>,
    processed: AtomicU64,
    connected: AtomicBool,
    polling: AtomicBool,
    /// The applied version, for whoever waits on changes (a dashboard
    /// pushing updates, a benchmark timing propagation).
    applied_tx: watch::Sender<i64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn note_error(&self, what: &str, err: &dyn std::fmt::Display) {
        tracing::warn!(instance = %self.instance, error = %err, "{what}");
        *lock(&self.last_error) = Some(format!("{what}: {err}"));
    }

    fn applied_version(&self) -> i64 {
        lock(&self.applied).version
    }

    /// Fetches and applies every change newer than the applied version.
    async fn catch_up(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            let from = self.applied_version();
            let changes = self.store.changes_since(from, self.page).await?;
            let done = changes.len() < self.page;
            {
                let mut applied = lock(&self.applied);
                for entry in changes {
                    // A concurrent local write may have applied it already.
                    if entry.version <= applied.version {
                        continue;
                    }
                    applied.version = entry.version;
                    if entry.deleted {
                        applied.entries.remove(&entry.key);
                    } else {
                        applied.entries.insert(entry.key.clone(), entry);
                    }
                }
            }
            if done {
                break;
            }
        }
        let version = self.applied_version();
        self.applied_tx.send_if_modified(|current| {
            let moved = *current != version;
            *current = version;
            moved
        });
        self.latest
            .fetch_max(version.max(0) as u64, Ordering::Relaxed);
        self.last_sync_at
            .store(now_ms().max(0) as u64, Ordering::Relaxed);
        self.last_reload_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// This instance's copy of the synced state. Dropping it stops its tasks;
/// [`Replica::shutdown`] also waits for them.
pub struct Replica {
    shared: Arc<Shared>,
    channel: Option<Channel<StateChanged>>,
    debouncer: Option<Debouncer>,
    notifier: Notifier,
    counters: Option<ChannelStats>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("instance", &self.shared.instance)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Loads the current state and starts following changes: on `bus` when
    /// given (and polling while it is down), by polling alone when `None`.
    pub async fn start(
        store: StateStore,
        bus: Option<Arc<dyn ChannelBus>>,
        instance: InstanceId,
        config: ReplicaConfig,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            store,
            instance: instance.clone(),
            page: config.page.max(1),
            applied: Mutex::new(Applied {
                version: 0,
                entries: BTreeMap::new(),
            }),
            latest: AtomicU64::new(0),
            last_sync_at: AtomicU64::new(0),
            last_reload_us: AtomicU64::new(0),
            last_error: Mutex::new(None),
            processed: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            polling: AtomicBool::new(bus.is_none()),
            applied_tx: watch::channel(0).0,
        });
        let channel =
            bus.map(|bus| Channel::<StateChanged>::new(bus, config.channel.clone(), instance));
        // Subscribe before the first load, so a change made between the
        // load and the subscription is not missed.
        let subscription = match &channel {
            Some(channel) => Some(channel.subscribe().await?),
            None => None,
        };
        shared.catch_up().await?;
        let reloader = shared.clone();
        let debouncer = Debouncer::spawn(config.debounce, move || {
            let shared = reloader.clone();
            async move {
                let result = shared.catch_up().await;
                if let Err(err) = &result {
                    shared.note_error("reload failed", err);
                }
                result
            }
        });
        let notifier = debouncer.notifier();
        let counters = subscription.as_ref().map(|s| s.stats());
        let mut tasks = Vec::new();
        if let Some(mut subscription) = subscription {
            let shared = shared.clone();
            let notifier = notifier.clone();
            tasks.push(tokio::spawn(async move {
                let stats = subscription.stats();
                let mut connected = subscription.connected();
                let mut lagged = 0;
                shared
                    .connected
                    .store(*connected.borrow(), Ordering::Relaxed);
                loop {
                    tokio::select! {
                        message = subscription.recv() => {
                            let Some(envelope) = message else { break };
                            let hint = envelope.payload.version.max(0) as u64;
                            shared.latest.fetch_max(hint, Ordering::Relaxed);
                            shared.processed.fetch_add(1, Ordering::Relaxed);
                            if envelope.payload.version > shared.applied_version() {
                                notifier.notify();
                            }
                        }
                        changed = connected.changed() => {
                            if changed.is_err() { break }
                            let up = *connected.borrow_and_update();
                            shared.connected.store(up, Ordering::Relaxed);
                            // Messages sent while we were away are lost:
                            // catch up from the database on every reconnect.
                            if up {
                                notifier.notify();
                            }
                        }
                    }
                    let now = stats.snapshot();
                    if now.lagged > lagged {
                        lagged = now.lagged;
                        notifier.notify();
                    }
                }
            }));
        }
        {
            let shared = shared.clone();
            let notifier = notifier.clone();
            let interval = config.poll_interval;
            let has_bus = channel.is_some();
            tasks.push(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticker.tick().await;
                    let polling = !has_bus || !shared.connected.load(Ordering::Relaxed);
                    shared.polling.store(polling, Ordering::Relaxed);
                    if !polling {
                        continue;
                    }
                    match shared.store.latest_version().await {
                        Ok(latest) => {
                            shared
                                .latest
                                .fetch_max(latest.max(0) as u64, Ordering::Relaxed);
                            if latest > shared.applied_version() {
                                notifier.notify();
                            }
                        }
                        Err(err) => shared.note_error("poll failed", &err),
                    }
                }
            }));
        }
        Ok(Self {
            shared,
            channel,
            debouncer: Some(debouncer),
            notifier,
            counters,
            tasks,
        })
    }

    /// The instance this replica belongs to.
    pub fn instance(&self) -> &InstanceId {
        &self.shared.instance
    }

    /// Stores a value, then tells the other instances. A failed write
    /// publishes nothing; a failed publish leaves the change durable (the
    /// others catch up by polling or on reconnect) and is reported.
    pub async fn put(&self, key: &StateKey, value: &Value, status: &str) -> Result<Entry> {
        let existed = self.get(key).is_some();
        let entry = self
            .shared
            .store
            .put(key, value, status, self.shared.instance.as_str())
            .await?;
        let change = if existed {
            ChangeType::Updated
        } else {
            ChangeType::Created
        };
        self.after_write(&entry, change).await;
        Ok(entry)
    }

    /// Changes a key's status, then tells the other instances; `None` when
    /// the key has no live entry (nothing is written or sent).
    pub async fn set_status(&self, key: &StateKey, status: &str) -> Result<Option<Entry>> {
        let entry = self
            .shared
            .store
            .set_status(key, status, self.shared.instance.as_str())
            .await?;
        if let Some(entry) = &entry {
            self.after_write(entry, ChangeType::StatusChanged).await;
        }
        Ok(entry)
    }

    /// Deletes a key, then tells the other instances; `None` when there was
    /// nothing to delete.
    pub async fn delete(&self, key: &StateKey) -> Result<Option<Entry>> {
        let entry = self
            .shared
            .store
            .delete(key, self.shared.instance.as_str())
            .await?;
        if let Some(entry) = &entry {
            self.after_write(entry, ChangeType::Deleted).await;
        }
        Ok(entry)
    }

    async fn after_write(&self, entry: &Entry, change: ChangeType) {
        // Our own write is applied through the same path as everyone
        // else's, so the applied version never skips a change.
        if let Err(err) = self.shared.catch_up().await {
            self.shared.note_error("reload after a write failed", &err);
            self.notifier.notify();
        }
        if let Some(channel) = &self.channel {
            let payload = StateChanged {
                version: entry.version,
            };
            let keys = vec![entry.key.as_str().to_string()];
            if let Err(err) = channel.publish(change, keys, source::API, &payload).await {
                self.shared.note_error("publish failed", &err);
            }
        }
    }

    /// The applied live entry of a key.
    pub fn get(&self, key: &StateKey) -> Option<Entry> {
        lock(&self.shared.applied).entries.get(key).cloned()
    }

    /// Every applied live entry, by key.
    pub fn entries(&self) -> Vec<Entry> {
        lock(&self.shared.applied)
            .entries
            .values()
            .cloned()
            .collect()
    }

    /// The version this instance has applied.
    pub fn applied_version(&self) -> i64 {
        self.shared.applied_version()
    }

    /// The applied version now and after every change: a receiver wakes
    /// once per reload that moved it.
    pub fn watch_applied(&self) -> watch::Receiver<i64> {
        self.shared.applied_tx.subscribe()
    }

    /// Hash of the applied live state; equal across converged instances.
    pub fn state_hash(&self) -> StateHash {
        state_hash(lock(&self.shared.applied).entries.values())
    }

    /// Asks for a reload now (as a notification would).
    pub fn refresh(&self) {
        self.notifier.notify();
    }

    /// The instance's sync figures.
    pub fn status(&self) -> ReplicaStatus {
        let counters = self
            .counters
            .as_ref()
            .map(ChannelStats::snapshot)
            .unwrap_or_default();
        let debounce = self.notifier.stats();
        let shared = &self.shared;
        let at = shared.last_sync_at.load(Ordering::Relaxed);
        let reload_us = shared.last_reload_us.load(Ordering::Relaxed);
        ReplicaStatus {
            applied_version: self.applied_version(),
            latest_version: Some(shared.latest.load(Ordering::Relaxed) as i64),
            state_hash: self.state_hash().to_string(),
            last_sync_at: (at > 0).then_some(at as i64),
            received: counters.received,
            skipped_self: counters.skipped_self,
            processed: shared.processed.load(Ordering::Relaxed),
            malformed: counters.malformed,
            batches: debounce.batches,
            reloads: debounce.runs_started,
            last_reload_ms: (at > 0).then_some(reload_us as f64 / 1000.0),
            last_error: lock(&shared.last_error).clone(),
            bus_connected: self.channel.is_some() && shared.connected.load(Ordering::Relaxed),
            polling: shared.polling.load(Ordering::Relaxed),
        }
    }

    /// Stops following changes and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Some(debouncer) = self.debouncer.take() {
            debouncer.shutdown().await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl From<ReplicaStatus> for crate::instances::SyncReport {
    /// What an instance's heartbeat carries about its sync.
    fn from(s: ReplicaStatus) -> Self {
        Self {
            applied_version: s.applied_version,
            latest_version: s.latest_version,
            state_hash: s.state_hash,
            last_sync_at: s.last_sync_at,
            notifications_received: s.received,
            skipped_self: s.skipped_self,
            processed: s.processed,
            malformed: s.malformed,
            debounce_batches: s.batches,
            processing_latency_ms: s.last_reload_ms,
            last_error: s.last_error,
            bus_connected: s.bus_connected,
            polling: s.polling,
        }
    }
}
