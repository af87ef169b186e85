//! Who is asking, and whether they may: sign-in sessions, the optional
//! trusted-proxy header and bearer tokens, roles, and CSRF checks.
//!
//! Two layers split the work. [`authenticate`] runs on every request and
//! only finds out who it comes from (a session cookie, a header set by a
//! trusted reverse proxy, or an API token), leaving a [`CurrentUser`] and
//! the audit log's [`ActorName`] on the request. [`require`] is attached
//! to each group of routes in the router and refuses what the user's role
//! does not allow, and any state-changing request from a browser session
//! without the session's CSRF token. The router therefore says, next to
//! each route, what it needs; a handler never checks.

pub mod net;
pub mod session_routes;
pub mod sessions;
pub mod settings;
pub mod throttle;
pub mod tokens;
pub mod users;
pub mod users_routes;

pub use settings::{AuthSettings, DEFAULT_SESSION_TTL, ProxyAuth, STREAM_RECHECK};

use std::time::Duration;

use futures_util::StreamExt;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::net::SocketAddr;

use crate::audit::ActorName;
use crate::auth::users::{Role, User, UserName};
use crate::http::error::{AppError, is_machine_path};
use crate::http::security::BODY_LIMIT;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "switchyard_session";
/// Header carrying the CSRF token on API calls made with a session.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
/// How the current request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// The session cookie of a sign-in.
    Session,
    /// A trusted proxy's header (the browser also gets a session, for its
    /// CSRF token).
    Proxy,
    /// An API token: no cookie, so no CSRF token is needed.
    Token,
}

/// The user a request comes from, left in its extensions by
/// [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// Who.
    pub name: UserName,
    /// What they may do (read afresh on every request, so a changed role
    /// applies at once).
    pub role: Role,
    /// How they proved it.
    pub method: AuthMethod,
    /// The session's CSRF token, for requests carried by a session.
    pub csrf: Option<String>,
}

impl CurrentUser {
    fn new(user: User, method: AuthMethod, csrf: Option<String>) -> Self {
        Self {
            name: user.name,
            role: user.role,
            method,
            csrf,
        }
    }
}

/// The session id a request's cookies carry, if any.
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The `Set-Cookie` value starting a session.
pub fn session_set_cookie(id: &str, settings: &AuthSettings) -> HeaderValue {
    let secure = if settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
        settings.session_ttl.as_secs()
    );
    // The id is base64url: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` value ending a session in the browser.
pub fn session_clear_cookie(settings: &AuthSettings) -> HeaderValue {
    if settings.secure_cookies {
        HeaderValue::from_static(
            "switchyard_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Secure",
        )
    } else {
        HeaderValue::from_static("switchyard_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0")
    }
}

/// The peer's address, when the server was started with connect info.
fn peer(parts_ext: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    parts_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// What [`authenticate`] found: the user, and a session whose cookie must
/// be set (one it started for a proxy-authenticated browser's first page,
/// or one whose end it moved).
struct Found {
    user: CurrentUser,
    new_session: Option<String>,
}

/// Finds the request's user. Errors of the user store are answered 503:
/// without it nobody can be checked, and guessing would be worse.
async fn identify(state: &AppState, request: &Parts) -> Result<Option<Found>, AppError> {
    let headers = &request.headers;
    let path = request.uri.path();
    let settings = &state.settings.auth;
    if let Some(proxy) = &settings.proxy
        && let Some(name) = headers.get(&proxy.header)
        && peer(&request.extensions).is_some_and(|ip| proxy.trusted.iter().any(|r| r.contains(ip)))
    {
        return identify_by_proxy(state, request, name).await.map(Some);
    }
    // Probes and scrapers are often set up with a token for everything
    // they call: on their paths the header is not ours to judge (`/metrics`
    // checks its own scrape token).
    if let Some(token) = bearer(headers).filter(|_| !is_probe_path(path)) {
        if !(path == "/api" || path.starts_with("/api/")) {
            return Err(AppError::new(
                StatusCode::UNAUTHORIZED,
                "API tokens are accepted on /api/ only",
            ));
        }
        if !settings.api_tokens {
            return Err(AppError::new(
                StatusCode::UNAUTHORIZED,
                "API tokens are off on this server (start it with --api-tokens)",
            ));
        }
        let user = state.users.token_user(token).await?.ok_or_else(|| {
            AppError::new(
                StatusCode::UNAUTHORIZED,
                "unknown or revoked API token, or its user is disabled",
            )
        })?;
        return Ok(Some(Found {
            user: CurrentUser::new(user, AuthMethod::Token, None),
            new_session: None,
        }));
    }
    if let Some(id) = session_id(headers)
        && let Some(found) = state.users.signed_in(id).await?
    {
        return Ok(Some(Found {
            user: CurrentUser::new(found.user, AuthMethod::Session, Some(found.csrf)),
            // A session whose end moved is sent again, so the browser keeps
            // the cookie as long as the store keeps the session.
            new_session: found.touched.then(|| id.to_owned()),
        }));
    }
    Ok(None)
}

/// A user named by a trusted proxy. They must have an enabled account here
/// (its role says what they may do). Their browser keeps a session of its
/// own, started on the first page, only for its CSRF token.
async fn identify_by_proxy(
    state: &AppState,
    request: &Parts,
    value: &HeaderValue,
) -> Result<Found, AppError> {
    let refuse = |why: String| AppError::new(StatusCode::FORBIDDEN, why);
    let text = value
        .to_str()
        .map_err(|_| refuse("the proxy's user header is not text".into()))?;
    let name = UserName::new(text.trim()).map_err(|e| refuse(e.to_string()))?;
    let user = match state.users.get(&name).await? {
        Some(user) if !user.disabled => user,
        _ => {
            return Err(refuse(format!(
                "user {name} has no enabled account on this dashboard; an admin can add one"
            )));
        }
    };
    if let Some(id) = session_id(&request.headers)
        && let Some((session_user, csrf)) = state.users.session(id).await?
        && session_user.name == user.name
    {
        return Ok(Found {
            user: CurrentUser::new(user, AuthMethod::Proxy, Some(csrf)),
            new_session: None,
        });
    }
    // Only a page view starts a session: a program behind the proxy
    // calling the API would otherwise leave one per request.
    if is_page_view(&request.method, request.uri.path()) {
        let agent = sessions::agent_summary(
            request
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
            peer(&request.extensions)
                .map(|ip| ip.to_string())
                .as_deref(),
        );
        let (id, csrf) = state
            .users
            .create_session_from(&user.name, state.settings.auth.session_ttl, &agent)
            .await?;
        return Ok(Found {
            user: CurrentUser::new(user, AuthMethod::Proxy, Some(csrf)),
            new_session: Some(id),
        });
    }
    Ok(Found {
        user: CurrentUser::new(user, AuthMethod::Proxy, None),
        new_session: None,
    })
}

/// The paths load balancers and Prometheus call: public, and read
/// whatever credentials the caller's configuration happens to send.
fn is_probe_path(path: &str) -> bool {
    path == "/metrics" || path == "/health" || path.starts_with("/health/")
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Finds who a request comes from and leaves it on the request (see the
/// module docs); refuses nothing by itself except an API token or proxy
/// user that does not check out, which is answered at once.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let mut unavailable = None;
    let stream_session = parts
        .uri
        .path()
        .starts_with("/events/")
        .then(|| session_id(&parts.headers).map(str::to_owned))
        .flatten();
    let found = match identify(&state, &parts).await {
        Ok(found) => found,
        // The user store did not answer: public routes (health checks,
        // the sign-in page) go on without a user; [`require`] answers the
        // others 503 with the reason.
        Err(err) if err.status() == StatusCode::SERVICE_UNAVAILABLE => {
            unavailable = Some(StoreUnavailable(err.message().to_owned()));
            None
        }
        Err(err) => return err.into_response(),
    };
    let mut request = Request::from_parts(parts, body);
    if let Some(marker) = unavailable {
        request.extensions_mut().insert(marker);
    }
    let mut new_session = None;
    let mut guard = None;
    let user = found.as_ref().map(|found| found.user.clone());
    if let Some(found) = found {
        if found.user.method == AuthMethod::Session {
            guard = stream_session;
        }
        request
            .extensions_mut()
            .insert(ActorName(found.user.name.to_string()));
        request.extensions_mut().insert(found.user);
        new_session = found.new_session;
    }
    let mut response = next.run(request).await;
    if let Some(id) = guard
        && response.status() == StatusCode::OK
    {
        let ended = session_ended(state.users.clone(), id, state.settings.auth.stream_recheck);
        response = response
            .map(|body| Body::from_stream(body.into_data_stream().take_until(Box::pin(ended))));
    }
    // A slid session's cookie is sent again, unless the handler set the
    // session cookie itself (a sign-in, a sign-out): its cookie is the
    // newer word, and a browser keeps the last one it reads.
    let handler_set_session = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| {
            v.as_bytes()
                .starts_with(format!("{SESSION_COOKIE}=").as_bytes())
        });
    if let Some(id) = new_session.filter(|_| !handler_set_session) {
        response.headers_mut().append(
            header::SET_COOKIE,
            session_set_cookie(&id, &state.settings.auth),
        );
    }
    // An error page is drawn outside this layer (`render_errors`): it gets
    // the signed-in user too, so its shell is every page's.
    if let Some(user) = user
        && (response.status().is_client_error() || response.status().is_server_error())
    {
        response.extensions_mut().insert(user);
    }
    response
}

/// Resolves once the session `id` no longer exists (signed out, expired,
/// its user disabled), checked every `every`; a store that does not
/// answer keeps the stream going (the outage grace of the store applies).
async fn session_ended(users: crate::auth::users::UserStore, id: String, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Ok(None) = users.session(&id).await {
            return;
        }
    }
}

/// Left on a request whose user could not be checked because the user
/// store did not answer.
#[derive(Debug, Clone)]
struct StoreUnavailable(String);

/// Where a signed-out browser is sent to sign in: the sign-in page, with
/// the page it asked for to come back to.
pub fn login_redirect(request_uri: &axum::http::Uri) -> Response {
    let back = request_uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let target = if back == "/" {
        "/login?next=%2F".to_owned()
    } else {
        format!("/login?next={}", app::encode_query(&back))
    };
    Redirect::to(&target).into_response()
}

/// Whether a request is a browser loading a page (a GET that is neither
/// the API, a health check nor a live stream): what is sent to the sign-in
/// page rather than answered 401, and what starts a proxy user's session.
fn is_page_view(method: &Method, path: &str) -> bool {
    *method == Method::GET && !is_machine_path(path) && !path.starts_with("/events/")
}

/// Refuses requests the user may not make: the layer each group of routes
/// in the router carries, with the least role the group needs. Signed-out
/// page views are sent to the sign-in page; state-changing requests made
/// with a session must carry its CSRF token.
pub async fn require(State(needed): State<Role>, request: Request, next: Next) -> Response {
    let user = request.extensions().get::<CurrentUser>().cloned();
    let Some(user) = user else {
        if let Some(StoreUnavailable(why)) = request.extensions().get::<StoreUnavailable>() {
            return AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot check who you are: {why}"),
            )
            .into_response();
        }
        if is_page_view(request.method(), request.uri().path()) {
            return login_redirect(request.uri());
        }
        return AppError::new(
            StatusCode::UNAUTHORIZED,
            "sign in first (or send an API token where they are enabled)",
        )
        .into_response();
    };
    if !user.role.allows(needed) {
        return AppError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the {needed} role; {} is {} {}",
                user.name,
                article(user.role),
                user.role
            ),
        )
        .into_response();
    }
    if is_safe(request.method()) || user.method == AuthMethod::Token {
        return next.run(request).await;
    }
    match check_csrf(&user, request).await {
        Ok(request) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Operator => "an",
        Role::Viewer => "a",
    }
}

/// Methods that change nothing, so need no CSRF token.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Checks the CSRF token of a state-changing request from a session: the
/// `X-CSRF-Token` header, else the `csrf_token` field of a form body (the
/// body is read and handed on unchanged). Compared in constant time.
async fn check_csrf(user: &CurrentUser, request: Request) -> Result<Request, AppError> {
    let refuse = || {
        AppError::new(
            StatusCode::FORBIDDEN,
            "missing or invalid CSRF token; reload the page and try again",
        )
    };
    let expected = user.csrf.clone().ok_or_else(refuse)?;
    if let Some(sent) = request.headers().get(CSRF_HEADER) {
        return if constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
            Ok(request)
        } else {
            Err(refuse())
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(refuse());
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT).await.map_err(|_| {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than 1 MiB",
        )
    })?;
    let sent = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    match sent {
        Some(sent) if constant_time_eq(sent.as_bytes(), expected.as_bytes()) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(refuse()),
    }
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed-in user of a request, or 401 (for handlers behind
/// [`require`], where one always is).
impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or_else(|| AppError::new(StatusCode::UNAUTHORIZED, "sign in first"))
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for CurrentUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<CurrentUser>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; switchyard_session=abc ; b=2"),
        );
        assert_eq!(session_id(&headers), Some("abc"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("switchyard_session="),
        );
        assert_eq!(session_id(&headers), None);
        headers.insert(header::COOKIE, HeaderValue::from_static("other=x"));
        assert_eq!(session_id(&headers), None);
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_over_tls() {
        let mut settings = AuthSettings::default();
        let plain = session_set_cookie("id1", &settings);
        assert_eq!(
            plain.to_str().unwrap(),
            "switchyard_session=id1; HttpOnly; SameSite=Lax; Path=/; Max-Age=43200"
        );
        settings.secure_cookies = true;
        assert!(
            session_set_cookie("id1", &settings)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        assert!(
            session_clear_cookie(&settings)
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sy_abc"),
        );
        assert_eq!(bearer(&headers), Some("sy_abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic Zm9vOmJhcg=="),
        );
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn login_redirects_keep_the_page_asked_for() {
        let uri: axum::http::Uri = "/queues?state=failed&x=1".parse().unwrap();
        let response = login_redirect(&uri);
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()[header::LOCATION],
            "/login?next=%2Fqueues%3Fstate%3Dfailed%26x%3D1"
        );
        let root: axum::http::Uri = "/".parse().unwrap();
        assert_eq!(
            login_redirect(&root).headers()[header::LOCATION],
            "/login?next=%2F"
        );
    }

    #[test]
    fn tokens_compare_in_full() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
