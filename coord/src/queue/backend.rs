//! The contract both queue backends fulfil. The conformance suite in
//! `coord/tests/` is written once against it and run against each backend,
//! so the embedded and Redis deployments cannot drift apart.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::events::EventBatch;
use super::report::JobReport;
use super::schedules::{Fire, Fired, Schedule, ScheduleId, ScheduleState};
use super::types::{
    Job, JobId, JobPage, JobState, NewJob, Outcome, QueueCounts, QueueName, RetentionPolicy,
    StalledReport, StepResult,
};
use super::workers::{WorkerCommand, WorkerId, WorkerReport, WorkerView};
use crate::error::Result;
use crate::errors::{ErrorGroups, GroupAction, GroupId, Trend};
use crate::instances::Thresholds;
use crate::search::{FoundJob, IndexProgress, SearchQuery, SearchResult};

/// Which deployment a backend belongs to, for status pages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// State in the SQL database, wake-ups in process.
    Embedded,
    /// State in Redis.
    Redis,
}

impl BackendKind {
    /// Name used in the UI, the API and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Embedded => "embedded",
            BackendKind::Redis => "redis",
        }
    }
}

/// Reachability figures for the health summary.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendHealth {
    /// Round trip of a trivial command.
    pub latency: Duration,
    /// Memory the backend reports using, where it can tell (Redis `used_memory`).
    pub memory_bytes: Option<u64>,
    /// The nodes of a Redis Cluster, when the backend is one.
    pub cluster: Option<crate::redis::Topology>,
}

/// Storage and atomic state transitions of the job queue.
///
/// Every method is one atomic step on the backend: a crash between two calls
/// never leaves a job in two states or in none. Input has been validated by
/// [`super::Queues`] before a backend sees it.
#[async_trait]
pub trait QueueBackend: Send + Sync + 'static {
    /// Which deployment this is.
    fn kind(&self) -> BackendKind;

    /// Worker steps worth having in flight at once. One for a backend that
    /// runs steps one after another anyway (SQLite's single writer: a
    /// second step only waits for the lock: measured 20% slower through
    /// sqlx, 5–10% slower on the direct connection);
    /// Redis answers two, so it never idles while an answer travels back.
    fn steps_in_flight(&self) -> usize {
        1
    }

    /// Checks the backend answers and how fast.
    async fn health(&self) -> Result<BackendHealth>;

    /// Adds jobs in one atomic step per queue. A job whose caller-given id
    /// already exists is left as it is and its id returned (idempotency).
    /// Ids are returned in input order.
    async fn enqueue_bulk(&self, queue: &QueueName, jobs: Vec<NewJob>) -> Result<Vec<JobId>>;

    /// Every queue that has ever had a job, paused state or settings, sorted.
    async fn queues(&self) -> Result<Vec<QueueName>>;

    /// Per-state counts in O(1); `QueueNotFound` for an unknown queue.
    async fn counts(&self, queue: &QueueName) -> Result<QueueCounts>;

    /// One page of jobs in a state, newest first (for `waiting`: the job that
    /// would run last first). Unknown queue: `QueueNotFound`. With `clip`,
    /// every value longer than that many bytes (data, return value, error,
    /// stack trace, history) is left out in the backend, so a page of
    /// megabyte jobs never travels whole ([`Job::clipped`] says which).
    async fn list(
        &self,
        queue: &QueueName,
        state: JobState,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<JobPage>;

    /// One page of the jobs that failed and will run again (waiting or
    /// delayed after a failure), due ones first, then by run time, clipped
    /// as [`QueueBackend::list`] clips. Unknown queue: `QueueNotFound`.
    async fn list_retrying(
        &self,
        queue: &QueueName,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<JobPage>;

    /// One job; `JobNotFound` when it does not exist.
    async fn job(&self, queue: &QueueName, id: &JobId) -> Result<Job>;

    /// One job with every value longer than `clip` bytes left out in the
    /// backend, as [`QueueBackend::list`] does ([`Job::clipped`] says
    /// which); `JobNotFound` when it does not exist.
    async fn job_clipped(&self, queue: &QueueName, id: &JobId, clip: u32) -> Result<Job>;

    /// The worker's one round trip: records `outcomes` (completing, retrying
    /// or failing those jobs, ignoring any whose lease token is stale),
    /// applies retention, moves due delayed jobs to waiting, then claims up
    /// to `claim` waiting jobs (highest priority, then oldest) under a lease
    /// of `lease` unless the queue is paused.
    async fn step(
        &self,
        queue: &QueueName,
        outcomes: Vec<Outcome>,
        claim: usize,
        lease: Duration,
    ) -> Result<StepResult>;

    /// Pushes the lease deadline of jobs still being worked on. Returns the
    /// ids no longer active under the token given: recovered as stalled,
    /// removed, or settled by a step under that very token (both clear the
    /// token, so the backend cannot tell them apart; the worker can, see
    /// `Shared::confirm_lost` in `worker.rs`).
    async fn extend_leases(
        &self,
        queue: &QueueName,
        leases: &[(JobId, String)],
        lease: Duration,
    ) -> Result<Vec<JobId>>;

    /// Appends (already kept) lines to the log of a job held under
    /// `token`, dropping the oldest beyond the caps; false when the job is
    /// no longer held under it.
    async fn append_logs(
        &self,
        queue: &QueueName,
        id: &JobId,
        token: &str,
        lines: &[String],
    ) -> Result<bool>;

    /// Sets the progress (JSON text) of a job held under `token`; false
    /// when it is no longer held under it.
    async fn set_progress(
        &self,
        queue: &QueueName,
        id: &JobId,
        token: &str,
        progress: &str,
    ) -> Result<bool>;

    /// The queues holding a job of this id, and its state in each.
    async fn find_job(&self, id: &JobId) -> Result<Vec<FoundJob>>;

    /// The newest jobs (at most `limit`) matching a query, across queues
    /// and states, and how far the search looked.
    async fn search(&self, query: &SearchQuery, limit: usize) -> Result<SearchResult>;

    /// Adds up to `batch` jobs to the text index, where the backend keeps
    /// one behind its writers (embedded); elsewhere there is nothing to do.
    async fn index_search(&self, batch: usize) -> Result<IndexProgress>;

    /// A job's progress and newest `lines` log lines.
    async fn job_report(&self, queue: &QueueName, id: &JobId, lines: u32) -> Result<JobReport>;

    /// Puts active jobs whose lease expired back to waiting, counting a
    /// stall; a job stalled more than `max_stalled` times, or out of
    /// attempts, is moved to failed instead. Never drops a job.
    async fn recover_stalled(&self, queue: &QueueName, max_stalled: u32) -> Result<StalledReport>;

    /// Moves one failed job back to waiting with a fresh attempt budget.
    /// `WrongState` if it is not failed, so a second click retries nothing.
    async fn retry(&self, queue: &QueueName, id: &JobId) -> Result<()>;

    /// Moves up to `batch` of the oldest failed jobs back to waiting in one
    /// atomic step; returns how many moved (0 when none are left).
    async fn retry_failed_batch(&self, queue: &QueueName, batch: usize) -> Result<u64>;

    /// The queue's error groups ([`crate::errors`]), the most recently
    /// failed first, at most `limit`, and how many there are. Kept as jobs
    /// fail and leave the failed set, so this reads O(groups), never the
    /// jobs. Unknown queue: `QueueNotFound`.
    async fn error_groups(&self, queue: &QueueName, limit: usize) -> Result<ErrorGroups>;

    /// The trend ([`Trend`]) of each of `groups` at `now` (ms since the
    /// epoch), in their order; a group with no failed job has an empty one.
    /// Costs the groups' failures of the last hour, so callers ask for
    /// the groups they show.
    async fn error_trends(
        &self,
        queue: &QueueName,
        groups: &[GroupId],
        now: i64,
    ) -> Result<Vec<Trend>>;

    /// One page of a group's failed jobs, newest first, clipped as
    /// [`QueueBackend::list`] clips. An unknown group is an empty page.
    async fn list_error_group(
        &self,
        queue: &QueueName,
        group: GroupId,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<JobPage>;

    /// Retries or removes up to `batch` of the group's oldest failed jobs
    /// in one atomic step; returns how many (0 when none are left).
    async fn error_group_batch(
        &self,
        queue: &QueueName,
        group: GroupId,
        action: GroupAction,
        batch: usize,
    ) -> Result<u64>;

    /// Deletes a job that is not active.
    async fn remove(&self, queue: &QueueName, id: &JobId) -> Result<()>;

    /// Makes a delayed job runnable now; `WrongState` if it is not delayed.
    async fn promote(&self, queue: &QueueName, id: &JobId) -> Result<()>;

    /// Ends a retrying job's retries now (see [`super::Queues::stop_retrying`]).
    async fn stop_retrying(&self, queue: &QueueName, id: &JobId) -> Result<()>;

    /// Stops (`true`) or restarts handing out jobs. Jobs keep being accepted.
    async fn set_paused(&self, queue: &QueueName, paused: bool) -> Result<()>;

    /// Sets how many completed and failed jobs the queue keeps.
    async fn set_retention(&self, queue: &QueueName, policy: RetentionPolicy) -> Result<()>;

    /// The queue's retention settings (default: keep everything).
    async fn retention(&self, queue: &QueueName) -> Result<RetentionPolicy>;

    /// Applies retention now, removing at most `limit` jobs; returns how many.
    async fn clean(&self, queue: &QueueName, limit: usize) -> Result<u64>;

    /// Stores a worker's report, to expire after `ttl` unless written
    /// again, and answers with what the operator asked of the worker
    /// (`Quiet`, `Stop`, or nothing: [`super::workers`]).
    async fn worker_heartbeat(
        &self,
        report: &WorkerReport,
        ttl: Duration,
    ) -> Result<Option<WorkerCommand>>;

    /// Removes a worker's entry and command at once: it stopped cleanly,
    /// which is not a crash.
    async fn worker_leave(&self, id: &WorkerId) -> Result<()>;

    /// Every known worker with its status at `now_ms`, by queue then id.
    /// Entries gone for longer than `forget_after` are removed, with their
    /// command, by whoever lists.
    async fn workers(&self, now_ms: i64, thresholds: &Thresholds) -> Result<Vec<WorkerView>>;

    /// Stores what the operator asks of a worker (`Resume` clears what was
    /// asked before); `WorkerNotFound` when no such worker is known.
    async fn command_worker(&self, id: &WorkerId, command: WorkerCommand) -> Result<()>;

    /// Stores a schedule (validated) as it is given, with its next run:
    /// a new one with no runs, an existing one keeping its runs, last run
    /// and last job. Bumps its version, so a fire planned before is
    /// refused. A schedule moved to another queue leaves the old one.
    async fn upsert_schedule(&self, schedule: &Schedule, next_run_at: Option<i64>) -> Result<()>;

    /// Removes a schedule (its jobs stay); `ScheduleNotFound` when unknown.
    async fn remove_schedule(&self, id: &ScheduleId) -> Result<()>;

    /// Every schedule, by id.
    async fn schedules(&self) -> Result<Vec<ScheduleState>>;

    /// One schedule; `ScheduleNotFound` when unknown.
    async fn schedule(&self, id: &ScheduleId) -> Result<ScheduleState>;

    /// Pauses or resumes a schedule, bumping its version; resuming sets
    /// its next run to `next_run_at`. `ScheduleNotFound` when unknown.
    async fn set_schedule_paused(
        &self,
        id: &ScheduleId,
        paused: bool,
        next_run_at: Option<i64>,
    ) -> Result<()>;

    /// Atomic fires ([`Fire`]), answered in their order: for each, the
    /// compare-and-set of the stored next run and version, the new next
    /// run and the job's enqueue in one step, so each tick fires once
    /// across every scheduler. Fires of one queue go in one step (SQLite:
    /// all of them), so a thousand schedules due at once cost a few
    /// round trips.
    async fn fire_schedules(&self, fires: &[Fire]) -> Result<Vec<Fired>>;

    /// A receiver of every event batch this backend publishes from now on,
    /// from any process sharing the backend.
    fn events(&self) -> broadcast::Receiver<EventBatch>;
}
