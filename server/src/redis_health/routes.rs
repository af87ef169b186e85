//! `/redis`, `/events/redis`, `/api/redis` and `/api/redis/health`: the
//! hub's latest read of the configured Redis, never a read per request
//! (but the health check's one `PING` per node).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use coord::redis_health::Status;
use serde_json::{Value, json};

use crate::http::error::AppError;
use crate::http::extract::Json;
use crate::http::page::Page;
use crate::live::stream::{Events, Scope};
use crate::state::AppState;

/// `GET /redis`.
pub async fn page(State(state): State<AppState>, page: Page) -> Html<String> {
    let snapshot = state.hub.current();
    let vm = super::vm::page(snapshot.redis.as_deref(), state.redis.is_some());
    Html(app::render_redis_page(&vm, page.ctx()))
}

/// `GET /events/redis`.
pub async fn events(State(state): State<AppState>) -> Events {
    state.streams.open(Scope::Redis)
}

fn watch(state: &AppState) -> Result<&super::RedisWatch, AppError> {
    state.redis.as_ref().ok_or_else(|| {
        AppError::not_found("no Redis is configured (--redis or --bullmq): nothing to report")
    })
}

/// `GET /api/redis`: the latest read — every node's `INFO` figures,
/// replication, slow log, latency events, the counters' rates since the
/// read before, and the key-space sample.
pub async fn report(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    watch(&state)?;
    let snapshot = state.hub.current();
    let Some(figures) = snapshot.redis.as_deref() else {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Redis has not been read yet; it is read every 5 s",
        ));
    };
    Ok(Json(json!({
        "report": figures.report,
        "rates": figures.rates,
        "keyspace": figures.keyspace.as_ref().map(|(sample, at)| json!({
            "sample": sample,
            "takenAt": at,
        })),
    })))
}

/// `GET /api/redis/health`: one `PING` per node now; 503 when Redis is
/// down, 200 when it serves (degraded included, with the reasons).
pub async fn health(State(state): State<AppState>) -> Result<Response, AppError> {
    let summary = watch(&state)?.health().await;
    let status = if summary.status == Status::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(summary))).into_response())
}
