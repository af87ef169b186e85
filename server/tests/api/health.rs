use crate::helpers::TestApp;

#[tokio::test]
async fn health_answers_ok_without_touching_the_backend() {
    let app = TestApp::spawn().await;
    let response = app.get("/health").await;
    assert_eq!(response.status, 200);
    assert!(response.is_json());
    assert_eq!(response.json(), serde_json::json!({ "status": "ok" }));
    app.stop().await;
}

#[tokio::test]
async fn readiness_reports_the_backend_and_database() {
    let app = TestApp::spawn().await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["backend"], "embedded");
    assert_eq!(body["database"], "sqlite");
    assert!(
        body["latencyMs"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{body}"
    );
    assert!(
        body["databaseLatencyMs"]
            .as_f64()
            .is_some_and(|ms| ms >= 0.0),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    // In the embedded deployment the queues and the server's tables share
    // one pool: closing it takes both away.
    app.app.state.db.close().await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status, 503, "{}", response.body);
    assert!(response.is_json());
    assert!(
        response.error().contains("unreachable"),
        "{}",
        response.body
    );
    app.stop().await;
}
