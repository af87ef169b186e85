//! Embedded backend: queue state in an SQLite database, wake-ups and events
//! in process. The default deployment: one binary, one file, and a restart
//! loses no job.
//!
//! Layout (see `migrations/coord/sqlite/`): a `queues` row per queue with its
//! settings, id and sequence counters and one counter per job state, and a
//! `jobs` row per job whose `sort_key` orders the jobs of one state (waiting:
//! priority and arrival; active: lease deadline; delayed: run time;
//! completed and failed: finish time). Every transition updates the state
//! counters in the same transaction, so counts are O(1).
//!
//! SQLite allows one writer at a time, and a deferred transaction that reads
//! and then writes fails with `SQLITE_BUSY` when another writer got there
//! first. So every write runs as `BEGIN IMMEDIATE` (which waits for the
//! write lock, across processes, up to the busy timeout) and, within this
//! process, behind one async mutex so that writers queue in order instead of
//! polling the lock. Reads go to the pool directly and see the last commit
//! (WAL mode).
//!
//! Per-job work is done with set-based statements over a JSON array of
//! rows (`json_each`), so a worker step costs about ten statements whatever
//! the number of jobs it settles and claims.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard, broadcast, oneshot};

use super::backend::{BackendHealth, BackendKind, QueueBackend};
use super::events::{EVENT_BUFFER, EventBatch, QueueEvent, QueueEventKind};
use super::stored::{StoredJob, stored_id};
use super::types::{
    AttemptRecord, Job, JobId, JobPage, JobState, NewJob, Outcome, OutcomeResult, PRIORITY_SHIFT,
    QueueCounts, QueueName, Retention, RetentionPolicy, StalledReport, StepResult,
};
use crate::error::{CoordError, Result};
use crate::sql::{WriteHealth, discard_broken_transactions};
use crate::time::now_ms;

/// How long a statement waits for another process's write lock before it
/// fails; long enough to ride out a large bulk enqueue elsewhere.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections of a pool `open` creates: writes are serialised anyway, the
/// rest serve concurrent reads (dashboard listings, counts).
const MAX_CONNECTIONS: u32 = 8;
/// Jobs one step may remove by retention or move from delayed to waiting,
/// and jobs one stalled sweep may recover, so that one call stays short.
const STEP_BUDGET: i64 = 1000;
/// Jobs written by one group commit of concurrent enqueues (a single
/// request may exceed it), so that a burst of bulk enqueues does not become
/// one huge transaction holding the write lock.
const MAX_GROUP_JOBS: usize = 10_000;
/// While writes are failing, the health check writes itself only when no
/// write has started for this long (ms): otherwise the writes under way
/// tell.
const PROBE_WHEN_IDLE_MS: i64 = 5_000;
/// Failure reasons of jobs whose lease expired once too often.
const STALLED_TOO_OFTEN: &str = "job stalled more than the allowed limit";
const STALLED_NO_ATTEMPTS: &str = "job stalled and has no attempts left";

/// [`PRIORITY_SHIFT`] as text for statements (checked by a unit test).
macro_rules! priority_shift {
    () => {
        "1099511627776"
    };
}

/// Columns of a job row, in the form [`decode_job`] reads.
macro_rules! job_columns {
    () => {
        "id, name, data, options, state, attempts_made, stalled_count, failed_reason, \
         stacktrace, history, return_value, created_at, processed_at, finished_at, run_at, \
         lease_token"
    };
}

/// Applies per-job changes given as a JSON array of [`Patch`] in one
/// statement. A NULL field keeps the column as it is; `record`, when given,
/// is appended to the history (which is restarted if it is not valid JSON,
/// so one damaged row cannot wedge every worker step). The rows are looked
/// up patch by patch (materialised, `CROSS JOIN` fixing the loop order):
/// left to itself the planner would scan the whole queue.
const APPLY_PATCHES: &str = "WITH p AS MATERIALIZED (
    SELECT j.rowid AS rid, u.value AS v
    FROM json_each($2) AS u CROSS JOIN jobs AS j
    WHERE j.queue = $1 AND j.id = u.value ->> 'id')
UPDATE jobs SET
    state = p.v ->> 'state',
    sort_key = p.v ->> 'sortKey',
    lease_token = NULL,
    history = CASE
        WHEN p.v ->> 'record' IS NULL THEN jobs.history
        WHEN json_valid(jobs.history) THEN json_insert(jobs.history, '$[#]', json(p.v ->> 'record'))
        ELSE json_array(json(p.v ->> 'record'))
    END,
    return_value = coalesce(p.v ->> 'returnValue', jobs.return_value),
    failed_reason = coalesce(p.v ->> 'failedReason', jobs.failed_reason),
    stacktrace = coalesce(p.v ->> 'stacktrace', jobs.stacktrace),
    finished_at = coalesce(p.v ->> 'finishedAt', jobs.finished_at),
    run_at = p.v ->> 'runAt',
    stalled_count = coalesce(p.v ->> 'stalledCount', jobs.stalled_count)
FROM p
WHERE jobs.rowid = p.rid";

/// Pushes the lease deadline (`$3`) of jobs given as a JSON array of
/// `[id, token]` pairs that are still active under that token; returns
/// their ids. Looked up pair by pair, as in [`APPLY_PATCHES`].
const EXTEND_LEASES: &str = "WITH l AS MATERIALIZED (
    SELECT j.rowid AS rid
    FROM json_each($2) AS u CROSS JOIN jobs AS j
    WHERE j.queue = $1 AND j.id = u.value ->> 0 AND j.state = 'active'
      AND j.lease_token = u.value ->> 1)
UPDATE jobs SET sort_key = $3 FROM l WHERE jobs.rowid = l.rid
RETURNING jobs.id";

/// Puts failed jobs back to waiting with a fresh attempt budget, keeping
/// their history; `$3` is the sequence number before the first. Used by
/// `retry` (the subquery picks one id) and `retry_failed_batch`.
macro_rules! requeue_failed {
    ($pick:literal) => {
        concat!(
            "UPDATE jobs SET
                state = 'waiting',
                attempts_made = 0,
                lease_token = NULL,
                failed_reason = NULL,
                stacktrace = '[]',
                finished_at = NULL,
                run_at = NULL,
                sort_key = jobs.priority * ",
            priority_shift!(),
            " + $3 + f.rn
            FROM (SELECT rowid AS rid, row_number() OVER (ORDER BY sort_key, id) AS rn
                  FROM jobs WHERE queue = $1 AND state = 'failed' ",
            $pick,
            ") AS f
            WHERE jobs.rowid = f.rid
            RETURNING jobs.id"
        )
    };
}

/// Queue state in an SQLite database. Cheap to clone: clones share the
/// pool, the write lock and the event channel.
#[derive(Clone)]
pub struct SqlBackend {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    /// Whether writes work, from the outcome of the writes themselves.
    writes: WriteHealth,
    /// When a write transaction last started (ms), so that the health check
    /// probes with a write of its own only while nothing else writes.
    last_write_at: AtomicI64,
    /// Held for the whole of every write transaction of this process.
    /// Owned guards, so that a spawned task can hold it.
    write_lock: Arc<Mutex<()>>,
    /// Enqueues waiting for a writer: whoever gets the write lock next
    /// writes all of them in one transaction (group commit).
    pending: StdMutex<Vec<Waiter>>,
    events: broadcast::Sender<EventBatch>,
}

/// One caller's enqueue, encoded, as the group commit writes it.
struct EnqueueRequest {
    queue: QueueName,
    jobs: Vec<NewJob>,
    /// Data and options of each job as JSON text.
    encoded: Vec<(String, String)>,
}

/// An enqueue waiting in [`Inner::pending`] and where its answer goes.
struct Waiter {
    request: Arc<EnqueueRequest>,
    reply: oneshot::Sender<Result<Vec<JobId>>>,
}

/// Takes a caller's enqueue back out of the pending list when the caller
/// gives up before a writer took it, so it is not written behind its back.
struct Withdraw<'a> {
    inner: &'a Inner,
    request: &'a Arc<EnqueueRequest>,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.inner
            .pending()
            .retain(|w| !Arc::ptr_eq(&w.request, self.request));
    }
}

impl Inner {
    /// Records a statement's failure inside a write transaction (a commit
    /// records its own outcome), so that the health check sees a writer
    /// whose statements fail.
    fn note(&self, err: sqlx::Error) -> CoordError {
        self.writes.record(Err(&err));
        err.into()
    }

    /// [`Inner::note`] for a whole write operation's result.
    fn noted<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(CoordError::Database(err)) = &result {
            self.writes.record(Err(err));
        }
        result
    }

    /// Takes the oldest waiting enqueues, as many as fit in one group.
    fn take_batch(&self) -> Vec<Waiter> {
        let mut pending = self.pending();
        let mut jobs = 0;
        let mut take = 0;
        for waiter in pending.iter() {
            let n = waiter.request.jobs.len();
            if take > 0 && jobs + n > MAX_GROUP_JOBS {
                break;
            }
            jobs += n;
            take += 1;
        }
        pending.drain(..take).collect()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        // A poisoned lock only means a panic elsewhere mid-push into a
        // plain list; the list is still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A write transaction holding the process's write lock. The transaction
/// is declared first so that, when a caller is cancelled mid-way, it is
/// dropped (and rolled back) before the lock is released.
///
/// A failed `BEGIN` or `COMMIT` is recorded in the backend's
/// [`WriteHealth`]; a connection a failed commit leaves inside a
/// transaction is closed by the pool (see
/// [`discard_broken_transactions`]), so writes resume once the fault is
/// gone.
struct Writer {
    tx: Transaction<'static, Sqlite>,
    lock: OwnedMutexGuard<()>,
    inner: Arc<Inner>,
}

impl Writer {
    /// Starts `BEGIN IMMEDIATE` under the process's write lock, so nothing
    /// the transaction reads can change before it commits.
    async fn begin(inner: &Arc<Inner>, lock: OwnedMutexGuard<()>) -> Result<Self> {
        inner.last_write_at.store(now_ms(), Ordering::Relaxed);
        let tx = match inner.pool.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(err) => {
                inner.writes.record(Err(&err));
                return Err(err.into());
            }
        };
        Ok(Writer {
            tx,
            lock,
            inner: inner.clone(),
        })
    }

    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    async fn commit(self) -> Result<()> {
        let Writer { tx, lock, inner } = self;
        let committed = tx.commit().await;
        inner.writes.record(committed.as_ref().map(|_| ()));
        drop(lock);
        Ok(committed?)
    }
}

impl SqlBackend {
    /// Opens (creating if missing) an SQLite database given as a file path
    /// (`switchyard.db`) or an `sqlite:` URL, so a single-binary deployment
    /// needs nothing but a writable directory. The connections use WAL mode
    /// (readers never block the writer), `synchronous=NORMAL` (a commit
    /// costs no fsync; a power cut may lose the last commits but never
    /// corrupts) and a busy timeout for writers in other processes.
    pub async fn open(path_or_url: &str) -> Result<Self> {
        let is_url = path_or_url.starts_with("sqlite:");
        let in_memory = path_or_url.contains(":memory:") || path_or_url.contains("mode=memory");
        let mut options = if is_url {
            SqliteConnectOptions::from_str(path_or_url)?
        } else {
            SqliteConnectOptions::new().filename(path_or_url)
        };
        // A URL that says how to open the file (`mode=ro`, `mode=rw`) is
        // taken at its word; otherwise the file is created on first use.
        if !(is_url && path_or_url.contains("mode=")) {
            options = options.create_if_missing(true);
        }
        options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let mut pool = SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS);
        if in_memory {
            // Every connection to `:memory:` is a database of its own: keep
            // exactly one, for ever, or the data would vanish (and never
            // close it for a broken transaction either).
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            pool = discard_broken_transactions(pool);
        }
        let pool = pool.connect_with(options).await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool, so that a server keeps all its tables in one
    /// database file with one set of connections, and applies the queue
    /// migrations. The pool should be configured as [`SqlBackend::open`]
    /// does (WAL, busy timeout). Migrations applied by the server's own
    /// migrator on the same database are tolerated.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self> {
        crate::sql::migrate_sqlite(&pool).await?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                writes: WriteHealth::default(),
                last_write_at: AtomicI64::new(0),
                write_lock: Arc::new(Mutex::new(())),
                pending: StdMutex::new(Vec::new()),
                events,
            }),
        })
    }

    /// The pool, so that the server can keep its own tables in the same
    /// database and share the connections.
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// Starts a write transaction: first in line in this process, then
    /// holding SQLite's write lock.
    async fn begin_write(&self) -> Result<Writer> {
        let lock = self.inner.write_lock.clone().lock_owned().await;
        Writer::begin(&self.inner, lock).await
    }

    /// Sends a batch to this process's subscribers; call after the commit.
    fn publish(&self, batch: Events) {
        self.publish_all(batch.events);
    }

    fn publish_all(&self, events: Vec<QueueEvent>) {
        if !events.is_empty() {
            // No subscriber is not an error: nobody is listening right now.
            let _ = self.inner.events.send(Arc::new(events));
        }
    }

    /// Writes an enqueue together with any others waiting at the time.
    ///
    /// A commit costs far more than inserting a row, so with many producers
    /// (one HTTP request per job) writing each enqueue in its own
    /// transaction would cap the rate at a few thousand per second. Instead
    /// each caller queues its request and waits for the write lock; the
    /// first to get it takes the queued requests (up to [`MAX_GROUP_JOBS`]
    /// jobs) and writes them in one transaction, in arrival order, from a
    /// spawned task so that a caller
    /// giving up (a request timeout) cannot abandon the others' writes
    /// half-way. Each request keeps its own semantics: ids in its input
    /// order, existing caller-given ids left alone.
    async fn enqueue_grouped(&self, request: EnqueueRequest) -> Result<Vec<JobId>> {
        let request = Arc::new(request);
        let (reply, mut answer) = oneshot::channel();
        self.inner.pending().push(Waiter {
            request: request.clone(),
            reply,
        });
        let _withdraw = Withdraw {
            inner: &self.inner,
            request: &request,
        };
        let abandoned = |_| {
            Err(CoordError::Unavailable(
                "the enqueue was dropped before it was written (runtime shutting down?)".into(),
            ))
        };
        loop {
            // Another caller's writer may take this request while we wait
            // for the lock: then stop waiting for the lock, or the lock
            // would pass from caller to caller with nothing left to write.
            let lock = tokio::select! {
                biased;
                answered = &mut answer => return answered.unwrap_or_else(abandoned),
                lock = self.inner.write_lock.clone().lock_owned() => lock,
            };
            let batch = self.inner.take_batch();
            let mine = batch.iter().any(|w| Arc::ptr_eq(&w.request, &request));
            match batch.as_slice() {
                // An earlier writer took ours; its answer is on the way.
                [] => {
                    drop(lock);
                    return answer.await.unwrap_or_else(abandoned);
                }
                // Only ours: write it here, saving the task hand-over.
                [_] if mine => {
                    let (mut ids, events) = self.write_enqueues(lock, &[&*request]).await?;
                    self.publish_all(events);
                    return Ok(ids.pop().unwrap_or_default());
                }
                _ => {
                    let this = self.clone();
                    tokio::spawn(async move { this.flush_enqueues(lock, batch).await });
                    if mine {
                        return answer.await.unwrap_or_else(abandoned);
                    }
                    // Ours did not fit in this group: wait for the next.
                }
            }
        }
    }

    /// Writes a batch of waiting enqueues and answers each caller. Should
    /// the shared transaction fail, each request is retried on its own so
    /// that one bad request cannot fail the others.
    async fn flush_enqueues(self, lock: OwnedMutexGuard<()>, batch: Vec<Waiter>) {
        let requests: Vec<&EnqueueRequest> = batch.iter().map(|w| &*w.request).collect();
        match self.write_enqueues(lock, &requests).await {
            Ok((ids, events)) => {
                self.publish_all(events);
                for (waiter, ids) in batch.into_iter().zip(ids) {
                    let _ = waiter.reply.send(Ok(ids));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(waiter) = batch.into_iter().next() {
                    let _ = waiter.reply.send(Err(e));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "grouped enqueue failed; writing each request alone");
                for waiter in batch {
                    let lock = self.inner.write_lock.clone().lock_owned().await;
                    let result = self.write_enqueues(lock, &[&*waiter.request]).await;
                    let result = result.map(|(mut ids, events)| {
                        self.publish_all(events);
                        ids.pop().unwrap_or_default()
                    });
                    let _ = waiter.reply.send(result);
                }
            }
        }
    }

    /// Writes enqueue requests in one transaction; returns each request's
    /// ids and the events to publish (one per queue).
    async fn write_enqueues(
        &self,
        lock: OwnedMutexGuard<()>,
        requests: &[&EnqueueRequest],
    ) -> Result<(Vec<Vec<JobId>>, Vec<QueueEvent>)> {
        let written = self.write_enqueues_tx(lock, requests).await;
        self.inner.noted(written)
    }

    async fn write_enqueues_tx(
        &self,
        lock: OwnedMutexGuard<()>,
        requests: &[&EnqueueRequest],
    ) -> Result<(Vec<Vec<JobId>>, Vec<QueueEvent>)> {
        let mut w = Writer::begin(&self.inner, lock).await?;
        let now = now_ms();
        // Queues in order of first appearance, each with its requests.
        let mut groups: Vec<(&QueueName, Vec<usize>)> = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            match groups.iter_mut().find(|(q, _)| **q == request.queue) {
                Some((_, members)) => members.push(i),
                None => groups.push((&request.queue, vec![i])),
            }
        }
        let mut ids = vec![Vec::new(); requests.len()];
        let mut events = Vec::new();
        for (queue, members) in groups {
            let group: Vec<&EnqueueRequest> = members.iter().map(|&i| requests[i]).collect();
            let (group_ids, added) = enqueue_into(w.conn(), queue, now, &group).await?;
            for (i, request_ids) in members.into_iter().zip(group_ids) {
                ids[i] = request_ids;
            }
            let mut batch = Events::new(queue, now);
            batch.push(QueueEventKind::Enqueued, added);
            events.extend(batch.events);
        }
        w.commit().await?;
        Ok((ids, events))
    }

    /// Rewrites the probe row: a write of a few pages, to learn whether
    /// the disk takes writes again.
    async fn probe_write(&self) -> Result<()> {
        let mut w = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO coord_write_probe (id, at, pad) VALUES (1, $1, zeroblob(65536)) \
             ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad",
        )
        .bind(now_ms())
        .execute(w.conn())
        .await
        .map_err(|err| self.inner.note(err))?;
        w.commit().await
    }

    /// One worker step in one write transaction (see [`QueueBackend::step`]).
    async fn step_tx(
        &self,
        queue: &QueueName,
        outcomes: Vec<Outcome>,
        claim: usize,
        lease: Duration,
    ) -> Result<StepResult> {
        let lease_ms = duration_ms(lease);
        let mut w = self.begin_write().await?;
        let now = now_ms();
        let Some(mut meta) = load_meta(w.conn(), queue).await? else {
            // A worker may start before any producer: nothing to do, and
            // no job for any outcome.
            w.commit().await?;
            return Ok(StepResult {
                stale: outcomes.into_iter().map(|o| o.job_id).collect(),
                ..StepResult::default()
            });
        };
        let mut delta = Delta::default();
        let mut events = Events::new(queue, now);

        // (1) Outcomes, only for jobs still held under the presented lease.
        let mut stale = Vec::new();
        if !outcomes.is_empty() {
            let probe: Vec<&str> = outcomes.iter().map(|o| o.job_id.as_str()).collect();
            let held = held_jobs(w.conn(), queue, &probe).await?;
            let mut settled = HashSet::new();
            let mut patches = Vec::new();
            let (mut completed, mut retrying, mut failed) = (Vec::new(), Vec::new(), Vec::new());
            for outcome in outcomes {
                let id = outcome.job_id.as_str();
                let job = match held.get(id) {
                    Some(job)
                        if job.state == JobState::Active.as_str()
                            && job.lease_token.as_deref() == Some(outcome.lease_token.as_str())
                            && settled.insert(id.to_owned()) =>
                    {
                        job
                    }
                    _ => {
                        stale.push(outcome.job_id);
                        continue;
                    }
                };
                let attempt = u32::try_from(job.attempts_made).unwrap_or(0);
                delta.add(JobState::Active, -1);
                match outcome.result {
                    OutcomeResult::Completed { value } => {
                        let record = AttemptRecord {
                            attempt,
                            started_at: outcome.started_at,
                            finished_at: outcome.finished_at,
                            error: None,
                            chain: Vec::new(),
                        };
                        patches.push(Patch {
                            return_value: Some(to_json(&value)?),
                            finished_at: Some(now),
                            ..Patch::new(id, JobState::Completed, now, Some(&record))?
                        });
                        delta.add(JobState::Completed, 1);
                        delta.completed_total += 1;
                        completed.push(outcome.job_id);
                    }
                    OutcomeResult::Failed {
                        error,
                        retry_delay_ms,
                    } => {
                        let record = AttemptRecord {
                            attempt,
                            started_at: outcome.started_at,
                            finished_at: outcome.finished_at,
                            error: Some(error.message.clone()),
                            chain: error.chain.clone(),
                        };
                        let (state, sort_key, run_at, finished_at) =
                            if error.retryable && job.attempts_made < job.max_attempts {
                                let delay = to_i64(retry_delay_ms);
                                if delay > 0 {
                                    let run_at = now.saturating_add(delay);
                                    (JobState::Delayed, run_at, Some(run_at), None)
                                } else {
                                    meta.seq += 1;
                                    let key = waiting_key(job.priority, meta.seq);
                                    (JobState::Waiting, key, None, None)
                                }
                            } else {
                                (JobState::Failed, now, None, Some(now))
                            };
                        patches.push(Patch {
                            failed_reason: Some(error.message),
                            stacktrace: Some(internal_json(&error.chain)?),
                            finished_at,
                            run_at,
                            ..Patch::new(id, state, sort_key, Some(&record))?
                        });
                        delta.add(state, 1);
                        if state == JobState::Failed {
                            delta.failed_total += 1;
                            failed.push(outcome.job_id);
                        } else {
                            retrying.push(outcome.job_id);
                        }
                    }
                }
            }
            apply_patches(w.conn(), queue, &patches).await?;
            events.push(QueueEventKind::Completed, completed);
            events.push(QueueEventKind::Retrying, retrying);
            events.push(QueueEventKind::Failed, failed);
        }

        // (2) Retention, bounded per call.
        let removed = apply_retention(w.conn(), queue, &meta, &mut delta, now, STEP_BUDGET).await?;
        events.push(QueueEventKind::Removed, removed);

        // (3) Delayed jobs that fell due become waiting, in run order.
        let due: Vec<String> = sqlx::query_scalar(concat!(
            "UPDATE jobs SET state = 'waiting', run_at = NULL,
                 sort_key = jobs.priority * ",
            priority_shift!(),
            " + $3 + d.rn
             FROM (SELECT rowid AS rid, row_number() OVER (ORDER BY sort_key, id) AS rn
                   FROM jobs WHERE queue = $1 AND state = 'delayed' AND sort_key <= $2
                   ORDER BY sort_key, id LIMIT $4) AS d
             WHERE jobs.rowid = d.rid
             RETURNING jobs.id"
        ))
        .bind(queue.as_str())
        .bind(now)
        .bind(meta.seq)
        .bind(STEP_BUDGET)
        .fetch_all(w.conn())
        .await?;
        meta.seq += due.len() as i64;
        delta.add(JobState::Delayed, -(due.len() as i64));
        delta.add(JobState::Waiting, due.len() as i64);
        events.push(QueueEventKind::Promoted, stored_ids(due)?);

        // (4) Claim, highest priority then oldest, unless paused.
        let mut claimed = Vec::new();
        if claim > 0 && !meta.paused {
            let limit = to_i64(claim as u64);
            // One row holding every claimed job as JSON: handing rows one
            // by one from SQLite's thread costs more than the claim itself.
            let packed: Option<String> = sqlx::query_scalar(concat!(
                "SELECT json_group_array(json_array(",
                job_columns!(),
                ", sort_key)) FROM (SELECT * FROM jobs WHERE queue = $1 AND state = 'waiting'
                   ORDER BY sort_key, id LIMIT $2)"
            ))
            .bind(queue.as_str())
            .bind(limit)
            .fetch_one(w.conn())
            .await?;
            let rows: Vec<Value> = match packed {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| CoordError::Corrupt(format!("claim of queue {queue}: {e}")))?,
                None => Vec::new(),
            };
            if !rows.is_empty() {
                let token_base = format!("{:016x}", rand::random::<u64>());
                let deadline = now.saturating_add(lease_ms);
                // The same rows as the SELECT: nothing can change them while
                // this transaction holds the write lock.
                sqlx::query(
                    "UPDATE jobs SET state = 'active', attempts_made = attempts_made + 1,
                         processed_at = $2, lease_token = $3 || '.' || id, sort_key = $4
                     WHERE rowid IN (SELECT rowid FROM jobs WHERE queue = $1 AND state = 'waiting'
                                     ORDER BY sort_key, id LIMIT $5)",
                )
                .bind(queue.as_str())
                .bind(now)
                .bind(&token_base)
                .bind(deadline)
                .bind(limit)
                .execute(w.conn())
                .await?;
                delta.add(JobState::Waiting, -(rows.len() as i64));
                delta.add(JobState::Active, rows.len() as i64);
                let mut raws: Vec<Result<RawJob>> = rows
                    .into_iter()
                    .map(|row| {
                        serde_json::from_value(row).map_err(|e| {
                            CoordError::Corrupt(format!("claimed job in queue {queue}: {e}"))
                        })
                    })
                    .collect();
                raws.sort_by(|a, b| match (a, b) {
                    (Ok(a), Ok(b)) => (a.sort_key, &a.id).cmp(&(b.sort_key, &b.id)),
                    (Ok(_), Err(_)) => std::cmp::Ordering::Less,
                    (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
                    (Err(_), Err(_)) => std::cmp::Ordering::Equal,
                });
                let mut ids = Vec::with_capacity(raws.len());
                for raw in raws {
                    match raw.and_then(|raw| raw.decode(queue)) {
                        Ok(mut job) => {
                            job.state = JobState::Active;
                            job.attempts_made = job.attempts_made.saturating_add(1);
                            job.processed_at = Some(now);
                            job.lease_token = Some(format!("{token_base}.{}", job.id));
                            job.run_at = None;
                            ids.push(job.id.clone());
                            claimed.push(job);
                        }
                        // It stays active without a worker, so stalled
                        // recovery eventually fails it; the rest of the
                        // batch is still handed out.
                        Err(e) => {
                            tracing::error!(queue = %queue, error = %e, "claimed an undecodable job; leaving it to stall");
                        }
                    }
                }
                events.push(QueueEventKind::Active, ids);
            }
        }

        // (5) When the next delayed job falls due.
        let next_due_at: Option<i64> = sqlx::query_scalar(
            "SELECT min(sort_key) FROM jobs WHERE queue = $1 AND state = 'delayed'",
        )
        .bind(queue.as_str())
        .fetch_one(w.conn())
        .await?;

        save_meta(w.conn(), queue, &meta, &delta).await?;
        w.commit().await?;
        self.publish(events);
        Ok(StepResult {
            claimed,
            next_due_at,
            stale,
        })
    }

    /// `QueueNotFound` unless the queue has a row.
    async fn ensure_exists(&self, queue: &QueueName) -> Result<()> {
        let found = sqlx::query("SELECT 1 FROM queues WHERE name = $1")
            .bind(queue.as_str())
            .fetch_optional(&self.inner.pool)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(CoordError::QueueNotFound(queue.clone())),
        }
    }
}

#[async_trait]
impl QueueBackend for SqlBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Embedded
    }

    /// Reads answer even while every write fails (disk full), so a
    /// `SELECT 1` alone would call a stuck writer healthy: the check also
    /// fails while the last write failed. Should nothing else be writing,
    /// it tries a write of its own, so that an idle backend is seen to
    /// recover once space is back.
    async fn health(&self) -> Result<BackendHealth> {
        let start = Instant::now();
        sqlx::query("SELECT 1").execute(&self.inner.pool).await?;
        let latency = start.elapsed();
        if self.inner.writes.failing().is_some() {
            let idle_ms = now_ms() - self.inner.last_write_at.load(Ordering::Relaxed);
            if idle_ms >= PROBE_WHEN_IDLE_MS {
                // Its outcome is recorded like any write's; the answer
                // below reports it.
                let _ = self.probe_write().await;
            }
        }
        if let Some(failure) = self.inner.writes.failing() {
            let secs = (now_ms() - failure.since_ms).max(0) / 1000;
            return Err(CoordError::WritesFailing {
                secs,
                reason: failure.reason,
                fault: failure.fault,
            });
        }
        Ok(BackendHealth {
            latency,
            memory_bytes: None,
        })
    }

    async fn enqueue_bulk(&self, queue: &QueueName, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        // Encoded before queueing, so an unencodable job fails only its
        // own call.
        let mut encoded = Vec::with_capacity(jobs.len());
        for job in &jobs {
            encoded.push((to_json(&job.data)?, to_json(&job.options)?));
        }
        self.enqueue_grouped(EnqueueRequest {
            queue: queue.clone(),
            jobs,
            encoded,
        })
        .await
    }

    async fn queues(&self) -> Result<Vec<QueueName>> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM queues ORDER BY name")
            .fetch_all(&self.inner.pool)
            .await?;
        Ok(names
            .into_iter()
            .filter_map(|name| match QueueName::new(name) {
                Ok(q) => Some(q),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an invalid queue name in the database");
                    None
                }
            })
            .collect())
    }

    async fn counts(&self, queue: &QueueName) -> Result<QueueCounts> {
        let mut conn = self.inner.pool.acquire().await?;
        load_counts(&mut conn, queue)
            .await?
            .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))
    }

    async fn list(
        &self,
        queue: &QueueName,
        state: JobState,
        offset: u64,
        limit: u64,
    ) -> Result<JobPage> {
        // One read transaction: the total and the page are one snapshot.
        let mut tx = self.inner.pool.begin().await?;
        let counts = load_counts(&mut tx, queue)
            .await?
            .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE queue = $1 AND state = $2
              ORDER BY sort_key DESC, id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(queue.as_str())
        .bind(state.as_str())
        .bind(to_i64(limit))
        .bind(to_i64(offset))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let jobs = rows
            .iter()
            .filter_map(|row| match decode_job(queue, row) {
                Ok(job) => Some(job),
                Err(e) => {
                    tracing::warn!(queue = %queue, error = %e, "skipping an undecodable job in a listing");
                    None
                }
            })
            .collect();
        Ok(JobPage {
            jobs,
            total: counts.get(state),
            offset,
            limit,
        })
    }

    async fn job(&self, queue: &QueueName, id: &JobId) -> Result<Job> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE queue = $1 AND id = $2"
        ))
        .bind(queue.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.inner.pool)
        .await?;
        match row {
            Some(row) => decode_job(queue, &row),
            None => {
                self.ensure_exists(queue).await?;
                Err(CoordError::JobNotFound {
                    queue: queue.clone(),
                    job: id.clone(),
                })
            }
        }
    }

    async fn step(
        &self,
        queue: &QueueName,
        outcomes: Vec<Outcome>,
        claim: usize,
        lease: Duration,
    ) -> Result<StepResult> {
        let stepped = self.step_tx(queue, outcomes, claim, lease).await;
        self.inner.noted(stepped)
    }

    async fn extend_leases(
        &self,
        queue: &QueueName,
        leases: &[(JobId, String)],
        lease: Duration,
    ) -> Result<Vec<JobId>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let pairs: Vec<(&str, &str)> = leases
            .iter()
            .map(|(id, token)| (id.as_str(), token.as_str()))
            .collect();
        let pairs = internal_json(&pairs)?;
        let mut w = self.begin_write().await?;
        let deadline = now_ms().saturating_add(duration_ms(lease));
        let kept: Vec<String> = sqlx::query_scalar(EXTEND_LEASES)
            .bind(queue.as_str())
            .bind(pairs)
            .bind(deadline)
            .fetch_all(w.conn())
            .await?;
        w.commit().await?;
        let kept: HashSet<String> = kept.into_iter().collect();
        Ok(leases
            .iter()
            .filter(|(id, _)| !kept.contains(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn recover_stalled(&self, queue: &QueueName, max_stalled: u32) -> Result<StalledReport> {
        let mut w = self.begin_write().await?;
        let now = now_ms();
        let Some(mut meta) = load_meta(w.conn(), queue).await? else {
            w.commit().await?;
            return Ok(StalledReport::default());
        };
        let rows = sqlx::query(
            "SELECT id, stalled_count, attempts_made, max_attempts, priority, processed_at
             FROM jobs WHERE queue = $1 AND state = 'active' AND sort_key < $2
             ORDER BY sort_key, id LIMIT $3",
        )
        .bind(queue.as_str())
        .bind(now)
        .bind(STEP_BUDGET)
        .fetch_all(w.conn())
        .await?;
        if rows.is_empty() {
            w.commit().await?;
            return Ok(StalledReport::default());
        }
        let mut delta = Delta::default();
        let mut patches = Vec::with_capacity(rows.len());
        let mut report = StalledReport::default();
        let mut stalled = Vec::with_capacity(rows.len());
        for row in &rows {
            // A row whose counters cannot be read is left where it is (and
            // reported) rather than failing every sweep of the queue.
            let expired = match Expired::from_row(row) {
                Ok(expired) => expired,
                Err(e) => {
                    tracing::error!(queue = %queue, error = %e, "skipping an undecodable expired job");
                    continue;
                }
            };
            let Expired {
                id,
                stalled_count,
                attempts_made: attempts,
                max_attempts,
                priority,
                processed_at: started,
            } = expired;
            let job_id = stored_id(id.clone())?;
            let stalls = stalled_count.saturating_add(1);
            delta.add(JobState::Active, -1);
            delta.stalled_total += 1;
            let reason = if stalls > i64::from(max_stalled) {
                Some(STALLED_TOO_OFTEN)
            } else if attempts >= max_attempts {
                Some(STALLED_NO_ATTEMPTS)
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    let record = AttemptRecord {
                        attempt: u32::try_from(attempts).unwrap_or(0),
                        started_at: started.unwrap_or(now),
                        finished_at: now,
                        error: Some(reason.to_owned()),
                        chain: Vec::new(),
                    };
                    patches.push(Patch {
                        failed_reason: Some(reason.to_owned()),
                        stacktrace: Some("[]".to_owned()),
                        finished_at: Some(now),
                        stalled_count: Some(stalls),
                        ..Patch::new(&id, JobState::Failed, now, Some(&record))?
                    });
                    delta.add(JobState::Failed, 1);
                    delta.failed_total += 1;
                    report.failed.push(job_id.clone());
                }
                None => {
                    meta.seq += 1;
                    patches.push(Patch {
                        stalled_count: Some(stalls),
                        ..Patch::new(
                            &id,
                            JobState::Waiting,
                            waiting_key(priority, meta.seq),
                            None,
                        )?
                    });
                    delta.add(JobState::Waiting, 1);
                    report.requeued.push(job_id.clone());
                }
            }
            stalled.push(job_id);
        }
        apply_patches(w.conn(), queue, &patches).await?;
        save_meta(w.conn(), queue, &meta, &delta).await?;
        w.commit().await?;
        let mut events = Events::new(queue, now);
        events.push(QueueEventKind::Stalled, stalled);
        events.push(QueueEventKind::Failed, report.failed.clone());
        self.publish(events);
        Ok(report)
    }

    async fn retry(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        let mut w = self.begin_write().await?;
        let now = now_ms();
        let mut meta = load_meta(w.conn(), queue)
            .await?
            .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))?;
        let actual = job_state(w.conn(), queue, id).await?;
        if actual != JobState::Failed {
            return Err(CoordError::WrongState {
                queue: queue.clone(),
                job: id.clone(),
                actual,
                expected: JobState::Failed,
            });
        }
        let moved: Vec<String> = sqlx::query_scalar(requeue_failed!("AND id = $2"))
            .bind(queue.as_str())
            .bind(id.as_str())
            .bind(meta.seq)
            .fetch_all(w.conn())
            .await?;
        let mut delta = Delta::default();
        requeued(&mut meta, &mut delta, moved.len());
        save_meta(w.conn(), queue, &meta, &delta).await?;
        w.commit().await?;
        let mut events = Events::new(queue, now);
        events.push(QueueEventKind::Retried, stored_ids(moved)?);
        self.publish(events);
        Ok(())
    }

    async fn retry_failed_batch(&self, queue: &QueueName, batch: usize) -> Result<u64> {
        let mut w = self.begin_write().await?;
        let now = now_ms();
        let mut meta = load_meta(w.conn(), queue)
            .await?
            .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))?;
        if batch == 0 {
            w.commit().await?;
            return Ok(0);
        }
        let moved: Vec<String> =
            sqlx::query_scalar(requeue_failed!("ORDER BY sort_key, id LIMIT $2"))
                .bind(queue.as_str())
                .bind(to_i64(batch as u64))
                .bind(meta.seq)
                .fetch_all(w.conn())
                .await?;
        if moved.is_empty() {
            w.commit().await?;
            return Ok(0);
        }
        let mut delta = Delta::default();
        requeued(&mut meta, &mut delta, moved.len());
        save_meta(w.conn(), queue, &meta, &delta).await?;
        w.commit().await?;
        let count = moved.len() as u64;
        let mut events = Events::new(queue, now);
        events.push(QueueEventKind::Retried, stored_ids(moved)?);
        self.publish(events);
        Ok(count)
    }

    async fn remove(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        let mut w = self.begin_write().await?;
        let now = now_ms();
        let meta = load_meta(w.conn(), queue)
            .await?
            .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))?;
        let state = job_state(w.conn(), queue, id).await?;
        if state == JobState::Active {
            return Err(CoordError::JobActive {
                queue: queue.clone(),
                job: id.clone(),
            });
        }
        sqlx::query("DELETE FROM jobs WHERE queue = $1 AND id = $2")
            .bind(queue.as_str())
            .bind(id.as_str())
            .execute(w.conn())
            .await?;
        let mut delta = Delta::default();
        delta.add(state, -1);
        save_meta(w.conn(), queue, &meta, &delta).await?;
        w.commit().await?;
        let mut events = Events::new(queue, now);
        events.push(QueueEventKind::Removed, vec![id.clone()]);
        self.publish(events);
        Ok(())
    }

    async fn promote(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        let mut w = self.begin_write().await?;
        let now = now_ms();
        let mut meta = load_meta(w.conn(), queue)
            .await?
            .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))?;
        let actual = job_state(w.conn(), queue, id).await?;
        if actual != JobState::Delayed {
            return Err(CoordError::WrongState {
                queue: queue.clone(),
                job: id.clone(),
                actual,
                expected: JobState::Delayed,
            });
        }
        meta.seq += 1;
        sqlx::query(concat!(
            "UPDATE jobs SET state = 'waiting', run_at = NULL, sort_key = priority * ",
            priority_shift!(),
            " + $3 WHERE queue = $1 AND id = $2"
        ))
        .bind(queue.as_str())
        .bind(id.as_str())
        .bind(meta.seq)
        .execute(w.conn())
        .await?;
        let mut delta = Delta::default();
        delta.add(JobState::Delayed, -1);
        delta.add(JobState::Waiting, 1);
        save_meta(w.conn(), queue, &meta, &delta).await?;
        w.commit().await?;
        let mut events = Events::new(queue, now);
        events.push(QueueEventKind::Promoted, vec![id.clone()]);
        self.publish(events);
        Ok(())
    }

    async fn set_paused(&self, queue: &QueueName, paused: bool) -> Result<()> {
        let mut w = self.begin_write().await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO queues (name, paused, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
        )
        .bind(queue.as_str())
        .bind(paused)
        .bind(now)
        .execute(w.conn())
        .await?;
        w.commit().await?;
        let mut events = Events::new(queue, now);
        events.push_queue(if paused {
            QueueEventKind::Paused
        } else {
            QueueEventKind::Resumed
        });
        self.publish(events);
        Ok(())
    }

    async fn set_retention(&self, queue: &QueueName, policy: RetentionPolicy) -> Result<()> {
        let count = |v: Option<u64>| v.map(to_i64);
        let mut w = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO queues (name, created_at, keep_completed_count, keep_completed_age_ms,
                                 keep_failed_count, keep_failed_age_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET
                 keep_completed_count = excluded.keep_completed_count,
                 keep_completed_age_ms = excluded.keep_completed_age_ms,
                 keep_failed_count = excluded.keep_failed_count,
                 keep_failed_age_ms = excluded.keep_failed_age_ms",
        )
        .bind(queue.as_str())
        .bind(now_ms())
        .bind(count(policy.completed.max_count))
        .bind(count(policy.completed.max_age_ms))
        .bind(count(policy.failed.max_count))
        .bind(count(policy.failed.max_age_ms))
        .execute(w.conn())
        .await?;
        w.commit().await
    }

    async fn retention(&self, queue: &QueueName) -> Result<RetentionPolicy> {
        let mut conn = self.inner.pool.acquire().await?;
        let meta = load_meta(&mut conn, queue)
            .await?
            .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))?;
        let count = |v: Option<i64>| v.map(|v| u64::try_from(v).unwrap_or(0));
        Ok(RetentionPolicy {
            completed: Retention {
                max_count: count(meta.keep_completed_count),
                max_age_ms: count(meta.keep_completed_age_ms),
            },
            failed: Retention {
                max_count: count(meta.keep_failed_count),
                max_age_ms: count(meta.keep_failed_age_ms),
            },
        })
    }

    async fn clean(&self, queue: &QueueName, limit: usize) -> Result<u64> {
        let mut w = self.begin_write().await?;
        let now = now_ms();
        let meta = load_meta(w.conn(), queue)
            .await?
            .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))?;
        if limit == 0 {
            w.commit().await?;
            return Ok(0);
        }
        let mut delta = Delta::default();
        let removed = apply_retention(
            w.conn(),
            queue,
            &meta,
            &mut delta,
            now,
            to_i64(limit as u64),
        )
        .await?;
        if removed.is_empty() {
            w.commit().await?;
            return Ok(0);
        }
        save_meta(w.conn(), queue, &meta, &delta).await?;
        w.commit().await?;
        let count = removed.len() as u64;
        let mut events = Events::new(queue, now);
        events.push(QueueEventKind::Removed, removed);
        self.publish(events);
        Ok(count)
    }

    fn events(&self) -> broadcast::Receiver<EventBatch> {
        self.inner.events.subscribe()
    }
}

/// A queue's row as a write transaction needs it. `next_id` and `seq` are
/// advanced in memory and written back by [`save_meta`].
#[derive(Default)]
struct Meta {
    paused: bool,
    next_id: i64,
    seq: i64,
    completed: i64,
    failed: i64,
    keep_completed_count: Option<i64>,
    keep_completed_age_ms: Option<i64>,
    keep_failed_count: Option<i64>,
    keep_failed_age_ms: Option<i64>,
}

/// Changes to a queue's counters made by one transaction.
#[derive(Default)]
struct Delta {
    waiting: i64,
    active: i64,
    delayed: i64,
    completed: i64,
    failed: i64,
    completed_total: i64,
    failed_total: i64,
    stalled_total: i64,
    retried_total: i64,
}

impl Delta {
    fn add(&mut self, state: JobState, n: i64) {
        match state {
            JobState::Waiting => self.waiting += n,
            JobState::Active => self.active += n,
            JobState::Delayed => self.delayed += n,
            JobState::Completed => self.completed += n,
            JobState::Failed => self.failed += n,
        }
    }
}

/// Adds the jobs of several enqueue requests for one queue, in order, with
/// one insert; returns each request's ids and the ids of the jobs added.
async fn enqueue_into(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    now: i64,
    requests: &[&EnqueueRequest],
) -> Result<(Vec<Vec<JobId>>, Vec<JobId>)> {
    let mut meta = match load_meta(conn, queue).await? {
        Some(meta) => meta,
        None => {
            sqlx::query("INSERT INTO queues (name, created_at) VALUES ($1, $2)")
                .bind(queue.as_str())
                .bind(now)
                .execute(&mut *conn)
                .await?;
            Meta::default()
        }
    };
    let jobs = || requests.iter().flat_map(|r| r.jobs.iter());

    // Which of the ids these jobs may use are taken already: the callers'
    // ids and the generated ids they will most likely get.
    let generate = jobs().filter(|j| j.options.job_id.is_none()).count() as i64;
    let mut probe: Vec<String> = jobs()
        .filter_map(|j| j.options.job_id.as_ref().map(|id| id.as_str().to_owned()))
        .collect();
    probe.extend((1..=generate).map(|k| (meta.next_id + k).to_string()));
    let mut taken = existing_ids(conn, queue, &probe).await?;
    let probed_up_to = meta.next_id + generate;

    let mut all_ids = Vec::with_capacity(requests.len());
    let mut rows = Vec::new();
    let mut added = Vec::new();
    let mut delta = Delta::default();
    for request in requests {
        let mut ids = Vec::with_capacity(request.jobs.len());
        for (job, (data, options)) in request.jobs.iter().zip(&request.encoded) {
            let id = match &job.options.job_id {
                Some(given) => {
                    if !taken.insert(given.as_str().to_owned()) {
                        // Idempotent enqueue: the existing job stays as it is.
                        ids.push(given.clone());
                        continue;
                    }
                    given.clone()
                }
                None => loop {
                    // A caller-given id may already hold a number: skip it.
                    meta.next_id += 1;
                    let candidate = meta.next_id.to_string();
                    if meta.next_id > probed_up_to
                        && !existing_ids(conn, queue, std::slice::from_ref(&candidate))
                            .await?
                            .is_empty()
                    {
                        continue;
                    }
                    if taken.insert(candidate.clone()) {
                        break stored_id(candidate)?;
                    }
                },
            };
            let priority = i64::from(job.options.priority);
            let delay = job.options.delay_ms.max(0);
            let (state, sort_key, run_at) = if delay > 0 {
                let run_at = now.saturating_add(delay);
                (JobState::Delayed, run_at, Some(run_at))
            } else {
                meta.seq += 1;
                (JobState::Waiting, waiting_key(priority, meta.seq), None)
            };
            delta.add(state, 1);
            rows.push(NewRow {
                id: id.as_str().to_owned(),
                name: &job.name,
                data,
                options,
                priority,
                max_attempts: i64::from(job.options.attempts),
                state: state.as_str(),
                sort_key,
                run_at,
            });
            added.push(id.clone());
            ids.push(id);
        }
        all_ids.push(ids);
    }
    if !rows.is_empty() {
        sqlx::query(
            "INSERT INTO jobs (queue, id, name, data, options, priority, max_attempts, state,
                               sort_key, run_at, created_at)
             SELECT $1, j.value ->> 'id', j.value ->> 'name', j.value ->> 'data',
                    j.value ->> 'options', j.value ->> 'priority', j.value ->> 'maxAttempts',
                    j.value ->> 'state', j.value ->> 'sortKey', j.value ->> 'runAt', $2
             FROM json_each($3) AS j",
        )
        .bind(queue.as_str())
        .bind(now)
        .bind(internal_json(&rows)?)
        .execute(&mut *conn)
        .await?;
    }
    save_meta(conn, queue, &meta, &delta).await?;
    Ok((all_ids, added))
}

async fn load_meta(conn: &mut SqliteConnection, queue: &QueueName) -> Result<Option<Meta>> {
    let row = sqlx::query(
        "SELECT paused, next_id, seq, completed, failed, keep_completed_count,
                keep_completed_age_ms, keep_failed_count, keep_failed_age_ms
         FROM queues WHERE name = $1",
    )
    .bind(queue.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let corrupt = |e: sqlx::Error| CoordError::Corrupt(format!("queue {queue}: {e}"));
    Ok(Some(Meta {
        paused: row.try_get("paused").map_err(corrupt)?,
        next_id: row.try_get("next_id").map_err(corrupt)?,
        seq: row.try_get("seq").map_err(corrupt)?,
        completed: row.try_get("completed").map_err(corrupt)?,
        failed: row.try_get("failed").map_err(corrupt)?,
        keep_completed_count: row.try_get("keep_completed_count").map_err(corrupt)?,
        keep_completed_age_ms: row.try_get("keep_completed_age_ms").map_err(corrupt)?,
        keep_failed_count: row.try_get("keep_failed_count").map_err(corrupt)?,
        keep_failed_age_ms: row.try_get("keep_failed_age_ms").map_err(corrupt)?,
    }))
}

/// Writes back the counters a transaction advanced and applies its deltas.
async fn save_meta(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    meta: &Meta,
    d: &Delta,
) -> Result<()> {
    sqlx::query(
        "UPDATE queues SET next_id = $2, seq = $3,
             waiting = waiting + $4, active = active + $5, delayed = delayed + $6,
             completed = completed + $7, failed = failed + $8,
             completed_total = completed_total + $9, failed_total = failed_total + $10,
             stalled_total = stalled_total + $11, retried_total = retried_total + $12
         WHERE name = $1",
    )
    .bind(queue.as_str())
    .bind(meta.next_id)
    .bind(meta.seq)
    .bind(d.waiting)
    .bind(d.active)
    .bind(d.delayed)
    .bind(d.completed)
    .bind(d.failed)
    .bind(d.completed_total)
    .bind(d.failed_total)
    .bind(d.stalled_total)
    .bind(d.retried_total)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn load_counts(
    conn: &mut SqliteConnection,
    queue: &QueueName,
) -> Result<Option<QueueCounts>> {
    let row = sqlx::query(
        "SELECT waiting, active, delayed, completed, failed, paused, completed_total,
                failed_total, stalled_total, retried_total
         FROM queues WHERE name = $1",
    )
    .bind(queue.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let count = |field: &str| -> Result<u64> {
        let v: i64 = row
            .try_get(field)
            .map_err(|e| CoordError::Corrupt(format!("queue {queue}: {e}")))?;
        Ok(u64::try_from(v).unwrap_or(0))
    };
    Ok(Some(QueueCounts {
        waiting: count("waiting")?,
        active: count("active")?,
        delayed: count("delayed")?,
        completed: count("completed")?,
        failed: count("failed")?,
        paused: count("paused")? != 0,
        completed_total: count("completed_total")?,
        failed_total: count("failed_total")?,
        stalled_total: count("stalled_total")?,
        retried_total: count("retried_total")?,
    }))
}

/// The state of one job; `JobNotFound` when there is none.
async fn job_state(conn: &mut SqliteConnection, queue: &QueueName, id: &JobId) -> Result<JobState> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM jobs WHERE queue = $1 AND id = $2")
            .bind(queue.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    match state {
        Some(state) => state.parse(),
        None => Err(CoordError::JobNotFound {
            queue: queue.clone(),
            job: id.clone(),
        }),
    }
}

/// Which of `ids` exist in the queue.
async fn existing_ids(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    ids: &[String],
) -> Result<HashSet<String>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE queue = $1 AND id IN (SELECT value FROM json_each($2))",
    )
    .bind(queue.as_str())
    .bind(internal_json(ids)?)
    .fetch_all(&mut *conn)
    .await?;
    Ok(found.into_iter().collect())
}

/// What stalled recovery needs to know about a job whose lease expired.
struct Expired {
    id: String,
    stalled_count: i64,
    attempts_made: i64,
    max_attempts: i64,
    priority: i64,
    processed_at: Option<i64>,
}

impl Expired {
    fn from_row(row: &SqliteRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            stalled_count: row.try_get("stalled_count")?,
            attempts_made: row.try_get("attempts_made")?,
            max_attempts: row.try_get("max_attempts")?,
            priority: row.try_get("priority")?,
            processed_at: row.try_get("processed_at")?,
        })
    }
}

/// What settling an outcome needs to know about its job.
#[derive(Deserialize)]
struct Held {
    id: String,
    state: String,
    lease_token: Option<String>,
    attempts_made: i64,
    max_attempts: i64,
    priority: i64,
}

/// The jobs outcomes are reported for, by id. Read as one JSON row (rows
/// handed over one by one cost more than the lookup); a row that cannot be
/// decoded is left out, so its outcome counts as stale rather than failing
/// every step of the queue.
async fn held_jobs(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    ids: &[&str],
) -> Result<HashMap<String, Held>> {
    let packed: Option<String> = sqlx::query_scalar(
        "SELECT json_group_array(json_array(id, state, lease_token, attempts_made, max_attempts,
                                            priority))
         FROM jobs WHERE queue = $1 AND id IN (SELECT value FROM json_each($2))",
    )
    .bind(queue.as_str())
    .bind(internal_json(ids)?)
    .fetch_one(&mut *conn)
    .await?;
    let rows: Vec<Value> = match packed {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| CoordError::Corrupt(format!("jobs of queue {queue}: {e}")))?,
        None => Vec::new(),
    };
    let mut held = HashMap::with_capacity(rows.len());
    for row in rows {
        match serde_json::from_value::<Held>(row) {
            Ok(job) => {
                held.insert(job.id.clone(), job);
            }
            Err(e) => {
                tracing::error!(queue = %queue, error = %e, "skipping an undecodable job row");
            }
        }
    }
    Ok(held)
}

/// One job of a bulk insert, as `enqueue_bulk` hands it to `json_each`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewRow<'a> {
    id: String,
    name: &'a str,
    /// JSON text, carried as a string so it is stored exactly as encoded.
    data: &'a str,
    options: &'a str,
    priority: i64,
    max_attempts: i64,
    state: &'static str,
    sort_key: i64,
    run_at: Option<i64>,
}

/// New values of one job for [`APPLY_PATCHES`]; `None` keeps a column.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Patch {
    id: String,
    state: &'static str,
    sort_key: i64,
    /// The attempt record to append to the history, as JSON text.
    record: Option<String>,
    return_value: Option<String>,
    failed_reason: Option<String>,
    stacktrace: Option<String>,
    finished_at: Option<i64>,
    /// Always written: only delayed jobs have one.
    run_at: Option<i64>,
    stalled_count: Option<i64>,
}

impl Patch {
    fn new(
        id: &str,
        state: JobState,
        sort_key: i64,
        record: Option<&AttemptRecord>,
    ) -> Result<Self> {
        Ok(Self {
            id: id.to_owned(),
            state: state.as_str(),
            sort_key,
            record: record.map(internal_json).transpose()?,
            return_value: None,
            failed_reason: None,
            stacktrace: None,
            finished_at: None,
            run_at: None,
            stalled_count: None,
        })
    }
}

async fn apply_patches(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    patches: &[Patch],
) -> Result<()> {
    if patches.is_empty() {
        return Ok(());
    }
    sqlx::query(APPLY_PATCHES)
        .bind(queue.as_str())
        .bind(internal_json(patches)?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Books `n` failed jobs moved back to waiting by a retry.
fn requeued(meta: &mut Meta, delta: &mut Delta, n: usize) {
    let n = n as i64;
    meta.seq += n;
    delta.add(JobState::Failed, -n);
    delta.add(JobState::Waiting, n);
    delta.retried_total += n;
}

/// Deletes the oldest completed, then failed, jobs beyond the queue's
/// retention, at most `budget` in all; returns their ids.
async fn apply_retention(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    meta: &Meta,
    delta: &mut Delta,
    now: i64,
    budget: i64,
) -> Result<Vec<JobId>> {
    let mut removed = Vec::new();
    let sets = [
        (
            JobState::Completed,
            meta.completed + delta.completed,
            meta.keep_completed_count,
            meta.keep_completed_age_ms,
        ),
        (
            JobState::Failed,
            meta.failed + delta.failed,
            meta.keep_failed_count,
            meta.keep_failed_age_ms,
        ),
    ];
    for (state, current, keep_count, keep_age) in sets {
        let budget = budget - removed.len() as i64;
        if budget <= 0 || (keep_count.is_none() && keep_age.is_none()) {
            continue;
        }
        let mut n = keep_count.map_or(0, |keep| current - keep);
        if let Some(age) = keep_age {
            // Counted no further than the budget: a backlog of old jobs
            // is worked off across calls, not counted in full each time.
            let old: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT 1 FROM jobs
                     WHERE queue = $1 AND state = $2 AND sort_key < $3 LIMIT $4)",
            )
            .bind(queue.as_str())
            .bind(state.as_str())
            .bind(now.saturating_sub(age))
            .bind(budget)
            .fetch_one(&mut *conn)
            .await?;
            n = n.max(old);
        }
        let n = n.min(budget);
        if n <= 0 {
            continue;
        }
        let ids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM jobs WHERE rowid IN (
                 SELECT rowid FROM jobs WHERE queue = $1 AND state = $2
                 ORDER BY sort_key, id LIMIT $3)
             RETURNING id",
        )
        .bind(queue.as_str())
        .bind(state.as_str())
        .bind(n)
        .fetch_all(&mut *conn)
        .await?;
        delta.add(state, -(ids.len() as i64));
        removed.extend(stored_ids(ids)?);
    }
    Ok(removed)
}

/// The events of one transaction, one per kind, published after commit.
struct Events {
    queue: QueueName,
    at: i64,
    events: Vec<QueueEvent>,
}

impl Events {
    fn new(queue: &QueueName, at: i64) -> Self {
        Self {
            queue: queue.clone(),
            at,
            events: Vec::new(),
        }
    }

    /// Adds an event for the jobs; nothing for none.
    fn push(&mut self, kind: QueueEventKind, job_ids: Vec<JobId>) {
        if !job_ids.is_empty() {
            self.events.push(QueueEvent {
                queue: self.queue.clone(),
                kind,
                job_ids,
                at: self.at,
            });
        }
    }

    /// Adds a queue-wide event (pause, resume).
    fn push_queue(&mut self, kind: QueueEventKind) {
        self.events.push(QueueEvent {
            queue: self.queue.clone(),
            kind,
            job_ids: Vec::new(),
            at: self.at,
        });
    }
}

/// Sort key of a waiting job: priority first, then arrival.
fn waiting_key(priority: i64, seq: i64) -> i64 {
    priority.saturating_mul(PRIORITY_SHIFT).saturating_add(seq)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Caller-provided values (job data, return values, options) as JSON text.
fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| CoordError::InvalidOptions(e.to_string()))
}

/// The backend's own structures as JSON text; cannot fail for them.
fn internal_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| CoordError::Corrupt(format!("encoding: {e}")))
}

/// An id read back from the database; only validated ids are stored.
fn stored_ids(ids: Vec<String>) -> Result<Vec<JobId>> {
    ids.into_iter().map(stored_id).collect()
}

/// A job's stored columns before decoding, in [`job_columns!`] order.
/// Read from a row, or from one element of the JSON array a claim returns
/// (serde maps an array onto the fields in order).
#[derive(Deserialize)]
struct RawJob {
    id: String,
    name: Option<String>,
    data: Option<String>,
    options: Option<String>,
    state: Option<String>,
    attempts_made: Option<i64>,
    stalled_count: Option<i64>,
    failed_reason: Option<String>,
    stacktrace: Option<String>,
    history: Option<String>,
    return_value: Option<String>,
    created_at: Option<i64>,
    processed_at: Option<i64>,
    finished_at: Option<i64>,
    run_at: Option<i64>,
    lease_token: Option<String>,
    /// Only in claims, to restore the claim order.
    #[serde(default)]
    sort_key: i64,
}

impl RawJob {
    /// From a row read with [`job_columns!`]; `Corrupt` names a column of
    /// the wrong type.
    fn from_row(queue: &QueueName, row: &SqliteRow) -> Result<Self> {
        let id: String = row.try_get("id").map_err(|e| {
            CoordError::Corrupt(format!("job row in queue {queue} without an id: {e}"))
        })?;
        let corrupt = |field: &str, e: sqlx::Error| {
            CoordError::Corrupt(format!("job {id} in queue {queue}: {field}: {e}"))
        };
        let text = |field: &str| {
            row.try_get::<Option<String>, _>(field)
                .map_err(|e| corrupt(field, e))
        };
        let int = |field: &str| {
            row.try_get::<Option<i64>, _>(field)
                .map_err(|e| corrupt(field, e))
        };
        Ok(Self {
            name: text("name")?,
            data: text("data")?,
            options: text("options")?,
            state: text("state")?,
            attempts_made: int("attempts_made")?,
            stalled_count: int("stalled_count")?,
            failed_reason: text("failed_reason")?,
            stacktrace: text("stacktrace")?,
            history: text("history")?,
            return_value: text("return_value")?,
            created_at: int("created_at")?,
            processed_at: int("processed_at")?,
            finished_at: int("finished_at")?,
            run_at: int("run_at")?,
            lease_token: text("lease_token")?,
            sort_key: 0,
            id,
        })
    }

    /// Decodes the stored text ([`StoredJob::decode`]); `Corrupt` names
    /// the field at fault.
    fn decode(self, queue: &QueueName) -> Result<Job> {
        StoredJob {
            id: self.id,
            name: self.name,
            data: self.data,
            options: self.options,
            state: self.state,
            attempts_made: self.attempts_made,
            stalled_count: self.stalled_count,
            failed_reason: self.failed_reason,
            stacktrace: self.stacktrace,
            history: self.history,
            return_value: self.return_value,
            created_at: self.created_at,
            processed_at: self.processed_at,
            finished_at: self.finished_at,
            run_at: self.run_at,
            lease_token: self.lease_token,
        }
        .decode(queue, &mut None)
    }
}

/// Decodes a job row read with [`job_columns!`].
fn decode_job(queue: &QueueName, row: &SqliteRow) -> Result<Job> {
    RawJob::from_row(queue, row)?.decode(queue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_priority_shift_matches_the_constant() {
        // The statements spell PRIORITY_SHIFT as a literal.
        assert_eq!(priority_shift!().parse::<i64>().ok(), Some(PRIORITY_SHIFT));
        assert!(APPLY_PATCHES.contains("json_each($2)"));
        assert!(requeue_failed!("LIMIT $2").contains(" * 1099511627776 + $3"));
    }

    /// The plan of a statement, one line per step.
    async fn plan(backend: &SqlBackend, sql: &str) -> String {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .bind("q")
            .bind("[]")
            .bind(0_i64)
            .fetch_all(backend.pool())
            .await
            .expect("explain");
        rows.iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn per_job_statements_look_jobs_up_by_key() {
        let backend = SqlBackend::open("sqlite::memory:").await.expect("open");
        let walks_queue = |plan: &str| {
            plan.lines()
                .any(|l| l.starts_with("SCAN j") || l.contains("(queue=?)"))
        };
        for sql in [APPLY_PATCHES, EXTEND_LEASES] {
            let plan = plan(&backend, sql).await;
            assert!(
                !walks_queue(&plan),
                "a per-job statement walks the whole queue:\n{plan}"
            );
        }
        // The check catches the plain join the planner gets wrong.
        let naive = "UPDATE jobs SET sort_key = $3 FROM json_each($2) AS u
                     WHERE jobs.queue = $1 AND jobs.id = u.value ->> 'id'";
        let naive = plan(&backend, naive).await;
        assert!(walks_queue(&naive), "{naive}");
    }

    #[test]
    fn waiting_keys_order_priority_then_arrival() {
        assert!(waiting_key(0, 1_000_000) < waiting_key(1, 1));
        assert!(waiting_key(1, 1) < waiting_key(1, 2));
    }
}
