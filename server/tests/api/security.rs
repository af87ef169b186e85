//! Hardening headers: every response — pages, assets, the JSON API, event
//! streams, redirects, errors of every kind and 429s — carries the
//! Content-Security-Policy and its companions (see `server::http::security`).

use std::time::Duration;

use serde_json::json;
use server::ratelimits::LimitSpec;

use crate::helpers::TestApp;

/// The policy, spelled out here rather than read from the server, so a
/// change to it is a deliberate change to this test too.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Each hardening header and its value.
const EXPECTED: [(&str, &str); 5] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// Asserts every hardening header, sent once, on a response's `headers`.
fn assert_hardened(what: &str, headers: &[(String, String)]) {
    for (name, value) in EXPECTED {
        let values: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(values, vec![value], "{what}: {name} in {headers:?}");
    }
}

#[test]
fn the_policy_constant_is_the_one_tested() {
    assert_eq!(server::http::security::CONTENT_SECURITY_POLICY, CSP);
}

#[tokio::test]
async fn pages_assets_api_and_errors_carry_the_hardening_headers() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    for path in [
        "/",
        "/queues",
        "/queues/emails?state=waiting",
        "/channels",
        "/instances",
        "/ratelimits",
        "/alerts",
        "/config",
        "/style.css",
        "/app.js",
        "/api/queues",
        "/api/queues/emails",
        "/health",
        "/metrics",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        assert_hardened(path, &response.headers);
    }
    // The assets keep their own types and caching.
    let css = app.get("/style.css").await;
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert!(css.header("cache-control").unwrap().contains("max-age"));

    // Errors, in both formats, from handlers and from the router.
    let not_found = app.get("/no/such/page").await;
    assert_eq!(not_found.status, 404);
    assert!(not_found.is_html());
    assert_hardened("404 page", &not_found.headers);
    let api_not_found = app.get("/api/queues/emails/jobs/999999").await;
    assert_eq!(api_not_found.status, 404, "{}", api_not_found.body);
    assert!(api_not_found.is_json());
    assert_hardened("404 API", &api_not_found.headers);
    let bad = app.get("/?range=2d").await;
    assert_eq!(bad.status, 400);
    assert_hardened("400 page", &bad.headers);
    let bad_json = app
        .post_raw("/api/queues/emails/jobs", "application/json", b"{nope")
        .await;
    assert_eq!(bad_json.status, 400, "{}", bad_json.body);
    assert!(bad_json.is_json());
    assert_hardened("400 API", &bad_json.headers);
    let wrong_method = app.post("/queues").await;
    assert_eq!(wrong_method.status, 405);
    assert_hardened("405", &wrong_method.headers);

    // A form's redirect.
    let redirect = app.post_form("/queues/emails/pause", &[]).await;
    assert_eq!(redirect.status, 303, "{}", redirect.body);
    assert_hardened("303", &redirect.headers);
    app.stop().await;
}

#[tokio::test]
async fn event_streams_carry_the_hardening_headers() {
    let app = TestApp::spawn().await;
    let mut stream = app.sse("/events/overview").await;
    assert_eq!(stream.status, 200);
    assert!(
        stream
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_hardened("stream", &stream.headers);
    // Still a working stream.
    stream.expect_event(Duration::from_secs(10)).await;

    let refused = app.sse("/events/overview?range=2d").await;
    assert_eq!(refused.status, 400);
    assert_hardened("400 stream", &refused.headers);
    app.stop().await;
}

#[tokio::test]
async fn rate_limited_answers_carry_the_hardening_headers() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.pages = LimitSpec::per(1, 60);
        s.rate_limits.api = LimitSpec::per(1, 60);
    })
    .await;
    assert_eq!(app.get("/config").await.status, 200);
    let refused = app.get("/queues").await;
    assert_eq!(refused.status, 429);
    assert!(refused.is_html());
    assert!(refused.header("retry-after").is_some());
    assert_hardened("429 page", &refused.headers);

    assert_eq!(app.get("/api/queues").await.status, 200);
    let api = app.get("/api/queues").await;
    assert_eq!(api.status, 429);
    assert!(api.is_json());
    assert_hardened("429 API", &api.headers);
    app.stop().await;
}
