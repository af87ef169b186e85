//! Every route of the server, in one place.
//!
//! Browser pages answer HTML (errors included), `/api/*` and `/health*`
//! answer JSON; mutations are POST only. The layers apply to every route,
//! the fallback included.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::controllers::{actions, events, health, jobs, pages, queues};
use crate::error::render_errors;
use crate::startup::AppState;

/// Largest request body accepted: a job's data is meant to reference large
/// payloads, not carry them.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Longest a request may run; a stuck backend call is cut off and answered
/// 504 rather than holding the connection for ever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the application's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        // Pages
        .route("/", get(pages::overview))
        .route("/queues", get(pages::queues))
        .route("/queues/{queue}", get(pages::queue))
        .route("/queues/{queue}/find", get(pages::find))
        .route("/queues/{queue}/jobs/{id}", get(pages::job))
        .route("/channels", get(pages::channels))
        .route("/instances", get(pages::instances))
        .route("/config", get(pages::config))
        .route("/style.css", get(pages::stylesheet))
        .route("/app.js", get(pages::script))
        // Page actions (forms: POST, then 303 back)
        .route("/queues/{queue}/pause", post(actions::pause))
        .route("/queues/{queue}/resume", post(actions::resume))
        .route("/queues/{queue}/retry-failed", post(actions::retry_failed))
        .route(
            "/queues/{queue}/retry-selected",
            post(actions::retry_selected),
        )
        .route("/queues/{queue}/jobs/{id}/retry", post(actions::retry_job))
        .route(
            "/queues/{queue}/jobs/{id}/remove",
            post(actions::remove_job),
        )
        .route(
            "/queues/{queue}/jobs/{id}/promote",
            post(actions::promote_job),
        )
        // Live updates (server-sent events), one stream per page scope
        .route("/events/overview", get(events::overview))
        .route("/events/queues", get(events::queues))
        .route("/events/channels", get(events::channels))
        .route("/events/instances", get(events::instances))
        .route("/events/queues/{queue}", get(events::queue))
        .route("/events/queues/{queue}/jobs/{id}", get(events::job))
        // Health
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        // Queues API
        .route("/api/queues", get(queues::list))
        .route("/api/queues/{queue}", get(queues::show))
        .route("/api/queues/{queue}/pause", post(queues::pause))
        .route("/api/queues/{queue}/resume", post(queues::resume))
        .route(
            "/api/queues/{queue}/retry-failed",
            post(queues::retry_failed),
        )
        // Jobs API
        .route(
            "/api/queues/{queue}/jobs",
            get(jobs::list).post(jobs::enqueue),
        )
        .route("/api/queues/{queue}/jobs/{id}", get(jobs::show))
        .route("/api/queues/{queue}/jobs/{id}/retry", post(jobs::retry))
        .route("/api/queues/{queue}/jobs/{id}/remove", post(jobs::remove))
        .route("/api/queues/{queue}/jobs/{id}/promote", post(jobs::promote))
        .fallback(pages::not_found)
        // Innermost first: the body limit and timeout apply to handlers,
        // error rendering sees their responses too, tracing sees it all.
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // A bug that panics answers 500 (rendered like any error) instead
        // of dropping the connection.
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(render_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
