//! Error groups on the embedded backend. The failing code writes each
//! job's group id; the triggers of `migrations/coord/sqlite/…_error_groups.sql`
//! keep `error_groups` and `error_group_names` exact on every move in or
//! out of the failed state, so what is here only reads those tables, the
//! partial index `jobs_failed_by_group`, and acts on a group's jobs.

use crate::errors::{
    ErrorGroup, ErrorGroups, GroupAction, GroupId, TREND_BUCKET_MS, TREND_BUCKETS, Trend,
};

use super::*;

/// Failed jobs given a group per statement by [`backfill`].
const BACKFILL_BATCH: i64 = 1000;

/// Gives every failed job written before error groups existed its group,
/// queue by queue through the partial index (so a database with none left
/// costs one index probe per queue); the triggers count them in.
pub(super) async fn backfill(backend: &SqlBackend) -> Result<u64> {
    let queues: Vec<String> = sqlx::query_scalar("SELECT name FROM queues WHERE failed > 0")
        .fetch_all(&backend.inner.pool)
        .await?;
    let mut done = 0u64;
    for queue in queues {
        loop {
            let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
                "SELECT rowid, failed_reason FROM jobs
                 WHERE queue = $1 AND state = 'failed' AND error_group IS NULL LIMIT $2",
            )
            .bind(&queue)
            .bind(BACKFILL_BATCH)
            .fetch_all(&backend.inner.pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            let groups: Vec<(i64, String)> = rows
                .into_iter()
                .map(|(rowid, reason)| {
                    let group = GroupId::of_reason(reason.as_deref().unwrap_or(""));
                    (rowid, group.to_string())
                })
                .collect();
            let mut w = backend.begin_write().await?;
            sqlx::query(
                "UPDATE jobs SET error_group = u.value ->> 1
                 FROM json_each($1) AS u
                 WHERE jobs.rowid = u.value ->> 0 AND jobs.state = 'failed'
                   AND jobs.error_group IS NULL",
            )
            .bind(internal_json(&groups)?)
            .execute(w.conn())
            .await?;
            w.commit().await?;
            done += groups.len() as u64;
        }
    }
    if done > 0 {
        tracing::info!(
            jobs = done,
            "gave failed jobs written before error groups their group"
        );
    }
    Ok(done)
}

pub(super) async fn error_groups(
    backend: &SqlBackend,
    queue: &QueueName,
    limit: usize,
) -> Result<ErrorGroups> {
    // One read transaction: the groups, their names and the total agree.
    let (mut tx, _) = begin_listing(&backend.inner.pool, queue).await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM error_groups WHERE queue = $1")
        .bind(queue.as_str())
        .fetch_one(&mut *tx)
        .await?;
    let rows = sqlx::query(
        "SELECT group_id, failed, first_seen, last_seen, sample_job, sample_reason
         FROM error_groups WHERE queue = $1
         ORDER BY last_seen DESC, group_id LIMIT $2",
    )
    .bind(queue.as_str())
    .bind(to_i64(limit as u64))
    .fetch_all(&mut *tx)
    .await?;
    let mut groups = Vec::with_capacity(rows.len());
    let mut index = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        match group_from_row(row) {
            Ok(group) => {
                index.insert(group.id, groups.len());
                groups.push(group);
            }
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "skipping an undecodable error group")
            }
        }
    }
    if !groups.is_empty() {
        // All the queue's names: as many rows as groups times their names,
        // which the groups bound; those of groups past the limit are
        // dropped here.
        let names: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT group_id, name, failed FROM error_group_names WHERE queue = $1")
                .bind(queue.as_str())
                .fetch_all(&mut *tx)
                .await?;
        for (group, name, failed) in names {
            if let Some(&i) = GroupId::parse(&group).and_then(|id| index.get(&id)) {
                groups[i]
                    .names
                    .push((name, u64::try_from(failed).unwrap_or(0)));
            }
        }
    }
    tx.commit().await?;
    for group in &mut groups {
        group.keep_top_names();
    }
    Ok(ErrorGroups {
        groups,
        total: u64::try_from(total).unwrap_or(0),
    })
}

fn group_from_row(row: &SqliteRow) -> std::result::Result<ErrorGroup, CoordError> {
    let corrupt = |e: sqlx::Error| CoordError::Corrupt(format!("error group row: {e}"));
    let id: String = row.try_get("group_id").map_err(corrupt)?;
    let id = GroupId::parse(&id).ok_or_else(|| {
        CoordError::Corrupt(format!("error group id {id:?} is not 16 hex digits"))
    })?;
    let sample_job: String = row.try_get("sample_job").map_err(corrupt)?;
    Ok(ErrorGroup {
        id,
        failed: u64::try_from(row.try_get::<i64, _>("failed").map_err(corrupt)?).unwrap_or(0),
        first_seen: row.try_get("first_seen").map_err(corrupt)?,
        last_seen: row.try_get("last_seen").map_err(corrupt)?,
        sample_job: stored_id(sample_job)?.as_str().to_owned(),
        sample_reason: crate::errors::sample(
            &row.try_get::<String, _>("sample_reason").map_err(corrupt)?,
        )
        .to_owned(),
        names: Vec::new(),
        names_total: 0,
    })
}

pub(super) async fn error_trends(
    backend: &SqlBackend,
    queue: &QueueName,
    groups: &[GroupId],
    now: i64,
) -> Result<Vec<Trend>> {
    let start = now - TREND_BUCKET_MS * TREND_BUCKETS as i64;
    let mut conn = backend.inner.pool.acquire().await?;
    let mut trends = Vec::with_capacity(groups.len());
    for group in groups {
        // Through the partial index: the group's failures of the hour only.
        let buckets: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT (sort_key - $3 - 1) / $5 AS bucket, count(*) FROM jobs
             WHERE queue = $1 AND state = 'failed' AND error_group = $2
               AND sort_key > $3 AND sort_key <= $4
             GROUP BY bucket",
        )
        .bind(queue.as_str())
        .bind(group.to_string())
        .bind(start)
        .bind(now)
        .bind(TREND_BUCKET_MS)
        .fetch_all(&mut *conn)
        .await?;
        let mut trend = Trend::default();
        for (bucket, n) in buckets {
            if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| trend.get_mut(b)) {
                *slot = u32::try_from(n).unwrap_or(u32::MAX);
            }
        }
        trends.push(trend);
    }
    Ok(trends)
}

/// A group's page: `$1` queue, `$2` group, `$3` limit, `$4` offset, `$5` clip.
const LIST_GROUP: &str = concat!(
    "SELECT ",
    clipped_job_columns!("$5"),
    " FROM jobs WHERE queue = $1 AND state = 'failed' AND error_group = $2
     ORDER BY sort_key DESC, id DESC LIMIT $3 OFFSET $4"
);

pub(super) async fn list_error_group(
    backend: &SqlBackend,
    queue: &QueueName,
    group: GroupId,
    offset: u64,
    limit: u64,
    clip: Option<u32>,
) -> Result<JobPage> {
    let (mut tx, _) = begin_listing(&backend.inner.pool, queue).await?;
    let group = group.to_string();
    let total: Option<i64> =
        sqlx::query_scalar("SELECT failed FROM error_groups WHERE queue = $1 AND group_id = $2")
            .bind(queue.as_str())
            .bind(&group)
            .fetch_optional(&mut *tx)
            .await?;
    let jobs = fetch_page(
        &mut tx,
        LIST_GROUP,
        queue,
        Some(&group),
        (offset, limit),
        clip,
    )
    .await?;
    tx.commit().await?;
    Ok(JobPage {
        jobs,
        total: total.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
        offset,
        limit,
    })
}

pub(super) async fn error_group_batch(
    backend: &SqlBackend,
    queue: &QueueName,
    group: GroupId,
    action: GroupAction,
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
    let limit = to_i64(batch as u64);
    let group = group.to_string();
    let moved: Vec<String> = match action {
        GroupAction::Retry => {
            sqlx::query_scalar(requeue_failed!(
                "AND error_group = $4 ORDER BY sort_key, id LIMIT $2"
            ))
            .bind(queue.as_str())
            .bind(limit)
            .bind(meta.seq)
            .bind(&group)
            .fetch_all(w.conn())
            .await?
        }
        GroupAction::Remove => {
            sqlx::query_scalar(
                "DELETE FROM jobs WHERE rowid IN (
                     SELECT rowid FROM jobs
                     WHERE queue = $1 AND state = 'failed' AND error_group = $3
                     ORDER BY sort_key, id LIMIT $2)
                 RETURNING id",
            )
            .bind(queue.as_str())
            .bind(limit)
            .bind(&group)
            .fetch_all(w.conn())
            .await?
        }
    };
    if moved.is_empty() {
        w.commit().await?;
        return Ok(0);
    }
    let mut delta = Delta::default();
    let kind = match action {
        GroupAction::Retry => {
            requeued(&mut meta, &mut delta, moved.len());
            QueueEventKind::Retried
        }
        GroupAction::Remove => {
            delta.add(JobState::Failed, -(moved.len() as i64));
            QueueEventKind::Removed
        }
    };
    save_meta(w.conn(), queue, &meta, &delta).await?;
    w.commit().await?;
    let count = moved.len() as u64;
    let mut events = Events::new(queue, now);
    events.push(kind, stored_ids(moved)?);
    backend.publish(events);
    Ok(count)
}

/// The retrying jobs' page: `$1` queue, `$2` limit, `$3` offset, `$4` clip.
const LIST_RETRYING: &str = concat!(
    "SELECT ",
    clipped_job_columns!("$4"),
    " FROM jobs INDEXED BY jobs_retrying
     WHERE queue = $1 AND state IN ('waiting', 'delayed') AND attempts_made > 0
       AND failed_reason IS NOT NULL
     ORDER BY run_at, id LIMIT $2 OFFSET $3"
);

pub(super) async fn list_retrying(
    backend: &SqlBackend,
    queue: &QueueName,
    offset: u64,
    limit: u64,
    clip: Option<u32>,
) -> Result<JobPage> {
    let (mut tx, _) = begin_listing(&backend.inner.pool, queue).await?;
    // Counted through the index, up to the cap.
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_retrying
             WHERE queue = $1 AND state IN ('waiting', 'delayed') AND attempts_made > 0
               AND failed_reason IS NOT NULL LIMIT $2)",
    )
    .bind(queue.as_str())
    .bind(to_i64(crate::queue::MAX_RETRYING_COUNT))
    .fetch_one(&mut *tx)
    .await?;
    let jobs = fetch_page(&mut tx, LIST_RETRYING, queue, None, (offset, limit), clip).await?;
    tx.commit().await?;
    Ok(JobPage {
        jobs,
        total: u64::try_from(total).unwrap_or(0),
        offset,
        limit,
    })
}
