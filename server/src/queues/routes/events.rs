//! `/events/…`: the live streams of the pages, one per page scope. Each
//! takes the same path and query as its page, so a page's stream URL is its
//! own URL under `/events`.

use axum::extract::State;

use crate::http::error::AppError;
use crate::http::extract::{JobPath, Path, Query, QueuePath};
use crate::live::stream::{Events, Scope};
use crate::queues::vm::{QueuePageParams, QueuesParams};
use crate::state::AppState;

/// `GET /events/overview?range=`: the page's own range, so a day's or a
/// week's charts are left as rendered; 400 for a bad range, like the page.
pub async fn overview(
    State(state): State<AppState>,
    Query(query): Query<crate::queues::routes::pages::OverviewQuery>,
) -> Result<Events, AppError> {
    let range = query.parse()?;
    Ok(state.streams.open(Scope::Overview {
        live_charts: range == crate::metrics::history::Range::Hour,
    }))
}

/// `GET /events/queues?sort=&q=&offset=`: the rows of the page with the
/// same query; 400 for a bad one, like the page.
pub async fn queues(
    State(state): State<AppState>,
    Query(params): Query<QueuesParams>,
) -> Result<Events, AppError> {
    let query = params.parse()?;
    Ok(state.streams.open(Scope::Queues { query }))
}

/// `GET /events/queues/{queue}?…`: 404 for an unknown queue and 400 for
/// malformed parameters, like the page, so a broken stream URL is an
/// error a browser stops retrying.
pub async fn queue(
    State(state): State<AppState>,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<QueuePageParams>,
) -> Result<Events, AppError> {
    let query = params.parse()?;
    state.queues.counts(&queue).await?;
    Ok(state.streams.open(Scope::Queue { queue, query }))
}

/// `GET /events/queues/{queue}/jobs/{id}`.
pub async fn job(
    State(state): State<AppState>,
    Path(JobPath { queue, id }): Path<JobPath>,
) -> Result<Events, AppError> {
    // Whether it exists: its values are not needed (a clip of one byte).
    state.queues.job_clipped(&queue, &id, 1).await?;
    Ok(state.streams.open(Scope::Job { queue, id }))
}
