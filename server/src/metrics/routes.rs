//! `GET /metrics` (Prometheus) and `GET /api/metrics/history` (the
//! per-minute history in SQL, for charts reaching back further than the
//! hub's in-memory hour).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coord::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::error::AppError;
use crate::http::extract::{Json, Query};
use crate::metrics::history::{self, Range, SERIES, Series, minute_of};
use crate::metrics::prometheus;
use crate::state::AppState;

/// `GET /metrics`: always 200 (a down backend is reported by
/// `switchyard_backend_up 0`, which is what an alert should fire on),
/// unless `--metrics-token` is set and the scrape does not send it as
/// `Authorization: Bearer` (401).
pub async fn exposition(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.settings.metrics_token {
        let sent = crate::auth::bearer(&headers).unwrap_or_default();
        if !crate::auth::constant_time_eq(sent.as_bytes(), expected.expose().as_bytes()) {
            let mut refused = AppError::new(
                StatusCode::UNAUTHORIZED,
                "this server's /metrics needs its scrape token (Authorization: Bearer)",
            )
            .into_response();
            refused.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return refused;
        }
    }
    let body = state.metrics.render().await;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus::CONTENT_TYPE),
    );
    response
}

/// Raw `?series=&subject=&range=` parameters, kept as text so each bad
/// value gets a reason of our own.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryParams {
    /// A name from [`SERIES`].
    pub series: Option<String>,
    /// The queue, channel or policy.
    pub subject: Option<String>,
    /// `1h` (default), `24h` or `7d`.
    pub range: Option<String>,
}

/// `GET /api/metrics/history?series=…&subject=…&range=…`: 400 naming the
/// accepted values for an unknown series or range, so a client's typo is
/// never mistaken for "no data".
pub async fn history(
    State(state): State<AppState>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<Value>, AppError> {
    let Some(name) = params.series.as_deref().filter(|s| !s.is_empty()) else {
        return Err(AppError::bad_request(format!(
            "missing series: expected one of {}",
            series_names()
        )));
    };
    let Some(series) = Series::parse(name) else {
        return Err(AppError::bad_request(format!(
            "unknown series {name:?}: expected one of {}",
            series_names()
        )));
    };
    let Some(subject) = params.subject.filter(|s| !s.is_empty()) else {
        return Err(AppError::bad_request(
            "missing subject: the queue, channel or policy to show",
        ));
    };
    let range: Range = match params.range.as_deref() {
        None | Some("") => Range::Hour,
        Some(text) => text.parse().map_err(AppError::bad_request)?,
    };
    let points = history::history(&state.db, series, &subject, range, minute_of(now_ms()))
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "cannot read the metrics history");
            AppError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the metrics history; see the server log",
            )
        })?;
    Ok(Json(json!({
        "series": series.name(),
        "subject": subject,
        "range": range.as_str(),
        "points": points
            .iter()
            .map(|(minute, value)| json!({ "minute": minute, "value": value }))
            .collect::<Vec<_>>(),
    })))
}

fn series_names() -> String {
    SERIES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}
