//! The worker registry in SQLite: one `workers` row per worker. Liveness
//! is judged against `expires_at` at the reader's clock, as the local
//! instance registry does, so a crashed worker turns stale, gone, then
//! forgotten exactly as on Redis.

use std::time::Duration;

use sqlx::Row;

use super::SqlBackend;
use crate::error::{CoordError, Result};
use crate::instances::{Thresholds, duration_ms};
use crate::queue::workers::{
    WorkerCommand, WorkerId, WorkerReport, WorkerView, judge_entries, stored_command,
};
use crate::time::now_ms;

pub(super) async fn heartbeat(
    backend: &SqlBackend,
    report: &WorkerReport,
    ttl: Duration,
) -> Result<Option<WorkerCommand>> {
    report.validate()?;
    let json = serde_json::to_string(report)
        .map_err(|e| CoordError::Corrupt(format!("cannot encode worker report: {e}")))?;
    let expires_at = now_ms().saturating_add(duration_ms(ttl));
    let mut w = backend.begin_write().await?;
    let command: Option<String> = sqlx::query_scalar(
        "INSERT INTO workers (id, queue, report, heartbeat_at, expires_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET queue = excluded.queue, report = excluded.report,
             heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at
         RETURNING command",
    )
    .bind(report.id.as_str())
    .bind(report.queue.as_str())
    .bind(&json)
    .bind(report.heartbeat_at)
    .bind(expires_at)
    .fetch_one(w.conn())
    .await?;
    w.commit().await?;
    Ok(stored_command(command.as_deref()))
}

pub(super) async fn leave(backend: &SqlBackend, id: &WorkerId) -> Result<()> {
    let mut w = backend.begin_write().await?;
    sqlx::query("DELETE FROM workers WHERE id = $1")
        .bind(id.as_str())
        .execute(w.conn())
        .await?;
    w.commit().await
}

pub(super) async fn list(
    backend: &SqlBackend,
    now_ms: i64,
    thresholds: &Thresholds,
) -> Result<Vec<WorkerView>> {
    let rows = sqlx::query("SELECT id, report, expires_at, command FROM workers")
        .fetch_all(backend.pool())
        .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        let json: String = row.try_get("report")?;
        match serde_json::from_str::<WorkerReport>(&json) {
            Ok(report) if report.id.as_str() == id => {
                let expires_at: i64 = row.try_get("expires_at")?;
                let command: Option<String> = row.try_get("command")?;
                entries.push((
                    report,
                    now_ms >= expires_at,
                    stored_command(command.as_deref()),
                ));
            }
            // One bad row must not hide the other workers; it is left for
            // someone to inspect.
            Ok(_) => tracing::warn!(id, "worker row holds another worker's report; skipped"),
            Err(e) => tracing::warn!(id, error = %e, "corrupt worker row; skipped"),
        }
    }
    let (views, forget) = judge_entries(entries, now_ms, thresholds);
    if !forget.is_empty() {
        let ids = serde_json::to_string(&forget)
            .map_err(|e| CoordError::Corrupt(format!("cannot encode worker ids: {e}")))?;
        let mut w = backend.begin_write().await?;
        // Only those still silent: one that came back meanwhile stays.
        sqlx::query(
            "DELETE FROM workers WHERE id IN (SELECT value FROM json_each($1)) AND expires_at <= $2",
        )
        .bind(ids)
        .bind(now_ms)
        .execute(w.conn())
        .await?;
        w.commit().await?;
    }
    Ok(views)
}

pub(super) async fn command(
    backend: &SqlBackend,
    id: &WorkerId,
    command: WorkerCommand,
) -> Result<()> {
    let stored = match command {
        WorkerCommand::Resume => None,
        other => Some(other.as_str()),
    };
    let mut w = backend.begin_write().await?;
    let done = sqlx::query("UPDATE workers SET command = $2 WHERE id = $1")
        .bind(id.as_str())
        .bind(stored)
        .execute(w.conn())
        .await?;
    w.commit().await?;
    if done.rows_affected() == 0 {
        return Err(CoordError::WorkerNotFound(id.to_string()));
    }
    Ok(())
}
