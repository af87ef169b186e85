//! The native queues' operations that a form and the JSON API both offer.
//! Each one validates, acts and writes its audit record once; the handlers
//! in `routes/` are thin wrappers that only shape the answer (a
//! redirect with a notice, or JSON), so the two cannot drift apart again.

pub mod figures;
pub mod routes;
pub mod vm;

use coord::queue::QueueName;

pub use figures::RETRY_BATCH;
use figures::RetryProgress;

use crate::audit::{Actor, AuditEntry, Outcome};
use crate::http::error::AppError;
use crate::state::AppState;

/// Pauses or resumes a queue. A queue never used is a 404: a mistyped name
/// must not create one.
pub async fn set_paused(
    state: &AppState,
    actor: &Actor,
    queue: &QueueName,
    paused: bool,
) -> Result<(), AppError> {
    let action = if paused {
        "queue.pause"
    } else {
        "queue.resume"
    };
    let entry = AuditEntry::new(actor, action, "queue", queue.as_str());
    let result = async {
        state.queues.counts(queue).await?;
        if paused {
            state.queues.pause(queue).await?;
        } else {
            state.queues.resume(queue).await?;
        }
        Ok::<_, AppError>(())
    }
    .await;
    state.audit.outcome(entry, result).await?;
    tracing::info!(%queue, paused, "queue pause changed");
    Ok(())
}

/// Whether a retry of every failed job was started.
#[derive(Debug)]
pub enum RetryAllStart {
    /// It runs now, on the hub, in batches; its progress is the hub's, and
    /// the receiver answers this run's final progress once it ends.
    Started(tokio::sync::watch::Receiver<Option<RetryProgress>>),
    /// One was already running on this queue; nothing new was started.
    AlreadyRunning,
}

/// Starts retrying every failed job of a queue in the background, in
/// batches, with progress kept by the hub (shown live on the queue page,
/// and by `GET /api/queues/{queue}/retry-failed/progress`, on this server
/// for a minute after it ends). A second start
/// while one runs starts nothing. 404 for a queue never used.
pub async fn start_retry_all(
    state: &AppState,
    actor: &Actor,
    queue: &QueueName,
) -> Result<RetryAllStart, AppError> {
    let entry = AuditEntry::new(actor, "queue.retry_all", "queue", queue.as_str());
    if let Err(err) = state.queues.counts(queue).await {
        return state.audit.outcome(entry, Err(err.into())).await;
    }
    let (start, outcome, detail) = match state.hub.start_retry_all(queue.clone()) {
        Some(done) => {
            tracing::info!(%queue, "retry of all failed jobs started");
            (RetryAllStart::Started(done), Outcome::Ok, "started")
        }
        None => (
            RetryAllStart::AlreadyRunning,
            Outcome::Refused,
            "already running",
        ),
    };
    state
        .audit
        .note(entry.ended(outcome, Some(detail.to_owned())))
        .await;
    Ok(start)
}
