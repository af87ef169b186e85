//! Signing in and out: `GET /login` (the form), `POST /login` (checks the
//! password and starts a session), `POST /logout`.
//!
//! A failed sign-in says only "wrong user name or password", whatever was
//! wrong, and costs the same time; attempts are limited per address by
//! the `dashboard.login` policy (see [`crate::ratelimits`]) and per
//! account by [`crate::auth::throttle`], and recorded in the audit log
//! with the name that was tried.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::audit::{Actor, AuditEntry, Outcome};
use crate::auth::throttle::{DEVICE_COOKIE, KNOWN_FOR_MS};
use crate::auth::users::UserName;
use crate::auth::{CurrentUser, session_clear_cookie, session_set_cookie};
use crate::http::error::AppError;
use crate::http::extract::{Form, Query};
use crate::http::forms::is_local_path;
use crate::http::page::Page;
use crate::state::AppState;

/// The sign-in page's query: where to go afterwards.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// Set after signing out, to say so.
    signed_out: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// Where to go after signing in: the page asked for when it is on this
/// site, else the overview (never another site: `//evil.example`).
fn next_or_home(next: Option<&str>) -> String {
    match next {
        Some(next) if is_local_path(next) && !next.starts_with("/login") => next.to_owned(),
        _ => "/".to_owned(),
    }
}

fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

// Kept from any cache by `http::security::storage_and_transport`, like
// every answer but the assets.
fn login_page(vm: app::LoginVm, status: StatusCode, page: &Page) -> Response {
    (status, Html(app::render_login_page(&vm, page.ctx()))).into_response()
}

/// `GET /login`: the form, or straight on for someone signed in already.
pub async fn form(
    user: Option<CurrentUser>,
    page: Page,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = next_or_home(query.next.as_deref());
    if user.is_some() {
        return see_other(&next);
    }
    let vm = app::LoginVm {
        next,
        notice: query.signed_out.map(|_| "You signed out.".to_owned()),
        ..app::LoginVm::default()
    };
    login_page(vm, StatusCode::OK, &page)
}

/// Whether a sign-in was posted from another site: login CSRF signs the
/// victim's browser into the attacker's account, so that what they do
/// next lands there. Browsers say where a request comes from in
/// `Sec-Fetch-Site`, older ones at least in `Origin`; a request with
/// neither is no browser's cross-site form (a script, a test).
fn from_another_site(headers: &HeaderMap, external_url: &str) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = text(header::ORIGIN) else {
        return false;
    };
    let host = origin.split_once("://").map(|(_, host)| host);
    let same_host = host.is_some() && host == text(header::HOST);
    let ours = external_url
        .trim_end_matches('/')
        .split('/')
        .take(3)
        .collect::<Vec<_>>()
        .join("/");
    !(same_host || origin.eq_ignore_ascii_case(&ours))
}

/// `POST /login`: checks the password; on success starts a session (the
/// cookie), ends the session this browser had before, and goes on to
/// `next`.
pub async fn login(
    State(state): State<AppState>,
    actor: Actor,
    page: Page,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = next_or_home(form.next.as_deref());
    // The log names who was tried (when it is a possible name at all), so
    // a guessing run shows up against its target.
    let tried = UserName::new(form.username.trim())
        .map(|n| n.to_string())
        .unwrap_or_else(|_| actor.name.clone());
    if from_another_site(&headers, &state.settings.alerts.external_url) {
        let entry = AuditEntry::new(&actor, "user.sign_in", "user", &tried);
        state
            .audit
            .note(entry.ended(Outcome::Refused, Some("posted from another site".into())))
            .await;
        let vm = app::LoginVm {
            next,
            error: Some(
                "This sign-in was sent from another site. Open the dashboard's own sign-in page and sign in there."
                    .into(),
            ),
            ..app::LoginVm::default()
        };
        return Ok(login_page(vm, StatusCode::FORBIDDEN, &page));
    }
    let attempt = Actor {
        name: tried.clone(),
        address: actor.address.clone(),
    };
    let entry = AuditEntry::new(&attempt, "user.sign_in", "user", &tried);
    let device = crate::auth::cookie(&headers, DEVICE_COOKIE);
    let now = coord::time::now_ms();
    if let Err(wait) = state.sign_ins.check(&tried, device, now) {
        let secs = wait.as_secs().max(1);
        state
            .audit
            .note(entry.ended(
                Outcome::Refused,
                Some(format!(
                    "too many wrong passwords for this account; held back {secs} s"
                )),
            ))
            .await;
        let vm = app::LoginVm {
            username: form.username,
            next,
            error: Some(format!(
                "Too many wrong passwords for this account. Try again in {secs} s."
            )),
            notice: None,
        };
        let mut response = login_page(vm, StatusCode::TOO_MANY_REQUESTS, &page);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(response);
    }
    let (user, device_token) = match state
        .users
        .verify(form.username.trim(), &form.password)
        .await
    {
        Ok(Some(user)) => {
            let token = state.sign_ins.succeeded(&tried, device, now);
            (user, token)
        }
        Ok(None) => {
            state.sign_ins.failed(&tried, now);
            state
                .audit
                .note(entry.ended(Outcome::Refused, Some("wrong user name or password".into())))
                .await;
            let vm = app::LoginVm {
                username: form.username,
                next,
                error: Some("Wrong user name or password.".into()),
                notice: None,
            };
            return Ok(login_page(vm, StatusCode::UNAUTHORIZED, &page));
        }
        Err(err) => return state.audit.outcome(entry, Err(err.into())).await,
    };
    let agent = crate::auth::sessions::agent_summary(
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        actor.address.as_deref(),
    );
    let (id, _csrf) = state
        .users
        .create_session_from(&user.name, state.settings.auth.session_ttl, &agent)
        .await?;
    state.audit.note(entry).await;
    // A new sign-in replaces the browser's old session rather than leaving
    // it valid beside the new one (a cookie planted or copied earlier
    // stops working).
    if let Some(old) = crate::auth::session_id(&headers)
        && old != id
        && let Err(err) = state.users.delete_session(old).await
    {
        tracing::warn!(error = %err, "cannot end the session replaced by a sign-in");
    }
    // Expired sessions are refused anyway; sweeping them at sign-in keeps
    // the table as small as the number of people using the dashboard.
    let users = state.users.clone();
    tokio::spawn(async move {
        if let Err(err) = users.purge_expired(coord::time::now_ms()).await {
            tracing::debug!(error = %err, "cannot sweep expired sessions");
        }
    });
    let mut response = see_other(&next);
    response.headers_mut().append(
        header::SET_COOKIE,
        session_set_cookie(&id, &state.settings.auth),
    );
    // Sent back only to the sign-in form, where it spares this browser the
    // per-account delay a guessing run elsewhere causes.
    let device = format!(
        "{DEVICE_COOKIE}={device_token}; HttpOnly; SameSite=Strict; Path=/login; Max-Age={}{}",
        KNOWN_FOR_MS / 1000,
        if state.settings.auth.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(value) = HeaderValue::from_str(&device) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /logout`: ends this browser's session and shows the sign-in page.
pub async fn logout(
    State(state): State<AppState>,
    actor: Actor,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let entry = AuditEntry::new(&actor, "user.sign_out", "user", user.name.as_str());
    if let Some(id) = crate::auth::session_id(&headers) {
        let ended = state.users.delete_session(id).await.map_err(AppError::from);
        state.audit.outcome(entry, ended).await?;
    }
    let mut response = see_other("/login?signed_out=1");
    response.headers_mut().append(
        header::SET_COOKIE,
        session_clear_cookie(&state.settings.auth),
    );
    Ok(response)
}

/// `GET /api/session`: who the request is signed in as, how, and (for a
/// session) its CSRF token, so a script using a browser session can send
/// `X-CSRF-Token`.
pub async fn show(user: CurrentUser) -> axum::Json<serde_json::Value> {
    let method = match user.method {
        crate::auth::AuthMethod::Session => "session",
        crate::auth::AuthMethod::Proxy => "proxy",
        crate::auth::AuthMethod::Token => "token",
    };
    axum::Json(serde_json::json!({
        "user": user.name.as_str(),
        "role": user.role.as_str(),
        "method": method,
        "csrf_token": user.csrf,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_ins_from_another_site_are_told_apart() {
        let ours = "https://ops.example/switchyard";
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, HeaderValue::from_static(value));
            }
            from_another_site(&headers, ours)
        };
        assert!(!with(&[]), "no browser headers: a script");
        assert!(!with(&[("sec-fetch-site", "same-origin")]));
        assert!(!with(&[("sec-fetch-site", "none")]), "typed or bookmarked");
        assert!(with(&[("sec-fetch-site", "cross-site")]));
        assert!(
            with(&[("sec-fetch-site", "same-site")]),
            "a sibling subdomain"
        );
        assert!(!with(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000")
        ]));
        assert!(
            !with(&[("origin", "https://ops.example"), ("host", "10.0.0.5:3000")]),
            "behind a proxy"
        );
        assert!(with(&[
            ("origin", "http://evil"),
            ("host", "127.0.0.1:3000")
        ]));
        assert!(with(&[("origin", "null"), ("host", "127.0.0.1:3000")]));
    }

    #[test]
    fn only_local_pages_are_gone_on_to() {
        assert_eq!(
            next_or_home(Some("/queues?state=failed")),
            "/queues?state=failed"
        );
        for away in [
            None,
            Some("//evil.example"),
            Some("https://evil.example"),
            Some("/\\evil.example"),
            Some("evil"),
            Some("/login?next=/"),
        ] {
            assert_eq!(next_or_home(away), "/", "{away:?}");
        }
    }
}
