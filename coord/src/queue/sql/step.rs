//! The worker's step on the embedded backend: outcomes recorded, retention
//! applied, due delayed jobs moved, waiting jobs claimed, in one write
//! transaction on the direct connection ([`super::direct`]): the statements
//! run back to back on one thread with cached plans, per job where that is
//! simplest (a row costs microseconds there, not a thread hand-off).

use rusqlite::{Connection, OptionalExtension, params};

use super::direct::sql_error;
use super::*;
use crate::errors::GroupId;

impl SqlBackend {
    /// One worker step in one write transaction (see [`QueueBackend::step`]).
    pub(super) async fn step_tx(
        &self,
        queue: &QueueName,
        outcomes: Vec<Outcome>,
        claim: usize,
        lease: Duration,
    ) -> Result<StepResult> {
        let lease_ms = duration_ms(lease);
        let lock = self.inner.write_lock.clone().lock_owned().await;
        self.inner.last_write_at.store(now_ms(), Ordering::Relaxed);
        let inner = self.inner.clone();
        let queue = queue.clone();
        let stepped = self
            .inner
            .direct
            .transaction(
                &self.inner.pool,
                lock,
                move |conn| run_step(conn, &queue, outcomes, claim, lease_ms),
                // Only after the commit: a subscriber must never hear of a
                // change that was rolled back.
                move |(_, events): &mut (StepResult, Vec<QueueEvent>)| {
                    inner.writes.record(Ok(()));
                    if !events.is_empty() {
                        // No subscriber is not an error: nobody listens now.
                        let _ = inner.events.send(Arc::new(std::mem::take(events)));
                    }
                },
            )
            .await?;
        Ok(stepped.0)
    }
}

/// The step's statements, inside the transaction.
fn run_step(
    conn: &Connection,
    queue: &QueueName,
    outcomes: Vec<Outcome>,
    claim: usize,
    lease_ms: i64,
) -> Result<(StepResult, Vec<QueueEvent>)> {
    let now = now_ms();
    let Some(meta) = load_meta_direct(conn, queue)? else {
        // A worker may start before any producer: nothing to do, and no
        // job for any outcome.
        let stale = outcomes.into_iter().map(|o| o.job_id).collect();
        return Ok((
            StepResult {
                stale,
                ..StepResult::default()
            },
            Vec::new(),
        ));
    };
    let mut step = Step {
        queue,
        now,
        meta,
        delta: Delta::default(),
        events: Events::new(queue, now),
    };
    let stale = step.settle(conn, outcomes)?;
    step.retain(conn)?;
    step.promote_due(conn)?;
    let claimed = step.claim(conn, claim, lease_ms)?;
    let next_due_at: Option<i64> = conn
        .prepare_cached("SELECT min(sort_key) FROM jobs WHERE queue = ?1 AND state = 'delayed'")
        .and_then(|mut s| s.query_row([queue.as_str()], |row| row.get(0)))
        .map_err(sql_error)?;
    save_meta_direct(conn, queue, &step.meta, &step.delta)?;
    Ok((
        StepResult {
            claimed,
            next_due_at,
            stale,
        },
        step.events.events,
    ))
}

/// The queue's row ([`LOAD_META`]).
fn load_meta_direct(conn: &Connection, queue: &QueueName) -> Result<Option<Meta>> {
    conn.prepare_cached(LOAD_META)
        .and_then(|mut s| {
            s.query_row([queue.as_str()], |row| {
                Ok(Meta {
                    paused: row.get("paused")?,
                    next_id: row.get("next_id")?,
                    seq: row.get("seq")?,
                    completed: row.get("completed")?,
                    failed: row.get("failed")?,
                    keep_completed_count: row.get("keep_completed_count")?,
                    keep_completed_age_ms: row.get("keep_completed_age_ms")?,
                    keep_failed_count: row.get("keep_failed_count")?,
                    keep_failed_age_ms: row.get("keep_failed_age_ms")?,
                })
            })
            .optional()
        })
        .map_err(sql_error)
}

/// Writes the counters back ([`SAVE_META`]).
fn save_meta_direct(conn: &Connection, queue: &QueueName, meta: &Meta, d: &Delta) -> Result<()> {
    conn.prepare_cached(SAVE_META)
        .and_then(|mut s| {
            s.execute(params![
                queue.as_str(),
                meta.next_id,
                meta.seq,
                d.waiting,
                d.active,
                d.delayed,
                d.completed,
                d.failed,
                d.completed_total,
                d.failed_total,
                d.stalled_total,
                d.retried_total,
            ])
        })
        .map(|_| ())
        .map_err(sql_error)
}

/// One step's transaction so far. Counter changes and events are collected
/// here and written back (or published) once, at the end: one update of
/// the queue row however many jobs the step moves, and no event from a
/// step that fails part-way.
struct Step<'q> {
    queue: &'q QueueName,
    /// One clock reading for the whole step, so that every job it touches
    /// agrees on when it happened.
    now: i64,
    meta: Meta,
    delta: Delta,
    events: Events,
}

/// The outcomes of one step, sorted for one patch statement and one event
/// per kind.
#[derive(Default)]
struct Settled {
    /// Each with its job's rowid.
    patches: Vec<(i64, Patch)>,
    stale: Vec<JobId>,
    completed: Vec<JobId>,
    retrying: Vec<JobId>,
    failed: Vec<JobId>,
}

/// Where a failed attempt leaves its job.
struct Placement {
    state: JobState,
    sort_key: i64,
    run_at: Option<i64>,
    finished_at: Option<i64>,
}

impl Step<'_> {
    /// Records the outcomes and returns the ids of those that were ignored
    /// (stale): a job whose lease expired may have been recovered and
    /// claimed again, and its earlier worker must not settle it.
    fn settle(&mut self, conn: &Connection, outcomes: Vec<Outcome>) -> Result<Vec<JobId>> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = HashSet::new();
        let mut settled = Settled::default();
        let mut lookup = conn
            .prepare_cached(
                "SELECT rowid, id, state, lease_token, attempts_made, max_attempts, priority
                 FROM jobs WHERE queue = ?1 AND id = ?2",
            )
            .map_err(sql_error)?;
        for outcome in outcomes {
            let held = lookup
                .query_row(
                    params![self.queue.as_str(), outcome.job_id.as_str()],
                    |row| {
                        Ok(Held {
                            rowid: row.get(0)?,
                            id: row.get(1)?,
                            state: row.get(2)?,
                            lease_token: row.get(3)?,
                            attempts_made: row.get(4)?,
                            max_attempts: row.get(5)?,
                            priority: row.get(6)?,
                        })
                    },
                )
                .optional();
            let held = match held {
                Ok(held) => held,
                Err(err @ rusqlite::Error::SqliteFailure(..)) => return Err(sql_error(err)),
                // A row that cannot be read counts as stale rather than
                // failing every step of the queue.
                Err(e) => {
                    tracing::error!(queue = %self.queue, job = %outcome.job_id, error = %e, "skipping an undecodable job row");
                    None
                }
            };
            match held.filter(|job| job.holds(&outcome) && seen.insert(outcome.job_id.clone())) {
                Some(job) => self.settle_one(&job, outcome, &mut settled)?,
                None => settled.stale.push(outcome.job_id),
            }
        }
        drop(lookup);
        for (rowid, p) in &settled.patches {
            let common = params![
                rowid,
                p.state,
                p.sort_key,
                p.record,
                p.return_value,
                p.failed_reason,
                p.stacktrace,
                p.finished_at,
                p.run_at,
            ];
            match &p.error_group {
                None => conn
                    .prepare_cached(PATCH_ONE)
                    .and_then(|mut s| s.execute(common)),
                Some(group) => conn.prepare_cached(PATCH_FAILED).and_then(|mut s| {
                    let mut all = common.to_vec();
                    all.push(group as &dyn rusqlite::ToSql);
                    s.execute(all.as_slice())
                }),
            }
            .map_err(sql_error)?;
        }
        let events = &mut self.events;
        events.push(QueueEventKind::Completed, settled.completed);
        events.push(QueueEventKind::Retrying, settled.retrying);
        events.push(QueueEventKind::Failed, settled.failed);
        Ok(settled.stale)
    }

    /// Books one held job's outcome: its patch, the counters it moves and
    /// the event it belongs to.
    fn settle_one(&mut self, job: &Held, outcome: Outcome, settled: &mut Settled) -> Result<()> {
        let record = AttemptRecord {
            attempt: u32::try_from(job.attempts_made).unwrap_or(0),
            started_at: outcome.started_at,
            finished_at: outcome.finished_at,
            error: None,
            chain: Vec::new(),
        };
        let (patch, state) = self.outcome_patch(job, outcome.result, record)?;
        settled.patches.push((job.rowid, patch));
        self.delta.add(JobState::Active, -1);
        self.delta.add(state, 1);
        match state {
            JobState::Completed => {
                self.delta.completed_total += 1;
                settled.completed.push(outcome.job_id);
            }
            JobState::Failed => {
                self.delta.failed_total += 1;
                settled.failed.push(outcome.job_id);
            }
            _ => settled.retrying.push(outcome.job_id),
        }
        Ok(())
    }

    /// The job's next state and the row change that takes it there, with
    /// the attempt appended to its history (the error and its chain too,
    /// for a failure, so that the dashboard shows every attempt's cause).
    fn outcome_patch(
        &mut self,
        job: &Held,
        result: OutcomeResult,
        mut record: AttemptRecord,
    ) -> Result<(Patch, JobState)> {
        match result {
            OutcomeResult::Completed { value } => {
                let patch = Patch {
                    return_value: Some(to_json(&value)?),
                    finished_at: Some(self.now),
                    ..Patch::new(&job.id, JobState::Completed, self.now, Some(&record))?
                };
                Ok((patch, JobState::Completed))
            }
            OutcomeResult::Failed {
                error,
                retry_delay_ms,
            } => {
                record.error = Some(error.message.clone());
                record.chain = error.chain.clone();
                let next = self.after_failure(job, error.retryable, retry_delay_ms);
                let patch = Patch {
                    error_group: Some(GroupId::of_reason(&error.message).to_string()),
                    failed_reason: Some(error.message),
                    stacktrace: Some(internal_json(&error.chain)?),
                    finished_at: next.finished_at,
                    run_at: next.run_at,
                    ..Patch::new(&job.id, next.state, next.sort_key, Some(&record))?
                };
                Ok((patch, next.state))
            }
        }
    }

    /// A failure is retried while attempts remain and a retry can fix it:
    /// after the delay the worker computed from the job's backoff, or at
    /// once (behind the jobs of its priority already waiting) without one.
    fn after_failure(&mut self, job: &Held, retryable: bool, retry_delay_ms: u64) -> Placement {
        let now = self.now;
        if !retryable || job.attempts_made >= job.max_attempts {
            return Placement {
                state: JobState::Failed,
                sort_key: now,
                run_at: None,
                finished_at: Some(now),
            };
        }
        let delay = to_i64(retry_delay_ms);
        if delay > 0 {
            let run_at = now.saturating_add(delay);
            return Placement {
                state: JobState::Delayed,
                sort_key: run_at,
                run_at: Some(run_at),
                finished_at: None,
            };
        }
        self.meta.seq += 1;
        Placement {
            state: JobState::Waiting,
            sort_key: waiting_key(job.priority, self.meta.seq),
            run_at: None,
            finished_at: None,
        }
    }

    /// Retention runs with every step, bounded, so that finished jobs never
    /// pile up and no single step pays for a large backlog.
    fn retain(&mut self, conn: &Connection) -> Result<()> {
        let mut removed = Vec::new();
        for set in retention_sets(&self.meta, &self.delta) {
            let budget = STEP_BUDGET - removed.len() as i64;
            if budget <= 0 || !set.keeps() {
                continue;
            }
            let old = match set.age_cutoff(self.now) {
                Some(cutoff) => Some(
                    conn.prepare_cached(RETENTION_OLD)
                        .and_then(|mut s| {
                            s.query_row(
                                params![self.queue.as_str(), set.state.as_str(), cutoff, budget],
                                |row| row.get::<_, i64>(0),
                            )
                        })
                        .map_err(sql_error)?,
                ),
                None => None,
            };
            let n = set.excess(old).min(budget);
            if n <= 0 {
                continue;
            }
            let ids = conn
                .prepare_cached(RETENTION_DELETE)
                .and_then(|mut s| {
                    s.query_map(params![self.queue.as_str(), set.state.as_str(), n], |row| {
                        row.get::<_, String>(0)
                    })?
                    .collect::<rusqlite::Result<Vec<String>>>()
                })
                .map_err(sql_error)?;
            self.delta.add(set.state, -(ids.len() as i64));
            removed.extend(stored_ids(ids)?);
        }
        self.events.push(QueueEventKind::Removed, removed);
        Ok(())
    }

    /// Delayed jobs that fell due become waiting in run order, behind the
    /// jobs of their priority already waiting; at most [`STEP_BUDGET`] per
    /// step, so that one step stays short.
    fn promote_due(&mut self, conn: &Connection) -> Result<()> {
        let due = conn
            .prepare_cached(concat!(
                "UPDATE jobs SET state = 'waiting', run_at = NULL,
                     sort_key = jobs.priority * ",
                priority_shift!(),
                " + ?3 + d.rn
                 FROM (SELECT rowid AS rid, row_number() OVER (ORDER BY sort_key, id) AS rn
                       FROM jobs WHERE queue = ?1 AND state = 'delayed' AND sort_key <= ?2
                       ORDER BY sort_key, id LIMIT ?4) AS d
                 WHERE jobs.rowid = d.rid
                 RETURNING jobs.id"
            ))
            .and_then(|mut s| {
                s.query_map(
                    params![self.queue.as_str(), self.now, self.meta.seq, STEP_BUDGET],
                    |row| row.get::<_, String>(0),
                )?
                .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(sql_error)?;
        let n = due.len() as i64;
        self.meta.seq += n;
        self.delta.add(JobState::Delayed, -n);
        self.delta.add(JobState::Waiting, n);
        self.events.push(QueueEventKind::Promoted, stored_ids(due)?);
        Ok(())
    }

    /// Leases up to `claim` waiting jobs, highest priority then oldest. A
    /// paused queue hands out nothing but still settles what is running.
    /// A job that does not decode stays active without a worker, so
    /// stalled recovery eventually fails it; the rest are handed out.
    fn claim(&mut self, conn: &Connection, claim: usize, lease_ms: i64) -> Result<Vec<Job>> {
        if claim == 0 || self.meta.paused {
            return Ok(Vec::new());
        }
        let limit = to_i64(claim as u64);
        let token_base = format!("{:016x}", rand::random::<u64>());
        let deadline = self.now.saturating_add(lease_ms);
        let queue = self.queue;
        let mut select = conn
            .prepare_cached(concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs WHERE queue = ?1 AND state = 'waiting' ORDER BY sort_key, id LIMIT ?2"
            ))
            .map_err(sql_error)?;
        let raws = select
            .query_map(params![queue.as_str(), limit], RawJob::from_direct_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<RawJob>>>())
            .map_err(sql_error)?;
        if raws.is_empty() {
            return Ok(Vec::new());
        }
        // The same rows as the SELECT: nothing can change them while this
        // transaction holds the write lock.
        conn.prepare_cached(
            "UPDATE jobs SET state = 'active', attempts_made = attempts_made + 1,
                 processed_at = ?2, lease_token = ?3 || '.' || id, sort_key = ?4
             WHERE rowid IN (SELECT rowid FROM jobs WHERE queue = ?1 AND state = 'waiting'
                             ORDER BY sort_key, id LIMIT ?5)",
        )
        .and_then(|mut s| {
            s.execute(params![
                queue.as_str(),
                self.now,
                token_base,
                deadline,
                limit
            ])
        })
        .map_err(sql_error)?;
        let n = raws.len() as i64;
        self.delta.add(JobState::Waiting, -n);
        self.delta.add(JobState::Active, n);
        let mut claimed = Vec::with_capacity(raws.len());
        for raw in raws {
            match raw.decode(queue) {
                Ok(mut job) => {
                    job.state = JobState::Active;
                    job.attempts_made = job.attempts_made.saturating_add(1);
                    job.processed_at = Some(self.now);
                    job.lease_token = Some(format!("{token_base}.{}", job.id));
                    job.run_at = None;
                    claimed.push(job);
                }
                Err(e) => {
                    tracing::error!(queue = %queue, error = %e, "claimed an undecodable job; leaving it to stall");
                }
            }
        }
        let ids = claimed.iter().map(|job| job.id.clone()).collect();
        self.events.push(QueueEventKind::Active, ids);
        Ok(claimed)
    }
}

/// One job's outcome written ([`Patch`] by rowid): a NULL keeps a column,
/// and `record` is appended to the history, which is restarted if it is
/// not valid JSON, so one damaged row cannot wedge every worker step.
/// `$extra` adds columns (see [`PATCH_FAILED`]).
macro_rules! patch_one {
    ($extra:literal) => {
        concat!(
            "UPDATE jobs SET
    state = ?2,
    sort_key = ?3,
    lease_token = NULL,
    history = CASE
        WHEN ?4 IS NULL THEN history
        WHEN json_valid(history) THEN json_insert(history, '$[#]', json(?4))
        ELSE json_array(json(?4))
    END,
    return_value = coalesce(?5, return_value),
    failed_reason = coalesce(?6, failed_reason),
    stacktrace = coalesce(?7, stacktrace),
    finished_at = coalesce(?8, finished_at),
    run_at = ?9",
            $extra,
            " WHERE rowid = ?1"
        )
    };
}

/// A completion or a failure without a group ([`patch_one!`]).
const PATCH_ONE: &str = patch_one!("");

/// A failure, which also writes the job's error group (`?10`): a statement
/// of its own, so that completions never set `error_group` and never run
/// the error-group triggers (see the migration).
const PATCH_FAILED: &str = patch_one!(", error_group = ?10");

/// What settling an outcome needs to know about its job.
struct Held {
    rowid: i64,
    id: String,
    state: String,
    lease_token: Option<String>,
    attempts_made: i64,
    max_attempts: i64,
    priority: i64,
}

impl Held {
    /// Active under the lease the outcome presents.
    fn holds(&self, outcome: &Outcome) -> bool {
        self.state == JobState::Active.as_str()
            && self.lease_token.as_deref() == Some(outcome.lease_token.as_str())
    }
}
