//! Liveness and readiness, for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::{AppError, one_line};
use crate::extract::Json;
use crate::startup::AppState;

/// `GET /health`: the process is up and serving HTTP. Touches no backend,
/// so a slow Redis never gets a healthy process restarted.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /health/ready`: the queue backend and the SQL side both answer;
/// 503 with the reason when either does not, so traffic is held back.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let backend = state.queues.kind().as_str();
    let health = state.queues.health().await.map_err(|err| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "backend {backend} is unreachable: {}",
                one_line(&err.to_string())
            ),
        )
    })?;
    let started = std::time::Instant::now();
    state.db.ping().await.map_err(|err| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "database {} is unreachable: {}",
                state.db.kind(),
                one_line(&err.to_string())
            ),
        )
    })?;
    Ok(Json(json!({
        "status": "ok",
        "backend": backend,
        "latencyMs": health.latency.as_secs_f64() * 1000.0,
        "memoryBytes": health.memory_bytes,
        "database": state.db.kind(),
        "databaseLatencyMs": started.elapsed().as_secs_f64() * 1000.0,
    })))
}
