//! The tower rate-limit layer against real backends (in-process and Redis):
//! headers, rejection without calling the inner service, classification.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coord::ratelimit::layer::{RateLimitLayer, Target, retry_after_secs};
use coord::ratelimit::local::LocalLimiter;
use coord::ratelimit::redis::RedisLimiter;
use coord::ratelimit::{Policy, RateLimiter};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use tower::{Layer, Service, ServiceExt};

use common::{REDIS_URL, delete_prefix, keys_under, unique};

const WINDOW: Duration = Duration::from_secs(60);

fn policy(name: &str, limit: u32) -> Policy {
    Policy::new(name, limit, WINDOW).expect("valid policy")
}

fn local(policies: Vec<Policy>) -> RateLimiter {
    RateLimiter::new(Arc::new(LocalLimiter::new()), policies).expect("valid policies")
}

/// The classifier of these tests: `/health` is not limited; the key is the
/// `x-client` header; `x-role: admin` selects the `admin` policy, anything
/// else `api`.
fn classify(parts: &Parts) -> Option<Target> {
    if parts.uri.path() == "/health" {
        return None;
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let policy = match header("x-role") {
        Some("admin") => "admin",
        _ => "api",
    };
    Some(Target::new(
        policy,
        header("x-client").unwrap_or("anonymous"),
    ))
}

/// An inner service that counts its calls and answers `200 ok`.
#[derive(Clone)]
struct Counted {
    calls: Arc<AtomicUsize>,
}

impl Counted {
    fn new() -> Self {
        Self {
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn service(
        &self,
    ) -> impl Service<
        Request<String>,
        Response = Response<String>,
        Error = Infallible,
        Future = impl Send + 'static,
    > + Clone
    + Send
    + 'static {
        let calls = self.calls.clone();
        tower::service_fn(move |_req: Request<String>| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(Response::new("ok".to_owned()))
            }
        })
    }
}

fn request(path: &str, client: &str, role: Option<&str>) -> Request<String> {
    let mut builder = Request::builder().uri(path).header("x-client", client);
    if let Some(role) = role {
        builder = builder.header("x-role", role);
    }
    builder.body(String::new()).expect("valid request")
}

async fn send<S>(svc: &S, req: Request<String>) -> Response<String>
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
{
    svc.clone().oneshot(req).await.expect("infallible")
}

fn header<'a>(res: &'a Response<String>, name: &str) -> Option<&'a str> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header"))
}

/// Asserts the four `RateLimit-*` headers.
fn assert_ratelimit_headers(res: &Response<String>, limit: u32, remaining: u32) {
    assert_eq!(
        header(res, "ratelimit-limit"),
        Some(limit.to_string().as_str())
    );
    assert_eq!(
        header(res, "ratelimit-remaining"),
        Some(remaining.to_string().as_str())
    );
    // The oldest request of the window leaves it within 60 s, rounded up.
    assert_eq!(header(res, "ratelimit-reset"), Some("60"));
    assert_eq!(
        header(res, "ratelimit-policy"),
        Some(format!("{limit};w=60").as_str())
    );
}

fn assert_no_ratelimit_headers(res: &Response<String>) {
    for name in [
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "ratelimit-policy",
        "retry-after",
    ] {
        assert!(res.headers().get(name).is_none(), "unexpected {name}");
    }
}

fn limited(
    limiter: RateLimiter,
    inner: &Counted,
) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone {
    RateLimitLayer::new(limiter, classify).layer(inner.service())
}

#[tokio::test]
async fn allowed_requests_carry_counting_down_headers_and_the_excess_gets_429() {
    let limiter = local(vec![policy("api", 3).with_burst(1).expect("valid burst")]);
    let inner = Counted::new();
    let svc = limited(limiter, &inner);

    // Capacity is limit + burst = 4, and `remaining` counts down from it.
    for remaining in [3, 2, 1, 0] {
        let res = send(&svc, request("/x", "alice", None)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body(), "ok");
        assert_ratelimit_headers(&res, 4, remaining);
        assert!(res.headers().get("retry-after").is_none());
    }
    assert_eq!(inner.calls(), 4);

    let res = send(&svc, request("/x", "alice", None)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_ratelimit_headers(&res, 4, 0);
    // The first slot frees 60 s after it was taken, minus the few ms the
    // test took, rounded up.
    assert_eq!(header(&res, "retry-after"), Some("60"));
    assert_eq!(
        header(&res, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(res.body(), "Too many requests: retry in 60 s.");
    assert_eq!(
        inner.calls(),
        4,
        "a rejected request must not reach the service"
    );
}

#[tokio::test]
async fn headers_set_by_the_inner_service_are_kept() {
    let limiter = local(vec![policy("api", 5)]);
    let inner = tower::service_fn(|_req: Request<String>| async {
        let mut res = Response::new(String::new());
        res.headers_mut().insert(
            "ratelimit-policy",
            "5;w=60;comment=\"own\"".parse().expect("value"),
        );
        Ok::<_, Infallible>(res)
    });
    let svc = RateLimitLayer::new(limiter, classify).layer(inner);

    let res = send(&svc, request("/x", "alice", None)).await;
    assert_eq!(
        header(&res, "ratelimit-policy"),
        Some("5;w=60;comment=\"own\"")
    );
    assert_eq!(res.headers().get_all("ratelimit-policy").iter().count(), 1);
    assert_eq!(header(&res, "ratelimit-remaining"), Some("4"));
}

#[tokio::test]
async fn unclassified_requests_bypass_the_limiter() {
    let limiter = local(vec![policy("api", 1)]);
    let inner = Counted::new();
    let svc = limited(limiter, &inner);

    for _ in 0..5 {
        let res = send(&svc, request("/health", "alice", None)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_no_ratelimit_headers(&res);
    }
    assert_eq!(inner.calls(), 5);
    // ...and did not use up alice's quota.
    let res = send(&svc, request("/x", "alice", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_ratelimit_headers(&res, 1, 0);
}

#[tokio::test]
async fn keys_are_limited_independently() {
    let limiter = local(vec![policy("api", 1)]);
    let inner = Counted::new();
    let svc = limited(limiter, &inner);

    assert_eq!(
        send(&svc, request("/x", "alice", None)).await.status(),
        StatusCode::OK
    );
    let res = send(&svc, request("/x", "alice", None)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    let res = send(&svc, request("/x", "bob", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_ratelimit_headers(&res, 1, 0);
    assert_eq!(inner.calls(), 2);
}

#[tokio::test]
async fn the_classifier_picks_a_policy_per_role() {
    let limiter = local(vec![policy("api", 2), policy("admin", 5)]);
    let inner = Counted::new();
    let svc = limited(limiter, &inner);

    for remaining in [1, 0] {
        let res = send(&svc, request("/x", "carol", None)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_ratelimit_headers(&res, 2, remaining);
    }
    let res = send(&svc, request("/x", "carol", None)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    for remaining in [4, 3, 2, 1, 0] {
        let res = send(&svc, request("/x", "root", Some("admin"))).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_ratelimit_headers(&res, 5, remaining);
    }
    let res = send(&svc, request("/x", "root", Some("admin"))).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_ratelimit_headers(&res, 5, 0);
    assert_eq!(inner.calls(), 7);
}

#[tokio::test]
async fn a_custom_rejection_is_used_and_its_headers_are_kept() {
    let limiter = local(vec![policy("api", 1)]);
    let inner = Counted::new();
    let svc = RateLimitLayer::new(limiter, classify)
        .on_reject(|decision, parts| {
            let body = format!(
                r#"{{"error":"rate_limited","path":"{}","retry_after":{}}}"#,
                parts.uri.path(),
                retry_after_secs(decision)
            );
            Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header("content-type", "application/json")
                .header("retry-after", "42")
                .body(body)
                .expect("valid response")
        })
        .layer(inner.service());

    assert_eq!(
        send(&svc, request("/api/jobs", "dave", None))
            .await
            .status(),
        StatusCode::OK
    );
    let res = send(&svc, request("/api/jobs", "dave", None)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "content-type"), Some("application/json"));
    assert_eq!(
        res.body(),
        r#"{"error":"rate_limited","path":"/api/jobs","retry_after":60}"#
    );
    // The handler's own Retry-After wins; the RateLimit-* headers are added.
    assert_eq!(header(&res, "retry-after"), Some("42"));
    assert_ratelimit_headers(&res, 1, 0);
    assert_eq!(inner.calls(), 1);
}

#[tokio::test]
async fn limiter_errors_let_requests_through() {
    // No "api" policy configured, and an empty key is not a valid RateKey:
    // both are limiter errors, and must not turn into refused requests.
    let limiter = local(vec![policy("other", 1)]);
    let inner = Counted::new();
    let svc = limited(limiter.clone(), &inner);
    for _ in 0..3 {
        let res = send(&svc, request("/x", "erin", None)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_no_ratelimit_headers(&res);
    }
    assert_eq!(inner.calls(), 3);

    let svc = RateLimitLayer::new(limiter, |_: &Parts| Some(Target::new("other", "")))
        .layer(inner.service());
    for _ in 0..3 {
        let res = send(&svc, request("/x", "erin", None)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_no_ratelimit_headers(&res);
    }
    assert_eq!(inner.calls(), 6);
}

#[tokio::test]
async fn instances_sharing_redis_share_the_limit() {
    let prefix = unique("syrllayer");
    let connect = || async {
        let backend = RedisLimiter::connect(REDIS_URL, &prefix)
            .await
            .expect("connect to the test Redis at 127.0.0.1:6379");
        RateLimiter::new(Arc::new(backend), vec![policy("api", 2)]).expect("valid policies")
    };
    // Two "instances" of a service, each with its own connection and layer.
    let inner = Counted::new();
    let a = limited(connect().await, &inner);
    let b = limited(connect().await, &inner);

    let res = send(&a, request("/x", "frank", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_ratelimit_headers(&res, 2, 1);
    let res = send(&b, request("/x", "frank", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_ratelimit_headers(&res, 2, 0);

    let res = send(&a, request("/x", "frank", None)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_ratelimit_headers(&res, 2, 0);
    assert_eq!(header(&res, "retry-after"), Some("60"));
    assert_eq!(inner.calls(), 2);

    // Another key is unaffected.
    let res = send(&b, request("/x", "grace", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_ratelimit_headers(&res, 2, 1);

    assert!(!keys_under(&prefix).await.is_empty());
    delete_prefix(&prefix).await;
    assert!(keys_under(&prefix).await.is_empty());
}
