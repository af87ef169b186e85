//! The HTML pages people look at, and the stylesheet they use.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use coord::queue::JobState;
use coord::time::now_ms;

use crate::controllers::queues::summaries;
use crate::error::{AppError, one_line};
use crate::extract::{PageParams, Path, Query, QueuePath};
use crate::startup::AppState;
use crate::views::{job_row, queue_row};

/// The stylesheet, compiled into the binary so a deployment is one file.
const STYLESHEET: &str = include_str!("../../../style/switchyard.css");

/// `GET /`: every queue with its counts and the backend's status. Served
/// with 503 (and the reason on the page) when the backend cannot answer, so
/// an operator sees why the numbers are missing rather than an error page.
pub async fn overview(State(state): State<AppState>) -> Response {
    let backend = state.queues.kind().as_str().to_string();
    let (health, listing) = tokio::join!(state.queues.health(), summaries(&state.queues));
    let mut vm = app::OverviewVm {
        backend,
        ..Default::default()
    };
    let mut status = StatusCode::OK;
    match health {
        Ok(health) => {
            vm.backend_ok = true;
            vm.latency_ms = Some(health.latency.as_secs_f64() * 1000.0);
        }
        Err(err) => vm.problem = Some(one_line(&err.to_string())),
    }
    match listing {
        Ok(queues) => {
            vm.queues = queues
                .iter()
                .map(|q| queue_row(&q.name, &q.counts))
                .collect();
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot list queues for the overview");
            vm.backend_ok = false;
            vm.problem.get_or_insert_with(|| one_line(&err.to_string()));
            status = StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    (status, Html(app::render_queues_page(&vm))).into_response()
}

/// `GET /queues/{queue}?state=…`: one queue's jobs in a state (waiting by
/// default); a page of the 404 kind for a queue never used.
pub async fn queue(
    State(state): State<AppState>,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<PageParams>,
) -> Result<Html<String>, AppError> {
    let page = params.parse(Some(JobState::Waiting))?;
    let counts = state.queues.counts(&queue).await?;
    let result = state
        .queues
        .list(&queue, page.state, page.offset, page.limit)
        .await?;
    let now = now_ms();
    let vm = app::QueuePageVm {
        queue: queue_row(&queue, &counts),
        state: page.state.as_str().to_string(),
        jobs: result.jobs.iter().map(|job| job_row(job, now)).collect(),
        total: result.total,
        offset: page.offset,
        limit: page.limit,
    };
    Ok(Html(app::render_queue_page(&vm)))
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

/// Any path no route serves.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::not_found(format!("no page at {}", uri.path()))
}
