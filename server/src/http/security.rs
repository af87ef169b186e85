//! The hardening headers sent on every response (pages, assets, the JSON
//! API, event streams and every error), as one place to read and change
//! them. [`crate::startup::router`] installs them with
//! `SetResponseHeaderLayer::if_not_present`, outside every other layer, so
//! a 429 from the rate limiter or a rendered error carries them too, while a
//! handler that deliberately sets one of them keeps its own value.
//!
//! The pages are built for this policy: no inline `<script>`, no event
//! handler attributes, no `style` attributes or `<style>` elements; the
//! stylesheet and the script are the two same-origin files `/style.css` and
//! `/app.js` (the app crate's tests check the rendered HTML for this).

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::error::AppError;

/// Largest request body accepted: a job's data is meant to reference large
/// payloads, not carry them.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// `Content-Security-Policy`: what a page may load and do, so that markup
/// injected through some unescaped value could not run script or leak data.
///
/// - `default-src 'self'`: anything not listed below comes from this origin
///   only.
/// - `script-src 'self'`: only `/app.js`; no inline script, no event
///   handler attributes, no `eval` — the main defence against XSS.
/// - `style-src 'self'`: only `/style.css`; no `style` attributes or
///   `<style>` elements, which injected markup could use to restyle or
///   exfiltrate (CSS selectors reading attribute values).
/// - `img-src 'self' data:`: images from here, plus `data:` URLs for any
///   small inline icon; charts are inline SVG and need nothing.
/// - `connect-src 'self'`: the live updates' `EventSource` streams and any
///   fetch go back to this server only, never elsewhere.
/// - `font-src 'self'`: the system font stack; nothing fetched from a CDN.
/// - `object-src 'none'`: no plugins (`<object>`, `<embed>`).
/// - `base-uri 'none'`: an injected `<base>` cannot redirect the pages'
///   relative links and form actions.
/// - `form-action 'self'`: the forms (pause, retry, unblock…) post only
///   here, so an injected form cannot send data to another site.
/// - `frame-ancestors 'none'`: no site may frame the dashboard, which
///   prevents clickjacking its buttons.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `X-Content-Type-Options: nosniff`: browsers use the declared
/// `Content-Type` and never guess, so a JSON answer or a text error that
/// quotes user input is never run as script or styles.
pub const X_CONTENT_TYPE_OPTIONS: &str = "nosniff";

/// `Referrer-Policy: same-origin`: links inside the dashboard keep the
/// referrer; a link to another site does not receive the dashboard's URL
/// (its paths and query strings name queues, jobs and keys).
pub const REFERRER_POLICY: &str = "same-origin";

/// `X-Frame-Options: DENY`: the same as `frame-ancestors 'none'`, for old
/// browsers that do not read the CSP's frame-ancestors.
pub const X_FRAME_OPTIONS: &str = "DENY";

/// The `Cross-Origin-Opener-Policy` header's name (the `http` crate has no
/// constant for it).
pub const CROSS_ORIGIN_OPENER_POLICY_NAME: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");

/// `Cross-Origin-Opener-Policy: same-origin`: a page of another site that
/// opened the dashboard (or that the dashboard opened) gets no handle on
/// its window, isolating it from cross-window attacks.
pub const CROSS_ORIGIN_OPENER_POLICY: &str = "same-origin";

/// `Strict-Transport-Security` when the dashboard is reached over https
/// (`--external-url https://…`): a browser that has seen it never talks to
/// the dashboard in plain http again for a year, so a network attacker
/// cannot strip TLS off a later visit and read the session cookie.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Sets what every answer says about storing and transport:
/// `Cache-Control: no-store` unless the route chose to be cached (the two
/// assets); the live streams' `no-cache` becomes `no-store` too, so no
/// page, API answer (`/api/session` carries the CSRF token), stream or
/// error of a signed-in user is kept by a browser or a shared proxy. With
/// `https`, also [`STRICT_TRANSPORT_SECURITY`].
pub async fn storage_and_transport(State(https): State<bool>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    let cacheable = headers
        .get(header::CACHE_CONTROL)
        .is_some_and(|value| value.as_bytes() != b"no-cache");
    if !cacheable {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if https {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(STRICT_TRANSPORT_SECURITY));
    }
    response
}

/// Longest request target (path and query) answered; longer is 414. No
/// page needs more: filters and pagers stay well under 1 KiB.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) in one request; more is 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most headers in one request; more is 431.
pub const MAX_HEADERS: usize = 100;
/// What the connection itself accepts (see [`crate::http::serve`]): above
/// the limits here, so nearly every oversized request is refused by
/// [`request_limits`], inside the layers that add the hardening headers
/// and render errors; only a head beyond these gets hyper's bare answer.
pub const CONNECTION_MAX_HEADERS: usize = 4 * MAX_HEADERS;
/// See [`CONNECTION_MAX_HEADERS`].
pub const CONNECTION_MAX_BUFFER: usize = 4 * MAX_HEADER_BYTES;

/// Refuses an oversized request head with 414 or 431 and the reason.
pub async fn request_limits(request: Request, next: Next) -> Response {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri > MAX_URI_BYTES {
        return AppError::new(
            StatusCode::URI_TOO_LONG,
            format!("the address is {uri} bytes long; at most {MAX_URI_BYTES} are accepted"),
        )
        .into_response();
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return AppError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request has {} headers of {bytes} bytes; at most {MAX_HEADERS} headers of \
                 {MAX_HEADER_BYTES} bytes are accepted",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(request).await
}
