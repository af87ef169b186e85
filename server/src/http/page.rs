//! The per-request part of every page: who is signed in, their CSRF token
//! and the firing alerts, as the `app` pages take it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use coord::time::now_ms;

use crate::auth::{AuthMethod, CurrentUser};
use crate::state::AppState;

/// What pages show of the signed-in user.
pub fn user_vm(user: &CurrentUser) -> app::UserVm {
    app::UserVm {
        name: user.name.to_string(),
        role: user.role.as_str().to_owned(),
        can_sign_out: user.method == AuthMethod::Session,
    }
}

/// The per-request part of a page: who is signed in, their CSRF token and
/// the firing alerts (shown only to signed-in users).
#[derive(Debug, Clone)]
pub struct Page(pub app::PageCtx);

impl Page {
    /// The context pages render with.
    pub fn ctx(&self) -> &app::PageCtx {
        &self.0
    }
}

impl FromRequestParts<AppState> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Page(page_ctx(parts.extensions.get::<CurrentUser>(), state)))
    }
}

/// The page context for `user` (none: signed out, no banner).
pub fn page_ctx(user: Option<&CurrentUser>, state: &AppState) -> app::PageCtx {
    match user {
        Some(user) => app::PageCtx {
            user: Some(user_vm(user)),
            csrf_token: user.csrf.clone().unwrap_or_default(),
            banner: crate::alerts::vm::banner(&state.alerts.view(), now_ms()),
        },
        None => app::PageCtx::default(),
    }
}
