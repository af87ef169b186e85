//! Many queues: lists are paged, sorted and filtered, the overview names a
//! bounded few, and the hub re-reads only the queues that changed.

use std::sync::Arc;

use coord::queue::NewJob;
use serde_json::json;
use test_support::html::strip_tags;

use crate::helpers::{TestApp, WAIT, eventually, qn};

/// Makes queues `q-000`…: queue i holds `backlog(i)` waiting jobs (at least
/// one, so it exists), and waits until the hub's snapshot lists them all.
async fn many_queues(app: &TestApp, n: usize, backlog: impl Fn(usize) -> usize) {
    for i in 0..n {
        let jobs = (0..backlog(i).max(1))
            .map(|j| NewJob::new("job", json!({ "j": j })))
            .collect();
        app.queues()
            .enqueue_bulk(&qn(&format!("q-{i:03}")), jobs)
            .await
            .expect("enqueue");
    }
    let hub = app.app.state.hub.clone();
    eventually("the hub lists every queue", async || {
        let listed = hub.current().queues.len();
        if listed == n {
            Ok(())
        } else {
            Err(format!("{listed} of {n} listed"))
        }
    })
    .await;
}

fn names(body: &serde_json::Value) -> Vec<String> {
    body["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["name"].as_str().expect("name").to_string())
        .collect()
}

#[tokio::test]
async fn the_queues_api_is_paged_sorted_and_filtered() {
    let app = TestApp::spawn().await;
    many_queues(&app, 120, |i| if i == 37 { 9 } else { i % 3 }).await;

    let first = app.get("/api/queues").await.json();
    assert_eq!(names(&first).len(), 100, "the default page");
    assert_eq!(names(&first)[0], "q-000");
    assert_eq!(first["total"], 120);
    assert_eq!(first["matching"], 120);
    assert_eq!(first["limit"], 100);
    let rest = app.get("/api/queues?offset=100&limit=500").await.json();
    assert_eq!(names(&rest).len(), 20);
    assert_eq!(names(&rest)[0], "q-100");

    let filtered = app.get("/api/queues?q=Q-01").await.json();
    assert_eq!(filtered["matching"], 10, "{filtered}");
    assert_eq!(names(&filtered)[0], "q-010");

    let backlog = app.get("/api/queues?sort=backlog&limit=2").await.json();
    assert_eq!(names(&backlog), ["q-037", "q-002"], "{backlog}");
    assert_eq!(backlog["queues"][0]["waiting"], 9);

    for (query, reason) in [
        (
            "sort=size",
            "sort must be one of name, failures, backlog, throughput",
        ),
        ("offset=-1", "offset must be a non-negative integer"),
        ("limit=0", "limit must be a whole number from 1 to 500"),
        ("limit=501", "limit must be a whole number from 1 to 500"),
    ] {
        let response = app.get(&format!("/api/queues?{query}")).await;
        assert_eq!(response.status, 400, "{query}");
        assert!(response.body.contains(reason), "{query}: {}", response.body);
    }
    app.stop().await;
}

#[tokio::test]
async fn the_queues_page_shows_one_page_and_its_stream_the_same_rows() {
    let app = TestApp::spawn().await;
    many_queues(&app, 120, |_| 1).await;

    let page = app.get("/queues").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches(r#"data-test-id="queue-row-"#).count(), 50);
    assert!(
        strip_tags(&page.body).contains("1–50 of 120"),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"href="/queues?offset=50""#));

    let filtered = app.get("/queues?q=q-11").await;
    assert_eq!(
        filtered.body.matches(r#"data-test-id="queue-row-"#).count(),
        10
    );
    assert!(filtered.body.contains(r#"data-test-id="queue-row-q-119""#));
    assert!(
        filtered
            .body
            .contains(r#"data-live="/events/queues?q=q-11""#)
    );
    let none = app.get("/queues?q=nothing-like-it").await;
    assert!(
        none.body
            .contains("No queue name contains “nothing-like-it” (of 120 queues)."),
        "{}",
        none.body
    );
    assert_eq!(app.get("/queues?sort=size").await.status, 400);

    let mut stream = app.sse("/events/queues?offset=100").await;
    let regions = stream.regions(&["queues"], WAIT).await;
    let table = &regions["queues"];
    assert_eq!(table.matches(r#"data-test-id="queue-row-"#).count(), 20);
    assert!(table.contains("queue-row-q-100"), "{table}");
    assert!(!table.contains("queue-row-q-000"), "{table}");
    assert_eq!(app.sse("/events/queues?sort=size").await.status, 400);
    app.stop().await;
}

#[tokio::test]
async fn the_overview_names_a_bounded_few_of_many_queues() {
    let app = TestApp::spawn().await;
    many_queues(&app, 300, |i| i % 5).await;
    app.complete_jobs("q-007", 3).await;
    let hub = app.app.state.hub.clone();
    eventually("the hub saw the completions", async || {
        let snapshot = hub.current();
        match snapshot.queue("q-007") {
            Some(q) if q.counts.completed_total == 3 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let page = app.get("/").await;
    assert_eq!(page.status, 200);
    let attention = &page.body[page
        .body
        .find(r#"data-test-id="attention-table""#)
        .expect("the queues to look at")..];
    assert_eq!(
        attention.matches(r#"data-test-id="queue-row-"#).count(),
        10,
        "{attention}"
    );
    // Most backlog first when nothing fails.
    assert!(
        attention.find("queue-row-q-004") < attention.find("queue-row-q-009"),
        "{attention}"
    );
    assert!(page.body.contains("and 290 more queues →"), "{}", page.body);
    assert!(page.body.matches(r#"data-test-id="chart-"#).count() <= 8);
    assert!(page.body.contains("The busiest 8 of 300 queues"));
    assert!(
        page.body.len() < 150_000,
        "the overview of 300 queues is {} bytes",
        page.body.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn idle_queues_keep_their_figures_from_one_snapshot_to_the_next() {
    let app = TestApp::spawn().await;
    many_queues(&app, 50, |_| 1).await;
    let hub = app.app.state.hub.clone();
    // Rates need two samples a second apart; until then a new queue is
    // still moving and re-figured each tick.
    let before = eventually("every queue's rate is known", async || {
        let now = hub.current();
        match now.queues.iter().find(|q| q.jobs_per_min != Some(0.0)) {
            None => Ok(now.clone()),
            Some(q) => Err(format!("{q:?}")),
        }
    })
    .await;
    app.enqueue("q-010", &json!({ "name": "another" })).await;
    let after = eventually("the enqueue is seen", async || {
        let now = hub.current();
        match now.queue("q-010") {
            Some(q) if q.counts.waiting == 2 => Ok(now.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(after.seq > before.seq);
    let mut kept = 0;
    for old in &before.queues {
        let new = after.queue(&old.name).expect("still listed");
        if old.name == "q-010" {
            assert!(!Arc::ptr_eq(old, new), "the changed queue was read again");
            assert!(new.changed > old.changed);
        } else if Arc::ptr_eq(old, new) {
            kept += 1;
        }
    }
    // A sweep may fall between the two snapshots (once a minute); apart
    // from that, not one idle queue is read or rebuilt.
    assert!(
        kept == 49 || after.seq - before.seq > 1,
        "{kept} of 49 idle queues kept their figures"
    );
    app.stop().await;
}
