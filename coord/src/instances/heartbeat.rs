//! The background task that keeps one instance's entry fresh.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_TTL_INTERVALS, InstanceRegistry, InstanceReport,
    MAX_REPORTED_CACHES, SyncReport, check_label,
};
use crate::cache::CacheSet;
use crate::error::{CoordError, Result};
use crate::instance::InstanceId;
use crate::time::now_ms;

/// Who an instance is and how often it reports. Fixed for the life of a
/// heartbeat: only the sync figures change between beats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// The instance's id, its key in the registry.
    pub id: InstanceId,
    /// What the instance does (`api`, `worker`…).
    pub role: String,
    /// The software version it runs.
    pub version: String,
    /// When the process started (ms since the epoch); reported for uptime.
    pub started_at: i64,
    /// Time between two beats.
    pub interval: Duration,
    /// How long an entry outlives its last beat: how quickly a crashed
    /// instance turns `Gone`. Must exceed `interval`, or a healthy instance
    /// would flicker out between beats.
    pub ttl: Duration,
}

impl HeartbeatConfig {
    /// The defaults: a beat every 5 s, entries living 6 intervals, started
    /// now.
    pub fn new(id: InstanceId, role: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            id,
            role: role.into(),
            version: version.into(),
            started_at: now_ms(),
            interval: DEFAULT_HEARTBEAT_INTERVAL,
            ttl: DEFAULT_HEARTBEAT_INTERVAL.saturating_mul(DEFAULT_TTL_INTERVALS),
        }
    }

    /// Changes the interval and scales the time to live with it, so the
    /// ratio between missed beats and expiry stays the same.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self.ttl = interval.saturating_mul(DEFAULT_TTL_INTERVALS);
        self
    }

    /// Overrides the time to live alone.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Refuses settings that could never produce a steady `Live` entry, at
    /// start rather than as a silently flapping dashboard row.
    pub fn validate(&self) -> Result<()> {
        check_label(&self.id, "role", &self.role)?;
        check_label(&self.id, "version", &self.version)?;
        if self.interval < Duration::from_millis(1) {
            return Err(CoordError::InvalidOptions(
                "the heartbeat interval must be at least 1 ms".into(),
            ));
        }
        if self.ttl <= self.interval {
            return Err(CoordError::InvalidOptions(
                "the heartbeat time to live must be longer than its interval".into(),
            ));
        }
        Ok(())
    }

    fn report(&self, sync: SyncReport) -> InstanceReport {
        InstanceReport {
            id: self.id.clone(),
            role: self.role.clone(),
            version: self.version.clone(),
            started_at: self.started_at,
            heartbeat_at: now_ms(),
            sync,
            caches: Vec::new(),
        }
    }
}

/// Where a heartbeat gets the current sync figures. The synced-state layer
/// publishes them on a `watch` channel; a closure suits tests and callers
/// that compute figures on demand. The source is read on the heartbeat's
/// task at each beat and must not block or panic.
pub enum ReportSource {
    /// The latest value sent on the channel.
    Watch(watch::Receiver<SyncReport>),
    /// Whatever the closure returns at each beat.
    Poll(Box<dyn FnMut() -> SyncReport + Send>),
}

impl ReportSource {
    /// A source that calls `f` at every beat.
    pub fn from_fn(f: impl FnMut() -> SyncReport + Send + 'static) -> Self {
        Self::Poll(Box::new(f))
    }

    /// A source that always reports the same figures, for instances
    /// without synced state (they still want to be listed).
    pub fn fixed(report: SyncReport) -> Self {
        Self::from_fn(move || report.clone())
    }

    fn current(&mut self) -> SyncReport {
        match self {
            Self::Watch(rx) => rx.borrow_and_update().clone(),
            Self::Poll(f) => f(),
        }
    }
}

impl From<watch::Receiver<SyncReport>> for ReportSource {
    fn from(rx: watch::Receiver<SyncReport>) -> Self {
        Self::Watch(rx)
    }
}

impl std::fmt::Debug for ReportSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Watch(_) => "ReportSource::Watch",
            Self::Poll(_) => "ReportSource::Poll",
        })
    }
}

/// How the heartbeat itself is doing, so a service's health endpoint can
/// say "running, but the registry is unreachable" instead of the instance
/// silently vanishing from the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatHealth {
    /// Beats written successfully.
    pub written: u64,
    /// Beats that failed (each is retried at the next interval).
    pub failures: u64,
    /// Failures since the last successful beat; 0 when healthy.
    pub consecutive_failures: u64,
    /// The most recent failure, cleared by the next success.
    pub last_error: Option<String>,
    /// When the last successful beat was written (ms since the epoch).
    pub last_written_at: Option<i64>,
}

/// Keeps one instance's registry entry fresh from a background task.
///
/// Call [`shutdown`](Self::shutdown) on a planned stop: it stops the task
/// and removes the entry, so the dashboard drops the instance at once. If
/// the process crashes (or the `Heartbeat` is dropped without shutdown) the
/// entry is left to expire: it turns `Stale` once the stale threshold
/// passes, `Gone` when its time to live runs out, and is forgotten after
/// `forget_after` — which is how a crash stays visible for a while.
///
/// A failed write (registry unreachable) is logged, recorded in
/// [`health`](Self::health) and retried at the next interval; the task
/// never stops on its own.
#[derive(Debug)]
pub struct Heartbeat {
    id: InstanceId,
    registry: Arc<dyn InstanceRegistry>,
    trigger: Arc<Notify>,
    stop: watch::Sender<bool>,
    health: Arc<Mutex<HeartbeatHealth>>,
    task: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Validates the settings and starts beating (the first beat is
    /// immediate, so a new instance is listed without waiting an interval).
    /// Needs a tokio runtime.
    pub fn start(
        registry: Arc<dyn InstanceRegistry>,
        config: HeartbeatConfig,
        source: impl Into<ReportSource>,
    ) -> Result<Self> {
        Self::start_with_caches(registry, config, source, CacheSet::default())
    }

    /// As [`start`](Self::start), and each beat also carries the figures
    /// of the caches in `caches` (those still open at the beat).
    pub fn start_with_caches(
        registry: Arc<dyn InstanceRegistry>,
        config: HeartbeatConfig,
        source: impl Into<ReportSource>,
        caches: CacheSet,
    ) -> Result<Self> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(CoordError::Unavailable(
                "a heartbeat must be started inside a tokio runtime".into(),
            ));
        }
        let trigger = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let health = Arc::new(Mutex::new(HeartbeatHealth::default()));
        let id = config.id.clone();
        let task = tokio::spawn(run(
            Arc::clone(&registry),
            config,
            source.into(),
            caches,
            Arc::clone(&trigger),
            stop_rx,
            Arc::clone(&health),
        ));
        Ok(Self {
            id,
            registry,
            trigger,
            stop,
            health,
            task: Some(task),
        })
    }

    /// The instance this heartbeat reports for.
    pub fn id(&self) -> &InstanceId {
        &self.id
    }

    /// Asks for a beat now rather than at the next interval, e.g. right
    /// after a sync so the dashboard shows the new version without delay.
    /// Requests made while a beat is being written collapse into one.
    pub fn beat_now(&self) {
        self.trigger.notify_one();
    }

    /// The heartbeat's own success and failure counts.
    pub fn health(&self) -> HeartbeatHealth {
        lock(&self.health).clone()
    }

    /// Stops beating and removes the instance's entry (graceful leave).
    /// A beat in flight is abandoned, so no beat lands after the removal.
    /// The error, if any, is the removal's: the entry then expires on its
    /// own like a crashed instance's.
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.registry.leave(&self.id).await
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn lock(health: &Mutex<HeartbeatHealth>) -> MutexGuard<'_, HeartbeatHealth> {
    // Only plain counter updates happen under the lock.
    health.lock().unwrap_or_else(|p| p.into_inner())
}

async fn run(
    registry: Arc<dyn InstanceRegistry>,
    config: HeartbeatConfig,
    mut source: ReportSource,
    caches: CacheSet,
    trigger: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    health: Arc<Mutex<HeartbeatHealth>>,
) {
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = ticker.tick() => {}
            _ = trigger.notified() => ticker.reset(),
        }
        if *stop.borrow() {
            break;
        }
        let mut report = config.report(source.current());
        let result = tokio::select! {
            biased;
            _ = stop.changed() => break,
            result = async {
                report.caches = caches.stats(MAX_REPORTED_CACHES).await;
                registry.heartbeat(&report, config.ttl).await
            } => result,
        };
        record(&health, &config.id, result);
    }
}

fn record(health: &Mutex<HeartbeatHealth>, id: &InstanceId, result: Result<()>) {
    let mut health = lock(health);
    match result {
        Ok(()) => {
            if health.consecutive_failures > 0 {
                tracing::info!(
                    instance = %id,
                    failures = health.consecutive_failures,
                    "instance heartbeat recovered"
                );
            }
            health.written += 1;
            health.consecutive_failures = 0;
            health.last_error = None;
            health.last_written_at = Some(now_ms());
        }
        Err(e) => {
            let message = e.to_string();
            // Warn when an outage starts or changes, not at every beat.
            if health.last_error.as_deref() != Some(message.as_str()) {
                tracing::warn!(instance = %id, error = %message, "instance heartbeat failed; retrying");
            } else {
                tracing::debug!(instance = %id, error = %message, "instance heartbeat still failing");
            }
            health.failures += 1;
            health.consecutive_failures += 1;
            health.last_error = Some(message);
        }
    }
}
