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

pub mod render;
pub mod stream;
pub mod throughput;
pub mod tracker;
pub mod wake;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coord::CoordError;
use coord::queue::{QueueName, Queues};
use coord::time::now_ms;
use futures_util::FutureExt;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::alerts::view::AlertsView;
use crate::channels::{ChannelFigures, Channels};
use crate::http::error::one_line;
use crate::instances::{InstanceFigures, Instances};
use crate::queues::figures::{
    BulkAction, MinutePoint, QueueFigures, RETRY_BATCH, RetryProgress, Thresholds,
};
use crate::ratelimits::{RateLimitFigures, RateLimits};
use crate::schedules::{ScheduleFigures, Schedules};
use crate::sync::lock;
use crate::system::check::{Check, CheckState, Readiness};
use crate::workers::{WorkerFigures, Workers};
use tracker::Tracker;
pub use wake::Wake;

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

/// The queue store's health as of a snapshot, with the other dependencies
/// that are not ok.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendFigures {
    /// `embedded` or `redis`.
    pub kind: String,
    /// Whether it answered this tick.
    pub reachable: bool,
    /// Its answer's round trip.
    pub latency_ms: Option<f64>,
    /// Memory it reports using, where it does (Redis).
    pub memory_bytes: Option<u64>,
    /// Why it is not reachable.
    pub problem: Option<String>,
    /// Whether the queue figures are the last ones read, not this tick's.
    pub stale: bool,
    /// Readiness checks other than the queue store's that are not ok.
    pub dependencies: Vec<Check>,
    /// The Redis Cluster's nodes, when the queues live on one (as of the
    /// last health check that answered: kept while one fails).
    pub cluster: Option<coord::redis::Topology>,
}

/// What every open page shows, as of one moment: domain figures only.
/// Each page builds its view model and regions from it at the edge
/// ([`render`]); alerting and `/metrics` read it as it is.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Increases by one per snapshot.
    pub seq: u64,
    /// When it was taken (ms since the epoch).
    pub taken_at: i64,
    /// How long taking it took: the cost of one tick, which grows with the
    /// number of queues, never with the number of jobs.
    pub took: Duration,
    /// The queue store's health.
    pub backend: BackendFigures,
    /// Every queue with its counts, rates, badge and last hour, sorted by
    /// name. A queue that did not change since the last snapshot is the
    /// same `Arc` as there.
    pub queues: Vec<Arc<QueueFigures>>,
    /// Bulk runs (retry all, error groups) in progress or just finished,
    /// by queue name.
    pub progress: HashMap<String, RetryProgress>,
    /// Thresholds the badges were computed with.
    pub thresholds: Option<Thresholds>,
    /// Channel traffic, when the server observes channels.
    pub channels: Option<ChannelFigures>,
    /// Instances and their sync status, when the server watches them.
    pub instances: Option<InstanceFigures>,
    /// Rate-limit policies and usage, once read.
    pub ratelimits: Option<RateLimitFigures>,
    /// The worker registry, once read.
    pub workers: Option<Arc<WorkerFigures>>,
    /// Every schedule, once read.
    pub schedules: Option<Arc<ScheduleFigures>>,
    /// The configured Redis, once read.
    pub redis: Option<Arc<crate::redis_health::RedisFigures>>,
    /// The services' caches from the instances' heartbeats, when the
    /// server watches instances.
    pub caches: Option<Arc<crate::cache::CacheFigures>>,
    /// Alerting's state (active alerts, rules, deliveries, first page of
    /// history), when alerting runs.
    pub alerts: Option<Arc<AlertsView>>,
}

impl Snapshot {
    /// One queue's figures, if it is known.
    pub fn queue(&self, name: &str) -> Option<&Arc<QueueFigures>> {
        self.queues
            .binary_search_by(|q| q.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.queues[i])
    }

    /// `seq` of the last change to a queue's jobs (0 when never seen).
    pub fn changed(&self, name: &str) -> u64 {
        self.queue(name).map_or(0, |q| q.changed)
    }
}

/// What the hub reads besides the queues, each built before the hub (so
/// nothing is wired in late). A part left out is absent from snapshots.
#[derive(Default)]
pub struct Sources {
    /// Channel traffic.
    pub channels: Option<Channels>,
    /// Instances and synced state.
    pub instances: Option<Instances>,
    /// Rate-limit figures, read every [`RATELIMITS_EVERY`].
    pub ratelimits: Option<RateLimits>,
    /// The worker registry, read every [`crate::workers::READ_EVERY`].
    pub workers: Option<Workers>,
    /// The schedules, read every [`crate::schedules::READ_EVERY`].
    pub schedules: Option<Schedules>,
    /// The configured Redis, read every [`crate::redis_health::READ_EVERY`].
    pub redis: Option<crate::redis_health::RedisWatch>,
    /// Alerting's latest state.
    pub alerts: Option<watch::Receiver<Arc<AlertsView>>>,
    /// The last hour's throughput per queue from the SQL history, handed
    /// over before the first snapshot so a restart does not empty charts.
    pub history: Backfill,
}

#[derive(Debug)]
struct Run {
    progress: RetryProgress,
    finished_at: Option<Instant>,
}

/// What events and requests asked the next snapshot to re-read.
#[derive(Default)]
pub struct Pending {
    /// Queues named by events since the last snapshot.
    pub queues: HashSet<String>,
    /// Whether everything must be re-read (events were lost).
    pub all: bool,
}

struct Inner {
    queues: Queues,
    backend: String,
    thresholds: Thresholds,
    sources: Sources,
    snapshot: watch::Sender<Arc<Snapshot>>,
    closed: watch::Sender<bool>,
    wake: Wake,
    pending: Mutex<Pending>,
    runs: Mutex<HashMap<String, Run>>,
    /// The latest rate-limit figures, read by the hub's rate-limit task.
    ratelimits: Mutex<Option<RateLimitFigures>>,
    /// The latest worker figures, read by the hub's workers task.
    workers: Mutex<Option<Arc<WorkerFigures>>>,
    /// The latest schedules, read by the hub's schedules task.
    schedules: Mutex<Option<Arc<ScheduleFigures>>>,
    /// The latest Redis figures, read by the hub's Redis task.
    redis: Mutex<Option<Arc<crate::redis_health::RedisFigures>>>,
    /// Turns the heartbeats' cache counters into rates and minutes.
    caches: Mutex<crate::cache::Tracker>,
    /// The dependencies that are not ok, as last checked (see
    /// [`crate::system::readiness`]), for the health line of every page.
    problems: Mutex<Vec<Check>>,
}

/// Stops the hub's tasks when the last handle to the hub is dropped.
struct TaskGuard(Vec<JoinHandle<()>>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
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

/// Per-minute throughput per queue read from the SQL history when the
/// server starts ([`crate::metrics::charts::last_hour`]), so the overview's
/// hour does not start empty after a restart.
pub type Backfill = HashMap<String, Vec<MinutePoint>>;

impl Hub {
    /// Starts the hub on the queues alone (tests, benchmarks).
    pub fn start(queues: Queues, thresholds: Thresholds) -> Self {
        Self::start_with(queues, thresholds, Sources::default(), Wake::default())
    }

    /// Starts the hub's tasks on the current runtime, reading `sources`
    /// besides the queues; `wake` is the handle the sources were given.
    pub fn start_with(
        queues: Queues,
        thresholds: Thresholds,
        mut sources: Sources,
        wake: Wake,
    ) -> Self {
        let (snapshot, _) = watch::channel(Arc::new(Snapshot::default()));
        let (closed, _) = watch::channel(false);
        let history = std::mem::take(&mut sources.history);
        let inner = Arc::new(Inner {
            backend: queues.kind().as_str().to_string(),
            queues,
            thresholds,
            sources,
            snapshot,
            closed,
            wake,
            pending: Mutex::new(Pending {
                all: true,
                ..Pending::default()
            }),
            runs: Mutex::new(HashMap::new()),
            ratelimits: Mutex::new(None),
            workers: Mutex::new(None),
            schedules: Mutex::new(None),
            redis: Mutex::new(None),
            caches: Mutex::new(crate::cache::Tracker::default()),
            problems: Mutex::new(Vec::new()),
        });
        let mut tasks = vec![tokio::spawn(run(inner.clone(), history))];
        if inner.sources.ratelimits.is_some() {
            tasks.push(tokio::spawn(poll_every(
                Arc::downgrade(&inner),
                RATELIMITS_EVERY,
                |inner| refresh_ratelimits(inner).boxed(),
            )));
        }
        if inner.sources.workers.is_some() {
            tasks.push(tokio::spawn(poll_every(
                Arc::downgrade(&inner),
                crate::workers::READ_EVERY,
                |inner| refresh_workers(inner).boxed(),
            )));
        }
        if inner.sources.schedules.is_some() {
            tasks.push(tokio::spawn(poll_every(
                Arc::downgrade(&inner),
                crate::schedules::READ_EVERY,
                |inner| refresh_schedules(inner).boxed(),
            )));
        }
        if inner.sources.redis.is_some() {
            tasks.push(tokio::spawn(poll_every(
                Arc::downgrade(&inner),
                crate::redis_health::READ_EVERY,
                |inner| refresh_redis(inner).boxed(),
            )));
        }
        if let Some(alerts) = &inner.sources.alerts {
            tasks.push(tokio::spawn(follow_alerts(
                alerts.clone(),
                inner.wake.clone(),
            )));
        }
        Self {
            inner,
            _task: Arc::new(TaskGuard(tasks)),
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

    /// Takes the latest readiness checks; asks for a snapshot only when
    /// the set of problems changed, so a healthy server costs no updates.
    pub fn set_readiness(&self, readiness: Readiness) {
        let problems: Vec<Check> = readiness
            .checks
            .into_iter()
            .filter(|c| c.state != CheckState::Ok)
            .map(|c| Check {
                latency_ms: None,
                memory_bytes: None,
                ..c
            })
            .collect();
        // "failing for 12 s" moves every check: only a change of what is
        // wrong is worth a snapshot (all queues' counts).
        let gist = |checks: &[Check]| -> Vec<(&'static str, CheckState, String)> {
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
            self.inner.wake.poke();
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
        lock(&self.inner.ratelimits).take();
        refresh_ratelimits(&self.inner).await;
        self.next_snapshot().await;
    }

    /// Reads the worker registry now and waits (up to a second) for the
    /// snapshot that shows it: after a quiet, resume or stop, the page the
    /// operator returns to shows the command asked.
    pub async fn refresh_workers(&self) {
        refresh_workers(&self.inner).await;
        self.next_snapshot().await;
    }

    /// Reads the schedules now and waits (up to a second) for the
    /// snapshot that shows them: after a pause, an edit or a run, the page
    /// the operator returns to shows it.
    pub async fn refresh_schedules(&self) {
        refresh_schedules(&self.inner).await;
        self.next_snapshot().await;
    }

    /// Asks for a snapshot soon because something outside the queues
    /// changed; coalesced like queue events.
    pub fn poke(&self) {
        self.inner.wake.poke();
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
        self.inner.wake.notify();
    }

    /// Starts a bulk run on `queue` in the background (every failed job
    /// retried, or an error group's jobs retried or removed), in batches,
    /// reporting progress in snapshots. Returns None (and starts nothing)
    /// when a run on that queue is still going: clicking twice acts on
    /// each job once, and two runs never race over one queue's jobs.
    ///
    /// The receiver answers this run's final progress once it ends (a
    /// caller may wait on it; later runs of the queue do not touch it).
    pub fn start_bulk(
        &self,
        queue: QueueName,
        action: BulkAction,
    ) -> Option<watch::Receiver<Option<RetryProgress>>> {
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
                    progress: RetryProgress {
                        action: action.clone(),
                        ..RetryProgress::default()
                    },
                    finished_at: None,
                },
            );
        }
        self.touch(&queue);
        let hub = self.clone();
        tokio::spawn(async move {
            let outcome = hub.run_bulk(&queue, &action).await;
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
            let what = action.subject();
            match outcome {
                Ok(done) => tracing::info!(%queue, done, what, "bulk run finished"),
                Err(err) => tracing::warn!(%queue, error = %err, what, "bulk run stopped"),
            }
            hub.touch(&queue);
        });
        Some(done)
    }

    async fn run_bulk(&self, queue: &QueueName, action: &BulkAction) -> Result<u64, CoordError> {
        let queues = &self.inner.queues;
        let total = match action {
            BulkAction::RetryAll => queues.counts(queue).await?.failed,
            BulkAction::Group { group, .. } => queues.error_group_size(queue, *group).await?,
            BulkAction::Matching { ids, .. } => ids.len() as u64,
        };
        self.update_run(queue, |p| p.total = total);
        let hub = self.clone();
        let name = queue.clone();
        let progress = move |done| {
            hub.update_run(&name, |p| p.done = done);
            hub.touch(&name);
        };
        match action {
            BulkAction::RetryAll => queues.retry_all_failed(queue, RETRY_BATCH, progress).await,
            BulkAction::Group { group, action, .. } => {
                queues
                    .act_on_error_group(queue, *group, *action, RETRY_BATCH, progress)
                    .await
            }
            BulkAction::Matching {
                ids, action, state, ..
            } => act_on_each(queues, queue, ids, *action, *state, progress).await,
        }
    }

    fn update_run(&self, queue: &QueueName, change: impl FnOnce(&mut RetryProgress)) {
        if let Some(run) = lock(&self.inner.runs).get_mut(queue.as_str()) {
            change(&mut run.progress);
        }
    }

    /// The retry-all run of a queue, if one is running or just ended.
    pub fn progress(&self, queue: &QueueName) -> Option<RetryProgress> {
        lock(&self.inner.runs)
            .get(queue.as_str())
            .map(|run| run.progress.clone())
    }
}

/// Retries or removes each job of `ids`, reporting the running count
/// every [`EACH_PROGRESS`] jobs. A job that moved on since it matched in
/// `state` (retried, removed, picked up by a worker, finished) is skipped,
/// not an error: the set is the one the operator saw. A retry checks the
/// state itself (failed only); a removal reads it first, which leaves a
/// window of one read in which a job could still move.
async fn act_on_each(
    queues: &Queues,
    queue: &QueueName,
    ids: &[coord::queue::JobId],
    action: coord::errors::GroupAction,
    state: coord::queue::JobState,
    mut progress: impl FnMut(u64),
) -> Result<u64, CoordError> {
    let mut done = 0u64;
    for (i, id) in ids.iter().enumerate() {
        let acted = match action {
            coord::errors::GroupAction::Retry => queues.retry(queue, id).await,
            coord::errors::GroupAction::Remove => match queues.job_clipped(queue, id, 1).await {
                Ok(job) if job.state == state => queues.remove(queue, id).await,
                Ok(job) => Err(CoordError::WrongState {
                    queue: queue.clone(),
                    job: id.clone(),
                    actual: job.state,
                    expected: state,
                }),
                Err(err) => Err(err),
            },
        };
        match acted {
            Ok(()) => done += 1,
            Err(
                CoordError::WrongState { .. }
                | CoordError::JobNotFound { .. }
                | CoordError::JobActive { .. },
            ) => {}
            Err(err) => return Err(err),
        }
        if (i + 1) % EACH_PROGRESS == 0 || i + 1 == ids.len() {
            progress(done);
        }
    }
    Ok(done)
}

/// Jobs between two progress reports of a matching-set run.
const EACH_PROGRESS: usize = 100;

/// The hub's loop: gathers changes from events and requests, and takes a
/// snapshot when one is due. Aborted when the last hub handle is dropped.
async fn run(hub: Arc<Inner>, history: Backfill) {
    let mut events = hub.queues.events();
    let mut closed = hub.closed.subscribe();
    let mut tracker = Tracker::default();
    tracker.backfill(history);
    let mut last = Instant::now() - HEARTBEAT;
    loop {
        let dirty = {
            let pending = lock(&hub.pending);
            pending.all || !pending.queues.is_empty()
        } || hub.wake.has_other();
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
        hub.wake.take_other();
        let snapshot = take_snapshot(&hub, &mut tracker, pending).await;
        hub.snapshot.send_replace(Arc::new(snapshot));
    }
}

/// Runs `refresh` every `every` until the hub closes or is dropped: the
/// rate-limit figures every [`RATELIMITS_EVERY`], the worker registry every
/// [`crate::workers::READ_EVERY`]. Each refresh asks for a snapshot only
/// when what pages show changed, so an idle source costs no updates.
async fn poll_every(
    inner: std::sync::Weak<Inner>,
    every: Duration,
    refresh: for<'a> fn(&'a Inner) -> futures_util::future::BoxFuture<'a, ()>,
) {
    let mut closed = match inner.upgrade() {
        Some(inner) => inner.closed.subscribe(),
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = closed.changed() => return,
        }
        let Some(inner) = inner.upgrade() else { return };
        refresh(&inner).await;
    }
}

/// Reads the worker registry and pokes the hub if a page would show
/// something else.
async fn refresh_workers(inner: &Inner) {
    let Some(workers) = &inner.sources.workers else {
        return;
    };
    let figures = workers.figures().await;
    let changed = {
        let mut latest = lock(&inner.workers);
        let same = latest.as_ref().is_some_and(|old| old.same_as(&figures));
        *latest = Some(Arc::new(figures));
        !same
    };
    if changed {
        inner.wake.poke();
    }
}

/// Reads the schedules and pokes the hub if a page would show something
/// else.
async fn refresh_schedules(inner: &Inner) {
    let Some(schedules) = &inner.sources.schedules else {
        return;
    };
    let figures = schedules.figures().await;
    let changed = {
        let mut latest = lock(&inner.schedules);
        let same = latest.as_ref().is_some_and(|old| old.same_as(&figures));
        *latest = Some(Arc::new(figures));
        !same
    };
    if changed {
        inner.wake.poke();
    }
}

/// Reads the configured Redis and pokes the hub if a page would show
/// something else.
async fn refresh_redis(inner: &Inner) {
    let Some(redis) = &inner.sources.redis else {
        return;
    };
    let figures = redis.figures().await;
    let changed = {
        let mut latest = lock(&inner.redis);
        let same = latest.as_ref().is_some_and(|old| old.same_as(&figures));
        *latest = Some(Arc::new(figures));
        !same
    };
    if changed {
        inner.wake.poke();
    }
}

/// Asks for a snapshot whenever alerting's state changes (every page's
/// banner shows it).
async fn follow_alerts(mut alerts: watch::Receiver<Arc<AlertsView>>, wake: Wake) {
    while alerts.changed().await.is_ok() {
        wake.poke();
    }
}

/// Reads the rate-limit figures and pokes the hub if they changed (the read
/// time aside).
async fn refresh_ratelimits(inner: &Inner) {
    let Some(ratelimits) = &inner.sources.ratelimits else {
        return;
    };
    let figures = ratelimits.figures().await;
    let changed = {
        let mut latest = lock(&inner.ratelimits);
        let same = latest.as_ref().is_some_and(|old| old.same_usage(&figures));
        *latest = Some(figures);
        !same
    };
    if changed {
        inner.wake.poke();
    }
}

/// The queue store's health, this tick.
fn backend_figures(
    inner: &Inner,
    health: Result<Result<coord::queue::BackendHealth, CoordError>, tokio::time::error::Elapsed>,
) -> BackendFigures {
    let mut figures = BackendFigures {
        kind: inner.backend.clone(),
        dependencies: lock(&inner.problems)
            .iter()
            // The queue store's own line says it already.
            .filter(|c| c.name != "queues")
            .cloned()
            .collect(),
        ..BackendFigures::default()
    };
    match health {
        Ok(Ok(h)) => {
            figures.reachable = true;
            figures.latency_ms = Some(h.latency.as_secs_f64() * 1000.0);
            figures.memory_bytes = h.memory_bytes;
            figures.cluster = h.cluster;
        }
        Ok(Err(err)) => figures.problem = Some(one_line(&err.to_string())),
        Err(_) => figures.problem = Some(format!("no answer within {BACKEND_TIMEOUT:?}")),
    }
    figures
}

async fn take_snapshot(inner: &Inner, tracker: &mut Tracker, pending: Pending) -> Snapshot {
    let started = Instant::now();
    let previous = inner.snapshot.borrow().clone();
    let seq = previous.seq + 1;
    let now = now_ms();
    let sweep = pending.all || tracker.sweep_due();
    let (health, read) = tokio::join!(
        tokio::time::timeout(BACKEND_TIMEOUT, inner.queues.health()),
        tokio::time::timeout(
            BACKEND_TIMEOUT,
            tracker.read(&inner.queues, sweep, &pending.queues)
        ),
    );
    let mut backend = backend_figures(inner, health);
    if !backend.reachable {
        // A cluster that fails its check (CLUSTERDOWN, a failover) is when
        // its topology matters most: the last one read stays on screen.
        backend.cluster.clone_from(&previous.backend.cluster);
    }
    let read = match read {
        // A tick without changes reads no queue, so only the health check
        // can tell the figures are no longer confirmed.
        _ if !backend.reachable => Err(backend.problem.clone().unwrap_or_default()),
        Ok(read) => read,
        Err(_) => Err(format!("no answer within {BACKEND_TIMEOUT:?}")),
    };
    let queues = match read {
        Ok(read) => {
            tracker.apply(read, &pending, seq, now, &inner.thresholds);
            tracker.listed()
        }
        Err(problem) => {
            backend.reachable = false;
            backend.problem.get_or_insert(problem);
            backend.stale = !previous.queues.is_empty();
            tracker.needs_sweep();
            previous.queues.clone()
        }
    };
    let (channels, instances) = tokio::join!(
        async {
            match &inner.sources.channels {
                Some(channels) => Some(channels.figures().await),
                None => None,
            }
        },
        async {
            match &inner.sources.instances {
                Some(instances) => Some(instances.figures().await),
                None => None,
            }
        },
    );
    let caches = instances
        .as_ref()
        .map(|figures| lock(&inner.caches).figures(figures, now));
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
        backend,
        queues,
        progress,
        thresholds: Some(inner.thresholds),
        channels,
        instances,
        ratelimits: lock(&inner.ratelimits).clone(),
        workers: lock(&inner.workers).clone(),
        schedules: lock(&inner.schedules).clone(),
        redis: lock(&inner.redis).clone(),
        caches,
        alerts: inner
            .sources
            .alerts
            .as_ref()
            .map(|view| view.borrow().clone()),
    }
}
