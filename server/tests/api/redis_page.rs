//! The Redis page: the hub reads the configured Redis every 5 s for all
//! viewers; `/redis`, `/api/redis` and `/api/redis/health` show it, and
//! say plainly when no Redis is configured.

use serde_json::Value;

use crate::helpers::{TestApp, eventually};

#[tokio::test]
async fn the_redis_page_and_api_show_the_configured_redis() {
    let app = TestApp::spawn_redis().await;
    let body = eventually("the first read", async || {
        let response = app.get("/api/redis").await;
        if response.status == 200 {
            Ok(response.json())
        } else {
            Err(response.body)
        }
    })
    .await;
    let node = &body["report"]["nodes"][0];
    assert_eq!(node["reachable"], true, "{body}");
    assert_eq!(node["role"], "master", "{body}");
    assert!(node["info"]["usedMemory"].as_u64().is_some(), "{body}");
    let health = app.get("/api/redis/health").await;
    assert_eq!(health.status, 200, "{}", health.body);
    let health: Value = health.json();
    assert_eq!(health["nodes"][0]["reachable"], true);
    let page = app.get("/redis").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"data-test-id="redis-node""#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<title>Redis · Switchyard</title>"),
        "{}",
        page.body
    );
    app.stop().await;
}

#[tokio::test]
async fn without_redis_the_page_says_so_and_the_api_is_a_404() {
    let app = TestApp::spawn().await;
    let page = app.get("/redis").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("No Redis is configured"),
        "{}",
        page.body
    );
    let api = app.get("/api/redis").await;
    assert_eq!(api.status, 404, "{}", api.body);
    assert!(
        api.error().contains("no Redis is configured"),
        "{}",
        api.body
    );
    app.stop().await;
}
