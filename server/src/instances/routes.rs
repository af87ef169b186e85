//! `/instances` and its live stream.

use axum::extract::State;
use axum::response::Html;

use crate::http::page::Page;
use crate::live::stream::{Events, Scope};
use crate::state::AppState;

/// `GET /instances`: every instance with its heartbeat and sync status.
pub async fn page(State(state): State<AppState>, page: Page) -> Html<String> {
    let snapshot = state.hub.current();
    let vm = super::vm::page(
        Some(&state.instances.figures().await),
        snapshot.caches.as_deref(),
    );
    Html(app::render_instances_page(&vm, page.ctx()))
}

/// `GET /events/instances`.
pub async fn events(State(state): State<AppState>) -> Events {
    state.streams.open(Scope::Instances)
}
