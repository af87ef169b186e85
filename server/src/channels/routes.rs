//! `/channels` and its live stream.

use axum::extract::State;
use axum::response::Html;

use crate::http::page::Page;
use crate::live::stream::{Events, Scope};
use crate::state::AppState;

/// `GET /channels`: traffic on every notification channel under the
/// prefix, as observed since the server started.
pub async fn page(State(state): State<AppState>, page: Page) -> Html<String> {
    let vm = super::vm::page(Some(&state.channels.figures().await));
    Html(app::render_channels_page(&vm, page.ctx()))
}

/// `GET /events/channels`.
pub async fn events(State(state): State<AppState>) -> Events {
    state.streams.open(Scope::Channels)
}
