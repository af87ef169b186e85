//! The live side of the dashboard: one hub per server that turns queue
//! events into coalesced snapshots, and the retry-all runs it reports on.
//!
//! The hub subscribes to the backend's events and marks the queues they
//! touch as changed. At most every [`MIN_INTERVAL`] (and at least every
//! [`HEARTBEAT`], so rates and health stay current when nothing happens) it
//! takes a [`Snapshot`]: the backend's health and every queue's O(1) counts.
//! A tick therefore costs one health check plus one counts call per queue,
//! never anything proportional to the number of jobs. Every open page
//! watches the latest snapshot; pages showing overview figures render them
//! once per snapshot, shared by all clients.

pub mod stream;
pub mod throughput;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use app::{BulkProgressVm, HealthVm, OverviewVm, QueueHealth, QueueRow, QueuesVm};
use coord::CoordError;
use coord::queue::{QueueCounts, QueueName, Queues};
use coord::time::now_ms;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;

use crate::controllers::queues::{QueueSummary, RETRY_BATCH, summaries};
use crate::error::one_line;
use crate::views::state_counts;
use throughput::Throughput;

/// Shortest time between two snapshots: the most updates a page gets is
/// two per second, however busy the queues are.
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// Longest time between two snapshots, so rates, ages and health move on
/// screen even when no queue changes.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Longest a snapshot waits for the backend before showing it as down.
pub const BACKEND_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the rate-limit figures are read (a page update follows only
/// when they changed).
pub const RATELIMITS_EVERY: Duration = Duration::from_secs(1);

/// How long a finished retry-all stays on the queue page.
pub const FINISHED_PROGRESS_KEPT: Duration = Duration::from_secs(60);

/// When a queue is Busy or in Warning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Active jobs above which a queue is Busy.
    pub busy_active: u64,
    /// Failure rate (percent) above which a queue is in Warning.
    pub warning_failure_rate: f64,
}

impl Thresholds {
    /// The badge for a queue's counts and recent failure rate.
    pub fn health(&self, counts: &QueueCounts, failure_rate: Option<f64>) -> QueueHealth {
        if failure_rate.is_some_and(|r| r * 100.0 > self.warning_failure_rate) {
            QueueHealth::Warning
        } else if counts.active > self.busy_active {
            QueueHealth::Busy
        } else {
            QueueHealth::Healthy
        }
    }
}

/// What every open page shows, as of one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Increases by one per snapshot.
    pub seq: u64,
    /// When it was taken (ms since the epoch).
    pub taken_at: i64,
    /// How long taking it took: the cost of one tick, which grows with the
    /// number of queues, never with the number of jobs.
    pub took: Duration,
    /// The backend's health.
    pub health: HealthVm,
    /// Every queue with its counts, rates and badge, sorted by name.
    pub rows: Vec<QueueRow>,
    /// Per-queue throughput, last hour, in row order.
    pub charts: Vec<app::ThroughputVm>,
    /// For each queue, the `seq` of the last snapshot in which its jobs
    /// changed: a page showing its jobs reloads them only when this moves.
    pub changed: HashMap<String, u64>,
    /// Retry-all runs in progress or just finished, by queue name.
    pub progress: HashMap<String, BulkProgressVm>,
    /// Thresholds the badges were computed with.
    pub thresholds: Option<Thresholds>,
    /// Channel traffic, when the fleet is attached.
    pub channels: Option<app::fleet::ChannelsVm>,
    /// Instances and their sync status, when the fleet is attached.
    pub instances: Option<app::fleet::InstancesVm>,
    /// Rate-limit policies and usage, when rate limiting is attached.
    pub ratelimits: Option<app::ratelimits::RateLimitsVm>,
    /// The firing alerts every page's banner shows.
    pub banner: app::AlertBannerVm,
    /// Alerting's view (active alerts, rules, deliveries, first page of
    /// history), when alerting is attached.
    pub alerts: Option<Arc<crate::alerts::runner::AlertsView>>,
    overview: OnceLock<stream::Regions>,
    queues: OnceLock<stream::Regions>,
    channels_regions: OnceLock<stream::Regions>,
    instances_regions: OnceLock<stream::Regions>,
    ratelimits_regions: OnceLock<stream::Regions>,
    banner_regions: OnceLock<stream::Regions>,
    alerts_regions: OnceLock<stream::Regions>,
}

impl Snapshot {
    /// The row of one queue, if it is known.
    pub fn row(&self, name: &str) -> Option<&QueueRow> {
        self.rows.iter().find(|r| r.name == name)
    }

    /// `seq` of the last change to a queue's jobs (0 when never seen).
    pub fn changed(&self, name: &str) -> u64 {
        self.changed.get(name).copied().unwrap_or(0)
    }

    /// The overview's view model.
    pub fn overview_vm(&self) -> OverviewVm {
        let mut totals = app::StateCounts::default();
        for row in &self.rows {
            totals.add(&row.counts);
        }
        OverviewVm {
            health: self.health.clone(),
            totals,
            queue_count: self.rows.len(),
            warnings: self
                .rows
                .iter()
                .filter(|r| r.health == QueueHealth::Warning)
                .map(|r| r.name.clone())
                .collect(),
            charts: self.charts.clone(),
            range: app::ChartRange::Hour,
        }
    }

    /// The queues page's view model.
    pub fn queues_vm(&self) -> QueuesVm {
        let thresholds = self.thresholds.unwrap_or(Thresholds {
            busy_active: 0,
            warning_failure_rate: 0.0,
        });
        QueuesVm {
            health: self.health.clone(),
            queues: self.rows.clone(),
            busy_active: thresholds.busy_active,
            warning_failure_rate: thresholds.warning_failure_rate,
            notice: None,
            bullmq: None,
        }
    }

    /// The overview's regions, rendered once per snapshot for every client.
    pub fn overview_regions(&self) -> stream::Regions {
        self.overview
            .get_or_init(|| stream::regions(app::overview_fragments(&self.overview_vm())))
            .clone()
    }

    /// The channels page's regions, rendered once per snapshot.
    pub fn channels_regions(&self) -> stream::Regions {
        self.channels_regions
            .get_or_init(|| {
                stream::regions(app::channels_fragments(
                    &self.channels.clone().unwrap_or_default(),
                ))
            })
            .clone()
    }

    /// The instances page's regions, rendered once per snapshot.
    pub fn instances_regions(&self) -> stream::Regions {
        self.instances_regions
            .get_or_init(|| {
                stream::regions(app::instances_fragments(
                    &self.instances.clone().unwrap_or_default(),
                ))
            })
            .clone()
    }

    /// The Alerts page's view model with its first page of history.
    pub fn alerts_vm(&self) -> app::AlertsVm {
        match &self.alerts {
            Some(view) => crate::alerts::views::alerts_page(
                view,
                &view.history,
                0,
                crate::alerts::runner::HISTORY_PAGE,
                view.history_total,
                self.taken_at,
            ),
            None => app::AlertsVm {
                history_limit: crate::alerts::runner::HISTORY_PAGE,
                now: self.taken_at,
                ..app::AlertsVm::default()
            },
        }
    }

    /// The Alerts page's regions (first page of history), rendered once
    /// per snapshot.
    pub fn alerts_regions(&self) -> stream::Regions {
        self.alerts_regions
            .get_or_init(|| stream::regions(app::alerts_fragments(&self.alerts_vm())))
            .clone()
    }

    /// The firing-alerts banner, part of every page's stream, rendered once
    /// per snapshot.
    pub fn banner_regions(&self) -> stream::Regions {
        self.banner_regions
            .get_or_init(|| stream::regions(vec![app::banner_fragment(&self.banner)]))
            .clone()
    }

    /// The rate limits page's regions, rendered once per snapshot.
    pub fn ratelimits_regions(&self) -> stream::Regions {
        self.ratelimits_regions
            .get_or_init(|| {
                stream::regions(app::ratelimits_fragments(
                    &self.ratelimits.clone().unwrap_or_default(),
                ))
            })
            .clone()
    }

    /// The queues page's regions, rendered once per snapshot.
    pub fn queues_regions(&self) -> stream::Regions {
        self.queues
            .get_or_init(|| stream::regions(app::queues_fragments(&self.queues_vm())))
            .clone()
    }
}

#[derive(Debug)]
struct Run {
    progress: BulkProgressVm,
    finished_at: Option<Instant>,
}

#[derive(Default)]
struct Pending {
    queues: HashSet<String>,
    all: bool,
    /// Something outside the queues changed (channel traffic).
    other: bool,
}

struct Inner {
    queues: Queues,
    backend: String,
    thresholds: Thresholds,
    snapshot: watch::Sender<Arc<Snapshot>>,
    closed: watch::Sender<bool>,
    wake: Notify,
    pending: Mutex<Pending>,
    runs: Mutex<HashMap<String, Run>>,
    listings: stream::SharedCache<crate::screens::Listing>,
    pages: stream::SharedCache<Vec<stream::Region>>,
    fleet: OnceLock<crate::fleet::Fleet>,
    ratelimits: OnceLock<crate::ratelimits::RateLimits>,
    /// The latest rate-limit figures, read by the hub's rate-limit task.
    ratelimits_vm: Mutex<Option<app::ratelimits::RateLimitsVm>>,
    /// Alerting's view, for the banner every page shows.
    alerts: OnceLock<watch::Receiver<Arc<crate::alerts::runner::AlertsView>>>,
    /// The dependencies that are not ok, as last checked (see
    /// [`crate::readiness`]), for the health line of every page.
    problems: Mutex<Vec<crate::readiness::Check>>,
}

/// Stops the hub's task when the last handle to the hub is dropped.
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The hub: cheap to clone, shared by every handler of one server.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
    _task: Arc<TaskGuard>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

/// A lock that survives a panicked holder: the data here (pending sets,
/// progress figures) stays meaningful after any partial update.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Per-minute throughput per queue read from the SQL history when the
/// server starts ([`crate::metrics::charts::last_hour`]), so the overview's
/// hour does not start empty after a restart.
pub type Backfill = HashMap<String, Vec<app::MinutePoint>>;

impl Hub {
    /// Starts the hub's task on the current runtime.
    pub fn start(queues: Queues, thresholds: Thresholds) -> Self {
        Self::start_with_history(queues, thresholds, Backfill::new())
    }

    /// Starts the hub with the last hour's throughput from the history:
    /// handed over once, before the first snapshot, so the first page
    /// after a restart already shows it and no tick ever reads SQL.
    pub fn start_with_history(queues: Queues, thresholds: Thresholds, history: Backfill) -> Self {
        let (snapshot, _) = watch::channel(Arc::new(Snapshot::default()));
        let (closed, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            backend: queues.kind().as_str().to_string(),
            queues,
            thresholds,
            snapshot,
            closed,
            wake: Notify::new(),
            pending: Mutex::new(Pending {
                all: true,
                ..Pending::default()
            }),
            runs: Mutex::new(HashMap::new()),
            listings: stream::SharedCache::default(),
            pages: stream::SharedCache::default(),
            fleet: OnceLock::new(),
            ratelimits: OnceLock::new(),
            ratelimits_vm: Mutex::new(None),
            alerts: OnceLock::new(),
            problems: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(run(inner.clone(), history));
        Self {
            inner,
            _task: Arc::new(TaskGuard(task)),
        }
    }

    /// The latest snapshot, and every one after it.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.snapshot.subscribe()
    }

    /// The latest snapshot.
    pub fn current(&self) -> Arc<Snapshot> {
        self.inner.snapshot.borrow().clone()
    }

    /// Becomes true when the server shuts down: open streams end then, so
    /// graceful shutdown does not wait on them forever.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    /// Ends every stream and stops the hub's task.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Adds channel traffic and instances to every snapshot from now on.
    pub fn attach_fleet(&self, fleet: crate::fleet::Fleet) {
        let _ = self.inner.fleet.set(fleet);
        self.poke();
    }

    /// Adds rate-limit figures to every snapshot from now on. A task reads
    /// them every [`RATELIMITS_EVERY`] and asks for a snapshot only when
    /// they changed, so an idle limiter costs no page updates.
    pub fn attach_ratelimits(&self, ratelimits: crate::ratelimits::RateLimits) {
        if self.inner.ratelimits.set(ratelimits).is_err() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let mut closed = self.closed();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RATELIMITS_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = closed.changed() => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                refresh_ratelimits(&inner).await;
            }
        });
    }

    /// Adds the firing alerts to every snapshot (every page's banner) from
    /// now on.
    pub fn attach_alerts(&self, view: watch::Receiver<Arc<crate::alerts::runner::AlertsView>>) {
        let _ = self.inner.alerts.set(view);
        self.poke();
    }

    /// Takes the latest readiness checks; asks for a snapshot only when
    /// the set of problems changed, so a healthy server costs no updates.
    pub fn set_readiness(&self, readiness: crate::readiness::Readiness) {
        let problems: Vec<crate::readiness::Check> = readiness
            .checks
            .into_iter()
            .filter(|c| c.state != crate::readiness::CheckState::Ok)
            .map(|c| crate::readiness::Check {
                latency_ms: None,
                memory_bytes: None,
                ..c
            })
            .collect();
        // "failing for 12 s" moves every check: only a change of what is
        // wrong is worth a snapshot (all queues' counts).
        let gist = |checks: &[crate::readiness::Check]| -> Vec<(&'static str, crate::readiness::CheckState, String)> {
            checks
                .iter()
                .map(|c| {
                    let detail = c.detail.chars().filter(|ch| !ch.is_ascii_digit()).collect();
                    (c.name, c.state, detail)
                })
                .collect()
        };
        let changed = {
            let mut current = lock(&self.inner.problems);
            let changed = gist(&current) != gist(&problems);
            *current = problems;
            changed
        };
        if changed {
            lock(&self.inner.pending).other = true;
            self.inner.wake.notify_one();
        }
    }

    /// Waits (up to a second) for a snapshot newer than the current one,
    /// so the page an action returns to shows its effect.
    pub async fn next_snapshot(&self) {
        let mut rx = self.subscribe();
        let seq = rx.borrow().seq;
        self.poke();
        let _ = tokio::time::timeout(Duration::from_secs(1), rx.wait_for(|s| s.seq > seq)).await;
    }

    /// Reads the rate-limit figures now and asks for a snapshot, then waits
    /// (up to a second) for it: after an operator action, the page they
    /// return to already shows its effect.
    pub async fn refresh_ratelimits(&self) {
        let mut rx = self.subscribe();
        let seq = rx.borrow().seq;
        lock(&self.inner.ratelimits_vm).take();
        refresh_ratelimits(&self.inner).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), rx.wait_for(|s| s.seq > seq)).await;
    }

    /// Asks for a snapshot soon because something outside the queues
    /// changed; coalesced like queue events.
    pub fn poke(&self) {
        lock(&self.inner.pending).other = true;
        self.inner.wake.notify_one();
    }

    /// A [`Hub::poke`] that does not keep the hub alive, for tasks that may
    /// outlive it.
    pub fn poker(&self) -> impl Fn() + Send + Sync + 'static {
        let inner = Arc::downgrade(&self.inner);
        move || {
            if let Some(inner) = inner.upgrade() {
                lock(&inner.pending).other = true;
                inner.wake.notify_one();
            }
        }
    }

    /// Job-table loads shared by the streams of one page.
    pub fn listings(&self) -> &stream::SharedCache<crate::screens::Listing> {
        &self.inner.listings
    }

    /// Queue pages rendered once per snapshot for all their streams.
    pub fn pages(&self) -> &stream::SharedCache<Vec<stream::Region>> {
        &self.inner.pages
    }

    /// The first real snapshot: waits (briefly) for the hub's first tick
    /// when the server has only just started.
    pub async fn ready(&self) -> Arc<Snapshot> {
        let mut rx = self.subscribe();
        let wait = rx.wait_for(|s| s.seq > 0);
        match tokio::time::timeout(BACKEND_TIMEOUT + Duration::from_secs(1), wait).await {
            Ok(Ok(snapshot)) => snapshot.clone(),
            _ => self.current(),
        }
    }

    /// The thresholds badges are computed with.
    pub fn thresholds(&self) -> Thresholds {
        self.inner.thresholds
    }

    /// Asks for a snapshot soon because `queue` changed in a way no event
    /// reports (retry-all progress).
    pub fn touch(&self, queue: &QueueName) {
        lock(&self.inner.pending)
            .queues
            .insert(queue.as_str().to_string());
        self.inner.wake.notify_one();
    }

    /// Starts retrying every failed job of `queue` in the background, in
    /// batches, reporting progress in snapshots. Returns false (and starts
    /// nothing) when a run on that queue is still going: clicking twice
    /// retries each job once.
    ///
    /// The receiver answers this run's final progress once it ends (a
    /// caller may wait on it; later runs of the queue do not touch it).
    pub fn start_retry_all(
        &self,
        queue: QueueName,
    ) -> Option<watch::Receiver<Option<BulkProgressVm>>> {
        let (done_tx, done) = watch::channel(None);
        {
            let mut runs = lock(&self.inner.runs);
            if runs
                .get(queue.as_str())
                .is_some_and(|run| run.finished_at.is_none())
            {
                return None;
            }
            runs.insert(
                queue.as_str().to_string(),
                Run {
                    progress: BulkProgressVm::default(),
                    finished_at: None,
                },
            );
        }
        self.touch(&queue);
        let hub = self.clone();
        tokio::spawn(async move {
            let outcome = hub.retry_all(&queue).await;
            let last = {
                let mut runs = lock(&hub.inner.runs);
                runs.get_mut(queue.as_str()).map(|run| {
                    run.finished_at = Some(Instant::now());
                    run.progress.finished = true;
                    if let Err(err) = &outcome {
                        run.progress.error = Some(one_line(&err.to_string()));
                    }
                    run.progress.clone()
                })
            };
            // Nobody waiting is no error.
            let _ = done_tx.send(last);
            match outcome {
                Ok(retried) => tracing::info!(%queue, retried, "retry of all failed jobs finished"),
                Err(err) => {
                    tracing::warn!(%queue, error = %err, "retry of all failed jobs stopped")
                }
            }
            hub.touch(&queue);
        });
        Some(done)
    }

    async fn retry_all(&self, queue: &QueueName) -> Result<u64, CoordError> {
        let total = self.inner.queues.counts(queue).await?.failed;
        self.update_run(queue, |p| p.total = total);
        let hub = self.clone();
        let name = queue.clone();
        self.inner
            .queues
            .retry_all_failed(queue, RETRY_BATCH, move |done| {
                hub.update_run(&name, |p| p.done = done);
                hub.touch(&name);
            })
            .await
    }

    fn update_run(&self, queue: &QueueName, change: impl FnOnce(&mut BulkProgressVm)) {
        if let Some(run) = lock(&self.inner.runs).get_mut(queue.as_str()) {
            change(&mut run.progress);
        }
    }

    /// The retry-all run of a queue, if one is running or just ended.
    pub fn progress(&self, queue: &QueueName) -> Option<BulkProgressVm> {
        lock(&self.inner.runs)
            .get(queue.as_str())
            .map(|run| run.progress.clone())
    }
}

/// The hub's loop: gathers changes from events and requests, and takes a
/// snapshot when one is due. Aborted when the last hub handle is dropped.
async fn run(hub: Arc<Inner>, history: Backfill) {
    let mut events = hub.queues.events();
    let mut closed = hub.closed.subscribe();
    let mut throughput = Throughput::default();
    for (queue, points) in history {
        // Names come from our own table; one that is not a queue name
        // cannot be listed, so it could never be shown.
        if let Ok(name) = QueueName::new(&queue) {
            throughput.backfill(&name, points);
        }
    }
    let mut last = Instant::now() - HEARTBEAT;
    loop {
        let dirty = {
            let pending = lock(&hub.pending);
            pending.all || pending.other || !pending.queues.is_empty()
        };
        let due = if dirty {
            last + MIN_INTERVAL
        } else {
            last + HEARTBEAT
        };
        tokio::select! {
            received = events.recv() => {
                let mut pending = lock(&hub.pending);
                match received {
                    Ok(batch) => {
                        for event in batch.iter() {
                            pending.queues.insert(event.queue.as_str().to_string());
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => pending.all = true,
                    Err(broadcast::error::RecvError::Closed) => {
                        // The backend's event bus is gone; fall back to
                        // heartbeats, which still reload everything.
                        drop(pending);
                        events = broadcast::channel(1).1;
                    }
                }
                continue;
            }
            _ = hub.wake.notified() => continue,
            _ = closed.changed() => return,
            _ = tokio::time::sleep_until(due.into()) => {}
        }
        last = Instant::now();
        let pending = std::mem::take(&mut *lock(&hub.pending));
        let snapshot = take_snapshot(&hub, &mut throughput, pending).await;
        hub.snapshot.send_replace(Arc::new(snapshot));
    }
}

/// Reads the rate-limit figures and pokes the hub if they changed (the read
/// time aside).
async fn refresh_ratelimits(inner: &Inner) {
    let Some(ratelimits) = inner.ratelimits.get() else {
        return;
    };
    let vm = ratelimits.vm().await;
    let changed = {
        let mut latest = lock(&inner.ratelimits_vm);
        let same = latest.as_ref().is_some_and(|old| {
            app::ratelimits::RateLimitsVm {
                now: vm.now,
                ..old.clone()
            } == vm
        });
        *latest = Some(vm);
        !same
    };
    if changed {
        lock(&inner.pending).other = true;
        inner.wake.notify_one();
    }
}

async fn take_snapshot(inner: &Inner, throughput: &mut Throughput, pending: Pending) -> Snapshot {
    let started = Instant::now();
    let previous = inner.snapshot.borrow().clone();
    let seq = previous.seq + 1;
    let now = now_ms();
    let (health, listing) = tokio::join!(
        tokio::time::timeout(BACKEND_TIMEOUT, inner.queues.health()),
        tokio::time::timeout(BACKEND_TIMEOUT, summaries(&inner.queues)),
    );
    let mut vm = HealthVm {
        backend: inner.backend.clone(),
        dependencies: lock(&inner.problems)
            .iter()
            // The queue store's own line says it already.
            .filter(|c| c.name != "queues")
            .map(|c| app::DependencyVm {
                name: c.name.to_owned(),
                down: c.state == crate::readiness::CheckState::Down,
                detail: c.detail.clone(),
            })
            .collect(),
        ..HealthVm::default()
    };
    match health {
        Ok(Ok(h)) => {
            vm.backend_ok = true;
            vm.latency_ms = Some(h.latency.as_secs_f64() * 1000.0);
            vm.memory_bytes = h.memory_bytes;
        }
        Ok(Err(err)) => vm.problem = Some(one_line(&err.to_string())),
        Err(_) => vm.problem = Some(format!("no answer within {BACKEND_TIMEOUT:?}")),
    }
    let listing: Result<Vec<QueueSummary>, String> = match listing {
        Ok(Ok(list)) => Ok(list),
        Ok(Err(err)) => Err(one_line(&err.to_string())),
        Err(_) => Err(format!("no answer within {BACKEND_TIMEOUT:?}")),
    };
    let mut changed = previous.changed.clone();
    let (rows, charts) = match listing {
        Ok(list) => {
            let names: HashSet<&str> = list.iter().map(|s| s.name.as_str()).collect();
            throughput.retain(|q| names.contains(q.as_str()));
            let mut rows = Vec::with_capacity(list.len());
            let mut charts = Vec::with_capacity(list.len());
            for summary in &list {
                let name = summary.name.as_str();
                throughput.record(
                    &summary.name,
                    now,
                    summary.counts.completed_total,
                    summary.counts.failed_total,
                );
                let rates = throughput.rates(&summary.name);
                let counts = state_counts(&summary.counts);
                let row = QueueRow {
                    name: name.to_string(),
                    counts,
                    paused: summary.counts.paused,
                    jobs_per_min: rates.jobs_per_min,
                    failure_rate: rates.failure_rate,
                    health: inner.thresholds.health(&summary.counts, rates.failure_rate),
                };
                // A queue whose counts moved changed even if its event was
                // lost (another process, a lagging subscriber).
                let moved = previous
                    .row(name)
                    .is_none_or(|old| old.counts != row.counts || old.paused != row.paused);
                if pending.all || moved || pending.queues.contains(name) {
                    changed.insert(name.to_string(), seq);
                }
                charts.push(app::ThroughputVm {
                    queue: name.to_string(),
                    points: throughput.minutes(&summary.name, now),
                });
                rows.push(row);
            }
            changed.retain(|name, _| names.contains(name.as_str()));
            (rows, charts)
        }
        Err(problem) => {
            vm.backend_ok = false;
            vm.problem.get_or_insert(problem);
            vm.stale = !previous.rows.is_empty();
            (previous.rows.clone(), previous.charts.clone())
        }
    };
    let (channels, instances) = match inner.fleet.get() {
        Some(fleet) => {
            let (c, i) = tokio::join!(fleet.channels(), fleet.instances());
            (Some(c), Some(i))
        }
        None => (None, None),
    };
    let progress = {
        let mut runs = lock(&inner.runs);
        runs.retain(|_, run| {
            run.finished_at
                .is_none_or(|at| at.elapsed() < FINISHED_PROGRESS_KEPT)
        });
        runs.iter()
            .map(|(name, run)| (name.clone(), run.progress.clone()))
            .collect()
    };
    Snapshot {
        seq,
        taken_at: now,
        took: started.elapsed(),
        health: vm,
        rows,
        charts,
        changed,
        progress,
        thresholds: Some(inner.thresholds),
        channels,
        instances,
        ratelimits: lock(&inner.ratelimits_vm).clone(),
        alerts: inner.alerts.get().map(|view| view.borrow().clone()),
        banner: match inner.alerts.get() {
            Some(view) => crate::alerts::views::banner(&view.borrow(), now),
            None => app::AlertBannerVm {
                now,
                ..app::AlertBannerVm::default()
            },
        },
        overview: OnceLock::new(),
        queues: OnceLock::new(),
        channels_regions: OnceLock::new(),
        instances_regions: OnceLock::new(),
        ratelimits_regions: OnceLock::new(),
        banner_regions: OnceLock::new(),
        alerts_regions: OnceLock::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_outranks_busy() {
        let t = Thresholds {
            busy_active: 10,
            warning_failure_rate: 5.0,
        };
        let busy = QueueCounts {
            active: 11,
            ..QueueCounts::default()
        };
        assert_eq!(t.health(&busy, Some(0.01)), QueueHealth::Busy);
        assert_eq!(t.health(&busy, Some(0.06)), QueueHealth::Warning);
        assert_eq!(
            t.health(&QueueCounts::default(), None),
            QueueHealth::Healthy
        );
        let at_threshold = QueueCounts {
            active: 10,
            ..QueueCounts::default()
        };
        assert_eq!(t.health(&at_threshold, Some(0.05)), QueueHealth::Healthy);
    }
}
