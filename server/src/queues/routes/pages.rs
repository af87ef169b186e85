//! The HTML pages people look at, and the stylesheet and script they use.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use coord::queue::JobId;
use coord::time::now_ms;
use serde::Deserialize;

use crate::http::error::{AppError, one_line};
use crate::http::extract::{JobPath, Path, Query, QueuePath};
use crate::http::flash::{Flash, with_flash_cleared};
use crate::http::page::Page;
use crate::metrics::CHART_READ_TIMEOUT;
use crate::metrics::charts;
use crate::metrics::history::Range;
use crate::queues::figures::summaries;
use crate::queues::vm::job_page;
use crate::queues::vm::{self, QueuePageParams, listing, queue_row};
use crate::state::AppState;

/// Raw `?range=` of the overview (and of its stream), kept as text so a
/// bad value gets a reason of our own.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OverviewQuery {
    range: Option<String>,
}

impl OverviewQuery {
    /// The charts' range: the last hour when absent or empty, a 400 naming
    /// the accepted values otherwise, so a mistyped link is never mistaken
    /// for a quiet week.
    pub fn parse(&self) -> Result<Range, AppError> {
        match self.range.as_deref() {
            None | Some("") => Ok(Range::Hour),
            Some(text) => text.parse().map_err(AppError::bad_request),
        }
    }
}

/// `GET /?range=1h|24h|7d`: backend health, totals, the alerts slot and
/// throughput charts. Health, totals and the last hour come from the hub's
/// latest snapshot; a day or a week is read from the SQL history now (one
/// statement per series for all queues). Served with 503 (and the reason
/// on the page) when the backend does not answer, so a monitor notices too.
pub async fn overview(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<OverviewQuery>,
) -> Result<Response, AppError> {
    let range = query.parse()?;
    let snapshot = state.hub.ready().await;
    let mut vm = vm::overview(&snapshot);
    if range != Range::Hour {
        let queues: Vec<String> = snapshot.queues.iter().map(|q| q.name.clone()).collect();
        let read = charts::throughput(&state.db, &queues, range, now_ms());
        vm.charts = match tokio::time::timeout(CHART_READ_TIMEOUT, read).await {
            Ok(Ok(charts)) => charts
                .iter()
                .map(|c| vm::chart(&c.queue, &c.points))
                .collect(),
            Ok(Err(err)) => {
                tracing::error!(error = %err, %range, "cannot read the throughput history");
                return Err(AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot read the metrics history; see the server log",
                ));
            }
            Err(_) => {
                tracing::warn!(%range, "throughput history not read within {CHART_READ_TIMEOUT:?}");
                return Err(AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the metrics history did not answer within {CHART_READ_TIMEOUT:?}"),
                ));
            }
        };
        vm.range = vm::chart_range(range);
    }
    let status = if vm.health.backend_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Html(app::render_overview_page(&vm, page.ctx()))).into_response())
}

/// `GET /queues`: every queue with fresh counts (an action just redirected
/// here must show its effect), rates and badges from the snapshot.
pub async fn queues(State(state): State<AppState>, page: Page, Flash(notice): Flash) -> Response {
    let snapshot = state.hub.ready().await;
    let mut vm = vm::queues_page(&snapshot);
    let shown = notice.is_some();
    vm.notice = notice;
    let (health, listing) = tokio::join!(
        tokio::time::timeout(
            crate::system::readiness::CHECK_TIMEOUT,
            state.queues.health()
        ),
        summaries(&state.queues)
    );
    let health = health.unwrap_or_else(|_| {
        Err(coord::CoordError::Unavailable(format!(
            "no answer within {} s",
            crate::system::readiness::CHECK_TIMEOUT.as_secs()
        )))
    });
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
    vm.bullmq = state
        .bullmq
        .as_ref()
        .map(|monitor| crate::bullmq::vm::queues_vm(&state, &monitor.current()));
    let mut response = with_flash_cleared(Html(app::render_queues_page(&vm, page.ctx())), shown);
    *response.status_mut() = status;
    response
}

/// `GET /queues/{queue}?state=&offset=&limit=&name=&q=`: one queue's jobs
/// in a state (waiting by default), optionally filtered; 404 for a queue
/// never used, 400 for a malformed parameter.
pub async fn queue(
    State(state): State<AppState>,
    page: Page,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<QueuePageParams>,
    Flash(notice): Flash,
) -> Result<Response, AppError> {
    let query = params.parse()?;
    let counts = state.queues.counts(&queue).await?;
    let found = listing(&state.queues, &queue, &query).await?;
    let snapshot = state.hub.current();
    let row = queue_row(&snapshot, &queue, &counts);
    let mut vm = vm::queue_page_of(row, &query, found, &snapshot);
    vm.progress = state.hub.progress(&queue).as_ref().map(vm::progress);
    let shown = notice.is_some();
    vm.notice = notice;
    Ok(with_flash_cleared(
        Html(app::render_queue_page(&vm, now_ms(), page.ctx())),
        shown,
    ))
}

/// `GET /queues/{queue}/jobs/{id}`: one job with its history.
pub async fn job(
    State(state): State<AppState>,
    page: Page,
    Path(JobPath { queue, id }): Path<JobPath>,
    Flash(notice): Flash,
) -> Result<Response, AppError> {
    let job = state.queues.job(&queue, &id).await?;
    let mut vm = job_page(&job);
    let shown = notice.is_some();
    vm.notice = notice;
    Ok(with_flash_cleared(
        Html(app::render_job_page(&vm, page.ctx())),
        shown,
    ))
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
