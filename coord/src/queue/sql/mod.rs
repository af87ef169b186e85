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
//! Writes through sqlx do per-job work with set-based statements over a
//! JSON array of rows (`json_each`), so that a write costs a few statements
//! (each a round trip to sqlx's connection thread) whatever the number of
//! jobs. The worker's step, the hot path, runs on a direct connection
//! instead ([`direct`]), where per-job statements cost microseconds.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard, broadcast, oneshot};

use super::backend::{BackendHealth, BackendKind, QueueBackend};
use super::events::{EVENT_BUFFER, EventBatch, QueueEvent, QueueEventKind};
use super::report::JobReport;
use super::stored::{STALLED_NO_ATTEMPTS, STALLED_TOO_OFTEN, StoredJob, listed_jobs, stored_id};
use super::types::{
    AttemptRecord, Job, JobId, JobPage, JobState, NewJob, Outcome, OutcomeResult, PRIORITY_SHIFT,
    QueueCounts, QueueName, Retention, RetentionPolicy, StalledReport, StepResult,
};
use super::workers::{WorkerCommand, WorkerId, WorkerReport, WorkerView};
use crate::error::{CoordError, Result};
use crate::errors::{ErrorGroups, GroupAction, GroupId, Trend};
use crate::instances::Thresholds;
use crate::search::{FoundJob, IndexProgress, SearchQuery, SearchResult};
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
/// [`PRIORITY_SHIFT`] as text for statements (checked by a unit test).
macro_rules! priority_shift {
    () => {
        "1099511627776"
    };
}

/// Columns of a job row, in the form [`rows::RawJob::from_row`] reads.
macro_rules! job_columns {
    () => {
        "id, name, data, options, state, attempts_made, stalled_count, failed_reason, \
         stacktrace, history, return_value, created_at, processed_at, finished_at, run_at, \
         lease_token"
    };
}

/// A column's length in bytes (as stored: text counted as bytes).
macro_rules! byte_length {
    ($column:literal) => {
        concat!("length(CAST(", $column, " AS BLOB))")
    };
}

/// Whether a column's value is longer than the clip (the placeholder
/// `$clip`, bytes; 0 for no clip).
macro_rules! too_long {
    ($column:literal, $clip:literal) => {
        concat!($clip, " > 0 AND ", byte_length!($column), " > ", $clip)
    };
}

/// A value longer than the clip left out in the database, so that a page
/// of megabyte jobs is never read whole.
macro_rules! clipped_column {
    ($column:literal, $clip:literal) => {
        concat!(
            "CASE WHEN ",
            too_long!($column, $clip),
            " THEN '' ELSE ",
            $column,
            " END AS ",
            $column
        )
    };
}

/// Which values `clipped_column!` left out, with their length in bytes.
macro_rules! clip_note {
    ($column:literal, $clip:literal) => {
        concat!(
            "CASE WHEN ",
            too_long!($column, $clip),
            " THEN '",
            $column,
            "=' || ",
            byte_length!($column),
            " || ';' ELSE '' END"
        )
    };
}

/// A job's columns as listings read them, values longer than the clip
/// (the placeholder `$clip`, bytes, 0 for none) left out, and the note of
/// which were (`clipped`). The columns that can be long are named once;
/// rows are read by column name, so their place in the list is free.
macro_rules! clipped_job_columns {
    ($clip:literal) => {
        clipped_job_columns!(
            $clip;
            "data", "failed_reason", "stacktrace", "history", "return_value"
        )
    };
    ($clip:literal; $($long:literal),+) => {
        concat!(
            "id, name, options, state, attempts_made, stalled_count, created_at, \
             processed_at, finished_at, run_at, lease_token",
            $(", ", clipped_column!($long, $clip),)+
            ", nullif(",
            $(clip_note!($long, $clip), " || ",)+
            "'', '') AS clipped"
        )
    };
}

/// One page of a state's jobs, newest first: `$1` queue, `$2` state, `$3`
/// limit, `$4` offset, `$5` clip (bytes; 0 for whole values).
const LIST_CLIPPED: &str = concat!(
    "SELECT ",
    clipped_job_columns!("$5"),
    " FROM jobs WHERE queue = $1 AND state = $2
     ORDER BY sort_key DESC, id DESC LIMIT $3 OFFSET $4"
);

/// One job: `$1` queue, `$2` id, `$3` clip (bytes).
const JOB_CLIPPED: &str = concat!(
    "SELECT ",
    clipped_job_columns!("$3"),
    " FROM jobs WHERE queue = $1 AND id = $2"
);

/// A job read with [`clipped_job_columns!`] ([`LIST_CLIPPED`],
/// [`JOB_CLIPPED`]): the usual columns and the clip note.
fn decode_clipped(queue: &QueueName, row: &sqlx::sqlite::SqliteRow) -> Result<Job> {
    let mut raw = rows::RawJob::from_row(queue, row)?;
    raw.clipped = sqlx::Row::try_get::<Option<String>, _>(row, "clipped")
        .map_err(|e| CoordError::Corrupt(format!("job list of queue {queue}: clipped: {e}")))?;
    raw.decode(queue)
}

/// Begins a listing's read transaction, so its total and its page are one
/// snapshot; answers the queue's counts, `QueueNotFound` for a queue
/// never used.
async fn begin_listing<'a>(
    pool: &'a SqlitePool,
    queue: &QueueName,
) -> Result<(Transaction<'a, Sqlite>, QueueCounts)> {
    let mut tx = pool.begin().await?;
    let counts = load_counts(&mut tx, queue)
        .await?
        .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))?;
    Ok((tx, counts))
}

/// One page of a listing read with [`clipped_job_columns!`]: `sql` takes
/// `$1` the queue, then `key` (a state, a group) when there is one, then
/// limit, offset and clip. Rows that do not decode are left out.
async fn fetch_page(
    conn: &mut SqliteConnection,
    sql: &str,
    queue: &QueueName,
    key: Option<&str>,
    (offset, limit): (u64, u64),
    clip: Option<u32>,
) -> Result<Vec<Job>> {
    let mut query = sqlx::query(sql).bind(queue.as_str());
    if let Some(key) = key {
        query = query.bind(key);
    }
    let rows = query
        .bind(to_i64(limit))
        .bind(to_i64(offset))
        .bind(clip.map_or(0, i64::from))
        .fetch_all(&mut *conn)
        .await?;
    Ok(listed_jobs(
        queue,
        rows.iter().map(|row| decode_clipped(queue, row)),
    ))
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
    stalled_count = coalesce(p.v ->> 'stalledCount', jobs.stalled_count),
    error_group = coalesce(p.v ->> 'errorGroup', jobs.error_group)
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
                error_group = NULL,
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

// After the macros above, which they use.
mod admin;
mod direct;
mod enqueue;
mod errors;
mod report;
mod rows;
mod schedules;
mod search;
mod step;
mod workers;

use enqueue::{EnqueueRequest, Waiter};
use rows::*;

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
    /// Where worker steps write (see [`direct`]).
    direct: direct::DirectConn,
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
        let direct = direct::DirectConn::open(&pool, BUSY_TIMEOUT).await?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let backend = Self {
            inner: Arc::new(Inner {
                pool,
                writes: WriteHealth::default(),
                last_write_at: AtomicI64::new(0),
                write_lock: Arc::new(Mutex::new(())),
                pending: StdMutex::new(Vec::new()),
                events,
                direct,
            }),
        };
        errors::backfill(&backend).await?;
        Ok(backend)
    }

    /// The pool, so that the server can keep its own tables in the same
    /// database and share the connections.
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// Starts a write transaction: first in line in this process, then
    /// holding SQLite's write lock.
    /// One job, every value longer than `clip` bytes left out (0: whole):
    /// what both [`QueueBackend::job`] and [`QueueBackend::job_clipped`]
    /// answer.
    async fn read_job(&self, queue: &QueueName, id: &JobId, clip: u32) -> Result<Job> {
        let row = sqlx::query(JOB_CLIPPED)
            .bind(queue.as_str())
            .bind(id.as_str())
            .bind(i64::from(clip))
            .fetch_optional(&self.inner.pool)
            .await?;
        match row {
            Some(row) => decode_clipped(queue, &row),
            None => {
                self.ensure_exists(queue).await?;
                Err(CoordError::JobNotFound {
                    queue: queue.clone(),
                    job: id.clone(),
                })
            }
        }
    }

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
            cluster: None,
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
        clip: Option<u32>,
    ) -> Result<JobPage> {
        let (mut tx, counts) = begin_listing(&self.inner.pool, queue).await?;
        let jobs = fetch_page(
            &mut tx,
            LIST_CLIPPED,
            queue,
            Some(state.as_str()),
            (offset, limit),
            clip,
        )
        .await?;
        tx.commit().await?;
        Ok(JobPage {
            jobs,
            total: counts.get(state),
            offset,
            limit,
        })
    }

    async fn list_retrying(
        &self,
        queue: &QueueName,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<JobPage> {
        errors::list_retrying(self, queue, offset, limit, clip).await
    }

    async fn job_clipped(&self, queue: &QueueName, id: &JobId, clip: u32) -> Result<Job> {
        self.read_job(queue, id, clip).await
    }

    async fn job(&self, queue: &QueueName, id: &JobId) -> Result<Job> {
        self.read_job(queue, id, 0).await
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
        admin::extend_leases(self, queue, leases, lease).await
    }

    async fn append_logs(
        &self,
        queue: &QueueName,
        id: &JobId,
        token: &str,
        lines: &[String],
    ) -> Result<bool> {
        let appended = report::append_logs(self, queue, id, token, lines).await;
        self.inner.noted(appended)
    }

    async fn set_progress(
        &self,
        queue: &QueueName,
        id: &JobId,
        token: &str,
        progress: &str,
    ) -> Result<bool> {
        let set = report::set_progress(self, queue, id, token, progress).await;
        self.inner.noted(set)
    }

    async fn job_report(&self, queue: &QueueName, id: &JobId, lines: u32) -> Result<JobReport> {
        report::job_report(self, queue, id, lines).await
    }

    async fn find_job(&self, id: &JobId) -> Result<Vec<FoundJob>> {
        search::find_job(self, id).await
    }

    async fn search(&self, query: &SearchQuery, limit: usize) -> Result<SearchResult> {
        search::search(self, query, limit).await
    }

    async fn index_search(&self, batch: usize) -> Result<IndexProgress> {
        let indexed = search::index_search(self, batch).await;
        self.inner.noted(indexed)
    }

    async fn recover_stalled(&self, queue: &QueueName, max_stalled: u32) -> Result<StalledReport> {
        admin::recover_stalled(self, queue, max_stalled).await
    }

    async fn retry(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        admin::retry(self, queue, id).await
    }

    async fn retry_failed_batch(&self, queue: &QueueName, batch: usize) -> Result<u64> {
        admin::retry_failed_batch(self, queue, batch).await
    }

    async fn error_groups(&self, queue: &QueueName, limit: usize) -> Result<ErrorGroups> {
        errors::error_groups(self, queue, limit).await
    }

    async fn error_trends(
        &self,
        queue: &QueueName,
        groups: &[GroupId],
        now: i64,
    ) -> Result<Vec<Trend>> {
        errors::error_trends(self, queue, groups, now).await
    }

    async fn list_error_group(
        &self,
        queue: &QueueName,
        group: GroupId,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<JobPage> {
        errors::list_error_group(self, queue, group, offset, limit, clip).await
    }

    async fn error_group_batch(
        &self,
        queue: &QueueName,
        group: GroupId,
        action: GroupAction,
        batch: usize,
    ) -> Result<u64> {
        errors::error_group_batch(self, queue, group, action, batch).await
    }

    async fn remove(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        admin::remove(self, queue, id).await
    }

    async fn promote(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        admin::promote(self, queue, id).await
    }

    async fn stop_retrying(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        admin::stop_retrying(self, queue, id).await
    }

    async fn set_paused(&self, queue: &QueueName, paused: bool) -> Result<()> {
        admin::set_paused(self, queue, paused).await
    }

    async fn set_retention(&self, queue: &QueueName, policy: RetentionPolicy) -> Result<()> {
        admin::set_retention(self, queue, policy).await
    }

    async fn retention(&self, queue: &QueueName) -> Result<RetentionPolicy> {
        admin::retention(self, queue).await
    }

    async fn clean(&self, queue: &QueueName, limit: usize) -> Result<u64> {
        admin::clean(self, queue, limit).await
    }

    async fn worker_heartbeat(
        &self,
        report: &WorkerReport,
        ttl: Duration,
    ) -> Result<Option<WorkerCommand>> {
        workers::heartbeat(self, report, ttl).await
    }

    async fn worker_leave(&self, id: &WorkerId) -> Result<()> {
        workers::leave(self, id).await
    }

    async fn workers(&self, now_ms: i64, thresholds: &Thresholds) -> Result<Vec<WorkerView>> {
        workers::list(self, now_ms, thresholds).await
    }

    async fn command_worker(&self, id: &WorkerId, command: WorkerCommand) -> Result<()> {
        workers::command(self, id, command).await
    }

    async fn upsert_schedule(
        &self,
        schedule: &super::schedules::Schedule,
        next_run_at: Option<i64>,
    ) -> Result<()> {
        schedules::upsert(self, schedule, next_run_at).await
    }

    async fn remove_schedule(&self, id: &super::schedules::ScheduleId) -> Result<()> {
        schedules::remove(self, id).await
    }

    async fn schedules(&self) -> Result<Vec<super::schedules::ScheduleState>> {
        schedules::list(self).await
    }

    async fn schedule(
        &self,
        id: &super::schedules::ScheduleId,
    ) -> Result<super::schedules::ScheduleState> {
        schedules::get(self, id).await
    }

    async fn set_schedule_paused(
        &self,
        id: &super::schedules::ScheduleId,
        paused: bool,
        next_run_at: Option<i64>,
    ) -> Result<()> {
        schedules::set_paused(self, id, paused, next_run_at).await
    }

    async fn fire_schedules(
        &self,
        fires: &[super::schedules::Fire],
    ) -> Result<Vec<super::schedules::Fired>> {
        schedules::fire(self, fires).await
    }

    fn events(&self) -> broadcast::Receiver<EventBatch> {
        self.inner.events.subscribe()
    }
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
