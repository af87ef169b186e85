//! A running job's log lines and progress on SQLite
//! ([`crate::queue::report`]): lines in `job_logs`, the per-job counters
//! that keep them within the caps on the job's row.

use futures_util::TryStreamExt;
use sqlx::Row;

use super::SqlBackend;
use super::rows::to_i64;
use crate::error::{CoordError, Result};
use crate::queue::report::{JobReport, MAX_LOG_BYTES, MAX_LOG_LINES};
use crate::queue::{JobId, QueueName};

/// The job row only its lease holder may write to.
const HELD: &str = "queue = $1 AND id = $2 AND state = 'active' AND lease_token = $3";

pub(super) async fn append_logs(
    backend: &SqlBackend,
    queue: &QueueName,
    id: &JobId,
    token: &str,
    lines: &[String],
) -> Result<bool> {
    let mut w = backend.begin_write().await?;
    let held = sqlx::query(&format!(
        "SELECT log_lines, log_bytes, logs_dropped FROM jobs WHERE {HELD}"
    ))
    .bind(queue.as_str())
    .bind(id.as_str())
    .bind(token)
    .fetch_optional(w.conn())
    .await?;
    let Some(row) = held else {
        return Ok(false);
    };
    let (mut kept, mut bytes, mut dropped): (i64, i64, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    // `seq` counts every line ever written: the next one follows them.
    for (seq, line) in (kept + dropped..).zip(lines) {
        sqlx::query("INSERT INTO job_logs (queue, id, seq, line) VALUES ($1, $2, $3, $4)")
            .bind(queue.as_str())
            .bind(id.as_str())
            .bind(seq)
            .bind(line)
            .execute(w.conn())
            .await?;
    }
    kept += lines.len() as i64;
    bytes += lines.iter().map(|l| to_i64(l.len() as u64)).sum::<i64>();
    if kept > i64::from(MAX_LOG_LINES) || bytes > i64::from(MAX_LOG_BYTES) {
        // The oldest lines, read only as far as the caps need.
        let mut last = None;
        {
            let mut oldest = sqlx::query(
                "SELECT seq, length(CAST(line AS BLOB)) FROM job_logs \
                 WHERE queue = $1 AND id = $2 ORDER BY seq",
            )
            .bind(queue.as_str())
            .bind(id.as_str())
            .fetch(w.conn());
            while kept > i64::from(MAX_LOG_LINES) || bytes > i64::from(MAX_LOG_BYTES) {
                let Some(row) = oldest.try_next().await? else {
                    break;
                };
                let len: i64 = row.try_get(1)?;
                last = Some(row.try_get::<i64, _>(0)?);
                kept -= 1;
                bytes -= len;
                dropped += 1;
            }
        }
        if let Some(last) = last {
            sqlx::query("DELETE FROM job_logs WHERE queue = $1 AND id = $2 AND seq <= $3")
                .bind(queue.as_str())
                .bind(id.as_str())
                .bind(last)
                .execute(w.conn())
                .await?;
        }
    }
    sqlx::query(
        "UPDATE jobs SET log_lines = $3, log_bytes = $4, logs_dropped = $5 \
         WHERE queue = $1 AND id = $2",
    )
    .bind(queue.as_str())
    .bind(id.as_str())
    .bind(kept)
    .bind(bytes)
    .bind(dropped)
    .execute(w.conn())
    .await?;
    w.commit().await?;
    Ok(true)
}

pub(super) async fn set_progress(
    backend: &SqlBackend,
    queue: &QueueName,
    id: &JobId,
    token: &str,
    progress: &str,
) -> Result<bool> {
    let mut w = backend.begin_write().await?;
    let done = sqlx::query(&format!("UPDATE jobs SET progress = $4 WHERE {HELD}"))
        .bind(queue.as_str())
        .bind(id.as_str())
        .bind(token)
        .bind(progress)
        .execute(w.conn())
        .await?;
    w.commit().await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn job_report(
    backend: &SqlBackend,
    queue: &QueueName,
    id: &JobId,
    lines: u32,
) -> Result<JobReport> {
    // One snapshot: the counters and the lines agree.
    let mut tx = backend.inner.pool.begin().await?;
    let row = sqlx::query(
        "SELECT progress, log_lines, logs_dropped FROM jobs WHERE queue = $1 AND id = $2",
    )
    .bind(queue.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        drop(tx);
        backend.ensure_exists(queue).await?;
        return Err(CoordError::JobNotFound {
            queue: queue.clone(),
            job: id.clone(),
        });
    };
    let progress = match row.try_get::<Option<String>, _>(0)? {
        None => None,
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
            CoordError::Corrupt(format!("progress of job {id} in queue {queue}: {e}"))
        })?),
    };
    let kept: i64 = row.try_get(1)?;
    let dropped: i64 = row.try_get(2)?;
    let logs: Vec<String> = if kept == 0 || lines == 0 {
        Vec::new()
    } else {
        sqlx::query_scalar(
            "SELECT line FROM (SELECT seq, line FROM job_logs WHERE queue = $1 AND id = $2 \
             ORDER BY seq DESC LIMIT $3) ORDER BY seq",
        )
        .bind(queue.as_str())
        .bind(id.as_str())
        .bind(i64::from(lines))
        .fetch_all(&mut *tx)
        .await?
    };
    Ok(JobReport {
        progress,
        logs,
        logs_kept: kept.max(0) as u64,
        logs_dropped: dropped.max(0) as u64,
    })
}
