//! The HTML pages people look at, and the stylesheet and script they use.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use coord::queue::JobId;
use coord::time::now_ms;
use serde::Deserialize;

use crate::controllers::queues::summaries;
use crate::error::{AppError, one_line};
use crate::extract::{JobPath, Path, Query, QueuePath};
use crate::flash::{self, Flash};
use crate::screens::{QueuePageParams, listing, queue_page, queue_row};
use crate::startup::AppState;
use crate::views::{config_page, job_page};

/// The stylesheet, compiled into the binary so a deployment is one file.
const STYLESHEET: &str = include_str!("../../../style/switchyard.css");

/// `GET /`: backend health, totals, the alerts slot and throughput charts,
/// from the hub's latest snapshot. Served with 503 (and the reason on the
/// page) when the backend does not answer, so a monitor notices too.
pub async fn overview(State(state): State<AppState>) -> Response {
    let snapshot = state.hub.ready().await;
    let vm = snapshot.overview_vm();
    let status = if vm.health.backend_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Html(app::render_overview_page(&vm))).into_response()
}

/// `GET /queues`: every queue with fresh counts (an action just redirected
/// here must show its effect), rates and badges from the snapshot.
pub async fn queues(State(state): State<AppState>, Flash(notice): Flash) -> Response {
    let snapshot = state.hub.ready().await;
    let mut vm = snapshot.queues_vm();
    let shown = notice.is_some();
    vm.notice = notice;
    let (health, listing) = tokio::join!(state.queues.health(), summaries(&state.queues));
    let mut status = StatusCode::OK;
    match health {
        Ok(h) => {
            vm.health.backend_ok = true;
            vm.health.latency_ms = Some(h.latency.as_secs_f64() * 1000.0);
            vm.health.memory_bytes = h.memory_bytes;
            vm.health.problem = None;
        }
        Err(err) => {
            vm.health.backend_ok = false;
            vm.health.problem = Some(one_line(&err.to_string()));
        }
    }
    vm.health.stale = false;
    match listing {
        Ok(list) => {
            vm.queues = list
                .iter()
                .map(|s| queue_row(&snapshot, &s.name, &s.counts))
                .collect();
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot list queues for the queues page");
            vm.health.backend_ok = false;
            vm.health
                .problem
                .get_or_insert_with(|| one_line(&err.to_string()));
            vm.health.stale = !vm.queues.is_empty();
            status = StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let mut response = with_flash_cleared(Html(app::render_queues_page(&vm)), shown);
    *response.status_mut() = status;
    response
}

/// `GET /queues/{queue}?state=&offset=&limit=&name=&q=`: one queue's jobs
/// in a state (waiting by default), optionally filtered; 404 for a queue
/// never used, 400 for a malformed parameter.
pub async fn queue(
    State(state): State<AppState>,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<QueuePageParams>,
    Flash(notice): Flash,
) -> Result<Response, AppError> {
    let query = params.parse()?;
    let counts = state.queues.counts(&queue).await?;
    let found = listing(&state.queues, &queue, &query).await?;
    let snapshot = state.hub.current();
    let row = queue_row(&snapshot, &queue, &counts);
    let mut vm = queue_page(row, &query, found, &snapshot);
    vm.progress = state.hub.progress(&queue);
    let shown = notice.is_some();
    vm.notice = notice;
    Ok(with_flash_cleared(
        Html(app::render_queue_page(&vm, now_ms())),
        shown,
    ))
}

/// `GET /queues/{queue}/jobs/{id}`: one job with its history.
pub async fn job(
    State(state): State<AppState>,
    Path(JobPath { queue, id }): Path<JobPath>,
    Flash(notice): Flash,
) -> Result<Response, AppError> {
    let job = state.queues.job(&queue, &id).await?;
    let mut vm = job_page(&job);
    let shown = notice.is_some();
    vm.notice = notice;
    Ok(with_flash_cleared(Html(app::render_job_page(&vm)), shown))
}

/// `?id=` of the jump-to-job form.
#[derive(Debug, Deserialize)]
pub struct FindParams {
    /// The job id typed by the operator.
    pub id: Option<String>,
}

/// `GET /queues/{queue}/find?id=…`: jumps to a job's page; 400 for an
/// invalid id, 404 when the queue has no such job.
pub async fn find(
    State(state): State<AppState>,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<FindParams>,
) -> Result<Redirect, AppError> {
    let text = params.id.unwrap_or_default();
    let id = JobId::new(text.trim())?;
    state.queues.job(&queue, &id).await?;
    Ok(Redirect::to(&format!("/queues/{queue}/jobs/{id}")))
}

/// `GET /channels`: traffic on every notification channel under the
/// prefix, as observed since the server started.
pub async fn channels(State(state): State<AppState>) -> Html<String> {
    let vm = state.fleet.channels().await;
    Html(app::render_channels_page(&vm))
}

/// `GET /instances`: every instance with its heartbeat and sync status.
pub async fn instances(State(state): State<AppState>) -> Html<String> {
    let vm = state.fleet.instances().await;
    Html(app::render_instances_page(&vm))
}

/// `GET /ratelimits`: policies with their limits and usage, the most used
/// keys, rejections per minute and blocked keys (with Unblock).
pub async fn ratelimits(State(state): State<AppState>, Flash(notice): Flash) -> Response {
    let vm = match state.hub.ready().await.ratelimits.clone() {
        Some(vm) => vm,
        None => state.ratelimits.vm().await,
    };
    let shown = notice.is_some();
    with_flash_cleared(
        Html(app::render_ratelimits_page(&vm, notice, "/ratelimits")),
        shown,
    )
}

/// `GET /config`: the effective settings, passwords hidden.
pub async fn config(State(state): State<AppState>) -> Html<String> {
    Html(app::render_config_page(&config_page(&state.settings)))
}

/// `GET /style.css`.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLESHEET,
    )
}

/// `GET /app.js`: the page script (live updates, confirmations).
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        app::LIVE_SCRIPT,
    )
}

/// Any path no route serves.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::not_found(format!("no page at {}", uri.path()))
}

/// A page response that also removes the notice cookie once it is shown.
fn with_flash_cleared(page: Html<String>, shown: bool) -> Response {
    let mut response = page.into_response();
    if shown {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, flash::clear());
    }
    response
}
