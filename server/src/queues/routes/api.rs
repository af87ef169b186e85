//! `/api/queues…`: queues with their counts, and queue-wide actions.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coord::queue::QueueName;
use serde_json::{Value, json};

use crate::audit::Actor;
use crate::http::error::AppError;
use crate::http::extract::{Json, Path, Query, QueuePath};
use crate::queues::figures::{QueueSummary, RetryProgress};
use crate::queues::vm::{QueuePageParams, QueuesParams, fresh_page};
use crate::queues::{MatchingStart, RetryAllStart};
use crate::state::AppState;

/// Most queues one `GET /api/queues` answers.
pub const MAX_QUEUES_LIMIT: u64 = 500;

/// The query of `GET /api/queues`: the queues page's plus a page size.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListParams {
    /// The page's order, filter and offset.
    #[serde(flatten)]
    pub page: QueuesParams,
    /// Queues per answer (default 100, at most [`MAX_QUEUES_LIMIT`]).
    pub limit: Option<String>,
}

/// A list's `?limit=`: 100 when absent, at most [`MAX_QUEUES_LIMIT`].
pub fn limit(text: Option<&str>) -> Result<u64, AppError> {
    match text.map(str::trim) {
        None | Some("") => Ok(100),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=MAX_QUEUES_LIMIT).contains(&n) => Ok(n),
            _ => Err(AppError::bad_request(format!(
                "limit must be a whole number from 1 to {MAX_QUEUES_LIMIT}, not {text:?}"
            ))),
        },
    }
}

/// `GET /api/queues?sort=&q=&offset=&limit=`: a page of queues with fresh
/// counts, in the queues page's order and filter, with how many match and
/// how many there are; 400 for a bad parameter.
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, AppError> {
    let query = params.page.parse()?;
    let limit = limit(params.limit.as_deref())?;
    let snapshot = state.hub.current();
    let (queues, matching, total) = fresh_page(&state.queues, &snapshot, &query, limit).await?;
    Ok(Json(json!({
        "backend": state.queues.kind().as_str(),
        "queues": queues,
        "sort": query.sort.as_str(),
        "q": query.filter,
        "offset": query.offset,
        "limit": limit,
        "matching": matching,
        "total": total,
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
/// can still enqueue. 404 for a queue never used, as the form.
pub async fn pause(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<Value>, AppError> {
    crate::queues::set_paused(&state, &actor, &queue, true).await?;
    Ok(Json(json!({ "name": queue, "paused": true })))
}

/// `POST /api/queues/{queue}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<Value>, AppError> {
    crate::queues::set_paused(&state, &actor, &queue, false).await?;
    Ok(Json(json!({ "name": queue, "paused": false })))
}

/// How long an API call that starts a bulk run (retry all, a group's
/// retry or removal, a filter's matches) waits for it before it answers
/// with the progress so far: a small run is done by then, and a large one
/// is not held on one request.
const BULK_WAIT: Duration = Duration::from_secs(2);

/// The answer to an API call whose bulk run is refused because another is
/// going on the queue: 409 with that run's progress.
pub fn answer_running(
    state: &AppState,
    queue: &QueueName,
    body: impl Fn(&RetryProgress) -> Value,
) -> Response {
    let progress = state.hub.progress(queue).unwrap_or_default();
    (StatusCode::CONFLICT, Json(body(&progress))).into_response()
}

/// The answer to an API call that started a bulk run: waits up to
/// [`BULK_WAIT`] for this run's own end (not the next snapshot: a run that
/// ended is answered at once, and a newer run of the queue cannot be
/// mistaken for it). 200 with its final progress, 503 naming where `what`
/// stopped when it failed, else 202 with the queue's current progress.
pub async fn answer_started(
    state: &AppState,
    queue: &QueueName,
    mut done: tokio::sync::watch::Receiver<Option<RetryProgress>>,
    what: &str,
    body: impl Fn(&RetryProgress) -> Value,
) -> Result<Response, AppError> {
    let ended = tokio::time::timeout(BULK_WAIT, done.wait_for(Option::is_some)).await;
    let last = match &ended {
        Ok(Ok(last)) => (**last).clone(),
        _ => None,
    };
    match last {
        Some(progress) => match &progress.error {
            Some(error) => Err(AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{what} stopped after {} jobs: {error}", progress.done),
            )),
            None => Ok(Json(body(&progress)).into_response()),
        },
        // Still running (its progress is the queue's current run).
        None => {
            let progress = state.hub.progress(queue).unwrap_or_default();
            Ok((StatusCode::ACCEPTED, Json(body(&progress))).into_response())
        }
    }
}

/// `POST /api/queues/{queue}/retry-failed`: the form's operation
/// ([`crate::queues::start_retry_all`]): every failed job back to waiting,
/// in batches of [`RETRY_BATCH`], on the hub. Answers 200 with
/// `{"retried": n, …}` once the run ended within [`BULK_WAIT`], else
/// 202 with the progress so far and where to follow it; 409 while another
/// run is going.
pub async fn retry_failed(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Response, AppError> {
    let body = |p: &RetryProgress| progress_json(&queue, p.clone());
    match crate::queues::start_retry_all(&state, &actor, &queue).await? {
        RetryAllStart::Started(done) => {
            answer_started(&state, &queue, done, "the retry", body).await
        }
        RetryAllStart::AlreadyRunning => Ok(answer_running(&state, &queue, body)),
    }
}

/// `GET /api/queues/{queue}/retry-failed/progress`: the latest retry-all
/// run of the queue on this server, started from the page or the API, kept
/// a minute after it ends; 404 otherwise. Runs belong to the server that
/// started them (behind a load balancer, ask the same one).
pub async fn retry_failed_progress(
    State(state): State<AppState>,
    Path(QueuePath { queue }): Path<QueuePath>,
) -> Result<Json<Value>, AppError> {
    let progress = state.hub.progress(&queue).ok_or_else(|| {
        AppError::not_found(format!(
            "no retry of all failed jobs of queue {queue} ran on this server in the last minute"
        ))
    })?;
    Ok(Json(progress_json(&queue, progress)))
}

/// A retry-all run as the API shows it.
fn progress_json(queue: &QueueName, progress: RetryProgress) -> Value {
    json!({
        "retried": progress.done,
        "total": progress.total,
        "finished": progress.finished,
        "error": progress.error,
        "progress": format!("/api/queues/{queue}/retry-failed/progress"),
    })
}

async fn act_on_matching(
    state: AppState,
    actor: Actor,
    queue: QueueName,
    params: QueuePageParams,
    action: coord::errors::GroupAction,
) -> Result<Response, AppError> {
    let query = params.parse()?;
    let body = |matched: u64, p: &RetryProgress| {
        json!({
            "action": action.as_str(),
            "filter": crate::queues::filter_words(&query.filter),
            "matched": matched,
            "done": p.done,
            "finished": p.finished,
            "error": p.error,
        })
    };
    match crate::queues::start_matching(&state, &actor, &queue, &query, action).await? {
        MatchingStart::Nothing => Ok(Json(body(
            0,
            &RetryProgress {
                finished: true,
                ..Default::default()
            },
        ))
        .into_response()),
        MatchingStart::AlreadyRunning => Ok(answer_running(&state, &queue, |p| body(0, p))),
        MatchingStart::Started(n, done) => {
            answer_started(&state, &queue, done, "the action", |p| body(n, p)).await
        }
    }
}

/// `POST /api/queues/{queue}/retry-matching?state=failed&name=&q=&group=`:
/// the form's operation ([`crate::queues::start_matching`]). 200 with the
/// count once done within two seconds, else 202 with the progress so far;
/// 400 without a filter or for a state other than failed; 409 while
/// another bulk run is going.
pub async fn retry_matching(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<QueuePageParams>,
) -> Result<Response, AppError> {
    act_on_matching(
        state,
        actor,
        queue,
        params,
        coord::errors::GroupAction::Retry,
    )
    .await
}

/// `POST /api/queues/{queue}/remove-matching?state=&name=&q=&group=`: as
/// [`retry_matching`], removing (any state but active).
pub async fn remove_matching(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<QueuePageParams>,
) -> Result<Response, AppError> {
    act_on_matching(
        state,
        actor,
        queue,
        params,
        coord::errors::GroupAction::Remove,
    )
    .await
}

/// `GET /api/queues/{queue}/retrying?offset=&limit=`: the jobs that failed
/// and will run again, due first, with their last error, next attempt and
/// attempts left.
pub async fn retrying(
    State(state): State<AppState>,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<crate::queues::routes::pages::RetryingParams>,
) -> Result<Json<Value>, AppError> {
    let vm = crate::queues::routes::pages::retrying_rows(&state, &queue, &params).await?;
    Ok(Json(retrying_json(&vm)))
}

/// A Retrying view as the API answers it, native or BullMQ.
pub fn retrying_json(vm: &app::RetryingVm) -> Value {
    let jobs: Vec<Value> = vm
        .jobs
        .iter()
        .map(|job| {
            json!({
                "id": job.id,
                "name": job.name,
                "state": if job.run_at.is_some() { "delayed" } else { "waiting" },
                "attemptsMade": job.attempts_made,
                "attempts": job.attempts,
                "attemptsLeft": job.attempts.saturating_sub(job.attempts_made),
                "lastError": job.failed_reason,
                "nextAttemptAt": job.run_at,
            })
        })
        .collect();
    json!({
        "jobs": jobs,
        "total": vm.total,
        "offset": vm.offset,
        "limit": vm.limit,
        "coverage": vm.coverage,
    })
}
