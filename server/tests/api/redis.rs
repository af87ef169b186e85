//! The scale-out deployment: the same routes against the local Redis, under
//! a key prefix of the test's own.

use serde_json::json;
use test_support::html::{attr, row, start_tag, text_of};

use crate::helpers::{TestApp, WAIT, assert_redirect, eventually, row_count};

#[tokio::test]
async fn the_dashboard_and_api_work_on_redis() {
    let app = TestApp::spawn_redis().await;

    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let ready = ready.json();
    assert_eq!(ready["backend"], "redis");
    assert!(ready["memoryBytes"].as_u64().is_some(), "{ready}");

    let id = app
        .enqueue(
            "emails",
            &json!({ "name": "welcome", "data": { "to": "a@example.com" } }),
        )
        .await;
    let job = app
        .get(&format!("/api/queues/emails/jobs/{id}"))
        .await
        .json();
    assert_eq!(job["data"]["to"], "a@example.com");

    assert_eq!(app.post("/api/queues/emails/pause").await.status, 200);
    let html = app.get("/queues").await.body;
    assert!(html.contains("Backend redis: reachable"), "{html}");
    assert_eq!(row_count(&html, "emails", "waiting"), "1");
    let emails = row(&html, "queue-row-emails").expect("row");
    assert!(emails.contains("Paused"), "{emails}");

    app.make_failed("reports", 2).await;
    let response = app.post("/api/queues/reports/retry-failed").await;
    assert_eq!(response.json()["retried"], 2, "{}", response.body);

    let response = app.get("/api/queues/does-not-exist").await;
    assert_eq!(response.status, 404);
    app.stop().await;
}

#[tokio::test]
async fn the_dashboard_pages_work_on_redis() {
    let app = TestApp::spawn_redis().await;
    let waiting = app
        .enqueue(
            "emails",
            &json!({ "name": "welcome", "data": { "to": "a@example.com" } }),
        )
        .await;
    let failed = app.make_failed("reports", 3).await;

    let html = eventually("the overview shows both queues", async || {
        let response = app.get("/").await;
        if response.status == 200
            && response.body.contains(r#"data-test-id="chart-emails""#)
            && response.body.contains(r#"data-test-id="chart-reports""#)
        {
            Ok(response.body)
        } else {
            Err(format!("{} {}", response.status, response.body))
        }
    })
    .await;
    assert!(html.contains("Backend redis: reachable"), "{html}");
    assert!(html.contains(r#"data-test-id="totals""#), "{html}");

    let html = app.get("/queues").await.body;
    assert_eq!(row_count(&html, "emails", "waiting"), "1");
    assert_eq!(row_count(&html, "reports", "failed"), "3");

    let response = app.get("/queues/emails").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        response
            .body
            .contains(&format!(r#"data-test-id="job-row-{waiting}""#)),
        "{}",
        response.body
    );
    let response = app.get("/queues/reports?state=failed&q=upstream").await;
    assert_eq!(response.status, 200, "{}", response.body);
    for id in &failed {
        assert!(
            response.body.contains(&format!("job-row-{id}\"")),
            "{}",
            response.body
        );
    }
    assert_eq!(
        text_of(&response.body, "search-note"),
        "Searched all 3 failed jobs: 3 match."
    );
    assert_eq!(app.get("/queues/nope").await.status, 404);

    let response = app.get(&format!("/queues/emails/jobs/{waiting}")).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        text_of(&response.body, "job-data").contains("\"to\": \"a@example.com\""),
        "{}",
        response.body
    );
    let response = app.get(&format!("/queues/emails/find?id={waiting}")).await;
    assert_eq!(response.status, 303, "{}", response.body);
    assert_eq!(app.get("/queues/emails/jobs/999").await.status, 404);

    // A form action with its notice.
    let back = "/queues/reports?state=failed";
    let response = app
        .post_form(
            &format!("/queues/reports/jobs/{}/retry", failed[0]),
            &[("back", back)],
        )
        .await;
    let cookie = assert_redirect(&response, back);
    let page = app.get_with_cookie(back, &cookie).await.body;
    assert_eq!(
        text_of(&page, "notice"),
        format!("Job {} was retried: it is waiting to run again.", failed[0])
    );
    let counts = app.counts("reports").await;
    assert_eq!((counts.failed, counts.waiting), (2, 1), "{counts:?}");
    assert_eq!(counts.retried_total, 1);

    // The live stream of the failed tab.
    let mut stream = app.sse("/events/queues/reports?state=failed").await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    let regions = stream
        .regions(&["queue-header", "progress", "jobs"], WAIT)
        .await;
    assert!(
        regions["jobs"].contains(&format!("job-row-{}\"", failed[1])),
        "{}",
        regions["jobs"]
    );
    let mut overview = app.sse("/events/overview").await;
    let regions = overview
        .regions(&["health", "totals", "throughput"], WAIT)
        .await;
    assert!(
        regions["health"].contains("Backend redis: reachable"),
        "{}",
        regions["health"]
    );
    drop((stream, overview));
    app.stop().await;
}

#[tokio::test]
async fn retry_all_runs_in_batches_on_redis() {
    let app = TestApp::spawn_redis().await;
    const FAILED: u64 = 1_100;
    app.make_failed("bulk", FAILED as usize).await;
    let back = "/queues/bulk?state=failed";
    let fields = [("back", back)];
    let clicks = futures_util::future::join_all(
        (0..3).map(|_| app.post_form("/queues/bulk/retry-failed", &fields)),
    )
    .await;
    for response in &clicks {
        assert_redirect(response, back);
    }
    eventually("the retry-all run finishes", async || {
        let html = app.get(back).await.body;
        match start_tag(&html, "retry-progress") {
            Some(tag) if attr(tag, "data-finished") == Some("true") => Ok(()),
            Some(tag) => Err(tag.to_string()),
            None => Err(html),
        }
    })
    .await;
    let counts = app.counts("bulk").await;
    assert_eq!(counts.failed, 0, "{counts:?}");
    assert_eq!(counts.waiting, FAILED, "{counts:?}");
    assert_eq!(counts.retried_total, FAILED, "each job once: {counts:?}");
    app.stop().await;
}

/// Redis with a password (`requirepass`): the server connects with the
/// password in the URL; a wrong one stops startup with an error that names
/// Redis and never echoes the password.
#[tokio::test]
async fn a_password_protected_redis_needs_the_right_password() {
    use server::config::secret::SecretUrl;
    use server::startup::spawn_app;
    use test_support::TempDir;
    use test_support::redis::{PrivateRedis, free_port};

    let port = free_port();
    let url = format!("redis://:s3cret-auth-pw@127.0.0.1:{port}");
    let redis = PrivateRedis::start_with(
        port,
        &["--requirepass", "s3cret-auth-pw"],
        Some(url.clone()),
    );
    redis.ready().await;
    let app = TestApp::spawn_redis_with(&url, None, |_| {}).await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    assert_eq!(app.counts("emails").await.waiting, 1);
    let config = app.get("/config").await.body;
    assert!(!config.contains("s3cret-auth-pw"));
    app.stop().await;

    let dir = TempDir::new("auth");
    let settings = server::config::Settings {
        redis_url: Some(SecretUrl::new(format!(
            "redis://:wrong-auth-pw@127.0.0.1:{port}"
        ))),
        ..crate::helpers::embedded_settings(&dir)
    };
    let err = match spawn_app(&settings).await {
        Ok(_) => panic!("started with a wrong Redis password"),
        Err(err) => err,
    };
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(text.contains("cannot reach Redis"), "{text}");
    assert!(!text.contains("wrong-auth-pw"), "password leaked: {text}");
}

/// Redis over TLS (`rediss://`): the server's queues, pages and live hub
/// work through it. The certificate is self-signed, so the URL turns off
/// verification with redis-rs's `#insecure`; with a real certificate the
/// same URL without it verifies against the web PKI roots.
#[tokio::test]
async fn a_tls_redis_is_reached_with_rediss() {
    use test_support::TempDir;
    use test_support::redis::{PrivateRedis, free_port};

    let dir = TempDir::new("tls");
    let (cert, key) = test_support::redis::self_signed_certificate(&dir.0);
    let port = free_port();
    let port_text = port.to_string();
    let url = format!("rediss://127.0.0.1:{port}/#insecure");
    let mut options = vec![
        "--port".to_owned(),
        "0".into(),
        "--tls-port".into(),
        port_text,
    ];
    options.extend(test_support::redis::tls_options(&cert, &key));
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let redis = PrivateRedis::start_with(port, &options, Some(url.clone()));
    redis.ready().await;
    let app = TestApp::spawn_redis_with(&url, None, |_| {}).await;
    app.enqueue("emails", &json!({ "name": "over-tls" })).await;
    assert_eq!(app.counts("emails").await.waiting, 1);
    let page = app.get("/queues").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("emails"));
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    app.stop().await;
}
