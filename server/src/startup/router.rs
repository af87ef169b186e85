//! Every route of the server, in one place.
//!
//! Browser pages answer HTML (errors included), `/api/*` and `/health*`
//! answer JSON; mutations are POST only. Routes are grouped by the least
//! role they need (public, viewer, operator, admin), and each group
//! carries its check, so what a route needs is read next to it. The layers apply to every route,
//! the fallback included; the rate limits to all but `/health*`. Every
//! response carries the hardening headers of [`crate::http::security`].

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::alerts::routes as alerts;
use crate::audit::routes as audit;
use crate::auth;
use crate::auth::session_routes as session;
use crate::auth::users::Role;
use crate::auth::users_routes as users;
use crate::bullmq::routes as bullmq;
use crate::bullmq::schedulers as bull_schedulers;
use crate::cache::routes as cache;
use crate::channels::routes as channels;
use crate::errors::routes as errors;
use crate::instances::routes as instances;
use crate::metrics::routes as metrics;
use crate::queues::routes::{api as queues, events, forms as actions, jobs_api as jobs, pages};
use crate::ratelimits::routes as ratelimits;
use crate::redis_health::routes as redis;
use crate::schedules::routes as schedules;
use crate::search::routes as search;
use crate::system::routes as system;
use crate::workers::routes as workers;
use coord::ratelimit::layer::{RateLimitLayer, Target, retry_after_secs};

use crate::http::error::{self, render_errors};
use crate::http::security;
use crate::http::security::BODY_LIMIT;
use crate::ratelimits::RateLimits;
use crate::state::AppState;

/// Longest a request may run; a stuck backend call is cut off and answered
/// 504 rather than holding the connection for ever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The dashboard's own limits: per client address, by the policy of the
/// route (see [`RateLimits::policy_for`]). Requests served without a peer
/// address (in-process tests) share one key. A refusal answers in the
/// route's format, like every other error, with the wait in words.
fn rate_limit_layer(ratelimits: &RateLimits) -> RateLimitLayer {
    let routes = ratelimits.clone();
    RateLimitLayer::new(ratelimits.limiter.clone(), move |parts: &Parts| {
        let policy = routes.policy_for(&parts.method, parts.uri.path())?;
        let key = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Some(Target::new(policy, key))
    })
    .on_reject(|decision, _parts| {
        let wait = retry_after_secs(decision);
        error::bare_refusal(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many requests from your address; retry in {wait} s"),
        )
    })
}

/// Builds the application's router. Routes are grouped by the least role
/// they need; each group carries its check ([`auth::require`]): signed-out
/// page views go to the sign-in page, other requests get 401, a too-small
/// role 403, a session's state-changing request without its CSRF token
/// 403.
pub fn router(state: AppState) -> Router {
    let limits = rate_limit_layer(&state.ratelimits);
    // Open to everyone: signing in, health checks for load balancers,
    // Prometheus' scrape, and the assets the sign-in page loads.
    let public = Router::new()
        .route("/login", get(session::form).post(session::login))
        .route("/style.css", get(system::stylesheet))
        .route("/app.js", get(system::script))
        // Metrics: Prometheus exposition (counts and names, no job data)
        .route("/metrics", get(metrics::exposition))
        // Health
        .route("/health", get(system::live))
        .route("/health/ready", get(system::ready));
    // Any signed-in user: reading, and signing out.
    let viewer = Router::new()
        // Pages
        .route("/", get(pages::overview))
        .route("/queues", get(pages::queues))
        .route("/queues/{queue}", get(pages::queue))
        .route("/queues/{queue}/find", get(pages::find))
        .route("/queues/{queue}/jobs/{id}", get(pages::job))
        .route("/errors", get(errors::all_page))
        .route("/queues/{queue}/errors", get(errors::queue_page))
        .route("/queues/{queue}/retrying", get(pages::retrying))
        .route("/search", get(search::page))
        .route("/channels", get(channels::page))
        .route("/instances", get(instances::page))
        .route("/ratelimits", get(ratelimits::page))
        .route("/redis", get(redis::page))
        .route("/cache", get(cache::page))
        .route("/workers", get(workers::page))
        .route("/schedules", get(schedules::page))
        .route("/alerts", get(alerts::page))
        .route("/audit", get(audit::page))
        .route("/logout", post(session::logout))
        // Live updates (server-sent events), one stream per page scope
        .route("/events/overview", get(events::overview))
        .route("/events/queues", get(events::queues))
        .route("/events/channels", get(channels::events))
        .route("/events/instances", get(instances::events))
        .route("/events/ratelimits", get(ratelimits::events))
        .route("/events/redis", get(redis::events))
        .route("/events/cache", get(cache::events))
        .route("/events/workers", get(workers::events))
        .route("/events/schedules", get(schedules::events))
        .route("/events/alerts", get(alerts::events))
        .route("/events/queues/{queue}", get(events::queue))
        .route("/events/errors", get(errors::all_events))
        .route("/events/queues/{queue}/errors", get(errors::queue_events))
        .route("/events/queues/{queue}/jobs/{id}", get(events::job))
        // The API, reading
        .route("/api/metrics/history", get(metrics::history))
        .route("/api/queues", get(queues::list))
        .route("/api/queues/{queue}", get(queues::show))
        .route(
            "/api/queues/{queue}/retry-failed/progress",
            get(queues::retry_failed_progress),
        )
        .route("/api/queues/{queue}/jobs", get(jobs::list))
        .route("/api/queues/{queue}/jobs/{id}", get(jobs::show))
        .route("/api/errors", get(errors::all_api))
        .route("/api/queues/{queue}/errors", get(errors::queue_api))
        .route("/api/queues/{queue}/retrying", get(queues::retrying))
        .route("/api/search", get(search::api))
        .route("/api/alerts", get(alerts::list))
        .route("/api/alerts/history", get(alerts::history))
        .route("/api/audit", get(audit::list))
        .route("/api/ratelimits", get(ratelimits::list))
        .route("/api/redis", get(redis::report))
        .route("/api/redis/health", get(redis::health))
        .route("/api/cache", get(cache::list))
        .route("/api/cache/{ns}", get(cache::show))
        .route("/api/workers", get(workers::list))
        .route("/api/schedules", get(schedules::list))
        .route("/api/schedules/{id}", get(schedules::show))
        .route("/api/session", get(session::show))
        // BullMQ queues: pages, streams, API reads
        .route("/bullmq", get(bullmq::list_page))
        .route("/bullmq/{queue}", get(bullmq::queue_page))
        .route("/bullmq/{queue}/jobs/{id}", get(bullmq::job_page))
        .route("/bullmq/{queue}/errors", get(errors::bull_queue_page))
        .route("/bullmq/{queue}/retrying", get(bullmq::retrying_page))
        .route("/events/bullmq", get(bullmq::events_list))
        .route("/events/bullmq/{queue}", get(bullmq::events_queue))
        .route("/events/bullmq/{queue}/jobs/{id}", get(bullmq::events_job))
        .route(
            "/events/bullmq/{queue}/errors",
            get(errors::bull_queue_events),
        )
        .route("/api/bullmq", get(bullmq::api_list))
        .route("/api/bullmq/{queue}", get(bullmq::api_show))
        .route("/api/bullmq/{queue}/jobs", get(bullmq::api_jobs))
        .route("/api/bullmq/{queue}/jobs/{id}", get(bullmq::api_job))
        .route("/api/bullmq/{queue}/errors", get(errors::bull_queue_api))
        .route("/api/bullmq/{queue}/retrying", get(bullmq::api_retrying))
        .route(
            "/api/bullmq/{queue}/schedulers",
            get(bull_schedulers::api_list),
        )
        .route_layer(middleware::from_fn_with_state(Role::Viewer, auth::require));
    // Operators: acting on queues, jobs, rate limits and alerts.
    let operator = Router::new()
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
            "/queues/{queue}/retry-matching",
            post(actions::retry_matching),
        )
        .route(
            "/queues/{queue}/remove-matching",
            post(actions::remove_matching),
        )
        .route(
            "/queues/{queue}/errors/{group}/retry",
            post(errors::retry_form),
        )
        .route(
            "/queues/{queue}/errors/{group}/remove",
            post(errors::remove_form),
        )
        .route(
            "/queues/{queue}/jobs/{id}/remove",
            post(actions::remove_job),
        )
        .route(
            "/queues/{queue}/jobs/{id}/promote",
            post(actions::promote_job),
        )
        .route(
            "/queues/{queue}/jobs/{id}/stop-retrying",
            post(actions::stop_retrying_job),
        )
        .route("/ratelimits/unblock", post(ratelimits::unblock_form))
        // Workers: quiet, resume or stop (obeyed at their next heartbeat)
        .route("/workers/{id}/{action}", post(workers::act_form))
        .route("/api/workers/{id}/{action}", post(workers::act))
        // Schedules: pause, resume, run now (remove and edit are the
        // admin's)
        .route("/schedules/{id}/{action}", post(schedules::act_form))
        .route("/api/schedules/{id}/{action}", post(schedules::act_api))
        // Caches: drop a key or a namespace everywhere
        .route("/cache/{ns}/invalidate", post(cache::invalidate_form))
        .route(
            "/cache/{ns}/invalidate-all",
            post(cache::invalidate_all_form),
        )
        .route("/api/cache/{ns}/invalidate", post(cache::invalidate_api))
        .route(
            "/api/cache/{ns}/invalidate-all",
            post(cache::invalidate_all_api),
        )
        .route("/alerts/{fingerprint}/ack", post(alerts::ack))
        .route("/alerts/{fingerprint}/silence", post(alerts::silence))
        .route("/alerts/{fingerprint}/unsilence", post(alerts::unsilence))
        // The same through the API
        .route("/api/queues/{queue}/pause", post(queues::pause))
        .route("/api/queues/{queue}/resume", post(queues::resume))
        .route(
            "/api/queues/{queue}/retry-failed",
            post(queues::retry_failed),
        )
        .route("/api/queues/{queue}/jobs", post(jobs::enqueue))
        .route("/api/queues/{queue}/jobs/{id}/retry", post(jobs::retry))
        .route(
            "/api/queues/{queue}/retry-matching",
            post(queues::retry_matching),
        )
        .route(
            "/api/queues/{queue}/remove-matching",
            post(queues::remove_matching),
        )
        .route(
            "/api/queues/{queue}/errors/{group}/retry",
            post(errors::retry_api),
        )
        .route(
            "/api/queues/{queue}/errors/{group}/remove",
            post(errors::remove_api),
        )
        .route("/api/queues/{queue}/jobs/{id}/remove", post(jobs::remove))
        .route("/api/queues/{queue}/jobs/{id}/promote", post(jobs::promote))
        .route(
            "/api/queues/{queue}/jobs/{id}/stop-retrying",
            post(jobs::stop_retrying),
        )
        .route("/api/alerts/{fingerprint}/ack", post(alerts::api_ack))
        .route(
            "/api/alerts/{fingerprint}/silence",
            post(alerts::api_silence),
        )
        .route(
            "/api/ratelimits/{policy}/unblock",
            post(ratelimits::unblock),
        )
        // BullMQ queues: buttons and their API twins
        .route("/bullmq/{queue}/pause", post(bullmq::pause))
        .route("/bullmq/{queue}/resume", post(bullmq::resume))
        .route("/bullmq/{queue}/retry-failed", post(bullmq::retry_failed))
        .route("/bullmq/{queue}/clean", post(bullmq::clean))
        .route("/bullmq/{queue}/jobs/{id}/retry", post(bullmq::retry))
        .route("/bullmq/{queue}/jobs/{id}/remove", post(bullmq::remove))
        .route("/bullmq/{queue}/jobs/{id}/promote", post(bullmq::promote))
        .route(
            "/bullmq/{queue}/errors/{group}/retry",
            post(errors::bull_retry_form),
        )
        .route(
            "/bullmq/{queue}/errors/{group}/remove",
            post(errors::bull_remove_form),
        )
        .route(
            "/api/bullmq/{queue}/errors/{group}/retry",
            post(errors::bull_retry_api),
        )
        .route(
            "/api/bullmq/{queue}/errors/{group}/remove",
            post(errors::bull_remove_api),
        )
        .route("/api/bullmq/{queue}/pause", post(bullmq::api_pause))
        .route("/api/bullmq/{queue}/resume", post(bullmq::api_resume))
        .route(
            "/api/bullmq/{queue}/retry-failed",
            post(bullmq::api_retry_failed),
        )
        .route("/api/bullmq/{queue}/clean", post(bullmq::api_clean))
        // BullMQ job schedulers: run now (remove is the admin's)
        .route(
            "/bullmq/{queue}/schedulers/{key}/run",
            post(bull_schedulers::run_form),
        )
        .route(
            "/api/bullmq/{queue}/schedulers/{key}/run",
            post(bull_schedulers::run_api),
        )
        .route(
            "/api/bullmq/{queue}/jobs/{id}/retry",
            post(bullmq::api_retry),
        )
        .route(
            "/api/bullmq/{queue}/jobs/{id}/remove",
            post(bullmq::api_remove),
        )
        .route(
            "/api/bullmq/{queue}/jobs/{id}/promote",
            post(bullmq::api_promote),
        )
        .route_layer(middleware::from_fn_with_state(
            Role::Operator,
            auth::require,
        ));
    // Admins: alert rules and the settings.
    let admin = Router::new()
        .route("/config", get(system::config))
        // Accounts: the page and its forms, and the JSON twin
        .route("/users", get(users::page).post(users::create))
        .route("/users/{name}/role", post(users::set_role))
        .route("/users/{name}/disable", post(users::disable))
        .route("/users/{name}/enable", post(users::enable))
        .route("/api/users", get(users::list))
        // Sign-in sessions: list, revoke one (by its non-secret handle),
        // revoke all of an account's
        .route(
            "/users/{name}/sessions/{handle}/revoke",
            post(users::revoke_session),
        )
        .route(
            "/users/{name}/sessions/revoke",
            post(users::revoke_sessions),
        )
        .route("/api/users/{name}/sessions", get(users::api_sessions))
        .route(
            "/api/users/{name}/sessions/{handle}/revoke",
            post(users::api_revoke_session),
        )
        .route(
            "/api/users/{name}/sessions/revoke",
            post(users::api_revoke_sessions),
        )
        .route("/alerts/rules", post(alerts::create_rule))
        .route("/alerts/rules/{name}", post(alerts::update_rule))
        .route("/alerts/rules/{name}/delete", post(alerts::delete_rule))
        .route("/api/alerts/rules", post(alerts::api_save_rule))
        // Schedules: create, edit, remove
        .route("/schedules", post(schedules::create_form))
        .route("/schedules/new", get(schedules::new_page))
        .route(
            "/schedules/{id}/edit",
            get(schedules::edit_page).post(schedules::update_form),
        )
        .route("/schedules/{id}/remove", post(schedules::remove_form))
        .route("/api/schedules", post(schedules::save_api))
        .route("/api/schedules/{id}/remove", post(schedules::remove_api))
        .route(
            "/bullmq/{queue}/schedulers/{key}/remove",
            post(bull_schedulers::remove_form),
        )
        .route(
            "/api/bullmq/{queue}/schedulers/{key}/remove",
            post(bull_schedulers::remove_api),
        )
        .route(
            "/api/alerts/rules/{name}/delete",
            post(alerts::api_delete_rule),
        )
        .route_layer(middleware::from_fn_with_state(Role::Admin, auth::require));
    Router::new()
        .merge(public)
        .merge(viewer)
        .merge(operator)
        .merge(admin)
        .fallback(system::not_found)
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
        // Refused requests never reach a handler. Inside authentication so
        // a 429 page is in the signed-in user's shell (a session lookup per
        // refused request, no more than an allowed one costs), and inside
        // the error rendering, which keeps its Retry-After and RateLimit-*
        // headers.
        .layer(limits)
        // Who is asking (inside the error rendering, so a bad API token
        // is answered in the route's format).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        // Oversized heads are refused before anyone is looked up, and
        // answered like any error.
        .layer(middleware::from_fn(security::request_limits))
        .layer(middleware::from_fn_with_state(state.clone(), render_errors))
        // Hardening headers (see `security`), outside everything else so
        // pages, assets, streams, errors and 429s all carry them.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(security::CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static(security::X_CONTENT_TYPE_OPTIONS),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static(security::REFERRER_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static(security::X_FRAME_OPTIONS),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            security::CROSS_ORIGIN_OPENER_POLICY_NAME,
            HeaderValue::from_static(security::CROSS_ORIGIN_OPENER_POLICY),
        ))
        .layer(middleware::map_response_with_state(
            state.settings.auth.secure_cookies,
            security::storage_and_transport,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
