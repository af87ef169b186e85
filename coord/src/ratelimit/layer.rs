//! A tower [`Layer`] that puts a [`RateLimiter`] in front of an HTTP
//! service (behind the `tower` feature, so coord stays free of HTTP types
//! for users of the queues alone).
//!
//! For each request a *classifier* decides which policy and key judge it,
//! or that it is not limited at all (health checks, static assets). Doing
//! this per request, rather than configuring one policy per layer, lets one
//! layer serve a whole router: a higher limit for one role or route is just
//! another policy name returned by the classifier.
//!
//! Allowed requests go to the inner service; rejected ones are answered by
//! the layer without calling it (by default `429 Too Many Requests` in plain
//! text, or whatever [`RateLimitLayer::on_reject`] builds). Both carry the
//! draft IETF rate-limit headers (`draft-ietf-httpapi-ratelimit-headers`,
//! the unstructured form), so well-behaved clients can pace themselves
//! before they are rejected:
//!
//! | header                | value                                          |
//! |-----------------------|------------------------------------------------|
//! | `RateLimit-Limit`     | [`Decision::limit`] (`limit + burst`)          |
//! | `RateLimit-Remaining` | [`Decision::remaining`]                        |
//! | `RateLimit-Reset`     | [`Decision::reset_after`], whole seconds, up   |
//! | `RateLimit-Policy`    | `<limit + burst>;w=<window in whole seconds>`  |
//! | `Retry-After`         | on rejection only: see [`retry_after_secs`]    |
//!
//! `RateLimit-Limit` advertises the hard cap rather than the policy's
//! nominal limit so that it is what `RateLimit-Remaining` counts down from.
//! Headers the inner service (or a custom rejection) already set are left
//! alone, so a handler can override them.
//!
//! # Failing open
//!
//! When the limiter cannot decide (an unknown policy name, a key the
//! limiter refuses, a backend error) the request is **let through** and a
//! `tracing` warning is logged for that request: a bug in the limiter or
//! its configuration must not take the service down. The flip side is that
//! such a request is not limited, so a classifier must only produce
//! policies that exist and keys that are valid [`RateKey`](super::RateKey)s
//! (1–200 characters, no control characters) — hash or truncate keys taken
//! from client input, or a client could escape its limit by sending an
//! overlong one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::{Decision, RateLimiter};

/// `RateLimit-Limit` (header names must be lower case for `from_static`).
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Which policy and key judge one request: the classifier's answer. Owned
/// strings because the key is usually computed from the request (a user id
/// from a session, a client IP).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The name of a policy configured on the [`RateLimiter`].
    pub policy: String,
    /// Who is counted: must be a valid [`RateKey`](super::RateKey), or the
    /// request is let through unlimited (see the module docs).
    pub key: String,
}

impl Target {
    /// Shorthand for classifiers: `Some(Target::new("api", user_id))`.
    pub fn new(policy: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            policy: policy.into(),
            key: key.into(),
        }
    }
}

type Classify = dyn Fn(&Parts) -> Option<Target> + Send + Sync;
type Reject = dyn Fn(&Decision, &Parts) -> Response<String> + Send + Sync;

/// Applies a [`RateLimiter`] to every request of the wrapped service.
/// Cheap to clone (everything is shared), as tower and axum expect of
/// layers.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: RateLimiter,
    classify: Arc<Classify>,
    reject: Arc<Reject>,
}

/// What the services built by one layer share, behind one `Arc` so that
/// the per-request clone of the service is a single reference count.
struct Shared {
    limiter: RateLimiter,
    classify: Arc<Classify>,
    reject: Arc<Reject>,
}

impl RateLimitLayer {
    /// A layer judging each request by the [`Target`] that `classify`
    /// picks from its head, or not at all when it returns `None`.
    ///
    /// `classify` sees only the request's [`Parts`] (method, URI, headers,
    /// extensions) so that the body is never touched: anything put in the
    /// extensions by an earlier layer (an authenticated user, a peer
    /// address) is available to it.
    pub fn new(
        limiter: RateLimiter,
        classify: impl Fn(&Parts) -> Option<Target> + Send + Sync + 'static,
    ) -> Self {
        Self {
            limiter,
            classify: Arc::new(classify),
            reject: Arc::new(default_reject),
        }
    }

    /// Replaces the response to rejected requests, so the server can answer
    /// in its own format (an HTML page, JSON). The status is the handler's
    /// choice (429 is expected); the rate-limit headers and `Retry-After`
    /// are added afterwards unless the handler set them itself.
    pub fn on_reject(
        mut self,
        reject: impl Fn(&Decision, &Parts) -> Response<String> + Send + Sync + 'static,
    ) -> Self {
        self.reject = Arc::new(reject);
        self
    }
}

/// Closures are not `Debug`; shows the limiter only.
impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: Arc::new(Shared {
                limiter: self.limiter.clone(),
                classify: self.classify.clone(),
                reject: self.reject.clone(),
            }),
        }
    }
}

/// The service built by [`RateLimitLayer`]: decides each request before
/// the inner service sees it. Public so it can be named in types; build it
/// through the layer.
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("limiter", &self.shared.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for RateLimit<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqB: Send + 'static,
    ResB: From<String>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        // Take the service that `poll_ready` readied and leave a clone in
        // its place: the future outlives `&mut self`.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();

        let (parts, body) = req.into_parts();
        let Some(target) = (shared.classify)(&parts) else {
            return Box::pin(inner.call(Request::from_parts(parts, body)));
        };

        Box::pin(async move {
            let decision = match shared.limiter.check(&target.policy, &target.key).await {
                Ok(decision) => decision,
                Err(error) => {
                    tracing::warn!(
                        policy = %target.policy,
                        %error,
                        "rate limiter failed; letting the request through unlimited"
                    );
                    return inner.call(Request::from_parts(parts, body)).await;
                }
            };
            let window = shared
                .limiter
                .policy(&target.policy)
                .map(|policy| policy.window());

            if decision.allowed {
                let mut response = inner.call(Request::from_parts(parts, body)).await?;
                add_headers(response.headers_mut(), &decision, window);
                Ok(response)
            } else {
                // The inner service is not called: `inner` is dropped here,
                // releasing whatever its readiness reserved.
                let mut response = (shared.reject)(&decision, &parts);
                let headers = response.headers_mut();
                add_headers(headers, &decision, window);
                headers
                    .entry(RETRY_AFTER)
                    .or_insert_with(|| HeaderValue::from(retry_after_secs(&decision)));
                Ok(response.map(ResB::from))
            }
        })
    }
}

/// Seconds a rejected client should wait, as sent in `Retry-After`:
/// [`Decision::retry_after`] rounded up (falling back to `reset_after`),
/// and at least 1, since `Retry-After: 0` invites an immediate retry that
/// would be rejected again. Public so a custom rejection page can say the
/// same thing as the header.
pub fn retry_after_secs(decision: &Decision) -> u64 {
    ceil_secs(decision.retry_after.unwrap_or(decision.reset_after)).max(1)
}

/// The default rejection: a short plain-text 429, readable by a human
/// and by `curl` alike.
fn default_reject(decision: &Decision, _parts: &Parts) -> Response<String> {
    let mut response = Response::new(format!(
        "Too many requests: retry in {} s.",
        retry_after_secs(decision)
    ));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Adds the `RateLimit-*` headers that are not already present.
fn add_headers(headers: &mut HeaderMap, decision: &Decision, window: Option<Duration>) {
    headers
        .entry(RATELIMIT_LIMIT)
        .or_insert_with(|| HeaderValue::from(decision.limit));
    headers
        .entry(RATELIMIT_REMAINING)
        .or_insert_with(|| HeaderValue::from(decision.remaining));
    headers
        .entry(RATELIMIT_RESET)
        .or_insert_with(|| HeaderValue::from(ceil_secs(decision.reset_after)));
    if let Some(window) = window {
        let policy = format!("{};w={}", decision.limit, ceil_secs(window));
        if let Ok(value) = HeaderValue::from_str(&policy) {
            headers.entry(RATELIMIT_POLICY).or_insert(value);
        }
    }
}

/// Whole seconds, rounded up: a client told to wait less than the real
/// time would come back too early.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
