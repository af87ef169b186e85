//! The embedded backend's operations on jobs and queues other than
//! enqueue and step: lease extension, stalled-job recovery, retry, remove,
//! promote, pause, retention and clean, each one write transaction.

use super::*;
use crate::errors::GroupId;

pub(super) async fn extend_leases(
    backend: &SqlBackend,
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
    let mut w = backend.begin_write().await?;
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

pub(super) async fn recover_stalled(
    backend: &SqlBackend,
    queue: &QueueName,
    max_stalled: u32,
) -> Result<StalledReport> {
    let mut w = backend.begin_write().await?;
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
                    error_group: Some(GroupId::of_reason(reason).to_string()),
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
    backend.publish(events);
    Ok(report)
}

pub(super) async fn retry(backend: &SqlBackend, queue: &QueueName, id: &JobId) -> Result<()> {
    let mut w = backend.begin_write().await?;
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
    backend.publish(events);
    Ok(())
}

pub(super) async fn retry_failed_batch(
    backend: &SqlBackend,
    queue: &QueueName,
    batch: usize,
) -> Result<u64> {
    let mut w = backend.begin_write().await?;
    let now = now_ms();
    let mut meta = load_meta(w.conn(), queue)
        .await?
        .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))?;
    if batch == 0 {
        w.commit().await?;
        return Ok(0);
    }
    let moved: Vec<String> = sqlx::query_scalar(requeue_failed!("ORDER BY sort_key, id LIMIT $2"))
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
    backend.publish(events);
    Ok(count)
}

pub(super) async fn remove(backend: &SqlBackend, queue: &QueueName, id: &JobId) -> Result<()> {
    let mut w = backend.begin_write().await?;
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
    backend.publish(events);
    Ok(())
}

pub(super) async fn promote(backend: &SqlBackend, queue: &QueueName, id: &JobId) -> Result<()> {
    let mut w = backend.begin_write().await?;
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
    backend.publish(events);
    Ok(())
}

pub(super) async fn stop_retrying(
    backend: &SqlBackend,
    queue: &QueueName,
    id: &JobId,
) -> Result<()> {
    let mut w = backend.begin_write().await?;
    let now = now_ms();
    let meta = load_meta(w.conn(), queue)
        .await?
        .ok_or_else(|| CoordError::QueueNotFound(queue.clone()))?;
    let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT state, attempts_made, failed_reason FROM jobs WHERE queue = $1 AND id = $2",
    )
    .bind(queue.as_str())
    .bind(id.as_str())
    .fetch_optional(w.conn())
    .await?;
    let Some((state, attempts_made, reason)) = row else {
        return Err(CoordError::JobNotFound {
            queue: queue.clone(),
            job: id.clone(),
        });
    };
    let actual: JobState = state.parse()?;
    if !matches!(actual, JobState::Waiting | JobState::Delayed) {
        return Err(CoordError::WrongState {
            queue: queue.clone(),
            job: id.clone(),
            actual,
            expected: JobState::Delayed,
        });
    }
    let Some(reason) = reason.filter(|r| attempts_made > 0 && !r.is_empty()) else {
        return Err(CoordError::NotRetrying {
            queue: queue.clone(),
            job: id.clone(),
        });
    };
    let group = crate::errors::GroupId::of_reason(&reason);
    sqlx::query(
        "UPDATE jobs SET state = 'failed', sort_key = $3, finished_at = $3, run_at = NULL,
             options = json_set(CASE WHEN json_valid(options) THEN options ELSE '{}' END,
                                '$.retriesStoppedAt', $3),
             error_group = $4
         WHERE queue = $1 AND id = $2",
    )
    .bind(queue.as_str())
    .bind(id.as_str())
    .bind(now)
    .bind(group.to_string())
    .execute(w.conn())
    .await?;
    let mut delta = Delta::default();
    delta.add(actual, -1);
    delta.add(JobState::Failed, 1);
    delta.failed_total += 1;
    save_meta(w.conn(), queue, &meta, &delta).await?;
    w.commit().await?;
    let mut events = Events::new(queue, now);
    events.push(QueueEventKind::Failed, vec![id.clone()]);
    backend.publish(events);
    Ok(())
}

pub(super) async fn set_paused(
    backend: &SqlBackend,
    queue: &QueueName,
    paused: bool,
) -> Result<()> {
    let mut w = backend.begin_write().await?;
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
    backend.publish(events);
    Ok(())
}

pub(super) async fn set_retention(
    backend: &SqlBackend,
    queue: &QueueName,
    policy: RetentionPolicy,
) -> Result<()> {
    let count = |v: Option<u64>| v.map(to_i64);
    let mut w = backend.begin_write().await?;
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

pub(super) async fn retention(backend: &SqlBackend, queue: &QueueName) -> Result<RetentionPolicy> {
    let mut conn = backend.inner.pool.acquire().await?;
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

pub(super) async fn clean(backend: &SqlBackend, queue: &QueueName, limit: usize) -> Result<u64> {
    let mut w = backend.begin_write().await?;
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
    backend.publish(events);
    Ok(count)
}
