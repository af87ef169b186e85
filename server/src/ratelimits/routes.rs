//! `/api/ratelimits…`: rate-limit policies with their usage, and unblocking
//! a key — what the Rate limits page shows and does, for programs.

use axum::extract::State;
use axum::http::StatusCode;
use coord::CoordError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::{Actor, AuditEntry};
use crate::http::error::AppError;
use crate::http::extract::{Form, Json, Path};
use crate::http::flash::{Flash, with_flash_cleared};
use crate::http::forms::{ActionFields, redirect};
use crate::http::page::Page;
use crate::live::stream::{Events, Scope};
use crate::state::AppState;
use axum::response::{Html, Response};

/// The path of a policy's routes.
#[derive(Debug, Deserialize)]
pub struct PolicyPath {
    /// The policy's name.
    pub policy: String,
}

/// The body of an unblock.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnblockBody {
    /// The blocked key.
    pub key: String,
}

/// `GET /api/ratelimits`: the limiter's status, every known policy with
/// its usage, the top keys, blocked keys and per-minute counts (the page's
/// figures, in the same words).
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let vm = super::vm::page(Some(&state.ratelimits.figures().await));
    Json(json!({
        "status": {
            "backend": vm.status.backend,
            "fallback": vm.status.fallback,
            "degraded": vm.status.degraded,
            "degradedSince": vm.status.degraded_since,
            "reason": vm.status.reason,
            "fallbackDecisions": vm.status.fallback_decisions,
        },
        "policies": vm.policies.iter().map(|p| json!({
            "name": p.name,
            "limit": p.limit,
            "burst": p.burst,
            "windowMs": p.window_ms,
            "block": p.block,
            "activeKeys": p.active_keys,
            "blockedKeys": p.blocked_keys,
            "allowedThisMinute": p.allowed_this_minute,
            "rejectedThisMinute": p.rejected_this_minute,
            "dashboard": p.own,
        })).collect::<Vec<_>>(),
        "topKeys": vm.top_keys.iter().map(key_json).collect::<Vec<_>>(),
        "dashboardKeys": vm.own_keys.iter().map(key_json).collect::<Vec<_>>(),
        "blocked": vm.blocked.iter().map(|b| json!({
            "policy": b.policy,
            "key": b.key,
            "until": b.until,
        })).collect::<Vec<_>>(),
        "perMinute": vm.per_minute.iter().map(|m| json!({
            "minute": m.minute,
            "allowed": m.allowed,
            "rejected": m.rejected,
        })).collect::<Vec<_>>(),
        "now": vm.now,
    }))
}

/// One key's usage in `/api/ratelimits`: `percent` is of the `limit`;
/// `capacity` is the limit plus its burst, the most a window takes.
fn key_json(k: &app::KeyUsageRow) -> Value {
    json!({
        "policy": k.policy,
        "key": k.key,
        "count": k.count,
        "limit": k.limit,
        "capacity": k.capacity,
        "percent": k.percent,
        "blockedUntil": k.blocked_until,
    })
}

/// `POST /api/ratelimits/{policy}/unblock` with `{"key": "…"}`: lifts a
/// block now (the key still has to fit in its window). 404 for a policy
/// nobody registered, 400 for an invalid key, 503 while Redis is down.
pub async fn unblock(
    State(state): State<AppState>,
    actor: Actor,
    Path(PolicyPath { policy }): Path<PolicyPath>,
    Json(body): Json<UnblockBody>,
) -> Result<Json<Value>, AppError> {
    let target = format!("{policy}/{}", body.key);
    let entry = AuditEntry::new(&actor, "ratelimit.unblock", "ratelimit_key", &target);
    let result = unblock_key(&state, &policy, &body.key).await;
    state.audit.outcome(entry, result).await?;
    Ok(Json(
        json!({ "policy": policy, "key": body.key, "unblocked": true }),
    ))
}

/// Unblocks through the dashboard's limiter (which also knows registered
/// policies), logs it, and refreshes the live figures.
pub async fn unblock_key(state: &AppState, policy: &str, key: &str) -> Result<(), AppError> {
    match state.ratelimits.limiter.unblock(policy, key).await {
        Ok(()) => {}
        Err(CoordError::UnknownPolicy(name)) => {
            return Err(AppError::new(
                StatusCode::NOT_FOUND,
                format!("no rate-limit policy is named {name:?}"),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(policy, key, "rate-limit block lifted");
    state.hub.refresh_ratelimits().await;
    Ok(())
}

/// `GET /ratelimits`: policies with their limits and usage, the most used
/// keys, rejections per minute and blocked keys (with Unblock).
pub async fn page(State(state): State<AppState>, page: Page, Flash(notice): Flash) -> Response {
    // Read now rather than from the last snapshot: a page load shows what
    // is true at that moment (the stream then follows every second).
    let vm = super::vm::page(Some(&state.ratelimits.figures().await));
    let shown = notice.is_some();
    with_flash_cleared(
        Html(app::render_ratelimits_page(
            &vm,
            notice,
            "/ratelimits",
            page.ctx(),
        )),
        shown,
    )
}

/// `GET /events/ratelimits`.
pub async fn events(State(state): State<AppState>) -> Events {
    state.streams.open(Scope::RateLimits)
}

/// `POST /ratelimits/unblock` with `policy` and `key` fields: lifts a block
/// now. A policy nobody registered is a 404 page; a key that was not
/// blocked is simply still not blocked.
pub async fn unblock_form(
    State(state): State<AppState>,
    actor: Actor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| AppError::bad_request(format!("the form has no {name} field")))
    };
    let (policy, key) = (field("policy"), field("key"));
    let target = format!(
        "{}/{}",
        policy.as_deref().unwrap_or_default(),
        key.as_deref().unwrap_or_default()
    );
    let entry = AuditEntry::new(&actor, "ratelimit.unblock", "ratelimit_key", &target);
    let result = async {
        let (policy, key) = (policy?, key?);
        let back = ActionFields::from_pairs(pairs).back_or("/ratelimits".to_string());
        crate::ratelimits::routes::unblock_key(&state, &policy, &key).await?;
        Ok(redirect(
            &back,
            &format!("Unblocked {key} under {policy}: its requests are judged by the limit again."),
        ))
    }
    .await;
    state.audit.outcome(entry, result).await
}
