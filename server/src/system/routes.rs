//! Liveness and readiness, for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use axum::response::{IntoResponse, Response};

use axum::http::{Uri, header};
use axum::response::Html;

use crate::http::error::AppError;
use crate::http::extract::Json;
use crate::http::page::Page;
use crate::state::AppState;

/// The stylesheet, compiled into the binary so a deployment is one file.
const STYLESHEET: &str = include_str!("../../../style/switchyard.css");

/// `GET /health`: the process is up and serving HTTP. Touches no backend,
/// so a slow Redis never gets a healthy process restarted.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /health/ready`: every dependency checked on its own (see
/// [`crate::system::readiness`]); 503 naming each one that is down, so traffic is
/// held back while a capability cannot work. The queue store's and the
/// database's figures stay at the top level for existing probes.
pub async fn ready(State(state): State<AppState>) -> Response {
    let readiness = crate::system::readiness::check(&state).await;
    let checks: serde_json::Map<String, Value> = readiness
        .checks
        .iter()
        .map(|c| {
            (
                c.name.to_owned(),
                json!({
                    "status": c.state.as_str(),
                    "detail": c.detail,
                    "latencyMs": c.latency_ms,
                }),
            )
        })
        .collect();
    let find = |name: &str| readiness.checks.iter().find(|c| c.name == name);
    let queues = find("queues");
    let database = find("database");
    let mut body = json!({
        "status": if readiness.ready() { "ok" } else { "unavailable" },
        "backend": state.queues.kind().as_str(),
        "latencyMs": queues.and_then(|c| c.latency_ms),
        "memoryBytes": queues.and_then(|c| c.memory_bytes),
        "database": state.db.kind(),
        "databaseLatencyMs": database.and_then(|c| c.latency_ms),
        "checks": checks,
    });
    if readiness.ready() {
        return Json(body).into_response();
    }
    let problems = readiness.problems().join("; ");
    tracing::warn!(problems = %problems, "not ready");
    body["error"] = Value::String(problems);
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// `GET /config`: the effective settings, passwords hidden.
pub async fn config(State(state): State<AppState>, page: Page) -> Html<String> {
    Html(app::render_config_page(
        &super::vm::config_page(&state.settings),
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
