//! BullMQ wait and run times through the dashboard, against real BullMQ
//! 5: read from the queue's events stream for the queues whose pages are
//! open, shown on the queue page and in `/api/bullmq/<queue>`.

use std::time::Duration;

use serde_json::Value;
use test_support::redis::REDIS_URL;

use crate::bullnode::{run, spawn_watching};
use crate::helpers::RedisKeys;

/// Wait and run times of a BullMQ queue, from its events stream: a real
/// worker that takes 200 ms a job shows a run p50 of at least that on the
/// queue's page and in its API once the minute is over.
#[tokio::test]
async fn a_bullmq_queue_shows_wait_and_run_times_from_its_events_stream() {
    let prefix = format!("sy-blat-{:08x}", rand::random::<u32>());
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let app = spawn_watching(&prefix).await;
    run("produce.mjs", &[REDIS_URL, &prefix, "timed", "4"]).await;
    let before = app.get("/bullmq/timed").await;
    assert!(
        before.body.contains(r#"data-test-id="no-latency""#),
        "{}",
        before.body
    );
    crate::bullnode::work_for(&prefix, "timed", 4, 200).await;
    // The figures are of finished minutes: wait for this one to end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(75);
    let latency = loop {
        let body: Value = app.get("/api/bullmq/timed").await.json();
        if body["latency"]["attempts"].as_u64() >= Some(4) {
            break body["latency"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no latency within 75 s: {body}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let run_p50 = latency["runMs"]["p50"].as_u64().expect("p50");
    assert!((200..1_000).contains(&run_p50), "{latency}");
    assert!(latency["waitMs"]["max"].as_u64().is_some(), "{latency}");
    let page = app.get("/bullmq/timed").await;
    assert!(
        page.body.contains(r#"data-test-id="latency-table""#),
        "{}",
        page.body
    );
    app.stop().await;
}
