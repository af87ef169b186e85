//! Rows of the embedded backend: a queue's meta row and counters, the
//! per-job patches a transaction applies, retention, the events it
//! publishes, and jobs read back.

use super::*;

/// A queue's row as a write transaction needs it. `next_id` and `seq` are
/// advanced in memory and written back by [`save_meta`].
#[derive(Default)]
pub(super) struct Meta {
    pub(super) paused: bool,
    pub(super) next_id: i64,
    pub(super) seq: i64,
    pub(super) completed: i64,
    pub(super) failed: i64,
    pub(super) keep_completed_count: Option<i64>,
    pub(super) keep_completed_age_ms: Option<i64>,
    pub(super) keep_failed_count: Option<i64>,
    pub(super) keep_failed_age_ms: Option<i64>,
}

/// Changes to a queue's counters made by one transaction.
#[derive(Default)]
pub(super) struct Delta {
    pub(super) waiting: i64,
    pub(super) active: i64,
    pub(super) delayed: i64,
    pub(super) completed: i64,
    pub(super) failed: i64,
    pub(super) completed_total: i64,
    pub(super) failed_total: i64,
    pub(super) stalled_total: i64,
    pub(super) retried_total: i64,
}

impl Delta {
    pub(super) fn add(&mut self, state: JobState, n: i64) {
        match state {
            JobState::Waiting => self.waiting += n,
            JobState::Active => self.active += n,
            JobState::Delayed => self.delayed += n,
            JobState::Completed => self.completed += n,
            JobState::Failed => self.failed += n,
        }
    }
}

/// A queue's [`Meta`]: `?1` queue.
pub(super) const LOAD_META: &str =
    "SELECT paused, next_id, seq, completed, failed, keep_completed_count,
        keep_completed_age_ms, keep_failed_count, keep_failed_age_ms
    FROM queues WHERE name = ?1";

pub(super) async fn load_meta(
    conn: &mut SqliteConnection,
    queue: &QueueName,
) -> Result<Option<Meta>> {
    let row = sqlx::query(LOAD_META)
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

/// Writes back the counters a transaction advanced and applies its deltas:
/// `?1` queue, `?2` next id, `?3` seq, then the [`Delta`] fields in order.
pub(super) const SAVE_META: &str = "UPDATE queues SET next_id = ?2, seq = ?3,
        waiting = waiting + ?4, active = active + ?5, delayed = delayed + ?6,
        completed = completed + ?7, failed = failed + ?8,
        completed_total = completed_total + ?9, failed_total = failed_total + ?10,
        stalled_total = stalled_total + ?11, retried_total = retried_total + ?12
    WHERE name = ?1";

/// Writes back the counters a transaction advanced and applies its deltas.
pub(super) async fn save_meta(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    meta: &Meta,
    d: &Delta,
) -> Result<()> {
    sqlx::query(SAVE_META)
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

pub(super) async fn load_counts(
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
pub(super) async fn job_state(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    id: &JobId,
) -> Result<JobState> {
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

/// What stalled recovery needs to know about a job whose lease expired.
pub(super) struct Expired {
    pub(super) id: String,
    pub(super) stalled_count: i64,
    pub(super) attempts_made: i64,
    pub(super) max_attempts: i64,
    pub(super) priority: i64,
    pub(super) processed_at: Option<i64>,
}

impl Expired {
    pub(super) fn from_row(row: &SqliteRow) -> std::result::Result<Self, sqlx::Error> {
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

/// New values of one job for [`APPLY_PATCHES`]; `None` keeps a column.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Patch {
    pub(super) id: String,
    pub(super) state: &'static str,
    pub(super) sort_key: i64,
    /// The attempt record to append to the history, as JSON text.
    pub(super) record: Option<String>,
    pub(super) return_value: Option<String>,
    pub(super) failed_reason: Option<String>,
    pub(super) stacktrace: Option<String>,
    pub(super) finished_at: Option<i64>,
    /// Always written: only delayed jobs have one.
    pub(super) run_at: Option<i64>,
    pub(super) stalled_count: Option<i64>,
    /// The group of the failure this patch records ([`crate::errors`]).
    pub(super) error_group: Option<String>,
}

impl Patch {
    pub(super) fn new(
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
            error_group: None,
        })
    }
}

pub(super) async fn apply_patches(
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
pub(super) fn requeued(meta: &mut Meta, delta: &mut Delta, n: usize) {
    let n = n as i64;
    meta.seq += n;
    delta.add(JobState::Failed, -n);
    delta.add(JobState::Waiting, n);
    delta.retried_total += n;
}

/// Finished jobs of one state and what the queue keeps of them.
pub(super) struct RetentionSet {
    pub(super) state: JobState,
    current: i64,
    keep_count: Option<i64>,
    keep_age_ms: Option<i64>,
}

/// Completed, then failed: the order retention removes them in.
pub(super) fn retention_sets(meta: &Meta, delta: &Delta) -> [RetentionSet; 2] {
    [
        RetentionSet {
            state: JobState::Completed,
            current: meta.completed + delta.completed,
            keep_count: meta.keep_completed_count,
            keep_age_ms: meta.keep_completed_age_ms,
        },
        RetentionSet {
            state: JobState::Failed,
            current: meta.failed + delta.failed,
            keep_count: meta.keep_failed_count,
            keep_age_ms: meta.keep_failed_age_ms,
        },
    ]
}

impl RetentionSet {
    /// Whether anything limits these jobs.
    pub(super) fn keeps(&self) -> bool {
        self.keep_count.is_some() || self.keep_age_ms.is_some()
    }

    /// Jobs finished before this are too old, when an age is kept.
    pub(super) fn age_cutoff(&self, now: i64) -> Option<i64> {
        self.keep_age_ms.map(|age| now.saturating_sub(age))
    }

    /// How many to remove: those beyond the count kept, or the `old` ones
    /// ([`RETENTION_OLD`]) if more.
    pub(super) fn excess(&self, old: Option<i64>) -> i64 {
        let over = self.keep_count.map_or(0, |keep| self.current - keep);
        over.max(old.unwrap_or(0))
    }
}

/// Jobs of one state finished before a time, counted no further than the
/// budget (a backlog of old jobs is worked off across calls, not counted
/// in full each time): `?1` queue, `?2` state, `?3` cutoff, `?4` budget.
pub(super) const RETENTION_OLD: &str = "SELECT count(*) FROM (SELECT 1 FROM jobs
    WHERE queue = ?1 AND state = ?2 AND sort_key < ?3 LIMIT ?4)";

/// Deletes the `?3` oldest jobs of state `?2` in queue `?1`; returns their
/// ids.
pub(super) const RETENTION_DELETE: &str = "DELETE FROM jobs WHERE rowid IN (
        SELECT rowid FROM jobs WHERE queue = ?1 AND state = ?2
        ORDER BY sort_key, id LIMIT ?3)
    RETURNING id";

/// Deletes the oldest completed, then failed, jobs beyond the queue's
/// retention, at most `budget` in all; returns their ids.
pub(super) async fn apply_retention(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    meta: &Meta,
    delta: &mut Delta,
    now: i64,
    budget: i64,
) -> Result<Vec<JobId>> {
    let mut removed = Vec::new();
    for set in retention_sets(meta, delta) {
        let budget = budget - removed.len() as i64;
        if budget <= 0 || !set.keeps() {
            continue;
        }
        let old = match set.age_cutoff(now) {
            Some(cutoff) => Some(
                sqlx::query_scalar::<_, i64>(RETENTION_OLD)
                    .bind(queue.as_str())
                    .bind(set.state.as_str())
                    .bind(cutoff)
                    .bind(budget)
                    .fetch_one(&mut *conn)
                    .await?,
            ),
            None => None,
        };
        let n = set.excess(old).min(budget);
        if n <= 0 {
            continue;
        }
        let ids: Vec<String> = sqlx::query_scalar(RETENTION_DELETE)
            .bind(queue.as_str())
            .bind(set.state.as_str())
            .bind(n)
            .fetch_all(&mut *conn)
            .await?;
        delta.add(set.state, -(ids.len() as i64));
        removed.extend(stored_ids(ids)?);
    }
    Ok(removed)
}

/// The events of one transaction, one per kind, published after commit.
pub(super) struct Events {
    pub(super) queue: QueueName,
    pub(super) at: i64,
    pub(super) events: Vec<QueueEvent>,
}

impl Events {
    pub(super) fn new(queue: &QueueName, at: i64) -> Self {
        Self {
            queue: queue.clone(),
            at,
            events: Vec::new(),
        }
    }

    /// Adds an event for the jobs; nothing for none.
    pub(super) fn push(&mut self, kind: QueueEventKind, job_ids: Vec<JobId>) {
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
    pub(super) fn push_queue(&mut self, kind: QueueEventKind) {
        self.events.push(QueueEvent {
            queue: self.queue.clone(),
            kind,
            job_ids: Vec::new(),
            at: self.at,
        });
    }
}

/// Sort key of a waiting job: priority first, then arrival.
pub(super) fn waiting_key(priority: i64, seq: i64) -> i64 {
    priority.saturating_mul(PRIORITY_SHIFT).saturating_add(seq)
}

pub(super) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Caller-provided values (job data, return values, options) as JSON text.
pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| CoordError::InvalidOptions(e.to_string()))
}

/// The backend's own structures as JSON text; cannot fail for them.
pub(super) fn internal_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| CoordError::Corrupt(format!("encoding: {e}")))
}

/// An id read back from the database; only validated ids are stored.
pub(super) fn stored_ids(ids: Vec<String>) -> Result<Vec<JobId>> {
    ids.into_iter().map(stored_id).collect()
}

/// A job's stored columns before decoding, in [`job_columns!`] order.
pub(super) struct RawJob {
    pub(super) id: String,
    pub(super) name: Option<String>,
    pub(super) data: Option<String>,
    pub(super) options: Option<String>,
    pub(super) state: Option<String>,
    pub(super) attempts_made: Option<i64>,
    pub(super) stalled_count: Option<i64>,
    pub(super) failed_reason: Option<String>,
    pub(super) stacktrace: Option<String>,
    pub(super) history: Option<String>,
    pub(super) return_value: Option<String>,
    pub(super) created_at: Option<i64>,
    pub(super) processed_at: Option<i64>,
    pub(super) finished_at: Option<i64>,
    pub(super) run_at: Option<i64>,
    pub(super) lease_token: Option<String>,
    /// Only in clipped listings: the values left out.
    pub(super) clipped: Option<String>,
}

impl RawJob {
    /// From a row read with [`job_columns!`]; `Corrupt` names a column of
    /// the wrong type.
    pub(super) fn from_row(queue: &QueueName, row: &SqliteRow) -> Result<Self> {
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
            clipped: None,
            id,
        })
    }

    /// From a row read with [`job_columns!`] on the direct connection,
    /// by position.
    pub(super) fn from_direct_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            name: row.get(1)?,
            data: row.get(2)?,
            options: row.get(3)?,
            state: row.get(4)?,
            attempts_made: row.get(5)?,
            stalled_count: row.get(6)?,
            failed_reason: row.get(7)?,
            stacktrace: row.get(8)?,
            history: row.get(9)?,
            return_value: row.get(10)?,
            created_at: row.get(11)?,
            processed_at: row.get(12)?,
            finished_at: row.get(13)?,
            run_at: row.get(14)?,
            lease_token: row.get(15)?,
            clipped: None,
        })
    }

    /// Decodes the stored text ([`StoredJob::decode`]); `Corrupt` names
    /// the field at fault.
    pub(super) fn decode(self, queue: &QueueName) -> Result<Job> {
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
            clipped: self.clipped,
        }
        .decode(queue, &mut None)
    }
}
