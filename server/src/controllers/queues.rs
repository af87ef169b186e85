//! `/api/queues…`: queues with their counts, and queue-wide actions.

use axum::extract::State;
use coord::CoordError;
use coord::queue::{QueueCounts, QueueName, Queues};
use futures_util::future::try_join_all;
use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::{Actor, AuditEntry};
use crate::error::AppError;
use crate::extract::{Json, Path, QueuePath};
use crate::startup::AppState;

/// Failed jobs moved back per atomic step of a "retry all", so one request
/// never holds the backend for long.
pub const RETRY_BATCH: usize = 500;

/// A queue and its counts, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    /// The queue.
    pub name: QueueName,
    /// Its counts, flattened next to the name in JSON.
    #[serde(flatten)]
    pub counts: QueueCounts,
}

/// Every queue with its counts, sorted by name. Counts are fetched
/// concurrently: each is O(1) on the backend, so the page costs one round
/// trip's latency rather than one per queue.
pub async fn summaries(queues: &Queues) -> Result<Vec<QueueSummary>, CoordError> {
    let names = queues.queues().await?;
    try_join_all(names.into_iter().map(|name| async move {
        let counts = queues.counts(&name).await?;
        Ok::<_, CoordError>(QueueSummary { name, counts })
    }))
    .await
}

/// `GET /api/queues`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let queues = summaries(&state.queues).await?;
    Ok(Json(json!({
        "backend": state.queues.kind().as_str(),
        "queues": queues,
    })))
}

/// `GET /api/queues/{queue}`: 404 for a queue never used.
pub async fn show(
    State(state): State<AppState>,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<QueueSummary>, AppError> {
    let counts = state.queues.counts(&queue).await?;
    Ok(Json(QueueSummary {
        name: queue,
        counts,
    }))
}

/// `POST /api/queues/{queue}/pause`: workers stop taking jobs; producers
/// can still enqueue.
pub async fn pause(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<Value>, AppError> {
    let entry = AuditEntry::new(&actor, "queue.pause", "queue", queue.as_str());
    let result = state.queues.pause(&queue).await.map_err(AppError::from);
    state.audit.outcome(entry, result).await?;
    tracing::info!(%queue, "queue paused");
    Ok(Json(json!({ "name": queue, "paused": true })))
}

/// `POST /api/queues/{queue}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<Value>, AppError> {
    let entry = AuditEntry::new(&actor, "queue.resume", "queue", queue.as_str());
    let result = state.queues.resume(&queue).await.map_err(AppError::from);
    state.audit.outcome(entry, result).await?;
    tracing::info!(%queue, "queue resumed");
    Ok(Json(json!({ "name": queue, "paused": false })))
}

/// `POST /api/queues/{queue}/retry-failed`: every failed job back to
/// waiting, in batches of [`RETRY_BATCH`].
pub async fn retry_failed(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<Value>, AppError> {
    let entry = AuditEntry::new(&actor, "queue.retry_all", "queue", queue.as_str());
    let result = state
        .queues
        .retry_all_failed(&queue, RETRY_BATCH, |_| {})
        .await
        .map_err(AppError::from);
    let detail = result.as_ref().ok().map(|n| format!("retried {n}"));
    let entry = AuditEntry { detail, ..entry };
    let retried = state.audit.outcome(entry, result).await?;
    tracing::info!(%queue, retried, "failed jobs retried");
    Ok(Json(json!({ "retried": retried })))
}
