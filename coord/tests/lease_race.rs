//! The lease keeper against the worker's own outcomes (Switchyard issue 14,
//! point 4): "leases lost; those jobs may run twice" was logged in normal
//! operation because the keeper heartbeated a job whose outcome a step had
//! just recorded. These cases force each interleaving deterministically
//! through a backend wrapper and run against both backends:
//!
//! - the keeper extends a job after the step that settled it committed and
//!   before the worker forgot the lease: not a loss, nothing is counted;
//! - the lease really expires and the stalled sweep takes the job back while
//!   the handler still runs (found by the keeper) or before its outcome is
//!   recorded (found by the step): counted once, and the job does run again.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use coord::Result;
use coord::instances::Thresholds;
use coord::queue::schedules::{Fire, Fired, Schedule, ScheduleId, ScheduleState};
use coord::queue::workers::{WorkerCommand, WorkerId, WorkerReport, WorkerView};
use coord::queue::{
    BackendHealth, BackendKind, EventBatch, JobId, JobPage, JobState, NewJob, Outcome,
    OutcomeResult, QueueBackend, QueueCounts, QueueName, Queues, RetentionPolicy, StalledReport,
    StepResult,
};
use coord::time::now_ms;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, watch};

use common::{eventually, queue, until_state};

per_backend!(
    backend_reports_lease_of_settled_job_as_lost,
    backend_reports_lease_of_recovered_job_as_lost,
    worker_does_not_count_lease_of_job_it_is_settling,
    worker_counts_lease_lost_while_job_runs,
    worker_counts_lease_lost_before_outcome_is_recorded,
);

/// Lease of the workers under test: heartbeats every 100 ms.
const SHORT_LEASE: Duration = Duration::from_millis(300);

/// A backend that delegates everything and lets a test steer how the
/// worker's step and the lease keeper's heartbeat interleave.
struct Steered {
    inner: Arc<dyn QueueBackend>,
    /// When set, a step that records outcomes returns only after a
    /// heartbeat that started after the step committed and carried one of
    /// those jobs has returned (or after 5 s).
    hold_settle: bool,
    /// Jobs of the step now held back, while it is.
    settling: Mutex<Option<HashSet<JobId>>>,
    heartbeat_done: Notify,
    /// Steps held back until a heartbeat of theirs passed.
    interleaved: AtomicU32,
    /// Ids the inner backend reported lost for jobs whose step had
    /// committed: what the keeper used to count as lost.
    reported_for_settled: AtomicUsize,
    /// Heartbeats wait while this is false.
    heartbeats_open: watch::Sender<bool>,
    /// Heartbeats that have returned.
    heartbeats: AtomicU32,
}

impl Steered {
    fn new(inner: Arc<dyn QueueBackend>, hold_settle: bool, heartbeats_open: bool) -> Arc<Self> {
        Arc::new(Self {
            inner,
            hold_settle,
            settling: Mutex::new(None),
            heartbeat_done: Notify::new(),
            interleaved: AtomicU32::new(0),
            reported_for_settled: AtomicUsize::new(0),
            heartbeats_open: watch::channel(heartbeats_open).0,
            heartbeats: AtomicU32::new(0),
        })
    }

    fn open_heartbeats(&self) {
        self.heartbeats_open.send_replace(true);
    }
}

#[async_trait]
impl QueueBackend for Steered {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    fn steps_in_flight(&self) -> usize {
        self.inner.steps_in_flight()
    }

    async fn health(&self) -> Result<BackendHealth> {
        self.inner.health().await
    }

    async fn enqueue_bulk(&self, queue: &QueueName, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        self.inner.enqueue_bulk(queue, jobs).await
    }

    async fn queues(&self) -> Result<Vec<QueueName>> {
        self.inner.queues().await
    }

    async fn counts(&self, queue: &QueueName) -> Result<QueueCounts> {
        self.inner.counts(queue).await
    }

    async fn list(
        &self,
        queue: &QueueName,
        state: JobState,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<JobPage> {
        self.inner.list(queue, state, offset, limit, clip).await
    }

    async fn job(&self, queue: &QueueName, id: &JobId) -> Result<coord::queue::Job> {
        self.inner.job(queue, id).await
    }

    async fn job_clipped(
        &self,
        queue: &QueueName,
        id: &JobId,
        clip: u32,
    ) -> Result<coord::queue::Job> {
        self.inner.job_clipped(queue, id, clip).await
    }

    async fn step(
        &self,
        queue: &QueueName,
        outcomes: Vec<Outcome>,
        claim: usize,
        lease: Duration,
    ) -> Result<StepResult> {
        let ids: HashSet<JobId> = outcomes.iter().map(|o| o.job_id.clone()).collect();
        let result = self.inner.step(queue, outcomes, claim, lease).await?;
        if self.hold_settle && !ids.is_empty() {
            // Committed; the worker has not seen the answer yet.
            *self.settling.lock().unwrap() = Some(ids);
            let passed =
                tokio::time::timeout(Duration::from_secs(5), self.heartbeat_done.notified())
                    .await
                    .is_ok();
            *self.settling.lock().unwrap() = None;
            if passed {
                self.interleaved.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(result)
    }

    async fn extend_leases(
        &self,
        queue: &QueueName,
        leases: &[(JobId, String)],
        lease: Duration,
    ) -> Result<Vec<JobId>> {
        let mut open = self.heartbeats_open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        // Only heartbeats that start after the held step committed count.
        let settled = self.settling.lock().unwrap().clone();
        let lost = self.inner.extend_leases(queue, leases, lease).await?;
        self.heartbeats.fetch_add(1, Ordering::SeqCst);
        if let Some(settled) = settled
            && leases.iter().any(|(id, _)| settled.contains(id))
        {
            let n = lost.iter().filter(|id| settled.contains(*id)).count();
            self.reported_for_settled.fetch_add(n, Ordering::SeqCst);
            self.heartbeat_done.notify_one();
        }
        Ok(lost)
    }

    async fn append_logs(
        &self,
        queue: &QueueName,
        id: &JobId,
        token: &str,
        lines: &[String],
    ) -> Result<bool> {
        self.inner.append_logs(queue, id, token, lines).await
    }

    async fn set_progress(
        &self,
        queue: &QueueName,
        id: &JobId,
        token: &str,
        progress: &str,
    ) -> Result<bool> {
        self.inner.set_progress(queue, id, token, progress).await
    }

    async fn job_report(
        &self,
        queue: &QueueName,
        id: &JobId,
        lines: u32,
    ) -> Result<coord::queue::JobReport> {
        self.inner.job_report(queue, id, lines).await
    }

    async fn find_job(&self, id: &JobId) -> Result<Vec<coord::search::FoundJob>> {
        self.inner.find_job(id).await
    }

    async fn search(
        &self,
        query: &coord::search::SearchQuery,
        limit: usize,
    ) -> Result<coord::search::SearchResult> {
        self.inner.search(query, limit).await
    }

    async fn index_search(&self, batch: usize) -> Result<coord::search::IndexProgress> {
        self.inner.index_search(batch).await
    }

    async fn recover_stalled(&self, queue: &QueueName, max_stalled: u32) -> Result<StalledReport> {
        self.inner.recover_stalled(queue, max_stalled).await
    }

    async fn retry(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.inner.retry(queue, id).await
    }

    async fn retry_failed_batch(&self, queue: &QueueName, batch: usize) -> Result<u64> {
        self.inner.retry_failed_batch(queue, batch).await
    }

    async fn list_retrying(
        &self,
        queue: &QueueName,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<coord::queue::JobPage> {
        self.inner.list_retrying(queue, offset, limit, clip).await
    }

    async fn error_groups(
        &self,
        queue: &QueueName,
        limit: usize,
    ) -> Result<coord::errors::ErrorGroups> {
        self.inner.error_groups(queue, limit).await
    }

    async fn error_trends(
        &self,
        queue: &QueueName,
        groups: &[coord::errors::GroupId],
        now: i64,
    ) -> Result<Vec<coord::errors::Trend>> {
        self.inner.error_trends(queue, groups, now).await
    }

    async fn list_error_group(
        &self,
        queue: &QueueName,
        group: coord::errors::GroupId,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<coord::queue::JobPage> {
        self.inner
            .list_error_group(queue, group, offset, limit, clip)
            .await
    }

    async fn error_group_batch(
        &self,
        queue: &QueueName,
        group: coord::errors::GroupId,
        action: coord::errors::GroupAction,
        batch: usize,
    ) -> Result<u64> {
        self.inner
            .error_group_batch(queue, group, action, batch)
            .await
    }

    async fn remove(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.inner.remove(queue, id).await
    }

    async fn promote(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.inner.promote(queue, id).await
    }

    async fn stop_retrying(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.inner.stop_retrying(queue, id).await
    }

    async fn set_paused(&self, queue: &QueueName, paused: bool) -> Result<()> {
        self.inner.set_paused(queue, paused).await
    }

    async fn set_retention(&self, queue: &QueueName, policy: RetentionPolicy) -> Result<()> {
        self.inner.set_retention(queue, policy).await
    }

    async fn retention(&self, queue: &QueueName) -> Result<RetentionPolicy> {
        self.inner.retention(queue).await
    }

    async fn clean(&self, queue: &QueueName, limit: usize) -> Result<u64> {
        self.inner.clean(queue, limit).await
    }

    async fn worker_heartbeat(
        &self,
        report: &WorkerReport,
        ttl: Duration,
    ) -> Result<Option<WorkerCommand>> {
        self.inner.worker_heartbeat(report, ttl).await
    }

    async fn worker_leave(&self, id: &WorkerId) -> Result<()> {
        self.inner.worker_leave(id).await
    }

    async fn workers(&self, now_ms: i64, thresholds: &Thresholds) -> Result<Vec<WorkerView>> {
        self.inner.workers(now_ms, thresholds).await
    }

    async fn command_worker(&self, id: &WorkerId, command: WorkerCommand) -> Result<()> {
        self.inner.command_worker(id, command).await
    }

    async fn upsert_schedule(&self, schedule: &Schedule, next_run_at: Option<i64>) -> Result<()> {
        self.inner.upsert_schedule(schedule, next_run_at).await
    }

    async fn remove_schedule(&self, id: &ScheduleId) -> Result<()> {
        self.inner.remove_schedule(id).await
    }

    async fn schedules(&self) -> Result<Vec<ScheduleState>> {
        self.inner.schedules().await
    }

    async fn schedule(&self, id: &ScheduleId) -> Result<ScheduleState> {
        self.inner.schedule(id).await
    }

    async fn set_schedule_paused(
        &self,
        id: &ScheduleId,
        paused: bool,
        next_run_at: Option<i64>,
    ) -> Result<()> {
        self.inner
            .set_schedule_paused(id, paused, next_run_at)
            .await
    }

    async fn fire_schedules(&self, fires: &[Fire]) -> Result<Vec<Fired>> {
        self.inner.fire_schedules(fires).await
    }

    fn events(&self) -> broadcast::Receiver<EventBatch> {
        self.inner.events()
    }
}

fn token(job: &coord::queue::Job) -> String {
    job.lease_token.clone().expect("a claimed job has a token")
}

mod cases {
    use super::*;

    /// The backend cannot tell "settled by this token" from "taken away":
    /// both clear the token. The worker has to tell them apart.
    pub async fn backend_reports_lease_of_settled_job_as_lost(q: Queues) {
        let queue = queue("lease-settled");
        let id = q.enqueue(&queue, NewJob::new("t", json!(1))).await.unwrap();
        let backend = q.backend();
        let claimed = backend
            .step(&queue, Vec::new(), 1, Duration::from_secs(30))
            .await
            .unwrap()
            .claimed;
        let held = vec![(id.clone(), token(&claimed[0]))];
        let done = Outcome {
            job_id: id.clone(),
            lease_token: token(&claimed[0]),
            started_at: now_ms(),
            finished_at: now_ms(),
            result: OutcomeResult::Completed { value: Value::Null },
        };
        let result = backend
            .step(&queue, vec![done], 0, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(result.stale.is_empty());
        let lost = backend
            .extend_leases(&queue, &held, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(lost, vec![id.clone()]);
        assert_eq!(q.job(&queue, &id).await.unwrap().state, JobState::Completed);
    }

    /// A lease that expired and was swept: the old token is lost, the new
    /// claim's token is kept.
    pub async fn backend_reports_lease_of_recovered_job_as_lost(q: Queues) {
        let queue = queue("lease-recovered");
        let id = q.enqueue(&queue, NewJob::new("t", json!(1))).await.unwrap();
        let backend = q.backend();
        let first = backend
            .step(&queue, Vec::new(), 1, Duration::from_millis(100))
            .await
            .unwrap()
            .claimed;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            q.recover_stalled(&queue, 5).await.unwrap().requeued,
            vec![id.clone()]
        );
        let second = backend
            .step(&queue, Vec::new(), 1, Duration::from_secs(30))
            .await
            .unwrap()
            .claimed;
        assert_ne!(token(&first[0]), token(&second[0]));
        let old = [(id.clone(), token(&first[0]))];
        let lost = backend
            .extend_leases(&queue, &old, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(lost, vec![id.clone()]);
        let new = [(id.clone(), token(&second[0]))];
        let lost = backend
            .extend_leases(&queue, &new, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(lost.is_empty());
    }

    /// The false alarm of issue 14: every step that records outcomes is
    /// held after its commit until a heartbeat carrying those jobs has come
    /// back, so the keeper always extends jobs that are no longer active.
    pub async fn worker_does_not_count_lease_of_job_it_is_settling(q: Queues) {
        let queue = queue("lease-settling");
        let steered = Steered::new(q.backend().clone(), true, true);
        let sq = Queues::new(steered.clone());
        let jobs: Vec<NewJob> = (0..6).map(|n| NewJob::new("t", json!(n))).collect();
        let ids = sq.enqueue_bulk(&queue, jobs).await.unwrap();
        let runs = Arc::new(AtomicU32::new(0));
        let seen = runs.clone();
        // No stalled sweep: jobs claimed by a held step wait for their
        // first heartbeat longer than on a free machine, and a sweep on a
        // loaded one could take them back, which this case is not about.
        let worker = sq
            .worker(queue.clone())
            .concurrency(2)
            .lease(SHORT_LEASE)
            .stalled_interval(Duration::from_secs(3600))
            .start(move |_job| {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    Ok(Value::Null)
                }
            })
            .unwrap();
        for id in &ids {
            until_state(&sq, &queue, id, JobState::Completed, "every job completes").await;
        }
        let stats = worker.shutdown(Duration::from_secs(5)).await;
        assert!(
            steered.interleaved.load(Ordering::SeqCst) >= 1,
            "no heartbeat ran between a step's commit and its answer"
        );
        assert!(
            steered.reported_for_settled.load(Ordering::SeqCst) >= 1,
            "the backend did not report a settled job's lease as lost"
        );
        assert_eq!(stats.leases_lost, 0, "a settled job counted as lost");
        assert_eq!(stats.completed, ids.len() as u64);
        // Nothing ran twice.
        assert_eq!(runs.load(Ordering::SeqCst), ids.len() as u32);
        for id in &ids {
            let job = sq.job(&queue, id).await.unwrap();
            assert_eq!((job.attempts_made, job.stalled_count), (1, 0));
        }
    }

    /// Starts a worker whose first run of the job waits for `release`;
    /// returns it with its run counter once the job runs.
    async fn hanging_worker(
        q: &Queues,
        queue: &QueueName,
        id: &JobId,
        release: Arc<Notify>,
    ) -> (coord::queue::WorkerHandle, Arc<AtomicU32>) {
        let runs = Arc::new(AtomicU32::new(0));
        let seen = runs.clone();
        let worker = q
            .worker(queue.clone())
            .lease(SHORT_LEASE)
            // The sweep under test is the test's own; the keeper's would
            // only wait behind its held heartbeat.
            .stalled_interval(Duration::from_secs(3600))
            .start(move |_job| {
                let seen = seen.clone();
                let release = release.clone();
                async move {
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        release.notified().await;
                    }
                    Ok(json!("done"))
                }
            })
            .unwrap();
        until_state(q, queue, id, JobState::Active, "the worker takes the job").await;
        let counted = runs.clone();
        eventually("the handler runs", move || {
            let counted = counted.clone();
            async move { counted.load(Ordering::SeqCst) == 1 }
        })
        .await;
        (worker, runs)
    }

    /// Lets the job's lease expire (heartbeats are held) and sweeps it.
    async fn expire_and_sweep(q: &Queues, queue: &QueueName, id: &JobId) {
        tokio::time::sleep(SHORT_LEASE + Duration::from_millis(150)).await;
        let report = q.recover_stalled(queue, 5).await.unwrap();
        assert_eq!(report.requeued, vec![id.clone()]);
    }

    /// A real loss the keeper finds: the handler is still running when the
    /// held heartbeat comes back. It is counted once and the job runs again.
    pub async fn worker_counts_lease_lost_while_job_runs(q: Queues) {
        let queue = queue("lease-lost-running");
        let steered = Steered::new(q.backend().clone(), false, false);
        let sq = Queues::new(steered.clone());
        let id = sq
            .enqueue(&queue, NewJob::new("t", json!(1)))
            .await
            .unwrap();
        let release = Arc::new(Notify::new());
        let (worker, runs) = hanging_worker(&sq, &queue, &id, release.clone()).await;
        expire_and_sweep(&sq, &queue, &id).await;
        steered.open_heartbeats();
        {
            let w = &worker;
            eventually("the keeper counts the lost lease", || async move {
                w.stats().leases_lost == 1
            })
            .await;
        }
        release.notify_one();
        until_state(&sq, &queue, &id, JobState::Completed, "the job runs again").await;
        let stats = worker.shutdown(Duration::from_secs(5)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "a lost lease means a second run"
        );
        assert_eq!(stats.leases_lost, 1, "counted once, by the keeper alone");
        // The late outcome of the first run was refused, not recorded.
        assert_eq!(stats.completed, 1);
        let job = sq.job(&queue, &id).await.unwrap();
        assert_eq!((job.attempts_made, job.stalled_count), (2, 1));
    }

    /// A real loss the step finds: the handler has finished and its outcome
    /// is on its way while heartbeats are held, so the keeper cannot have
    /// seen it first. The refused outcome is counted once.
    pub async fn worker_counts_lease_lost_before_outcome_is_recorded(q: Queues) {
        let queue = queue("lease-lost-outcome");
        let steered = Steered::new(q.backend().clone(), false, false);
        let sq = Queues::new(steered.clone());
        let id = sq
            .enqueue(&queue, NewJob::new("t", json!(1)))
            .await
            .unwrap();
        let release = Arc::new(Notify::new());
        let (worker, runs) = hanging_worker(&sq, &queue, &id, release.clone()).await;
        expire_and_sweep(&sq, &queue, &id).await;
        release.notify_one();
        until_state(&sq, &queue, &id, JobState::Completed, "the job runs again").await;
        {
            let w = &worker;
            eventually("the refused outcome is counted", || async move {
                w.stats().leases_lost == 1
            })
            .await;
        }
        // The held heartbeat now reports the old token lost as well; it is
        // the same loss and must not be counted again.
        let before = steered.heartbeats.load(Ordering::SeqCst);
        steered.open_heartbeats();
        {
            let steered = &steered;
            eventually("a heartbeat comes back", || async move {
                steered.heartbeats.load(Ordering::SeqCst) > before
            })
            .await;
        }
        let stats = worker.shutdown(Duration::from_secs(5)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "a lost lease means a second run"
        );
        assert_eq!(stats.leases_lost, 1, "counted once, by the step alone");
        assert_eq!(stats.completed, 1);
        let job = sq.job(&queue, &id).await.unwrap();
        assert_eq!((job.attempts_made, job.stalled_count), (2, 1));
    }
}
