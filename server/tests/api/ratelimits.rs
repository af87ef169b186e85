//! Rate limiting: the dashboard's own routes answer 429 with `Retry-After`
//! and `RateLimit-*` headers over their limit, and the Rate limits page
//! shows policies, usage, blocked keys (with Unblock) and the degraded
//! mode, embedded and on Redis.

use std::time::Duration;

use coord::ratelimit::{Policy, RateLimiter};
use serde_json::json;
use server::ratelimits::LimitSpec;
use test_support::http::TestResponse;
use test_support::redis::PrivateRedis;

use crate::helpers::{TestApp, assert_redirect, eventually, notice_cookie};

/// A service sharing the deployment's rate-limit backend, with a login
/// policy that blocks after one rejection, registered like a real service.
async fn service(app: &TestApp) -> RateLimiter {
    let policy = Policy::new("svc.login", 2, Duration::from_secs(60))
        .unwrap()
        .with_block(1, Duration::from_secs(60), Duration::from_secs(300))
        .unwrap();
    let limiter = RateLimiter::new(app.app.state.ratelimits.backend.clone(), vec![policy]).unwrap();
    limiter.register().await.expect("register");
    limiter
}

/// Makes `key` blocked under the service's login policy.
async fn block(limiter: &RateLimiter, key: &str) {
    for _ in 0..3 {
        limiter.check("svc.login", key).await.unwrap();
    }
    let d = limiter.check("svc.login", key).await.unwrap();
    assert!(d.blocked_until.is_some(), "{key} is blocked");
}

#[tokio::test]
async fn pages_over_their_limit_get_429_with_headers_in_their_format() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.pages = LimitSpec::per(3, 60);
        s.rate_limits.api = LimitSpec::per(2, 60);
    })
    .await;
    for remaining in ["2", "1", "0"] {
        let r = app.get("/config").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-limit"), Some("3"));
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
        assert_eq!(r.header("ratelimit-policy"), Some("3;w=60"));
        assert!(r.header("retry-after").is_none());
    }
    let refused = app.get("/queues").await;
    assert_eq!(refused.status, 429);
    assert!(refused.is_html(), "{:?}", refused.headers);
    let wait: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((50..=60).contains(&wait), "{wait}");
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
    assert!(
        refused.body.contains(&format!(
            "too many requests from your address; retry in {wait} s"
        )),
        "{}",
        refused.body
    );
    // The refusal is in the signed-in user's shell, like every error page.
    assert!(
        refused.body.contains(r#"data-test-id="user-menu""#),
        "{}",
        refused.body
    );
    // Other policies are separate, and health checks are never limited.
    assert_eq!(app.get("/health").await.status, 200);
    assert!(app.get("/health").await.header("ratelimit-limit").is_none());
    assert_eq!(app.get("/api/queues").await.status, 200);
    assert_eq!(app.get("/api/queues").await.status, 200);
    let api = app.get("/api/queues").await;
    assert_eq!(api.status, 429);
    assert!(api.is_json());
    assert!(api.error().contains("retry in"), "{}", api.body);
    assert!(api.header("retry-after").is_some());
    app.stop().await;
}

#[tokio::test]
async fn off_means_unlimited_and_without_headers() {
    let app = TestApp::spawn_with(|s| s.rate_limits.pages = LimitSpec::Off).await;
    for _ in 0..5 {
        let r = app.get("/config").await;
        assert_eq!(r.status, 200);
        assert!(r.header("ratelimit-limit").is_none());
    }
    // The page lists only the policies that are on.
    let page = app.get("/ratelimits").await.body;
    assert!(page.contains(r#"data-policy="dashboard.actions""#));
    assert!(!page.contains(r#"data-policy="dashboard.pages""#));
    app.stop().await;
}

#[tokio::test]
async fn the_page_shows_policies_usage_and_blocks_and_unblock_lifts_one() {
    let app = TestApp::spawn().await;
    let svc = service(&app).await;
    let evil = r#"<script>alert("k")</script>"#;
    block(&svc, evil).await;
    svc.check("svc.login", "10.1.2.3").await.unwrap();

    let page = app.get("/ratelimits").await;
    assert_eq!(page.status, 200);
    let html = &page.body;
    for policy in [
        "dashboard.pages",
        "dashboard.actions",
        "dashboard.api",
        "svc.login",
    ] {
        assert!(
            html.contains(&format!(r#"data-policy="{policy}""#)),
            "{policy}"
        );
    }
    assert!(html.contains("data-test-id=\"ratelimit-backend\""));
    assert!(!html.contains("data-test-id=\"ratelimit-degraded\""));
    // The blocked key is listed, escaped, with its Unblock form.
    assert!(!html.contains(evil), "unescaped key");
    assert!(html.contains("&lt;script&gt;alert("));
    assert!(html.contains(r#"data-test-id="blocked-row""#));
    assert!(html.contains(r#"action="/ratelimits/unblock""#));
    // Usage: the top keys table has both keys of the service.
    assert!(html.contains(r#"data-key="10.1.2.3""#));

    let done = app
        .post_form(
            "/ratelimits/unblock",
            &[
                ("policy", "svc.login"),
                ("key", evil),
                ("back", "/ratelimits"),
            ],
        )
        .await;
    assert_redirect(&done, "/ratelimits");
    let cookie = notice_cookie(&done);
    let after = app.get_with_cookie("/ratelimits", &cookie).await.body;
    assert!(after.contains("Unblocked &lt;script&gt;"), "notice shown");
    assert!(
        !after.contains(r#"data-test-id="blocked-row""#),
        "still listed"
    );
    assert!(after.contains(r#"data-test-id="blocked-empty""#));
    // The key is judged by its window again (full: a plain rejection).
    let d = svc.check("svc.login", evil).await.unwrap();
    assert!(!d.allowed);
    assert!(d.blocked_until.is_none() || d.retry_after.is_some());
    app.stop().await;
}

#[tokio::test]
async fn unblock_refuses_what_it_cannot_do_with_a_reason() {
    let app = TestApp::spawn().await;
    let unknown = app
        .post_form("/ratelimits/unblock", &[("policy", "nope"), ("key", "k")])
        .await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.is_html());
    assert!(unknown.body.contains("no rate-limit policy is named"));
    let missing = app
        .post_form("/ratelimits/unblock", &[("policy", "dashboard.pages")])
        .await;
    assert_eq!(missing.status, 400);
    assert!(missing.body.contains("no key field"), "{}", missing.body);
    let bad_key = app
        .post_form(
            "/ratelimits/unblock",
            &[("policy", "dashboard.pages"), ("key", "")],
        )
        .await;
    assert_eq!(bad_key.status, 400);
    assert_eq!(app.get("/ratelimits/unblock").await.status, 405);

    let api = app
        .post_json("/api/ratelimits/nope/unblock", &json!({"key": "k"}))
        .await;
    assert_eq!(api.status, 404);
    assert!(api.error().contains("nope"));
    let api = app
        .post_json(
            "/api/ratelimits/dashboard.pages/unblock",
            &json!({"key": "a\nb"}),
        )
        .await;
    assert_eq!(api.status, 400);
    let api = app
        .post_json(
            "/api/ratelimits/dashboard.pages/unblock",
            &json!({"keys": "k"}),
        )
        .await;
    assert_eq!(api.status, 400);
    app.stop().await;
}

#[tokio::test]
async fn the_api_lists_policies_usage_and_unblocks() {
    let app = TestApp::spawn().await;
    let svc = service(&app).await;
    block(&svc, "mallory").await;
    let list = app.get("/api/ratelimits").await;
    assert_eq!(list.status, 200);
    let body = list.json();
    assert_eq!(body["status"]["backend"], "in-process");
    assert_eq!(body["status"]["degraded"], false);
    let login = body["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "svc.login")
        .expect("the service's policy")
        .clone();
    assert_eq!(login["limit"], 2);
    assert_eq!(login["windowMs"], 60_000);
    assert_eq!(login["blockedKeys"], 1);
    assert_eq!(body["blocked"][0]["key"], "mallory");
    assert_eq!(body["perMinute"].as_array().unwrap().len(), 60);
    let top = body["topKeys"].as_array().unwrap();
    let mallory = top.iter().find(|k| k["key"] == "mallory").expect("top key");
    assert_eq!(mallory["count"], 2);
    assert_eq!(mallory["limit"], 2);
    assert_eq!(mallory["percent"], 100.0);
    // The dashboard's own keys (its API was just used) are listed apart.
    assert!(
        top.iter()
            .all(|k| !k["policy"].as_str().unwrap().starts_with("dashboard.")),
        "{top:?}"
    );
    let own = body["dashboardKeys"].as_array().unwrap();
    assert!(
        own.iter().any(|k| k["policy"] == "dashboard.api"),
        "{own:?}"
    );
    assert!(
        own.iter()
            .all(|k| k["policy"].as_str().unwrap().starts_with("dashboard."))
    );

    let done = app
        .post_json(
            "/api/ratelimits/svc.login/unblock",
            &json!({"key": "mallory"}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["unblocked"], true);
    let body = app.get("/api/ratelimits").await.json();
    assert_eq!(body["blocked"].as_array().unwrap().len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn the_live_stream_shows_a_new_block_without_a_reload() {
    let app = TestApp::spawn().await;
    let svc = service(&app).await;
    let mut stream = app.sse("/events/ratelimits").await;
    assert_eq!(stream.status, 200);
    // The full page first: no block yet.
    let first = stream.expect_event(Duration::from_secs(5)).await;
    let _ = first;
    block(&svc, "brute-forcer").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = stream.expect_event(Duration::from_secs(10)).await;
        if event.region() == Some("ratelimit-blocked") && event.data.contains("brute-forcer") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no live update");
    }
    app.stop().await;
}

/// On Redis, the dashboard's limits are shared by every instance, and an
/// outage degrades to per-instance limits: pages keep being served, the
/// banner says so, and it goes when Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_shows_the_degraded_banner_and_recovers() {
    let mut redis = PrivateRedis::started().await;
    let mut app = TestApp::spawn_redis_at(&redis.url()).await;
    let page = app.get("/ratelimits").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Decisions: redis"));
    assert_eq!(page.header("ratelimit-remaining"), Some("599"));

    redis.stop();
    // Served (the fallback decides), and the banner appears.
    let html = eventually("the degraded banner", async || {
        let page = app.get("/ratelimits").await;
        if page.status != 200 && page.status != 503 {
            return Err(format!("status {}", page.status));
        }
        if page.body.contains(r#"data-test-id="ratelimit-degraded""#) {
            Ok(page.body)
        } else {
            Err("no banner".into())
        }
    })
    .await;
    assert!(html.contains(r#"data-fallback="local""#), "{html}");
    let status = app.app.state.ratelimits.limiter.status();
    assert!(status.degraded(), "{status:?} {html}");
    let started = std::time::Instant::now();
    let config = app.get("/config").await;
    assert_eq!(config.status, 200, "pages are served while Redis is down");
    assert!(config.header("ratelimit-remaining").is_some());

    let back = PrivateRedis::start(redis.port());
    back.ready().await;
    // It came back empty: the sign-in sessions it held are gone.
    app.sign_in_again().await;
    eventually("the limiter to recover", async || {
        let status = app.app.state.ratelimits.limiter.status();
        if status.degraded() {
            Err(format!("{status:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    // The page follows within a refresh of its figures.
    eventually("the banner to go", async || {
        let page = app.get("/ratelimits").await;
        if page.status == 200 && !page.body.contains(r#"data-test-id="ratelimit-degraded""#) {
            Ok(())
        } else {
            Err(format!("status {}", page.status))
        }
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    app.stop().await;
}

/// Two dashboard instances on one Redis share the limit of one address.
#[tokio::test]
async fn redis_instances_share_the_dashboards_limit() {
    let a = TestApp::spawn_redis().await;
    let prefix = a.app.state.settings.redis_prefix.clone();
    let b = TestApp::spawn_redis_sharing(&prefix).await;
    let first = a.get("/config").await;
    let second = b.get("/config").await;
    let remaining =
        |r: &TestResponse| -> u32 { r.header("ratelimit-remaining").unwrap().parse().unwrap() };
    assert_eq!(remaining(&first) - 1, remaining(&second));
    b.stop().await;
    a.stop().await;
}
