use serde_json::json;

use crate::helpers::{TestApp, overview_count};

#[tokio::test]
async fn overview_without_queues_shows_how_to_start() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    assert_eq!(response.status, 200);
    assert!(response.is_html());
    let html = &response.body;
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<title>Switchyard</title>"), "{html}");
    assert!(
        html.contains(r#"<meta http-equiv="refresh" content="5">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<link rel="stylesheet" href="/style.css">"#),
        "{html}"
    );
    assert!(
        html.contains("No queues yet — enqueue a job or run"),
        "{html}"
    );
    assert!(html.contains("Backend embedded: reachable"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn overview_lists_queues_with_their_counts_and_state() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "welcome", "data": {} }))
        .await;
    app.enqueue("emails", &json!({ "name": "welcome", "data": {} }))
        .await;
    app.enqueue(
        "emails",
        &json!({ "name": "later", "data": {}, "options": { "delayMs": 60000 } }),
    )
    .await;
    app.make_failed("reports", 1).await;
    assert_eq!(app.post("/api/queues/reports/pause").await.status, 200);

    let html = app.get("/").await.body;
    for header in [
        "Queue",
        "Waiting",
        "Active",
        "Delayed",
        "Completed",
        "Failed",
        "State",
    ] {
        assert!(
            html.contains(&format!(">{header}</th>")),
            "{header}: {html}"
        );
    }
    assert_eq!(overview_count(&html, "emails", "waiting"), "2");
    assert_eq!(overview_count(&html, "emails", "delayed"), "1");
    assert_eq!(overview_count(&html, "emails", "failed"), "0");
    assert_eq!(overview_count(&html, "reports", "failed"), "1");
    let reports = &html[html.find(r#"queue-row-reports"#).expect("row")..];
    assert!(reports[..reports.find("</tr>").expect("end")].contains("Paused"));
    let emails = &html[html.find(r#"queue-row-emails"#).expect("row")..];
    assert!(emails[..emails.find("</tr>").expect("end")].contains("Running"));
    assert!(!html.contains("No queues yet"));
    app.stop().await;
}

#[tokio::test]
async fn the_stylesheet_is_served() {
    let app = TestApp::spawn().await;
    let response = app.get("/style.css").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert!(response.body.contains("prefers-color-scheme: dark"));
    for state in ["waiting", "active", "delayed", "completed", "failed"] {
        assert!(response.body.contains(&format!("--{state}:")), "{state}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_queue_page_lists_jobs_with_their_text_escaped() {
    let app = TestApp::spawn().await;
    let id = app
        .enqueue(
            "emails",
            &json!({
                "name": "<script>alert('name')</script>",
                "data": { "html": "<img src=x onerror=alert(1)>" },
            }),
        )
        .await;
    let response = app.get("/queues/emails?state=waiting").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.is_html());
    let html = &response.body;
    assert!(
        html.contains(&format!(r#"data-test-id="job-row-{id}""#)),
        "{html}"
    );
    assert!(!html.contains("<script>"), "unescaped job name: {html}");
    assert!(!html.contains("<img"), "unescaped job data: {html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(
        html.contains("<title>emails · Switchyard</title>"),
        "{html}"
    );

    // The JSON API hands the same text back untouched.
    let job = app
        .get(&format!("/api/queues/emails/jobs/{id}"))
        .await
        .json();
    assert_eq!(job["name"], "<script>alert('name')</script>");
    app.stop().await;
}

#[tokio::test]
async fn the_queue_page_shows_failed_jobs_with_their_error() {
    let app = TestApp::spawn().await;
    app.make_failed("reports", 2).await;
    let html = app.get("/queues/reports?state=failed").await.body;
    assert!(html.contains("upstream said no"), "{html}");
    assert!(html.contains("1–2 of 2"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_queue_page_is_a_404_page_with_the_reason() {
    let app = TestApp::spawn().await;
    let response = app.get("/queues/nope").await;
    assert_eq!(response.status, 404);
    assert!(response.is_html());
    assert!(response.body.contains("404 Not Found"), "{}", response.body);
    assert!(
        response.body.contains("queue nope not found"),
        "{}",
        response.body
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_page_parameters_are_a_400_page_with_the_reason() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "x" })).await;

    let response = app.get("/queues/bad%20name").await;
    assert_eq!(response.status, 400);
    assert!(response.is_html());
    assert!(
        response.body.contains("may only contain"),
        "{}",
        response.body
    );

    let response = app.get("/queues/emails?state=dead").await;
    assert_eq!(response.status, 400);
    assert!(response.body.contains("unknown state"), "{}", response.body);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_path_is_a_404_page() {
    let app = TestApp::spawn().await;
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status, 404);
    assert!(response.is_html());
    assert!(
        response.body.contains("no page at /no/such/page"),
        "{}",
        response.body
    );
    assert!(
        !response.body.contains("http-equiv"),
        "error pages do not reload"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_overview_explains_an_unreachable_backend_with_a_503() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    // The embedded queues and the server's tables share this pool.
    app.app.state.db.close().await;
    let response = app.get("/").await;
    assert_eq!(response.status, 503, "{}", response.body);
    assert!(response.is_html());
    assert!(
        response.body.contains("Backend embedded: unreachable"),
        "{}",
        response.body
    );
    assert!(
        response
            .body
            .contains("unavailable until the backend answers"),
        "{}",
        response.body
    );
    assert!(
        !response.body.contains("No queues yet"),
        "{}",
        response.body
    );
    app.stop().await;
}
