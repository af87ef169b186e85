//! `/search` and `/api/search`: thin wrappers over [`super::search`].

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use coord::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{search, search_vm};
use crate::http::error::AppError;
use crate::http::extract::{Json, Query};
use crate::http::page::Page;
use crate::state::AppState;

/// `?q=`: what was typed.
#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    /// A job id, words and qualifiers.
    pub q: Option<String>,
}

/// `GET /search?q=`: the page; an empty query shows how to search, a bad
/// one says why (400) above the form to correct it.
pub async fn page(
    State(state): State<AppState>,
    page: Page,
    Query(params): Query<SearchParams>,
) -> Result<Response, AppError> {
    let text = params.q.unwrap_or_default();
    if text.trim().is_empty() {
        let vm = app::SearchPageVm::default();
        return Ok(Html(app::render_search_page(&vm, now_ms(), page.ctx())).into_response());
    }
    match search(&state.queues, &text).await {
        Ok(outcome) => {
            let vm = search_vm(&outcome);
            Ok(Html(app::render_search_page(&vm, now_ms(), page.ctx())).into_response())
        }
        Err(err) if err.status().is_client_error() => {
            let vm = app::SearchPageVm {
                query: text,
                error: Some(err.message().to_owned()),
                ..Default::default()
            };
            let html = app::render_search_page(&vm, now_ms(), page.ctx());
            Ok((err.status(), Html(html)).into_response())
        }
        Err(err) => Err(err),
    }
}

/// `GET /api/search?q=`: `job` (the id lookup, or null), `hits`,
/// `complete`, `searched` and `unindexed`.
pub async fn api(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> Result<Json<Value>, AppError> {
    let outcome = search(&state.queues, params.q.as_deref().unwrap_or_default()).await?;
    let job = outcome
        .id
        .as_ref()
        .map(|(id, found)| json!({ "id": id, "foundIn": found }));
    Ok(Json(json!({
        "query": outcome.text,
        "job": job,
        "hits": outcome.result.hits,
        "complete": outcome.result.complete,
        "searched": outcome.result.searched,
        "unindexed": outcome.result.unindexed,
    })))
}
