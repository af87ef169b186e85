use serde_json::json;

use crate::helpers::{TestApp, eventually};

#[tokio::test]
async fn listing_starts_empty_then_shows_each_queue_with_counts() {
    let app = TestApp::spawn().await;
    let body = app.get("/api/queues").await.json();
    assert_eq!(
        body,
        json!({
            "backend": "embedded",
            "queues": [],
            "sort": "name",
            "q": "",
            "offset": 0,
            "limit": 100,
            "matching": 0,
            "total": 0,
        })
    );

    app.enqueue(
        "webhooks",
        &json!({ "name": "invoice.paid", "data": { "n": 1 } }),
    )
    .await;
    app.enqueue("emails", &json!({ "name": "welcome" })).await;
    let body = app.get("/api/queues").await.json();
    let queues = body["queues"].as_array().expect("array");
    let names: Vec<&str> = queues.iter().filter_map(|q| q["name"].as_str()).collect();
    assert_eq!(names, ["emails", "webhooks"], "sorted by name");
    assert_eq!(queues[0]["waiting"], 1);
    assert_eq!(queues[0]["failed"], 0);
    assert_eq!(queues[0]["paused"], false);
    app.stop().await;
}

#[tokio::test]
async fn one_queue_shows_its_counts() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    app.enqueue(
        "emails",
        &json!({ "name": "b", "options": { "delayMs": 60000 } }),
    )
    .await;
    let response = app.get("/api/queues/emails").await;
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(body["name"], "emails");
    assert_eq!(body["waiting"], 1);
    assert_eq!(body["delayed"], 1);
    assert_eq!(body["active"], 0);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_queue_is_a_json_404() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/queues/does-not-exist").await;
    assert_eq!(response.status, 404);
    assert!(response.is_json());
    assert_eq!(response.error(), "queue does-not-exist not found");
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_queue_name_is_a_400_with_the_reason() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/queues/has%20space").await;
    assert_eq!(response.status, 400);
    assert!(response.is_json());
    assert!(
        response.error().contains("may only contain"),
        "{}",
        response.body
    );
    app.stop().await;
}

#[tokio::test]
async fn pause_and_resume_show_in_the_counts() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;

    let response = app.post("/api/queues/emails/pause").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json(), json!({ "name": "emails", "paused": true }));
    assert_eq!(app.get("/api/queues/emails").await.json()["paused"], true);

    let response = app.post("/api/queues/emails/resume").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.json(),
        json!({ "name": "emails", "paused": false })
    );
    assert_eq!(app.get("/api/queues/emails").await.json()["paused"], false);
    app.stop().await;
}

#[tokio::test]
async fn mutations_are_post_only() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    for path in [
        "/api/queues/emails/pause",
        "/api/queues/emails/resume",
        "/api/queues/emails/retry-failed",
        "/api/queues/emails/jobs/1/retry",
        "/api/queues/emails/jobs/1/remove",
        "/api/queues/emails/jobs/1/promote",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, 405, "GET {path}");
        assert!(response.is_json(), "GET {path}: {:?}", response.headers);
        assert!(
            response.error().contains("method not allowed"),
            "{}",
            response.body
        );
    }
    assert_eq!(app.get("/api/queues/emails").await.json()["paused"], false);
    app.stop().await;
}

#[tokio::test]
async fn retry_failed_moves_every_failed_job_back() {
    let app = TestApp::spawn().await;
    app.make_failed("reports", 3).await;
    assert_eq!(app.get("/api/queues/reports").await.json()["failed"], 3);

    let response = app.post("/api/queues/reports/retry-failed").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body["retried"], 3, "{body}");
    assert_eq!(body["total"], 3, "{body}");
    assert_eq!(body["finished"], true, "{body}");
    let counts = app.get("/api/queues/reports").await.json();
    assert_eq!(counts["failed"], 0);
    assert_eq!(counts["waiting"], 3);
    // The run is the form's: its progress is the hub's, readable later.
    let progress = app.get("/api/queues/reports/retry-failed/progress").await;
    assert_eq!(progress.status, 200, "{}", progress.body);
    assert_eq!(progress.json()["retried"], 3);

    let response = app.post("/api/queues/reports/retry-failed").await;
    assert_eq!(response.json()["retried"], 0);
    app.stop().await;
}

#[tokio::test]
async fn the_api_retry_all_is_the_forms_one_run_with_progress() {
    let app = TestApp::spawn().await;
    // More than two batches of 500.
    app.make_failed("bulk", 1_200).await;
    assert_eq!(
        app.get("/api/queues/bulk/retry-failed/progress")
            .await
            .status,
        404,
        "no run yet"
    );
    // A run started from the page refuses a second one from the API while
    // it goes, and the other way round.
    let (form, api) = tokio::join!(
        app.post_form("/queues/bulk/retry-failed", &[]),
        app.post("/api/queues/bulk/retry-failed")
    );
    assert_eq!(form.status, 303, "{}", form.body);
    assert!(
        matches!(api.status, 200 | 202 | 409),
        "{} {}",
        api.status,
        api.body
    );
    let progress = eventually("the run finishes", async || {
        let progress = app
            .get("/api/queues/bulk/retry-failed/progress")
            .await
            .json();
        if progress["finished"] == true {
            Ok(progress)
        } else {
            Err(progress.to_string())
        }
    })
    .await;
    assert_eq!(progress["total"], 1_200, "{progress}");
    assert_eq!(app.counts("bulk").await.failed, 0);
    assert_eq!(
        app.counts("bulk").await.waiting,
        1_200,
        "each job retried once"
    );
    let audit = app.get("/api/audit?action=queue.retry_all").await.json();
    let details: Vec<&str> = audit["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert_eq!(
        details.iter().filter(|d| **d == "started").count(),
        1,
        "one run started: {audit}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_api_pause_of_an_unknown_queue_is_a_404_like_the_form() {
    let app = TestApp::spawn().await;
    for path in ["/api/queues/nope/pause", "/api/queues/nope/resume"] {
        let response = app.post(path).await;
        assert_eq!(response.status, 404, "{path}: {}", response.body);
        assert!(response.error().contains("not found"), "{}", response.body);
    }
    let form = app.post_form("/queues/nope/pause", &[]).await;
    assert_eq!(form.status, 404, "{}", form.body);
    let list = app.get("/api/queues").await.json();
    assert_eq!(list["queues"], json!([]), "nothing was created: {list}");
    app.stop().await;
}

#[tokio::test]
async fn retry_failed_on_an_unknown_queue_is_a_404() {
    let app = TestApp::spawn().await;
    let response = app.post("/api/queues/nope/retry-failed").await;
    assert_eq!(response.status, 404, "{}", response.body);
    assert!(response.error().contains("not found"));
    app.stop().await;
}

#[tokio::test]
async fn unknown_api_paths_are_json_404s() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/nothing-here").await;
    assert_eq!(response.status, 404);
    assert!(response.is_json());
    assert_eq!(response.error(), "no page at /api/nothing-here");
    app.stop().await;
}

/// `.` and `..` would be folded away from a URL by browsers and proxies,
/// so a queue named so could never be opened: refused at enqueue.
#[tokio::test]
async fn queue_names_of_only_dots_are_refused() {
    let app = TestApp::spawn().await;
    for name in ["%2E", "%2E%2E", "..."] {
        let response = app
            .post_json(&format!("/api/queues/{name}/jobs"), &json!({ "name": "a" }))
            .await;
        assert_eq!(response.status, 400, "{name}: {}", response.body);
        assert!(response.error().contains("only dots"), "{}", response.body);
    }
    app.stop().await;
}
