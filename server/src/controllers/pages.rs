//! The HTML pages people look at, and the stylesheet and script they use.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use coord::queue::JobId;
use coord::time::now_ms;
use serde::Deserialize;

use crate::auth::Page;
use crate::controllers::queues::summaries;
use crate::error::{AppError, one_line};
use crate::extract::{JobPath, Path, Query, QueuePath};
use crate::flash::{self, Flash};
use crate::metrics::CHART_READ_TIMEOUT;
use crate::metrics::charts;
use crate::metrics::history::Range;
use crate::screens::{QueuePageParams, listing, queue_page, queue_row};
use crate::state::AppState;
use crate::views::{config_page, job_page};

/// The stylesheet, compiled into the binary so a deployment is one file.
const STYLESHEET: &str = include_str!("../../../style/switchyard.css");

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
    let mut vm = snapshot.overview_vm();
    if range != Range::Hour {
        let queues: Vec<String> = snapshot.rows.iter().map(|r| r.name.clone()).collect();
        let read = charts::throughput(&state.db, &queues, range, now_ms());
        vm.charts = match tokio::time::timeout(CHART_READ_TIMEOUT, read).await {
            Ok(Ok(charts)) => charts,
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
        vm.range = charts::chart_range(range);
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
    let mut vm = snapshot.queues_vm();
    let shown = notice.is_some();
    vm.notice = notice;
    let (health, listing) = tokio::join!(
        tokio::time::timeout(crate::readiness::CHECK_TIMEOUT, state.queues.health()),
        summaries(&state.queues)
    );
    let health = health.unwrap_or_else(|_| {
        Err(coord::CoordError::Unavailable(format!(
            "no answer within {} s",
            crate::readiness::CHECK_TIMEOUT.as_secs()
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
        .map(|monitor| crate::controllers::bullmq::queues_vm(&state, &monitor.current()));
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
    let mut vm = queue_page(row, &query, found, &snapshot);
    vm.progress = state.hub.progress(&queue);
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

/// `GET /channels`: traffic on every notification channel under the
/// prefix, as observed since the server started.
pub async fn channels(State(state): State<AppState>, page: Page) -> Html<String> {
    let vm = state.fleet.channels().await;
    Html(app::render_channels_page(&vm, page.ctx()))
}

/// `GET /instances`: every instance with its heartbeat and sync status.
pub async fn instances(State(state): State<AppState>, page: Page) -> Html<String> {
    let vm = state.fleet.instances().await;
    Html(app::render_instances_page(&vm, page.ctx()))
}

/// `GET /ratelimits`: policies with their limits and usage, the most used
/// keys, rejections per minute and blocked keys (with Unblock).
pub async fn ratelimits(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
) -> Response {
    // Read now rather than from the last snapshot: a page load shows what
    // is true at that moment (the stream then follows every second).
    let vm = state.ratelimits.vm().await;
    let shown = notice.is_some();
    with_flash_cleared(
        Html(app::render_ratelimits_page(
            &vm,
            notice,
            "/ratelimits",
            page.ctx(),
        )),
        shown,
    )
}

/// Paging of the Alerts page's history.
#[derive(Debug, serde::Deserialize)]
pub struct AlertsQuery {
    offset: Option<String>,
    limit: Option<String>,
}

impl AlertsQuery {
    /// Offset and limit, validated like the queue page's (400 with the
    /// reason otherwise).
    pub fn parse(&self) -> Result<(u64, u64), AppError> {
        let number = |name: &str, text: &Option<String>, default: u64| -> Result<u64, AppError> {
            match text.as_deref() {
                None | Some("") => Ok(default),
                Some(t) => t.parse::<u64>().map_err(|_| {
                    AppError::bad_request(format!("{name} must be a whole number (got {t:?})"))
                }),
            }
        };
        let offset = number("offset", &self.offset, 0)?;
        let limit = number("limit", &self.limit, crate::alerts::runner::HISTORY_PAGE)?;
        if limit == 0 || limit > 500 {
            return Err(AppError::bad_request("limit must be between 1 and 500"));
        }
        Ok((offset, limit))
    }

    /// Whether this is the page the live stream keeps current in full.
    pub fn first_page(offset: u64, limit: u64) -> bool {
        offset == 0 && limit == crate::alerts::runner::HISTORY_PAGE
    }
}

/// `GET /alerts?offset=&limit=`: pending and firing alerts with their
/// buttons, webhook deliveries, the history, and the rules editor.
pub async fn alerts(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
    Query(query): Query<AlertsQuery>,
) -> Result<Response, AppError> {
    let (offset, limit) = query.parse()?;
    let view = state.alerts.view();
    let (history, total) = if AlertsQuery::first_page(offset, limit) {
        (view.history.clone(), view.history_total)
    } else {
        state.alerts.store().history(offset, limit).await?
    };
    let vm = crate::alerts::views::alerts_page(&view, &history, offset, limit, total, now_ms());
    let shown = notice.is_some();
    Ok(with_flash_cleared(
        Html(app::render_alerts_page(&vm, notice, page.ctx())),
        shown,
    ))
}

/// `GET /config`: the effective settings, passwords hidden.
pub async fn config(State(state): State<AppState>, page: Page) -> Html<String> {
    Html(app::render_config_page(
        &config_page(&state.settings),
        page.ctx(),
    ))
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
pub(crate) fn with_flash_cleared(page: Html<String>, shown: bool) -> Response {
    let mut response = page.into_response();
    if shown {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, flash::clear());
    }
    response
}
