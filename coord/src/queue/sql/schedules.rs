//! Schedules on SQLite: one `schedules` row per schedule, its definition
//! as JSON. A fire is one `BEGIN IMMEDIATE` transaction: the
//! compare-and-set of `next_run_at` and `version`, then the job written by
//! the enqueue path itself ([`enqueue_into`]), so every process sharing
//! the file fires each tick once.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::enqueue::{EnqueueRequest, enqueue_into};
use super::*;
use crate::queue::schedules::{Fire, Fired, Schedule, ScheduleId, ScheduleState};

const COLUMNS: &str =
    "id, definition, paused, next_run_at, last_run_at, last_job_id, runs, version";

fn decode(row: &SqliteRow) -> Result<ScheduleState> {
    let id: String = row.try_get("id")?;
    let definition: String = row.try_get("definition")?;
    let mut schedule: Schedule = serde_json::from_str(&definition)
        .map_err(|e| CoordError::Corrupt(format!("schedule {id}: {e}")))?;
    schedule.paused = row.try_get::<i64, _>("paused")? != 0;
    let last_job_id: Option<String> = row.try_get("last_job_id")?;
    Ok(ScheduleState {
        schedule,
        next_run_at: row.try_get("next_run_at")?,
        last_run_at: row.try_get("last_run_at")?,
        last_job_id: last_job_id.map(JobId::new).transpose()?,
        runs: u64::try_from(row.try_get::<i64, _>("runs")?).unwrap_or(0),
        version: row.try_get("version")?,
    })
}

fn not_found(id: &ScheduleId) -> CoordError {
    CoordError::ScheduleNotFound(id.to_string())
}

pub(super) async fn upsert(
    backend: &SqlBackend,
    schedule: &Schedule,
    next_run_at: Option<i64>,
) -> Result<()> {
    let definition = serde_json::to_string(schedule)
        .map_err(|e| CoordError::Corrupt(format!("cannot encode schedule: {e}")))?;
    let mut w = backend.begin_write().await?;
    sqlx::query(
        "INSERT INTO schedules (id, queue, definition, paused, next_run_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET queue = excluded.queue,
             definition = excluded.definition, paused = excluded.paused,
             next_run_at = excluded.next_run_at, version = schedules.version + 1,
             updated_at = excluded.updated_at",
    )
    .bind(schedule.id.as_str())
    .bind(schedule.queue.as_str())
    .bind(definition)
    .bind(i64::from(schedule.paused))
    .bind(next_run_at)
    .bind(now_ms())
    .execute(w.conn())
    .await
    .map_err(|e| backend.inner.note(e))?;
    w.commit().await
}

pub(super) async fn remove(backend: &SqlBackend, id: &ScheduleId) -> Result<()> {
    let mut w = backend.begin_write().await?;
    let done = sqlx::query("DELETE FROM schedules WHERE id = $1")
        .bind(id.as_str())
        .execute(w.conn())
        .await
        .map_err(|e| backend.inner.note(e))?;
    w.commit().await?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

pub(super) async fn list(backend: &SqlBackend) -> Result<Vec<ScheduleState>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM schedules ORDER BY id"))
        .fetch_all(backend.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        match decode(row) {
            Ok(state) => out.push(state),
            // One bad row must not hide the others.
            Err(e) => tracing::warn!(error = %e, "corrupt schedule row; skipped"),
        }
    }
    Ok(out)
}

pub(super) async fn get(backend: &SqlBackend, id: &ScheduleId) -> Result<ScheduleState> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM schedules WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(backend.pool())
        .await?;
    decode(&row.ok_or_else(|| not_found(id))?)
}

pub(super) async fn set_paused(
    backend: &SqlBackend,
    id: &ScheduleId,
    paused: bool,
    next_run_at: Option<i64>,
) -> Result<()> {
    let mut w = backend.begin_write().await?;
    let done = sqlx::query(
        "UPDATE schedules SET paused = $2, next_run_at = $3, version = version + 1,
             updated_at = $4 WHERE id = $1",
    )
    .bind(id.as_str())
    .bind(i64::from(paused))
    .bind(next_run_at)
    .bind(now_ms())
    .execute(w.conn())
    .await
    .map_err(|e| backend.inner.note(e))?;
    w.commit().await?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

pub(super) async fn fire(backend: &SqlBackend, fires: &[Fire]) -> Result<Vec<Fired>> {
    let fired = fire_tx(backend, fires).await;
    backend.inner.noted(fired)
}

/// Where a schedule stands, as the fire reads it.
struct Stored {
    queue: String,
    next: Option<i64>,
    version: i64,
    paused: bool,
    runs: i64,
}

/// One schedule's change, as the fire's update reads it from JSON.
#[derive(Serialize)]
struct Change<'a> {
    id: &'a str,
    /// 1: the compare-and-set held, the next run moves.
    cas: i64,
    next: Option<i64>,
    /// 1 when a scheduled run was made.
    ran: i64,
    job: Option<&'a str>,
}

/// Every fire in one transaction: the schedules read with one statement,
/// each compare-and-set decided here, the winners' jobs written by the
/// enqueue path ([`enqueue_into`], one insert per queue), the schedules
/// updated with one statement. So a thousand schedules due at once cost
/// one commit.
async fn fire_tx(backend: &SqlBackend, fires: &[Fire]) -> Result<Vec<Fired>> {
    let mut encoded = Vec::with_capacity(fires.len());
    for fire in fires {
        encoded.push(match &fire.job {
            Some(job) => Some((to_json(&job.data)?, to_json(&job.options)?)),
            None => None,
        });
    }
    let ids: Vec<&str> = fires.iter().map(|f| f.id.as_str()).collect();
    let mut w = backend.begin_write().await?;
    let rows = sqlx::query(
        "SELECT id, queue, next_run_at, version, paused, runs FROM schedules
         WHERE id IN (SELECT value FROM json_each($1))",
    )
    .bind(internal_json(&ids)?)
    .fetch_all(w.conn())
    .await?;
    let mut stored = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("id")?;
        stored.insert(
            id,
            Stored {
                queue: row.try_get("queue")?,
                next: row.try_get("next_run_at")?,
                version: row.try_get("version")?,
                paused: row.try_get::<i64, _>("paused")? != 0,
                runs: row.try_get("runs")?,
            },
        );
    }
    let mut outcomes = Vec::with_capacity(fires.len());
    let mut changes = Vec::new();
    // Per queue, in order of first appearance, the jobs of the winners.
    let mut requests: Vec<EnqueueRequest> = Vec::new();
    for (fire, encoded) in fires.iter().zip(encoded) {
        let Some(s) = stored
            .get_mut(fire.id.as_str())
            .filter(|s| s.queue == fire.queue.as_str())
        else {
            outcomes.push(Fired::Missing);
            continue;
        };
        if let Some((next, version)) = fire.expected
            && (s.paused || s.next != Some(next) || s.version != version)
        {
            // Someone else fired or edited it first.
            outcomes.push(Fired::Stale {
                next_run_at: s.next,
                version: s.version,
                paused: s.paused,
                runs: u64::try_from(s.runs).unwrap_or(0),
            });
            continue;
        }
        let cas = fire.expected.is_some();
        let ran = cas && fire.job.is_some();
        if cas {
            s.next = fire.next_run_at;
        }
        s.runs += i64::from(ran);
        changes.push(Change {
            id: fire.id.as_str(),
            cas: i64::from(cas),
            next: fire.next_run_at,
            ran: i64::from(ran),
            job: fire
                .job
                .as_ref()
                .and_then(|j| j.options.job_id.as_ref())
                .map(JobId::as_str),
        });
        if let (Some(job), Some(encoded)) = (&fire.job, encoded) {
            match requests.iter_mut().find(|r| r.queue == fire.queue) {
                Some(r) => {
                    r.jobs.push(job.clone());
                    r.encoded.push(encoded);
                }
                None => requests.push(EnqueueRequest {
                    queue: fire.queue.clone(),
                    jobs: vec![job.clone()],
                    encoded: vec![encoded],
                }),
            }
        }
        outcomes.push(Fired::Done);
    }
    if changes.is_empty() {
        return Ok(outcomes);
    }
    let now = now_ms();
    let mut events = Vec::new();
    for request in &requests {
        let (_, added) = enqueue_into(w.conn(), &request.queue, now, &[request]).await?;
        let mut batch = Events::new(&request.queue, now);
        batch.push(QueueEventKind::Enqueued, added);
        events.extend(batch.events);
    }
    sqlx::query(
        "UPDATE schedules SET
             next_run_at = CASE WHEN u.cas = 1 THEN u.next ELSE schedules.next_run_at END,
             runs = schedules.runs + u.ran,
             last_run_at = CASE WHEN u.job IS NULL THEN schedules.last_run_at ELSE $2 END,
             last_job_id = coalesce(u.job, schedules.last_job_id)
         FROM (SELECT value ->> 'id' AS id, value ->> 'cas' AS cas, value ->> 'next' AS next,
                      value ->> 'ran' AS ran, value ->> 'job' AS job
               FROM json_each($1)) AS u
         WHERE schedules.id = u.id",
    )
    .bind(internal_json(&changes)?)
    .bind(now)
    .execute(w.conn())
    .await?;
    w.commit().await?;
    backend.publish_all(events);
    Ok(outcomes)
}
