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
