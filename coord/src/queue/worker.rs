//! The worker runtime: runs a handler over a queue's jobs with bounded
//! concurrency, at-least-once.
//!
//! One loop per worker makes one backend round trip per step: it hands back
//! every outcome that finished since the last step and claims as many jobs
//! as there are free slots. Under load outcomes and claims batch up by
//! themselves, which is what makes the Redis backend fast; two steps may be
//! in flight at once, so the backend is never idle waiting for the worker. A second task
//! heartbeats the leases of running jobs and sweeps stalled jobs, so a job
//! whose worker died is put back and run again instead of being lost. A
//! third reports the worker to the registry ([`super::workers`]) and obeys
//! what the operator asks there: quiet, resume, stop.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::workers::{
    DEFAULT_WORKER_HEARTBEAT, MAX_REPORTED_JOBS, RunningJob, WorkerCommand, WorkerId, WorkerReport,
    WorkerState,
};
use super::{Job, JobError, JobId, Outcome, OutcomeResult, QueueName, Queues};
use crate::error::{CoordError, Result};
use crate::instances::DEFAULT_TTL_INTERVALS;
use crate::time::now_ms;

/// A job handler, type-erased so one worker type serves every handler.
pub type Handler =
    Arc<dyn Fn(Job) -> BoxFuture<'static, std::result::Result<Value, JobError>> + Send + Sync>;

/// Most jobs one worker runs at once; beyond this a second process is the
/// better answer.
const MAX_CONCURRENCY: usize = 10_000;

/// Configures and starts a worker for one queue.
pub struct WorkerBuilder {
    queues: Queues,
    queue: QueueName,
    concurrency: usize,
    lease: Duration,
    max_stalled: u32,
    poll_interval: Duration,
    stalled_interval: Option<Duration>,
    heartbeat: Duration,
    version: String,
    stop_grace: Duration,
}

impl WorkerBuilder {
    pub(crate) fn new(queues: Queues, queue: QueueName) -> Self {
        Self {
            queues,
            queue,
            concurrency: 1,
            lease: Duration::from_secs(30),
            max_stalled: 1,
            poll_interval: Duration::from_secs(1),
            stalled_interval: None,
            heartbeat: DEFAULT_WORKER_HEARTBEAT,
            version: "-".into(),
            stop_grace: Duration::from_secs(30),
        }
    }

    /// How often the worker reports to the registry, and so how soon it
    /// obeys a quiet, resume or stop asked from the dashboard (default 5 s,
    /// the instances' interval, which the dashboard judges by).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// The service's version, shown beside the worker (a half-finished
    /// rollout is visible).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// How long running jobs get to finish when the worker is asked to
    /// stop from the dashboard (default 30 s); those still running after
    /// it are abandoned with their leases, as by [`WorkerHandle::shutdown`].
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Jobs run at the same time (1..=10000).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// How long a claimed job stays ours without a heartbeat; a crashed
    /// worker's jobs come back after about this long. Heartbeats go out
    /// every third of it.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Stalls a job may have before it is failed instead of put back, so a
    /// job that crashes its worker every time cannot loop forever.
    pub fn max_stalled(mut self, n: u32) -> Self {
        self.max_stalled = n;
        self
    }

    /// Longest sleep of an idle worker between looks at the queue; events
    /// wake it sooner, this only bounds the cost of a missed event.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// How often this worker sweeps the queue for stalled jobs (default:
    /// half the lease).
    pub fn stalled_interval(mut self, d: Duration) -> Self {
        self.stalled_interval = Some(d);
        self
    }

    /// Starts the worker on the current tokio runtime. Fails with
    /// `InvalidWorker` for settings that cannot run.
    pub fn start<F, Fut>(self, handler: F) -> Result<WorkerHandle>
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Value, JobError>> + Send + 'static,
    {
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(CoordError::InvalidWorker(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY} (got {})",
                self.concurrency
            )));
        }
        if self.lease < Duration::from_millis(100) {
            return Err(CoordError::InvalidWorker(format!(
                "lease must be at least 100 ms (got {} ms)",
                self.lease.as_millis()
            )));
        }
        if self.poll_interval.is_zero() {
            return Err(CoordError::InvalidWorker(
                "poll interval must be positive".into(),
            ));
        }
        if self.heartbeat < Duration::from_millis(10) {
            return Err(CoordError::InvalidWorker(format!(
                "heartbeat must be at least 10 ms (got {} ms)",
                self.heartbeat.as_millis()
            )));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(CoordError::InvalidWorker(
                "a worker must be started inside a tokio runtime".into(),
            ));
        }
        let handler: Handler = Arc::new(move |job| handler(job).boxed());
        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = watch::channel(None);
        let stop_tx = Arc::new(stop_tx);
        let (quiet_tx, quiet_rx) = watch::channel(false);
        let (done_tx, done_rx) = watch::channel(false);
        let base = WorkerReport {
            id: WorkerId::generate(),
            queue: self.queue.clone(),
            host: crate::instance::host_label(super::workers::MAX_WORKER_LABEL_LEN),
            pid: std::process::id(),
            version: self.version,
            concurrency: u32::try_from(self.concurrency).unwrap_or(u32::MAX),
            busy: 0,
            running: Vec::new(),
            state: WorkerState::Running,
            completed: 0,
            failed: 0,
            started_at: now_ms(),
            heartbeat_at: 0,
            latency: Vec::new(),
        };
        base.validate()?;
        let id = base.id.clone();
        let events = self.queues.events();
        let stalled_interval = self
            .stalled_interval
            .unwrap_or(self.lease / 2)
            .max(Duration::from_millis(20));

        let keeper = tokio::spawn(keep_leases(
            self.queues.clone(),
            self.queue.clone(),
            self.lease,
            self.max_stalled,
            stalled_interval,
            shared.clone(),
            stop_rx.clone(),
        ));
        let presence = tokio::spawn(
            Presence {
                queues: self.queues.clone(),
                base,
                interval: self.heartbeat,
                grace: self.stop_grace,
                shared: shared.clone(),
                quiet: quiet_tx,
                stop: stop_tx.clone(),
                done: done_rx,
            }
            .run(),
        );
        let main = tokio::spawn(
            Runner {
                queues: self.queues,
                queue: self.queue,
                concurrency: self.concurrency,
                lease: self.lease,
                poll_interval: self.poll_interval,
                handler,
                shared: shared.clone(),
                events,
                stop: stop_rx,
                quiet: quiet_rx,
                done: done_tx,
            }
            .run(),
        );
        Ok(WorkerHandle {
            id,
            shared,
            stop: stop_tx,
            main,
            keeper,
            presence,
        })
    }
}

/// Counters and leases shared between the loop, the lease keeper and the
/// handle.
#[derive(Default)]
struct Shared {
    completed: AtomicU64,
    failed: AtomicU64,
    backend_errors: AtomicU64,
    leases_lost: AtomicU64,
    /// Jobs claimed and not yet settled on the backend: the lease keeper
    /// extends these (all but those already found lost).
    leases: Mutex<HashMap<JobId, Lease>>,
    /// Wait and run times of the attempts finished this minute and the
    /// last, shipped with each registry report.
    latency: Mutex<super::latency::Recorder>,
}

/// A claimed job as the loop and the lease keeper see it.
struct Lease {
    token: String,
    /// When its handler was handed the job (ms), for the registry.
    started_at: i64,
    /// Its outcome has been handed to a step (set before the step is sent,
    /// never cleared): from then on the step's answer, not a heartbeat,
    /// tells whether the lease was lost (see [`Shared::confirm_lost`]).
    settling: bool,
    /// A step carrying its outcome failed; that step may have recorded the
    /// outcome all the same, so a later `stale` answer is not proof of loss.
    unsure: bool,
    /// Found lost by a heartbeat and reported: no longer extended, and not
    /// reported again when its outcome comes back stale.
    lost: bool,
}

impl Shared {
    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Lease>> {
        // A poisoned lock only means a panic elsewhere mid-update of a plain
        // map; the map itself is still usable.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The jobs in busy slots, longest-running first, at most
    /// [`MAX_REPORTED_JOBS`], and how many slots are busy.
    fn running(&self) -> (u32, Vec<RunningJob>) {
        let leases = self.leases();
        let mut running: Vec<RunningJob> = leases
            .iter()
            .map(|(id, lease)| RunningJob {
                id: id.clone(),
                started_at: lease.started_at,
            })
            .collect();
        running.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        running.truncate(MAX_REPORTED_JOBS);
        (u32::try_from(leases.len()).unwrap_or(u32::MAX), running)
    }

    fn latency(&self) -> std::sync::MutexGuard<'_, super::latency::Recorder> {
        // Poisoned: a panic mid-record; the histograms are still usable.
        self.latency.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stats(&self) -> WorkerStats {
        WorkerStats {
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            in_flight: self.leases().len() as u64,
            backend_errors: self.backend_errors.load(Ordering::Relaxed),
            leases_lost: self.leases_lost.load(Ordering::Relaxed),
        }
    }

    /// The leases a heartbeat should extend: every held one not known lost.
    /// Jobs whose outcome is on its way are extended too, so a step that
    /// fails and is retried does not let their leases run out meanwhile.
    fn held(&self) -> Vec<(JobId, String)> {
        self.leases()
            .iter()
            .filter(|(_, lease)| !lease.lost)
            .map(|(id, lease)| (id.clone(), lease.token.clone()))
            .collect()
    }

    /// Marks the leases of `outcomes` as settling. Called before the step
    /// that carries them is sent.
    fn settling(&self, outcomes: &[Outcome]) {
        let mut leases = self.leases();
        for outcome in outcomes {
            if let Some(lease) = leases.get_mut(&outcome.job_id)
                && lease.token == outcome.lease_token
            {
                lease.settling = true;
            }
        }
    }

    /// Marks the leases of `outcomes` as carried by a step that failed.
    fn unsure(&self, outcomes: &[Outcome]) {
        let mut leases = self.leases();
        for outcome in outcomes {
            if let Some(lease) = leases.get_mut(&outcome.job_id)
                && lease.token == outcome.lease_token
            {
                lease.unsure = true;
            }
        }
    }

    /// Of the ids a heartbeat of `sent` answered lost, those really lost;
    /// marks them so that they are reported once.
    ///
    /// The backend answers "lost" for every job no longer active under the
    /// token sent, and cannot tell why: both ways out of `active` clear the
    /// token. One is this worker's own step recording the outcome (it does
    /// so only for a job still active under the outcome's token, else it
    /// answers `stale`), the other the stalled sweep taking back a job
    /// whose deadline passed. Each is one atomic step on the backend, so
    /// for one claim (one token) exactly one of them happens.
    ///
    /// The loop marks a lease `settling` under this lock before it sends
    /// the step with its outcome, and forgets the lease under this lock
    /// only after that step answered. So, looking after the heartbeat
    /// returned:
    ///
    /// - Lease forgotten, or held under another token (the job was retried
    ///   and claimed again): a step has answered for the token sent. If it
    ///   recorded the outcome, the job left `active` by this worker's hand
    ///   (completed, failed, or put back as a new attempt with its retry
    ///   counted) and the sweep never took this claim, so no one else runs
    ///   it: not a loss, nothing can run twice. If it answered `stale`, the
    ///   loop has reported the loss ([`Runner::settled`]).
    /// - Lease `settling`: a step carrying the outcome may have committed
    ///   before the heartbeat read the job. This was the false alarm of
    ///   issue 14 ("leases lost" in normal operation). The step's answer
    ///   decides, as above, and the loop reports a `stale` one.
    /// - Otherwise no step with this token's outcome had even been sent
    ///   when the heartbeat ran, so the job left `active` without it: the
    ///   sweep took the job back while its handler still runs. That is a
    ///   real loss: the job runs again (or was failed as stalled too
    ///   often), and this attempt's outcome will be refused as stale. It is
    ///   reported here and marked `lost`, which the loop sees under the
    ///   same lock, so it is not reported twice.
    ///
    /// `coord/tests/lease_race.rs` forces each of these interleavings.
    fn confirm_lost(&self, sent: &[(JobId, String)], lost: Vec<JobId>) -> Vec<JobId> {
        let sent: HashMap<&JobId, &str> = sent.iter().map(|(id, t)| (id, t.as_str())).collect();
        let mut leases = self.leases();
        lost.into_iter()
            .filter(|id| {
                let (Some(token), Some(lease)) = (sent.get(id), leases.get_mut(id)) else {
                    return false;
                };
                if lease.token != *token || lease.settling || lease.lost {
                    return false;
                }
                lease.lost = true;
                true
            })
            .collect()
    }
}

/// Up to ten ids for a log line.
fn some_ids(ids: &[JobId]) -> String {
    let mut text = ids
        .iter()
        .take(10)
        .map(|id| id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > 10 {
        text.push_str(", ...");
    }
    text
}

/// A running worker. Dropping it leaves the worker running; call
/// [`WorkerHandle::shutdown`] to stop it cleanly.
pub struct WorkerHandle {
    id: WorkerId,
    shared: Arc<Shared>,
    /// `Some(deadline)` asks the loop to stop claiming and finish by then.
    /// Shared with the registry task, which sends it when the operator asks
    /// the worker to stop.
    stop: Arc<watch::Sender<Option<Instant>>>,
    main: JoinHandle<()>,
    keeper: JoinHandle<()>,
    presence: JoinHandle<()>,
}

impl WorkerHandle {
    /// The worker's id in the registry.
    pub fn id(&self) -> &WorkerId {
        &self.id
    }

    /// Whether the worker has stopped (shut down, or stopped from the
    /// dashboard).
    pub fn is_finished(&self) -> bool {
        self.main.is_finished()
    }

    /// Counters so far.
    pub fn stats(&self) -> WorkerStats {
        self.shared.stats()
    }

    /// Stops claiming, lets running jobs finish for up to `grace` and records
    /// their outcomes. Jobs still running after that are abandoned with
    /// their lease, so stalled recovery runs them again elsewhere.
    pub async fn shutdown(self, grace: Duration) -> WorkerStats {
        let _ = self.stop.send(Some(Instant::now() + grace));
        // The loop bounds itself by the deadline; the extra second covers a
        // final flush to a slow backend.
        if tokio::time::timeout(grace + Duration::from_secs(5), self.main)
            .await
            .is_err()
        {
            tracing::warn!("worker did not stop within its grace period");
        }
        self.keeper.abort();
        // The registry task leaves once the loop is done.
        if tokio::time::timeout(Duration::from_secs(5), self.presence)
            .await
            .is_err()
        {
            tracing::warn!(worker = %self.id, "worker could not leave the registry in time");
        }
        self.shared.stats()
    }

    /// Stops at once without recording anything, as a crashed process
    /// would: claimed jobs keep their lease until it expires.
    pub fn kill(self) {
        self.main.abort();
        self.keeper.abort();
        self.presence.abort();
    }
}

/// What a worker has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Attempts that succeeded and were recorded.
    pub completed: u64,
    /// Attempts that failed and were recorded (retried or dead).
    pub failed: u64,
    /// Jobs claimed and not yet settled.
    pub in_flight: u64,
    /// Backend calls that failed (outage); the worker retried them.
    pub backend_errors: u64,
    /// Jobs whose lease this worker lost before their outcome was
    /// recorded: the stalled sweep took them back, so they run again
    /// elsewhere or here (at-least-once) and this attempt's outcome is
    /// dropped. Jobs this worker settled itself are never counted.
    pub leases_lost: u64,
}

struct Runner {
    queues: Queues,
    queue: QueueName,
    concurrency: usize,
    lease: Duration,
    poll_interval: Duration,
    handler: Handler,
    shared: Arc<Shared>,
    events: broadcast::Receiver<super::EventBatch>,
    stop: watch::Receiver<Option<Instant>>,
    /// True while the operator wants no new jobs taken.
    quiet: watch::Receiver<bool>,
    /// Set when the loop ends, so the registry task leaves.
    done: watch::Sender<bool>,
}

/// A step sent and not answered yet: the outcomes it carries, the slots
/// it claims, the wake-ups seen when it was sent, and its answer.
type StepInFlight = BoxFuture<'static, (Vec<Outcome>, usize, u64, Result<super::StepResult>)>;

/// Most steps one worker keeps in flight, whatever the backend asks
/// ([`super::QueueBackend::steps_in_flight`]). With one, Redis idles while
/// the answer travels back, the claimed jobs start and their outcomes
/// gather; with two, the next step (the outcomes that finished meanwhile)
/// is already queued behind the first. More only split the batches.
const MAX_STEPS_IN_FLIGHT: usize = 2;

impl Runner {
    async fn run(mut self) {
        self.work().await;
        let _ = self.done.send(true);
    }

    async fn work(&mut self) {
        let mut running: JoinSet<Outcome> = JoinSet::new();
        let mut pending: Vec<Outcome> = Vec::new();
        let mut steps: FuturesUnordered<StepInFlight> = FuturesUnordered::new();
        // Slots asked for by steps in flight: not free until they answer.
        let mut claiming = 0usize;
        let mut want_claim = true;
        let mut next_due: Option<i64> = None;
        let mut events_open = true;
        let mut stop_open = true;
        let mut quiet_open = true;
        let mut error_backoff = Duration::from_millis(50);
        // After a failed step, no new one before this.
        let mut retry_at: Option<Instant> = None;
        let max_steps = self
            .queues
            .backend()
            .steps_in_flight()
            .clamp(1, MAX_STEPS_IN_FLIGHT);
        // Reasons to claim again (events, polls) so far: a step that comes
        // back short must not cancel one that arrived while it was out.
        let mut wakes: u64 = 0;
        loop {
            while let Some(done) = running.try_join_next() {
                if let Ok(outcome) = done {
                    pending.push(outcome);
                }
            }
            let deadline = *self.stop.borrow();
            let stopping = deadline.is_some();
            let quiet = *self.quiet.borrow();
            let free = if stopping || quiet {
                0
            } else {
                self.concurrency - running.len() - claiming
            };
            let claim = if want_claim { free } else { 0 };
            let backing_off = retry_at.is_some_and(|at| Instant::now() < at);
            // A second step goes only with a batch worth sending: one
            // outcome per step would make the backend do per-step work per
            // job.
            let worth = steps.is_empty() || pending.len() + claim >= self.second_step_batch();
            if steps.len() < max_steps
                && worth
                && !backing_off
                && (!pending.is_empty() || claim > 0)
            {
                let outcomes = std::mem::take(&mut pending);
                // Before the step is sent: see `Shared::confirm_lost`.
                self.shared.settling(&outcomes);
                claiming += claim;
                let (backend, queue, lease) = (
                    self.queues.backend().clone(),
                    self.queue.clone(),
                    self.lease,
                );
                let sent_at = wakes;
                steps.push(
                    async move {
                        let answer = backend.step(&queue, outcomes.clone(), claim, lease).await;
                        (outcomes, claim, sent_at, answer)
                    }
                    .boxed(),
                );
                continue;
            }
            if stopping && running.is_empty() && steps.is_empty() && pending.is_empty() {
                return;
            }
            let wait = match (retry_at, next_due) {
                (Some(at), _) if backing_off => at.saturating_duration_since(Instant::now()),
                (_, Some(due)) => {
                    let until_due = (due - now_ms()).max(1) as u64;
                    self.poll_interval.min(Duration::from_millis(until_due))
                }
                _ => self.poll_interval,
            };
            let stop_at = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                Some((outcomes, claimed_slots, sent_at, answer)) = steps.next(), if !steps.is_empty() => {
                    claiming -= claimed_slots;
                    match answer {
                        Ok(result) => {
                            error_backoff = Duration::from_millis(50);
                            retry_at = None;
                            self.settled(&outcomes, &result.stale);
                            if claimed_slots > 0 {
                                want_claim =
                                    result.claimed.len() == claimed_slots || wakes != sent_at;
                            }
                            next_due = result.next_due_at;
                            for job in result.claimed {
                                self.spawn(&mut running, job);
                            }
                        }
                        Err(err) => {
                            // Sent again with the next step.
                            self.failed_step(&outcomes, &err);
                            pending.extend(outcomes);
                            retry_at = Some(Instant::now() + error_backoff);
                            error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
                            let deadline = *self.stop.borrow();
                            if deadline.is_some_and(|d| Instant::now() >= d) {
                                self.finish(steps, pending).await;
                                return;
                            }
                        }
                    }
                }
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok(outcome) = done {
                        pending.push(outcome);
                    }
                }
                event = self.events.recv(), if events_open && !stopping => match event {
                    Ok(batch) => {
                        if batch.iter().any(|e| e.queue == self.queue && e.kind.wakes_workers()) {
                            want_claim = true;
                            wakes += 1;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        want_claim = true;
                        wakes += 1;
                    }
                    Err(broadcast::error::RecvError::Closed) => events_open = false,
                },
                _ = tokio::time::sleep(wait), if !stopping || backing_off => {
                    want_claim = true;
                    wakes += 1;
                }
                changed = self.quiet.changed(), if !stopping && quiet_open => {
                    // Quiet or resumed: look again at once. (Closed once the
                    // registry task is gone: nobody can quiet us then.)
                    quiet_open = changed.is_ok();
                    want_claim = true;
                    wakes += 1;
                }
                changed = self.stop.changed(), if !stopping && stop_open => {
                    // An error means the handle was dropped without a
                    // shutdown: keep working until the process ends.
                    stop_open = changed.is_ok();
                }
                _ = tokio::time::sleep_until(stop_at), if stopping => {
                    // Grace period over: abandon running jobs with their
                    // leases (recovered as stalled).
                    running.abort_all();
                    self.finish(steps, pending).await;
                    return;
                }
            }
        }
    }

    /// The end of the loop: waits for the steps in flight, then sends what
    /// is still pending once, so every outcome that finished is recorded
    /// if the backend answers.
    async fn finish(&self, mut steps: FuturesUnordered<StepInFlight>, mut pending: Vec<Outcome>) {
        while let Some((outcomes, _, _, answer)) = steps.next().await {
            match answer {
                Ok(result) => self.settled(&outcomes, &result.stale),
                Err(err) => {
                    self.failed_step(&outcomes, &err);
                    pending.extend(outcomes);
                }
            }
        }
        if pending.is_empty() {
            return;
        }
        self.shared.settling(&pending);
        match self
            .queues
            .backend()
            .step(&self.queue, pending.clone(), 0, self.lease)
            .await
        {
            Ok(result) => self.settled(&pending, &result.stale),
            Err(err) => self.failed_step(&pending, &err),
        }
    }

    /// A step carrying `outcomes` failed: it may have recorded them all the
    /// same, so a later `stale` answer for them is no proof of a lost lease.
    fn failed_step(&self, outcomes: &[Outcome], err: &CoordError) {
        self.shared.unsure(outcomes);
        self.shared.backend_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(queue = %self.queue, error = %err, "worker step failed; retrying");
    }

    /// Outcomes and claims a step must carry to go while another is in
    /// flight: a quarter of the slots.
    fn second_step_batch(&self) -> usize {
        (self.concurrency / 4).max(1)
    }

    /// A step answered for `outcomes`: stop extending their leases, count
    /// those recorded and report those refused as `stale`, whose lease was
    /// lost (see `Shared::confirm_lost` for why each loss is reported
    /// exactly once, here or by the lease keeper).
    fn settled(&self, outcomes: &[Outcome], stale: &[JobId]) {
        let stale: HashSet<&JobId> = stale.iter().collect();
        let mut lost = Vec::new();
        let mut unsure = Vec::new();
        {
            let mut leases = self.shared.leases();
            for outcome in outcomes {
                let lease = match leases.get(&outcome.job_id) {
                    Some(lease) if lease.token == outcome.lease_token => {
                        leases.remove(&outcome.job_id)
                    }
                    _ => None,
                };
                if stale.contains(&outcome.job_id) {
                    match lease {
                        // Reported by the lease keeper already.
                        Some(lease) if lease.lost => {}
                        Some(lease) if lease.unsure => unsure.push(outcome.job_id.clone()),
                        _ => lost.push(outcome.job_id.clone()),
                    }
                    continue;
                }
                let counter = match outcome.result {
                    OutcomeResult::Completed { .. } => &self.shared.completed,
                    OutcomeResult::Failed { .. } => &self.shared.failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !lost.is_empty() {
            self.shared
                .leases_lost
                .fetch_add(lost.len() as u64, Ordering::Relaxed);
            tracing::warn!(
                queue = %self.queue,
                lost = lost.len(),
                jobs = %some_ids(&lost),
                "outcomes refused: the leases were lost before they were recorded (the stalled sweep took the jobs back), so those jobs may run twice"
            );
        }
        if !unsure.is_empty() {
            tracing::warn!(
                queue = %self.queue,
                jobs = %some_ids(&unsure),
                "outcomes refused after a failed step: either that step recorded them, or their leases were lost and those jobs may run twice"
            );
        }
    }

    fn spawn(&self, running: &mut JoinSet<Outcome>, mut job: Job) {
        job.reporter = super::Reporter::new(self.queues.backend().clone());
        let token = job.lease_token.clone().unwrap_or_default();
        self.shared.leases().insert(
            job.id.clone(),
            Lease {
                token: token.clone(),
                started_at: now_ms(),
                settling: false,
                unsure: false,
                lost: false,
            },
        );
        let handler = self.handler.clone();
        let shared = self.shared.clone();
        let ready_at =
            super::latency::ready_at(job.created_at, job.options.delay_ms, job.history.len());
        running.spawn(async move {
            let started_at = now_ms();
            let job_id = job.id.clone();
            let attempts_made = job.attempts_made;
            let options = job.options.clone();
            let work = AssertUnwindSafe(handler(job)).catch_unwind();
            let result = match options.timeout_ms {
                Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), work).await {
                    Ok(r) => r,
                    Err(_) => Ok(Err(JobError::new(format!("job timed out after {ms} ms")))),
                },
                None => work.await,
            };
            let result = match result {
                Ok(Ok(value)) => OutcomeResult::Completed { value },
                Ok(Err(error)) => failed(error, attempts_made, &options),
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    failed(
                        JobError::new(format!("handler panicked: {what}")),
                        attempts_made,
                        &options,
                    )
                }
            };
            let finished_at = now_ms();
            shared.latency().record(ready_at, started_at, finished_at);
            Outcome {
                job_id,
                lease_token: token,
                started_at,
                finished_at,
                result,
            }
        });
    }
}

fn failed(error: JobError, attempts_made: u32, options: &super::JobOptions) -> OutcomeResult {
    let retry_delay_ms = if error.retryable && attempts_made < options.attempts {
        options.backoff.delay_ms(attempts_made)
    } else {
        0
    };
    OutcomeResult::Failed {
        error,
        retry_delay_ms,
    }
}

/// Heartbeats the leases of this worker's jobs and sweeps the queue for
/// jobs whose worker died.
async fn keep_leases(
    queues: Queues,
    queue: QueueName,
    lease: Duration,
    max_stalled: u32,
    stalled_interval: Duration,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<Option<Instant>>,
) {
    let beat = lease / 3;
    let mut next_beat = Instant::now() + beat;
    let mut next_sweep = Instant::now() + stalled_interval;
    let mut stop_open = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_beat.min(next_sweep)) => {}
            changed = stop.changed(), if stop_open => stop_open = changed.is_ok(),
        }
        let now = Instant::now();
        if now >= next_beat {
            next_beat = now + beat;
            let held = shared.held();
            if !held.is_empty() {
                match queues.backend().extend_leases(&queue, &held, lease).await {
                    Ok(lost) if !lost.is_empty() => {
                        // Most of these are jobs this worker has just
                        // settled itself, which are not lost.
                        let lost = shared.confirm_lost(&held, lost);
                        if !lost.is_empty() {
                            shared
                                .leases_lost
                                .fetch_add(lost.len() as u64, Ordering::Relaxed);
                            tracing::warn!(
                                queue = %queue,
                                lost = lost.len(),
                                jobs = %some_ids(&lost),
                                "leases lost while the jobs ran: the stalled sweep put them back, so those jobs may run twice"
                            );
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        shared.backend_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(queue = %queue, error = %err, "lease heartbeat failed");
                    }
                }
            }
        }
        if now >= next_sweep && stop.borrow().is_none() {
            next_sweep = now + stalled_interval;
            match queues.recover_stalled(&queue, max_stalled).await {
                Ok(report) if !report.requeued.is_empty() || !report.failed.is_empty() => {
                    tracing::info!(queue = %queue, requeued = report.requeued.len(), failed = report.failed.len(), "recovered stalled jobs");
                }
                Ok(_) => {}
                Err(err) => {
                    shared.backend_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(queue = %queue, error = %err, "stalled sweep failed");
                }
            }
        }
    }
}

/// Reports the worker to the registry every interval and obeys what the
/// operator asked there; leaves the registry once the loop is done.
struct Presence {
    queues: Queues,
    base: WorkerReport,
    interval: Duration,
    grace: Duration,
    shared: Arc<Shared>,
    quiet: watch::Sender<bool>,
    stop: Arc<watch::Sender<Option<Instant>>>,
    done: watch::Receiver<bool>,
}

impl Presence {
    async fn run(mut self) {
        let ttl = self.interval.saturating_mul(DEFAULT_TTL_INTERVALS);
        let mut done_open = true;
        loop {
            if *self.done.borrow() {
                break;
            }
            let report = self.report();
            match self.queues.backend().worker_heartbeat(&report, ttl).await {
                Ok(command) => self.obey(command),
                Err(err) => {
                    self.shared.backend_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(worker = %self.base.id, error = %err, "worker heartbeat failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                changed = self.done.changed(), if done_open => done_open = changed.is_ok(),
            }
            if !done_open {
                // The loop is gone without saying so (aborted): so is the
                // worker, and its entry expires as a crash's would.
                return;
            }
        }
        if let Err(err) = self.queues.backend().worker_leave(&self.base.id).await {
            tracing::warn!(worker = %self.base.id, error = %err, "worker could not leave the registry; its entry expires");
        }
    }

    fn report(&self) -> WorkerReport {
        let (busy, running) = self.shared.running();
        let stats = self.shared.stats();
        let state = if self.stop.borrow().is_some() {
            WorkerState::Stopping
        } else if *self.quiet.borrow() {
            WorkerState::Quiet
        } else {
            WorkerState::Running
        };
        let now = now_ms();
        WorkerReport {
            busy,
            running,
            state,
            completed: stats.completed,
            failed: stats.failed,
            heartbeat_at: now,
            latency: self.shared.latency().report(now),
            ..self.base.clone()
        }
    }

    fn obey(&self, command: Option<WorkerCommand>) {
        match command {
            Some(WorkerCommand::Stop) => {
                if self.stop.borrow().is_none() {
                    tracing::info!(worker = %self.base.id, "asked to stop from the registry");
                    let _ = self.stop.send(Some(Instant::now() + self.grace));
                }
            }
            Some(WorkerCommand::Quiet) => {
                if self.quiet.send_if_modified(|q| !std::mem::replace(q, true)) {
                    tracing::info!(worker = %self.base.id, "asked to go quiet from the registry");
                }
            }
            Some(WorkerCommand::Resume) | None => {
                if self.quiet.send_if_modified(|q| std::mem::replace(q, false)) {
                    tracing::info!(worker = %self.base.id, "resumed from the registry");
                }
            }
        }
    }
}
