//! `/api/queues/{queue}/jobs…`: listing, inspecting, enqueueing and acting
//! on single jobs.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coord::queue::{Job, JobOptions, NewJob};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::{Actor, AuditEntry};
use crate::http::error::AppError;
use crate::http::extract::{JobPath, Json, PageParams, Path, Query, QueuePath};
use crate::state::AppState;

/// The body of `POST /api/queues/{queue}/jobs`. Unknown top-level keys are
/// refused so a misspelt `option` does not silently enqueue with defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// What kind of work this is (1–128 characters).
    pub name: String,
    /// The payload handed to the worker; `null` when absent.
    #[serde(default)]
    pub data: Value,
    /// Priority, delay, attempts, backoff, timeout and id; defaults when
    /// absent.
    #[serde(default)]
    pub options: JobOptions,
}

/// A job as the API shows it: everything but the worker's lease token,
/// which only the worker holding the job has any use for, and with why a
/// failed job stopped (`failure`, as its badge says; null otherwise) and
/// whether it waits to be retried (`retrying`), as BullMQ jobs say too.
fn job_json(job: Job) -> Result<Value, AppError> {
    let failure = crate::queues::vm::failure_kind(&job);
    let retrying = crate::queues::vm::is_retrying(&job);
    let mut value = serde_json::to_value(job).map_err(|err| {
        tracing::error!(error = %err, "cannot serialize a job");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot serialize the job",
        )
    })?;
    if let Some(object) = value.as_object_mut() {
        object.remove("leaseToken");
        object.insert("failure".into(), json!(failure));
        object.insert("retrying".into(), json!(retrying));
    }
    Ok(value)
}

/// `GET /api/queues/{queue}/jobs?state=…&offset=…&limit=…`: one page of
/// jobs in a state, newest first; `state` is required. Values longer than
/// `--listing-value-bytes` are left out where they are stored: such a job
/// says which in `clipped` (field and whole size) and links its whole self
/// in `url`, so a page of megabyte jobs costs kilobytes.
pub async fn list(
    State(state): State<AppState>,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<PageParams>,
) -> Result<Json<Value>, AppError> {
    let page = params.parse(None)?;
    let result = state
        .queues
        .list_clipped(
            &queue,
            page.state,
            page.offset,
            page.limit,
            state.settings.listing_value_bytes,
        )
        .await?;
    let jobs = result
        .jobs
        .into_iter()
        .map(|job| {
            let url = (!job.clipped.is_empty())
                .then(|| format!("/api/queues/{}/jobs/{}", job.queue, job.id));
            let mut value = job_json(job)?;
            if let (Some(url), Some(object)) = (url, value.as_object_mut()) {
                object.insert("url".into(), Value::String(url));
            }
            Ok(value)
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(Json(json!({
        "state": page.state,
        "jobs": jobs,
        "total": result.total,
        "offset": result.offset,
        "limit": result.limit,
    })))
}

/// `GET /api/queues/{queue}/jobs/{id}`: one job with its attempt history,
/// its `progress` (JSON, null when none), its `logs` (every kept line,
/// oldest first) and `logsDropped` (older lines the log's caps dropped).
pub async fn show(
    State(state): State<AppState>,
    Path(JobPath { queue, id }): Path<JobPath>,
) -> Result<Json<Value>, AppError> {
    let (job, report) =
        crate::queues::job_detail(&state.queues, &queue, &id, coord::queue::MAX_LOG_LINES).await?;
    let mut value = job_json(job)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("progress".into(), report.progress.unwrap_or(Value::Null));
        object.insert("logs".into(), json!(report.logs));
        object.insert("logsDropped".into(), json!(report.logs_dropped));
    }
    Ok(Json(value))
}

/// `POST /api/queues/{queue}/jobs`: 201 with the new job's id and its URL.
pub async fn enqueue(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
    Json(request): Json<EnqueueRequest>,
) -> Result<Response, AppError> {
    let job = NewJob {
        name: request.name,
        data: request.data,
        options: request.options,
    };
    let entry = AuditEntry::new(&actor, "job.enqueue", "queue", queue.as_str());
    let result = state
        .queues
        .enqueue(&queue, job)
        .await
        .map_err(AppError::from);
    let detail = result.as_ref().ok().map(|id| format!("job {id}"));
    let id = state
        .audit
        .outcome(AuditEntry { detail, ..entry }, result)
        .await?;
    let location = format!("/api/queues/{queue}/jobs/{id}");
    let mut response = (StatusCode::CREATED, Json(json!({ "id": id }))).into_response();
    // Queue names and job ids are restricted to URL-safe characters, so
    // this cannot fail; if it ever did, the header is simply left out.
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `POST /api/queues/{queue}/jobs/{id}/retry`: a failed job back to
/// waiting; 409 if it is not failed (so a double click retries once).
pub async fn retry(
    State(state): State<AppState>,
    actor: Actor,
    Path(JobPath { queue, id }): Path<JobPath>,
) -> Result<Json<Value>, AppError> {
    let entry = AuditEntry::new(&actor, "job.retry", "job", &format!("{queue}/{id}"));
    let result = state
        .queues
        .retry(&queue, &id)
        .await
        .map_err(AppError::from);
    state.audit.outcome(entry, result).await?;
    Ok(Json(json!({ "id": id, "state": "waiting" })))
}

/// `POST /api/queues/{queue}/jobs/{id}/remove`: deletes a job that is not
/// active; 409 while a worker holds it.
pub async fn remove(
    State(state): State<AppState>,
    actor: Actor,
    Path(JobPath { queue, id }): Path<JobPath>,
) -> Result<Json<Value>, AppError> {
    let entry = AuditEntry::new(&actor, "job.remove", "job", &format!("{queue}/{id}"));
    let result = state
        .queues
        .remove(&queue, &id)
        .await
        .map_err(AppError::from);
    state.audit.outcome(entry, result).await?;
    Ok(Json(json!({ "id": id, "removed": true })))
}

/// `POST /api/queues/{queue}/jobs/{id}/promote`: a delayed job runs now;
/// 409 if it is not delayed.
pub async fn promote(
    State(state): State<AppState>,
    actor: Actor,
    Path(JobPath { queue, id }): Path<JobPath>,
) -> Result<Json<Value>, AppError> {
    let entry = AuditEntry::new(&actor, "job.promote", "job", &format!("{queue}/{id}"));
    let result = state
        .queues
        .promote(&queue, &id)
        .await
        .map_err(AppError::from);
    state.audit.outcome(entry, result).await?;
    Ok(Json(json!({ "id": id, "state": "waiting" })))
}

/// `POST /api/queues/{queue}/jobs/{id}/stop-retrying`: a retrying job
/// (waiting or delayed after a failure) fails now, marked as stopped by an
/// operator; 409 for a job in another state or never failed.
pub async fn stop_retrying(
    State(state): State<AppState>,
    actor: Actor,
    Path(JobPath { queue, id }): Path<JobPath>,
) -> Result<Json<Value>, AppError> {
    let entry = AuditEntry::new(&actor, "job.stop_retrying", "job", &format!("{queue}/{id}"));
    let result = state
        .queues
        .stop_retrying(&queue, &id)
        .await
        .map_err(AppError::from);
    state.audit.outcome(entry, result).await?;
    Ok(Json(
        json!({ "id": id, "state": "failed", "failure": "stopped by an operator" }),
    ))
}
