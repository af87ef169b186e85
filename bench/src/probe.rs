//! An instrumented backend for `--probe`: passes every call through to the
//! real backend and records, for the worker's `step` round trips, how long
//! they took and how many outcomes and claims each carried. This shows where
//! the processing time goes without touching `coord`.
//!
//! It also records which ticks a scheduler was told it fired, so that the
//! schedules benchmark can count a tick fired twice by two schedulers from
//! what each of them saw, not from the backend's own run counter.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use coord::Result;
use coord::instances::Thresholds;
use coord::queue::schedules::{Fire, Fired, Schedule, ScheduleId, ScheduleState};
use coord::queue::workers::{WorkerCommand, WorkerId, WorkerReport, WorkerView};
use coord::queue::{
    BackendHealth, BackendKind, EventBatch, Job, JobId, JobPage, JobState, NewJob, Outcome,
    QueueBackend, QueueCounts, QueueName, RetentionPolicy, StalledReport, StepResult,
};
use tokio::sync::broadcast;

/// Totals of the `step` calls seen since the last [`Probe::take`].
#[derive(Debug, Clone, Default)]
pub struct StepStats {
    pub steps: u64,
    pub outcomes: u64,
    pub claim_asked: u64,
    pub claimed: u64,
    /// Steps that asked for no job (a flush of outcomes only).
    pub flush_only: u64,
    /// Steps whose claim came back short (the queue ran dry or was racing).
    pub short_claims: u64,
    pub busy: Duration,
    pub max: Duration,
    /// Round trips in ascending order, for percentiles.
    pub latencies: Vec<Duration>,
    /// Calls other than `step` (counts polls, heartbeats, sweeps).
    pub other_calls: u64,
}

impl StepStats {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut v = self.latencies.clone();
        v.sort();
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        v[i]
    }

    /// One human-readable line for stderr.
    pub fn summary(&self, wall: Duration) -> String {
        let steps = self.steps.max(1) as f64;
        format!(
            "steps {} | mean round trip {:.2} ms (p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}) | \
             busy {:.0}% of {:.2} s | per step: {:.1} outcomes, {:.1} claimed of {:.1} asked | \
             flush-only {} | short claims {} | other calls {}",
            self.steps,
            self.busy.as_secs_f64() * 1000.0 / steps,
            self.percentile(0.5).as_secs_f64() * 1000.0,
            self.percentile(0.9).as_secs_f64() * 1000.0,
            self.percentile(0.99).as_secs_f64() * 1000.0,
            self.max.as_secs_f64() * 1000.0,
            100.0 * self.busy.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            wall.as_secs_f64(),
            self.outcomes as f64 / steps,
            self.claimed as f64 / steps,
            self.claim_asked as f64 / steps,
            self.flush_only,
            self.short_claims,
            self.other_calls,
        )
    }
}

/// Wraps a backend and records its `step` calls.
pub struct Probe {
    inner: Arc<dyn QueueBackend>,
    stats: Mutex<StepStats>,
    fired: Mutex<Vec<(ScheduleId, i64)>>,
}

impl Probe {
    pub fn new(inner: Arc<dyn QueueBackend>) -> Self {
        Self {
            inner,
            stats: Mutex::new(StepStats::default()),
            fired: Mutex::new(Vec::new()),
        }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, StepStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The totals so far, resetting them.
    pub fn take(&self) -> StepStats {
        std::mem::take(&mut *self.stats())
    }

    fn other(&self) {
        self.stats().other_calls += 1;
    }

    /// The (schedule, tick) of every fire whose compare-and-set held and
    /// that enqueued a job, since the last call.
    // Only the schedules benchmark reads them.
    #[allow(dead_code)]
    pub fn take_fired(&self) -> Vec<(ScheduleId, i64)> {
        std::mem::take(&mut *self.fired.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl QueueBackend for Probe {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    fn steps_in_flight(&self) -> usize {
        self.inner.steps_in_flight()
    }

    async fn health(&self) -> Result<BackendHealth> {
        self.other();
        self.inner.health().await
    }

    async fn enqueue_bulk(&self, queue: &QueueName, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        self.inner.enqueue_bulk(queue, jobs).await
    }

    async fn queues(&self) -> Result<Vec<QueueName>> {
        self.other();
        self.inner.queues().await
    }

    async fn counts(&self, queue: &QueueName) -> Result<QueueCounts> {
        self.other();
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
        self.other();
        self.inner.list(queue, state, offset, limit, clip).await
    }

    async fn job(&self, queue: &QueueName, id: &JobId) -> Result<Job> {
        self.other();
        self.inner.job(queue, id).await
    }

    async fn job_clipped(&self, queue: &QueueName, id: &JobId, clip: u32) -> Result<Job> {
        self.other();
        self.inner.job_clipped(queue, id, clip).await
    }

    async fn step(
        &self,
        queue: &QueueName,
        outcomes: Vec<Outcome>,
        claim: usize,
        lease: Duration,
    ) -> Result<StepResult> {
        let n_outcomes = outcomes.len() as u64;
        let started = Instant::now();
        let result = self.inner.step(queue, outcomes, claim, lease).await;
        let took = started.elapsed();
        let mut s = self.stats();
        s.steps += 1;
        s.outcomes += n_outcomes;
        s.claim_asked += claim as u64;
        if claim == 0 {
            s.flush_only += 1;
        }
        if let Ok(r) = &result {
            s.claimed += r.claimed.len() as u64;
            if claim > 0 && r.claimed.len() < claim {
                s.short_claims += 1;
            }
        }
        s.busy += took;
        s.max = s.max.max(took);
        s.latencies.push(took);
        drop(s);
        result
    }

    async fn extend_leases(
        &self,
        queue: &QueueName,
        leases: &[(JobId, String)],
        lease: Duration,
    ) -> Result<Vec<JobId>> {
        self.other();
        self.inner.extend_leases(queue, leases, lease).await
    }

    async fn append_logs(
        &self,
        queue: &QueueName,
        id: &JobId,
        token: &str,
        lines: &[String],
    ) -> Result<bool> {
        self.other();
        self.inner.append_logs(queue, id, token, lines).await
    }

    async fn set_progress(
        &self,
        queue: &QueueName,
        id: &JobId,
        token: &str,
        progress: &str,
    ) -> Result<bool> {
        self.other();
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
        self.other();
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
        let outcomes = self.inner.fire_schedules(fires).await?;
        let mut fired = self.fired.lock().unwrap_or_else(|p| p.into_inner());
        for (fire, outcome) in fires.iter().zip(&outcomes) {
            if let (Fired::Done, Some(_), Some((tick, _))) = (outcome, &fire.job, fire.expected) {
                fired.push((fire.id.clone(), tick));
            }
        }
        Ok(outcomes)
    }

    fn events(&self) -> broadcast::Receiver<EventBatch> {
        self.inner.events()
    }
}
