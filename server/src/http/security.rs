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

use axum::http::HeaderName;

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
