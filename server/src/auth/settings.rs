//! How requests may identify their user, as the configuration gives it.

use std::time::Duration;

use axum::http::HeaderName;

use super::net::IpRange;

/// Default for `--session-ttl`: a working day, so an operator signs in
/// once a shift and a forgotten browser does not stay signed in for ever.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// How often an open live stream checks that the session it was opened
/// with still exists: a stream lasts as long as the page, so without this a
/// signed-out, expired or disabled user's open tab would keep receiving
/// updates.
pub const STREAM_RECHECK: Duration = Duration::from_secs(30);

/// How requests may identify their user, from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// How long a verified session or API token keeps working while the
    /// user database does not answer.
    pub outage_grace: Duration,
    /// Whether the session cookie is marked `Secure` (the dashboard is
    /// reached over https, per `--external-url`).
    pub secure_cookies: bool,
    /// Trust a header naming the user, from these proxies only.
    pub proxy: Option<ProxyAuth>,
    /// Accept `Authorization: Bearer` API tokens on `/api/`.
    pub api_tokens: bool,
    /// How often an open live stream checks that its session still
    /// exists ([`STREAM_RECHECK`]).
    pub stream_recheck: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_ttl: DEFAULT_SESSION_TTL,
            outage_grace: crate::auth::users::OUTAGE_GRACE,
            secure_cookies: false,
            proxy: None,
            api_tokens: false,
            stream_recheck: STREAM_RECHECK,
        }
    }
}

/// Sign-in done by a reverse proxy (an SSO gateway) that names the user in
/// a header. Only requests whose peer is one of `trusted` are believed: a
/// client reaching the dashboard directly could set the header itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    /// The header (e.g. `X-Forwarded-User`).
    pub header: HeaderName,
    /// The proxies' addresses.
    pub trusted: Vec<IpRange>,
}
