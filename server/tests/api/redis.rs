//! The scale-out deployment: the same routes against the local Redis, under
//! a key prefix of the test's own.

use serde_json::json;

use crate::helpers::{TestApp, overview_count};

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
    let html = app.get("/").await.body;
    assert!(html.contains("Backend redis: reachable"), "{html}");
    assert_eq!(overview_count(&html, "emails", "waiting"), "1");
    assert!(html.contains("Paused"), "{html}");

    app.make_failed("reports", 2).await;
    let response = app.post("/api/queues/reports/retry-failed").await;
    assert_eq!(response.json(), json!({ "retried": 2 }));

    let response = app.get("/api/queues/does-not-exist").await;
    assert_eq!(response.status, 404);
    app.stop().await;
}
