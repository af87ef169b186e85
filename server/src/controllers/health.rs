//! Liveness and readiness, for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use axum::response::{IntoResponse, Response};

use crate::extract::Json;
use crate::state::AppState;

/// `GET /health`: the process is up and serving HTTP. Touches no backend,
/// so a slow Redis never gets a healthy process restarted.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /health/ready`: every dependency checked on its own (see
/// [`crate::readiness`]); 503 naming each one that is down, so traffic is
/// held back while a capability cannot work. The queue store's and the
/// database's figures stay at the top level for existing probes.
pub async fn ready(State(state): State<AppState>) -> Response {
    let readiness = crate::readiness::check(&state).await;
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
