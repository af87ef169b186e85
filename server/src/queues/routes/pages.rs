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
use crate::queues::vm::job_page;
use crate::queues::vm::{self, QueuePageParams, QueuesParams, listing, queue_row};
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
    let bull = state
        .bullmq
        .as_ref()
        .map(crate::bullmq::BullMonitor::current);
    let mut vm = crate::overview::overview(&snapshot, bull.as_deref());
    if range != Range::Hour {
        // The queues the hour charts: a day's or a week's history of every
        // queue would be one chart per queue again.
        let queues: Vec<String> = vm::charted(&snapshot)
            .iter()
            .map(|q| q.name.clone())
            .collect();
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

/// `GET /queues?sort=&q=&offset=`: a page of queues in the order and with
/// the name filter asked for, from the hub's snapshot, with fresh counts
/// for the rows shown (an action just redirected here must show its
/// effect): the cost is one read per row on the page, whatever the number
/// of queues.
pub async fn queues(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
    Query(params): Query<QueuesParams>,
) -> Result<Response, AppError> {
    let query = params.parse()?;
    let snapshot = state.hub.ready().await;
    let mut vm = vm::queues_page(&snapshot, &query);
    let shown = notice.is_some();
    vm.notice = notice;
    let read = tokio::time::timeout(
        crate::system::readiness::CHECK_TIMEOUT,
        vm::fresh_page(&state.queues, &snapshot, &query, app::QUEUES_PER_PAGE),
    )
    .await;
    match read {
        Ok(Ok((rows, matching, total))) => {
            vm.queues = rows
                .iter()
                .map(|s| queue_row(&snapshot, &s.name, &s.counts))
                .collect();
            vm::with_snapshot(&mut vm.queues, &snapshot);
            vm.matching = matching;
            vm.total = total;
        }
        // The snapshot's rows stay, marked stale; the health line says why.
        failed => {
            let problem = match failed {
                Ok(Err(err)) => one_line(&err.to_string()),
                _ => "no answer in time".to_string(),
            };
            tracing::warn!(%problem, "cannot list queues for the queues page");
            vm.health.backend_ok = false;
            vm.health.problem.get_or_insert(problem);
            vm.health.stale = !vm.queues.is_empty();
        }
    }
    let status = if vm.health.backend_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    vm.bullmq = state.bullmq.as_ref().map(|monitor| {
        crate::bullmq::vm::queues_vm(
            &state,
            &monitor.current(),
            &app::QueuesQuery::default(),
            crate::bullmq::vm::SHOWN_ON_QUEUES_PAGE,
        )
    });
    let mut response = with_flash_cleared(Html(app::render_queues_page(&vm, page.ctx())), shown);
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /queues/{queue}?state=&offset=&limit=&name=&q=`: one queue's jobs
/// in a state (without one, the most useful: [`vm::useful_state`]),
/// optionally filtered; 404 for a queue never used, 400 for a malformed
/// parameter.
pub async fn queue(
    State(state): State<AppState>,
    page: Page,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<QueuePageParams>,
    Flash(notice): Flash,
) -> Result<Response, AppError> {
    let counts = state.queues.counts(&queue).await?;
    let query = params.parse_or(vm::useful_state(&counts))?;
    let found = listing(
        &state.queues,
        &queue,
        &query,
        state.settings.listing_value_bytes,
    )
    .await?;
    let snapshot = state.hub.current();
    let row = queue_row(&snapshot, &queue, &counts);
    let mut vm = vm::queue_page_of(row, &query, found, &snapshot);
    if !vm.filter.group.is_empty() {
        // The group's reason as the error pages show it, from a job of it.
        vm.filter.group_reason = vm
            .jobs
            .first()
            .and_then(|job| job.failed_reason.as_deref())
            .map(coord::errors::normalise);
    }
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
    let (job, report) =
        crate::queues::job_detail(&state.queues, &queue, &id, coord::queue::SHOWN_LOG_LINES)
            .await?;
    let mut vm = job_page(&job, &report);
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
    // Whether it exists: its values are not needed (a clip of one byte).
    state.queues.job_clipped(&queue, &id, 1).await?;
    Ok(Redirect::to(&format!("/queues/{queue}/jobs/{id}")))
}

/// `?offset=&limit=` of the Retrying view.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RetryingParams {
    /// Jobs to skip.
    pub offset: Option<String>,
    /// Page size.
    pub limit: Option<String>,
}

impl RetryingParams {
    /// Validated (offset, limit), as every job listing checks them.
    pub fn parse(&self) -> Result<(u64, u64), AppError> {
        let page = crate::http::extract::PageParams {
            state: None,
            offset: self.offset.clone(),
            limit: self.limit.clone(),
        }
        .parse(Some(coord::queue::JobState::Waiting))?;
        Ok((page.offset, page.limit))
    }
}

/// One page of a queue's retrying jobs as rows (see
/// [`coord::queue::Queues::list_retrying`]).
pub async fn retrying_rows(
    state: &AppState,
    queue: &coord::queue::QueueName,
    params: &RetryingParams,
) -> Result<app::RetryingVm, AppError> {
    let (offset, limit) = params.parse()?;
    let page = state
        .queues
        .list_retrying(queue, offset, limit, state.settings.listing_value_bytes)
        .await?;
    Ok(app::RetryingVm {
        queue: queue.to_string(),
        bullmq: false,
        coverage: None,
        jobs: page.jobs.iter().map(vm::job_row).collect(),
        total: page.total,
        cap: coord::queue::MAX_RETRYING_COUNT,
        offset,
        limit,
        notice: None,
    })
}

/// `GET /queues/{queue}/retrying`: the jobs that failed and will run
/// again, due first.
pub async fn retrying(
    State(state): State<AppState>,
    page: Page,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<RetryingParams>,
    Flash(notice): Flash,
) -> Result<Response, AppError> {
    let mut vm = retrying_rows(&state, &queue, &params).await?;
    let shown = notice.is_some();
    vm.notice = notice;
    Ok(with_flash_cleared(
        Html(app::render_retrying_page(&vm, now_ms(), page.ctx())),
        shown,
    ))
}
