//! The native queues' operations that a form and the JSON API both offer.
//! Each one validates, acts and writes its audit record once; the handlers
//! in `routes/` are thin wrappers that only shape the answer (a
//! redirect with a notice, or JSON), so the two cannot drift apart again.

pub mod figures;
pub mod routes;
pub mod vm;

use coord::queue::QueueName;

pub use figures::RETRY_BATCH;
use figures::{BulkAction, RetryProgress};

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
    let (start, outcome, detail) = match state.hub.start_bulk(queue.clone(), BulkAction::RetryAll) {
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

/// Whether a bulk action on a filter's matches was started.
#[derive(Debug)]
pub enum MatchingStart {
    /// It runs on the hub over this many jobs; the receiver answers its
    /// final progress.
    Started(u64, tokio::sync::watch::Receiver<Option<RetryProgress>>),
    /// Another bulk run is going on this queue; nothing was started.
    AlreadyRunning,
    /// The filter matches no job now.
    Nothing,
}

/// The filter of a page in words, for progress lines and audit records.
pub fn filter_words(filter: &app::JobFilterVm) -> String {
    let mut parts = Vec::new();
    if !filter.name.is_empty() {
        parts.push(format!("name “{}”", filter.name));
    }
    if !filter.text.is_empty() {
        parts.push(format!("text “{}”", filter.text));
    }
    if !filter.group.is_empty() {
        parts.push(format!("error group {}", filter.group));
    }
    parts.join(", ")
}

/// Retries or removes exactly the jobs a filtered page matches as of now
/// (the server reads the set again: never only the visible page, never
/// jobs that arrive later), in the background with progress on the queue
/// page; audited with the filter and the count. Retry needs the failed
/// state, removal any state but active; a filter is required (without one,
/// Retry all failed is the button).
pub async fn start_matching(
    state: &AppState,
    actor: &Actor,
    queue: &QueueName,
    query: &vm::QueuePageQuery,
    action: coord::errors::GroupAction,
) -> Result<MatchingStart, AppError> {
    use coord::errors::GroupAction;
    use coord::queue::JobState;
    let name = match action {
        GroupAction::Retry => "queue.retry_matching",
        GroupAction::Remove => "queue.remove_matching",
    };
    let entry = AuditEntry::new(actor, name, "queue", queue.as_str());
    let checked = (|| {
        if !query.filter.is_active() {
            return Err(AppError::bad_request(
                "a filter (name, q or group) is required: without one, use retry-failed",
            ));
        }
        match (action, query.page.state) {
            (GroupAction::Retry, JobState::Failed) => Ok(()),
            (GroupAction::Retry, other) => Err(AppError::bad_request(format!(
                "only failed jobs can be retried (state is {other})"
            ))),
            (GroupAction::Remove, JobState::Active) => Err(AppError::bad_request(
                "active jobs cannot be removed: a worker holds them",
            )),
            (GroupAction::Remove, _) => Ok(()),
        }
    })();
    if let Err(err) = checked {
        return state.audit.outcome(entry, Err(err)).await;
    }
    let mut ids = Vec::new();
    // The listing's clip: the set is what the page's search matches.
    let clip = state.settings.listing_value_bytes;
    let scan = match vm::scan_filtered(&state.queues, queue, query, clip, |job| {
        ids.push(job.id.clone())
    })
    .await
    {
        Ok(scan) => scan,
        Err(err) => return state.audit.outcome(entry, Err(err.into())).await,
    };
    let filter = filter_words(&query.filter);
    let searched = if scan.complete() {
        format!("all {} {} jobs", scan.total, query.page.state)
    } else {
        format!(
            "the newest {} of {} {} jobs",
            scan.scanned, scan.total, query.page.state
        )
    };
    let n = ids.len() as u64;
    let detail = format!("{filter}: {n} matching (searched {searched})");
    if ids.is_empty() {
        state
            .audit
            .note(entry.ended(Outcome::Refused, Some(detail)))
            .await;
        return Ok(MatchingStart::Nothing);
    }
    let bulk = BulkAction::Matching {
        ids: std::sync::Arc::new(ids),
        action,
        state: query.page.state,
        filter,
    };
    let (start, outcome, detail) = match state.hub.start_bulk(queue.clone(), bulk) {
        Some(done) => {
            tracing::info!(%queue, n, action = action.as_str(), "bulk action on matching jobs started");
            (MatchingStart::Started(n, done), Outcome::Ok, detail)
        }
        None => (
            MatchingStart::AlreadyRunning,
            Outcome::Refused,
            format!("{detail}: another bulk action is running on the queue"),
        ),
    };
    state.audit.note(entry.ended(outcome, Some(detail))).await;
    Ok(start)
}

/// A job as its page, its live stream and the API show it: the job with
/// values clipped at [`vm::JOB_VALUE_BYTES`], and its progress and newest
/// `lines` log lines.
pub async fn job_detail(
    queues: &coord::queue::Queues,
    queue: &QueueName,
    id: &coord::queue::JobId,
    lines: u32,
) -> Result<(coord::queue::Job, coord::queue::JobReport), coord::CoordError> {
    let job = queues.job_clipped(queue, id, vm::JOB_VALUE_BYTES).await?;
    let report = queues.job_report(queue, id, lines).await?;
    Ok((job, report))
}
