//! Durable job queues: enqueue, workers with leases and retries, the failed
//! (dead) set, delayed and prioritised jobs, pause, retention and events.
//!
//! [`Queues`] is the API services and the dashboard use; it validates input
//! at the edge and delegates each atomic step to a [`QueueBackend`]:
//! [`sql::SqlBackend`] for the embedded default or [`redis::RedisBackend`]
//! for scale-out.

mod backend;
mod events;
pub mod latency;
pub mod redis;
mod report;
pub mod schedules;
pub mod sql;
mod stored;
mod types;
mod worker;
pub mod workers;

use std::sync::Arc;

use tokio::sync::broadcast;

pub use backend::{BackendHealth, BackendKind, QueueBackend};
pub use events::{EVENT_BUFFER, EventBatch, QueueEvent, QueueEventKind};
pub use report::{
    CUT_MARK, JobReport, MAX_LINE_BYTES, MAX_LOG_BYTES, MAX_LOG_LINES, MAX_PROGRESS_BYTES,
    Reporter, SHOWN_LOG_LINES,
};
pub use types::{
    AttemptRecord, Backoff, Clipped, Job, JobError, JobId, JobOptions, JobPage, JobState,
    MAX_DELAY_MS, MAX_PRIORITY, NewJob, Outcome, OutcomeResult, PRIORITY_SHIFT, QueueCounts,
    QueueName, Retention, RetentionPolicy, StalledReport, StepResult,
};
pub use worker::{Handler, WorkerBuilder, WorkerHandle, WorkerStats};

use schedules::{Fire, Schedule, ScheduleId, ScheduleState, Scheduler};

use crate::error::{CoordError, Result};
use crate::errors::{ErrorGroups, GroupAction, GroupId, Trend};
use crate::search::{FoundJob, IndexProgress, SearchQuery, SearchResult};

/// Largest page a listing returns, so one request cannot pull a whole set.
pub const MAX_PAGE: u64 = 500;

/// Most retrying jobs a listing counts: past it the total reads as this
/// (a backend that counts by index stops there).
pub const MAX_RETRYING_COUNT: u64 = 100_000;

/// Largest batch one bulk enqueue or retry step handles.
pub const MAX_BATCH: usize = 10_000;

/// The job-queue API: cheap to clone, shared by producers, workers and the
/// dashboard of one process.
#[derive(Clone)]
pub struct Queues {
    backend: Arc<dyn QueueBackend>,
}

/// A listing's page size: 1 to [`MAX_PAGE`].
fn check_page_size(limit: u64) -> Result<()> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(CoordError::InvalidOptions(format!(
            "page size must be between 1 and {MAX_PAGE} (got {limit})"
        )));
    }
    Ok(())
}

/// A clip size: positive.
fn check_clip(max_bytes: u32) -> Result<()> {
    if max_bytes == 0 {
        return Err(CoordError::InvalidOptions(
            "the clip size must be positive".into(),
        ));
    }
    Ok(())
}

/// What [`Queues::in_batches`] moves.
#[derive(Debug, Clone, Copy)]
enum Batched {
    /// The oldest failed jobs, retried.
    RetryFailed,
    /// The oldest failed jobs of a group, retried or removed.
    Group(GroupId, GroupAction),
}

/// A retry or group batch's size: 1 to [`MAX_BATCH`].
fn check_batch(batch: usize) -> Result<()> {
    if batch == 0 || batch > MAX_BATCH {
        return Err(CoordError::InvalidOptions(format!(
            "batch must be between 1 and {MAX_BATCH} (got {batch})"
        )));
    }
    Ok(())
}

impl Queues {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn QueueBackend>) -> Self {
        Self { backend }
    }

    /// The backend behind this handle, for the worker runtime and health.
    pub fn backend(&self) -> &Arc<dyn QueueBackend> {
        &self.backend
    }

    /// Which deployment this is.
    pub fn kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// Reachability and latency of the backend.
    pub async fn health(&self) -> Result<BackendHealth> {
        self.backend.health().await
    }

    /// Adds one job; returns its id (the caller's, or a generated one).
    pub async fn enqueue(&self, queue: &QueueName, job: NewJob) -> Result<JobId> {
        let mut ids = self.enqueue_bulk(queue, vec![job]).await?;
        ids.pop()
            .ok_or_else(|| CoordError::Corrupt("backend returned no id for an enqueued job".into()))
    }

    /// Adds many jobs atomically; nothing is written if any job is invalid.
    pub async fn enqueue_bulk(&self, queue: &QueueName, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        if jobs.len() > MAX_BATCH {
            return Err(CoordError::InvalidOptions(format!(
                "a bulk enqueue takes at most {MAX_BATCH} jobs (got {})",
                jobs.len()
            )));
        }
        for job in &jobs {
            job.validate()?;
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.backend.enqueue_bulk(queue, jobs).await
    }

    /// Every known queue, sorted by name.
    pub async fn queues(&self) -> Result<Vec<QueueName>> {
        self.backend.queues().await
    }

    /// Per-state counts of a queue.
    pub async fn counts(&self, queue: &QueueName) -> Result<QueueCounts> {
        self.backend.counts(queue).await
    }

    /// A page of jobs in one state, newest first; `limit` is capped at
    /// [`MAX_PAGE`] and must be positive.
    pub async fn list(
        &self,
        queue: &QueueName,
        state: JobState,
        offset: u64,
        limit: u64,
    ) -> Result<JobPage> {
        check_page_size(limit)?;
        self.backend.list(queue, state, offset, limit, None).await
    }

    /// [`Queues::list`] with every value longer than `max_bytes` left out
    /// where it is stored (its length is read, never the value), so that a
    /// page's size is bounded by `limit × max_bytes` whatever the jobs
    /// hold. Each job says which values were left out and their whole
    /// length ([`Job::clipped`]); [`Queues::job`] reads it whole.
    pub async fn list_clipped(
        &self,
        queue: &QueueName,
        state: JobState,
        offset: u64,
        limit: u64,
        max_bytes: u32,
    ) -> Result<JobPage> {
        check_page_size(limit)?;
        check_clip(max_bytes)?;
        self.backend
            .list(queue, state, offset, limit, Some(max_bytes))
            .await
    }

    /// A page of the jobs that failed and will run again (waiting or
    /// delayed after a failure), due ones first, clipped as
    /// [`Queues::list_clipped`] does. The total counts at most
    /// [`MAX_RETRYING_COUNT`].
    pub async fn list_retrying(
        &self,
        queue: &QueueName,
        offset: u64,
        limit: u64,
        max_bytes: u32,
    ) -> Result<JobPage> {
        check_page_size(limit)?;
        check_clip(max_bytes)?;
        self.backend
            .list_retrying(queue, offset, limit, Some(max_bytes))
            .await
    }

    /// One job with its history.
    pub async fn job(&self, queue: &QueueName, id: &JobId) -> Result<Job> {
        self.backend.job(queue, id).await
    }

    /// One job with every value longer than `max_bytes` left out where it
    /// is stored ([`Job::clipped`] says which and how long it is), so that
    /// showing a job costs at most five such values, whatever it holds.
    pub async fn job_clipped(&self, queue: &QueueName, id: &JobId, max_bytes: u32) -> Result<Job> {
        check_clip(max_bytes)?;
        self.backend.job_clipped(queue, id, max_bytes).await
    }

    /// Every queue holding a job of this id, with its state there: ids are
    /// per queue, so one id may be in several.
    pub async fn find_job(&self, id: &JobId) -> Result<Vec<FoundJob>> {
        self.backend.find_job(id).await
    }

    /// The newest jobs matching `query` across queues and states (at most
    /// `limit`, up to [`crate::search::MAX_HITS`]), saying what was
    /// searched and whether it was complete.
    pub async fn search(&self, query: &SearchQuery, limit: usize) -> Result<SearchResult> {
        if limit == 0 || limit > crate::search::MAX_HITS {
            return Err(CoordError::InvalidOptions(format!(
                "a search returns between 1 and {} jobs (got {limit})",
                crate::search::MAX_HITS
            )));
        }
        self.backend.search(query, limit).await
    }

    /// Indexes up to `batch` new jobs for text search (the embedded
    /// backend's FTS index; nothing elsewhere). Whoever serves searches
    /// calls it in a loop, so producers and workers never pay for it.
    pub async fn index_search(&self, batch: usize) -> Result<IndexProgress> {
        self.backend.index_search(batch.clamp(1, MAX_BATCH)).await
    }

    /// A job's progress and its newest `lines` log lines (at most
    /// [`MAX_LOG_LINES`]), with how many were dropped or left out, so a
    /// page shows the end of a long log at a bounded cost.
    pub async fn job_report(&self, queue: &QueueName, id: &JobId, lines: u32) -> Result<JobReport> {
        self.backend
            .job_report(queue, id, lines.min(MAX_LOG_LINES))
            .await
    }

    /// Retries one failed job.
    pub async fn retry(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.backend.retry(queue, id).await
    }

    /// Retries every failed job in bounded batches, reporting the running
    /// total after each batch. Jobs that fail again while this runs are
    /// retried too only if they reach the failed set before it empties.
    pub async fn retry_all_failed(
        &self,
        queue: &QueueName,
        batch: usize,
        progress: impl FnMut(u64) + Send,
    ) -> Result<u64> {
        check_batch(batch)?;
        // Bound the loop by the count at the start so jobs that keep
        // failing during the run cannot keep it going forever.
        let budget = self.counts(queue).await?.failed;
        self.in_batches(queue, Batched::RetryFailed, budget, batch, progress)
            .await
    }

    /// Runs `what` in batches of at most `batch` until `budget` jobs were
    /// moved or a batch moves none, reporting the running total.
    async fn in_batches(
        &self,
        queue: &QueueName,
        what: Batched,
        budget: u64,
        batch: usize,
        mut progress: impl FnMut(u64) + Send,
    ) -> Result<u64> {
        let mut done = 0u64;
        while done < budget {
            let step = batch.min((budget - done) as usize);
            let moved = match what {
                Batched::RetryFailed => self.backend.retry_failed_batch(queue, step).await?,
                Batched::Group(group, action) => {
                    self.backend
                        .error_group_batch(queue, group, action, step)
                        .await?
                }
            };
            if moved == 0 {
                break;
            }
            done += moved;
            progress(done);
        }
        Ok(done)
    }

    /// The queue's error groups, the most recently failed first, at most
    /// `limit` (capped at [`crate::errors::MAX_GROUPS`]).
    pub async fn error_groups(&self, queue: &QueueName, limit: usize) -> Result<ErrorGroups> {
        self.backend
            .error_groups(queue, limit.min(crate::errors::MAX_GROUPS))
            .await
    }

    /// The trends of the groups given (at most a page's worth, [`MAX_PAGE`])
    /// at `now`; see [`QueueBackend::error_trends`].
    pub async fn error_trends(
        &self,
        queue: &QueueName,
        groups: &[GroupId],
        now: i64,
    ) -> Result<Vec<Trend>> {
        check_page_size(groups.len().max(1) as u64)?;
        self.backend.error_trends(queue, groups, now).await
    }

    /// A page of a group's failed jobs, newest first, every value longer
    /// than `max_bytes` left out as [`Queues::list_clipped`] does.
    pub async fn list_error_group(
        &self,
        queue: &QueueName,
        group: GroupId,
        offset: u64,
        limit: u64,
        max_bytes: u32,
    ) -> Result<JobPage> {
        check_page_size(limit)?;
        check_clip(max_bytes)?;
        self.backend
            .list_error_group(queue, group, offset, limit, Some(max_bytes))
            .await
    }

    /// Retries or removes every failed job of a group in bounded batches,
    /// reporting the running total after each, as
    /// [`Queues::retry_all_failed`] does; bounded by the group's size at
    /// the start, so jobs failing into it meanwhile cannot keep it going.
    pub async fn act_on_error_group(
        &self,
        queue: &QueueName,
        group: GroupId,
        action: GroupAction,
        batch: usize,
        progress: impl FnMut(u64) + Send,
    ) -> Result<u64> {
        check_batch(batch)?;
        let budget = self.error_group_size(queue, group).await?;
        self.in_batches(
            queue,
            Batched::Group(group, action),
            budget,
            batch,
            progress,
        )
        .await
    }

    /// How many failed jobs a group has now (0 for an unknown group).
    pub async fn error_group_size(&self, queue: &QueueName, group: GroupId) -> Result<u64> {
        Ok(self
            .backend
            .list_error_group(queue, group, 0, 1, Some(1))
            .await?
            .total)
    }

    /// Deletes a job that is not active.
    pub async fn remove(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.backend.remove(queue, id).await
    }

    /// Runs a delayed job now.
    pub async fn promote(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.backend.promote(queue, id).await
    }

    /// An operator's "stop retrying": a job that failed and waits for its
    /// next attempt (waiting or delayed, attempts made, a last error) moves
    /// to the failed set now, into the error group of its last error, with
    /// `options.retriesStoppedAt` set to when (so a page can say it was
    /// stopped by an operator, not exhausted nor unrecoverable). A job in
    /// another state is `WrongState`; one waiting for its first attempt
    /// `NotRetrying`. Retrying it from the failed set later gives it a
    /// fresh budget, as for any failed job.
    pub async fn stop_retrying(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.backend.stop_retrying(queue, id).await
    }

    /// Stops handing out jobs of this queue.
    pub async fn pause(&self, queue: &QueueName) -> Result<()> {
        self.backend.set_paused(queue, true).await
    }

    /// Hands out jobs of this queue again.
    pub async fn resume(&self, queue: &QueueName) -> Result<()> {
        self.backend.set_paused(queue, false).await
    }

    /// Sets retention for completed and failed jobs.
    pub async fn set_retention(&self, queue: &QueueName, policy: RetentionPolicy) -> Result<()> {
        self.backend.set_retention(queue, policy).await
    }

    /// The queue's retention settings.
    pub async fn retention(&self, queue: &QueueName) -> Result<RetentionPolicy> {
        self.backend.retention(queue).await
    }

    /// Applies retention now (at most `limit` removals).
    pub async fn clean(&self, queue: &QueueName, limit: usize) -> Result<u64> {
        self.backend.clean(queue, limit).await
    }

    /// Puts stalled jobs back; see [`QueueBackend::recover_stalled`].
    pub async fn recover_stalled(
        &self,
        queue: &QueueName,
        max_stalled: u32,
    ) -> Result<StalledReport> {
        self.backend.recover_stalled(queue, max_stalled).await
    }

    /// Subscribes to queue events from every process sharing the backend.
    pub fn events(&self) -> broadcast::Receiver<EventBatch> {
        self.backend.events()
    }

    /// Starts building a worker for `queue`.
    pub fn worker(&self, queue: QueueName) -> WorkerBuilder {
        WorkerBuilder::new(self.clone(), queue)
    }

    /// Every worker registered on this backend, from every process, judged
    /// by `thresholds` at `now_ms` (see [`workers`]).
    pub async fn workers(
        &self,
        now_ms: i64,
        thresholds: &crate::instances::Thresholds,
    ) -> Result<Vec<workers::WorkerView>> {
        thresholds.validate()?;
        self.backend.workers(now_ms, thresholds).await
    }

    /// Asks a worker to go quiet, resume or stop; it obeys at its next
    /// heartbeat. `WorkerNotFound` when no such worker is known.
    pub async fn command_worker(
        &self,
        id: &workers::WorkerId,
        command: workers::WorkerCommand,
    ) -> Result<()> {
        self.backend.command_worker(id, command).await
    }

    /// Creates or replaces a schedule ([`schedules`]); its next run is
    /// the first tick after now (a paused one keeps it for show). An
    /// existing schedule keeps its runs, last run and last job.
    pub async fn upsert_schedule(&self, schedule: Schedule) -> Result<ScheduleState> {
        schedule.validate()?;
        let next = schedule.tick_after(crate::time::now_ms())?;
        self.backend.upsert_schedule(&schedule, next).await?;
        self.backend.schedule(&schedule.id).await
    }

    /// Removes a schedule; the jobs it enqueued stay.
    pub async fn remove_schedule(&self, id: &ScheduleId) -> Result<()> {
        self.backend.remove_schedule(id).await
    }

    /// Every schedule with its next run, last run and job, runs so far
    /// and paused flag, by id.
    pub async fn schedules(&self) -> Result<Vec<ScheduleState>> {
        self.backend.schedules().await
    }

    /// One schedule; `ScheduleNotFound` when unknown.
    pub async fn schedule(&self, id: &ScheduleId) -> Result<ScheduleState> {
        self.backend.schedule(id).await
    }

    /// Stops a schedule firing until resumed.
    pub async fn pause_schedule(&self, id: &ScheduleId) -> Result<()> {
        let state = self.backend.schedule(id).await?;
        self.backend
            .set_schedule_paused(id, true, state.next_run_at)
            .await
    }

    /// Fires a schedule again from the first tick after now (the ticks
    /// while it was paused are not fired).
    pub async fn resume_schedule(&self, id: &ScheduleId) -> Result<()> {
        let state = self.backend.schedule(id).await?;
        let next = state
            .schedule
            .runs_after(crate::time::now_ms(), state.runs, 1)?
            .first()
            .copied();
        self.backend.set_schedule_paused(id, false, next).await
    }

    /// Enqueues one job of the schedule now (id `<schedule>:now-<ms>`),
    /// recorded as its last run; its next run does not move and the
    /// limit does not count it.
    pub async fn run_schedule_now(&self, id: &ScheduleId) -> Result<JobId> {
        let state = self.backend.schedule(id).await?;
        let schedule = state.schedule;
        let job_id = schedule.id.manual_job_id(crate::time::now_ms());
        let mut options = schedule.options.clone();
        options.job_id = Some(job_id.clone());
        let fire = Fire {
            id: schedule.id.clone(),
            queue: schedule.queue.clone(),
            expected: None,
            next_run_at: state.next_run_at,
            job: Some(NewJob {
                name: schedule.job_name.clone(),
                data: schedule.data.clone(),
                options,
            }),
        };
        match self.backend.fire_schedules(&[fire]).await?.pop() {
            Some(schedules::Fired::Missing) => Err(CoordError::ScheduleNotFound(id.to_string())),
            _ => Ok(job_id),
        }
    }

    /// The next `n` runs of a stored schedule (at most
    /// [`schedules::MAX_NEXT_RUNS`]), from its stored next run, within
    /// its end and limit; none while it is paused.
    pub async fn next_runs(&self, id: &ScheduleId, n: usize) -> Result<Vec<i64>> {
        self.backend.schedule(id).await?.next_runs(n)
    }

    /// A scheduler firing this backend's schedules; see [`Scheduler`].
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.clone())
    }
}
