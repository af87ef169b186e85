//! The worker's step on the embedded backend: outcomes recorded, retention
//! applied, due delayed jobs moved, waiting jobs claimed, in one write
//! transaction of about ten set-based statements.

use super::*;

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
        let mut w = self.begin_write().await?;
        let now = now_ms();
        let Some(meta) = load_meta(w.conn(), queue).await? else {
            // A worker may start before any producer: nothing to do, and
            // no job for any outcome.
            w.commit().await?;
            return Ok(StepResult {
                stale: outcomes.into_iter().map(|o| o.job_id).collect(),
                ..StepResult::default()
            });
        };
        let mut step = Step {
            queue,
            now,
            meta,
            delta: Delta::default(),
            events: Events::new(queue, now),
        };
        let stale = step.settle(w.conn(), outcomes).await?;
        step.retain(w.conn()).await?;
        step.promote_due(w.conn()).await?;
        let claimed = step.claim(w.conn(), claim, lease_ms).await?;
        let next_due_at = next_due_at(w.conn(), queue).await?;
        save_meta(w.conn(), queue, &step.meta, &step.delta).await?;
        w.commit().await?;
        // Only after the commit: a subscriber must never hear of a change
        // that was rolled back.
        self.publish(step.events);
        Ok(StepResult {
            claimed,
            next_due_at,
            stale,
        })
    }
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
    patches: Vec<Patch>,
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
    async fn settle(
        &mut self,
        conn: &mut SqliteConnection,
        outcomes: Vec<Outcome>,
    ) -> Result<Vec<JobId>> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let probe: Vec<&str> = outcomes.iter().map(|o| o.job_id.as_str()).collect();
        let held = held_jobs(conn, self.queue, &probe).await?;
        let mut seen = HashSet::new();
        let mut settled = Settled::default();
        for outcome in outcomes {
            match held_under_lease(&held, &mut seen, &outcome) {
                Some(job) => self.settle_one(job, outcome, &mut settled)?,
                None => settled.stale.push(outcome.job_id),
            }
        }
        apply_patches(conn, self.queue, &settled.patches).await?;
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
        settled.patches.push(patch);
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
    async fn retain(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        let removed = apply_retention(
            conn,
            self.queue,
            &self.meta,
            &mut self.delta,
            self.now,
            STEP_BUDGET,
        )
        .await?;
        self.events.push(QueueEventKind::Removed, removed);
        Ok(())
    }

    /// Delayed jobs that fell due become waiting in run order, behind the
    /// jobs of their priority already waiting; at most [`STEP_BUDGET`] per
    /// step, so that one step stays short.
    async fn promote_due(&mut self, conn: &mut SqliteConnection) -> Result<()> {
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
        .bind(self.queue.as_str())
        .bind(self.now)
        .bind(self.meta.seq)
        .bind(STEP_BUDGET)
        .fetch_all(&mut *conn)
        .await?;
        let n = due.len() as i64;
        self.meta.seq += n;
        self.delta.add(JobState::Delayed, -n);
        self.delta.add(JobState::Waiting, n);
        self.events.push(QueueEventKind::Promoted, stored_ids(due)?);
        Ok(())
    }

    /// Leases up to `claim` waiting jobs, highest priority then oldest. A
    /// paused queue hands out nothing but still settles what is running.
    async fn claim(
        &mut self,
        conn: &mut SqliteConnection,
        claim: usize,
        lease_ms: i64,
    ) -> Result<Vec<Job>> {
        if claim == 0 || self.meta.paused {
            return Ok(Vec::new());
        }
        let limit = to_i64(claim as u64);
        let rows = claimable(conn, self.queue, limit).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let token_base = format!("{:016x}", rand::random::<u64>());
        let deadline = self.now.saturating_add(lease_ms);
        lease_waiting(conn, self.queue, self.now, &token_base, deadline, limit).await?;
        let n = rows.len() as i64;
        self.delta.add(JobState::Waiting, -n);
        self.delta.add(JobState::Active, n);
        let claimed = claimed_jobs(self.queue, rows, &token_base, self.now);
        let ids = claimed.iter().map(|job| job.id.clone()).collect();
        self.events.push(QueueEventKind::Active, ids);
        Ok(claimed)
    }
}

/// The job an outcome may settle: active under the lease the outcome
/// presents, and not settled already by an earlier outcome of the same
/// step (a duplicate report must not count twice).
fn held_under_lease<'h>(
    held: &'h HashMap<String, Held>,
    seen: &mut HashSet<String>,
    outcome: &Outcome,
) -> Option<&'h Held> {
    let id = outcome.job_id.as_str();
    held.get(id).filter(|job| {
        job.state == JobState::Active.as_str()
            && job.lease_token.as_deref() == Some(outcome.lease_token.as_str())
            && seen.insert(id.to_owned())
    })
}

/// The waiting jobs a claim of `limit` takes, as one row holding every job
/// as JSON: handing rows one by one from SQLite's thread costs more than
/// the claim itself.
async fn claimable(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    limit: i64,
) -> Result<Vec<Value>> {
    let packed: Option<String> = sqlx::query_scalar(concat!(
        "SELECT json_group_array(json_array(",
        job_columns!(),
        ", sort_key)) FROM (SELECT * FROM jobs WHERE queue = $1 AND state = 'waiting'
           ORDER BY sort_key, id LIMIT $2)"
    ))
    .bind(queue.as_str())
    .bind(limit)
    .fetch_one(&mut *conn)
    .await?;
    match packed {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| CoordError::Corrupt(format!("claim of queue {queue}: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Makes the jobs [`claimable`] read active under a lease of their own
/// (`token_base.id`) until `deadline`. The same rows as that SELECT:
/// nothing can change them while this transaction holds the write lock.
async fn lease_waiting(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    now: i64,
    token_base: &str,
    deadline: i64,
    limit: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'active', attempts_made = attempts_made + 1,
             processed_at = $2, lease_token = $3 || '.' || id, sort_key = $4
         WHERE rowid IN (SELECT rowid FROM jobs WHERE queue = $1 AND state = 'waiting'
                         ORDER BY sort_key, id LIMIT $5)",
    )
    .bind(queue.as_str())
    .bind(now)
    .bind(token_base)
    .bind(deadline)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The claimed jobs as the worker gets them, in claim order, with what
/// [`lease_waiting`] wrote (the JSON was read before it). A job that does
/// not decode stays active without a worker, so stalled recovery
/// eventually fails it; the rest of the batch is still handed out.
fn claimed_jobs(queue: &QueueName, rows: Vec<Value>, token_base: &str, now: i64) -> Vec<Job> {
    let mut raws: Vec<Result<RawJob>> = rows
        .into_iter()
        .map(|row| {
            serde_json::from_value(row)
                .map_err(|e| CoordError::Corrupt(format!("claimed job in queue {queue}: {e}")))
        })
        .collect();
    raws.sort_by(claim_order);
    let mut claimed = Vec::with_capacity(raws.len());
    for raw in raws {
        match raw.and_then(|raw| raw.decode(queue)) {
            Ok(mut job) => {
                job.state = JobState::Active;
                job.attempts_made = job.attempts_made.saturating_add(1);
                job.processed_at = Some(now);
                job.lease_token = Some(format!("{token_base}.{}", job.id));
                job.run_at = None;
                claimed.push(job);
            }
            Err(e) => {
                tracing::error!(queue = %queue, error = %e, "claimed an undecodable job; leaving it to stall");
            }
        }
    }
    claimed
}

/// The aggregate that packs a claim need not keep its subquery's order, so
/// the jobs are put back in it; rows that did not decode go last.
fn claim_order(a: &Result<RawJob>, b: &Result<RawJob>) -> std::cmp::Ordering {
    match (a, b) {
        (Ok(a), Ok(b)) => (a.sort_key, &a.id).cmp(&(b.sort_key, &b.id)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => std::cmp::Ordering::Equal,
    }
}

/// When the next delayed job falls due, so that an idle worker sleeps just
/// that long.
async fn next_due_at(conn: &mut SqliteConnection, queue: &QueueName) -> Result<Option<i64>> {
    let next: Option<i64> =
        sqlx::query_scalar("SELECT min(sort_key) FROM jobs WHERE queue = $1 AND state = 'delayed'")
            .bind(queue.as_str())
            .fetch_one(&mut *conn)
            .await?;
    Ok(next)
}

/// What settling an outcome needs to know about its job.
#[derive(Deserialize)]
pub(super) struct Held {
    pub(super) id: String,
    pub(super) state: String,
    pub(super) lease_token: Option<String>,
    pub(super) attempts_made: i64,
    pub(super) max_attempts: i64,
    pub(super) priority: i64,
}

/// The jobs outcomes are reported for, by id. Read as one JSON row (rows
/// handed over one by one cost more than the lookup); a row that cannot be
/// decoded is left out, so its outcome counts as stale rather than failing
/// every step of the queue.
pub(super) async fn held_jobs(
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
