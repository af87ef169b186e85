//! `/events/…`: the live streams of the pages, one per page scope. Each
//! takes the same path and query as its page, so a page's stream URL is its
//! own URL under `/events`.

use axum::extract::State;

use crate::error::AppError;
use crate::extract::{JobPath, Path, Query, QueuePath};
use crate::live::stream::{Events, Scope, stream};
use crate::screens::QueuePageParams;
use crate::state::AppState;

fn open(state: AppState, scope: Scope) -> Events {
    stream(state.hub.clone(), state.queues.clone(), scope)
}

/// `GET /events/overview?range=`: the page's own range, so a day's or a
/// week's charts are left as rendered; 400 for a bad range, like the page.
pub async fn overview(
    State(state): State<AppState>,
    Query(query): Query<crate::controllers::pages::OverviewQuery>,
) -> Result<Events, AppError> {
    let range = query.parse()?;
    Ok(open(
        state,
        Scope::Overview {
            live_charts: range == crate::metrics::history::Range::Hour,
        },
    ))
}

/// `GET /events/channels`.
pub async fn channels(State(state): State<AppState>) -> Events {
    open(state, Scope::Channels)
}

/// `GET /events/instances`.
pub async fn instances(State(state): State<AppState>) -> Events {
    open(state, Scope::Instances)
}

/// `GET /events/ratelimits`.
pub async fn ratelimits(State(state): State<AppState>) -> Events {
    open(state, Scope::RateLimits)
}

/// `GET /events/alerts?offset=&limit=`: on later pages of history only
/// the active alerts and deliveries are live.
pub async fn alerts(
    State(state): State<AppState>,
    Query(query): Query<crate::controllers::pages::AlertsQuery>,
) -> Result<Events, AppError> {
    let (offset, limit) = query.parse()?;
    let first_page = crate::controllers::pages::AlertsQuery::first_page(offset, limit);
    Ok(open(state, Scope::Alerts { first_page }))
}

/// `GET /events/queues`.
pub async fn queues(State(state): State<AppState>) -> Events {
    open(state, Scope::Queues)
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
    Ok(open(state, Scope::Queue { queue, query }))
}

/// `GET /events/queues/{queue}/jobs/{id}`.
pub async fn job(
    State(state): State<AppState>,
    Path(JobPath { queue, id }): Path<JobPath>,
) -> Result<Events, AppError> {
    state.queues.job(&queue, &id).await?;
    Ok(open(state, Scope::Job { queue, id }))
}
