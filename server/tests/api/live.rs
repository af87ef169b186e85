//! The live streams (server-sent events): a full snapshot of the page's
//! regions on connect, then the regions that changed, coalesced by the hub.

use std::time::{Duration, Instant};

use coord::queue::NewJob;
use serde_json::json;
use server::live::MIN_INTERVAL;
use test_support::html::{attr, start_tag, strip_tags};
use test_support::http::{SseNext, SseStream};

use crate::helpers::{TestApp, WAIT, qn};

const QUEUE_REGIONS: [&str; 3] = ["queue-header", "progress", "jobs"];

/// Checks the stream's response head and its opening message, which tells
/// the browser how soon to reconnect.
async fn assert_opened(stream: &mut SseStream) {
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.header("cache-control"), Some("no-store"));
    let first = stream.expect_event(WAIT).await;
    assert_eq!(first.retry, Some(2000), "{first:?}");
    assert_eq!(first.comments, ["switchyard"], "{first:?}");
    assert_eq!(first.event, None, "{first:?}");
}

/// The count shown in a state's tab (`tab-<state>`) of a queue header.
fn tab_count(html: &str, state: &str) -> Option<String> {
    let tag = start_tag(html, &format!("tab-{state}"))?;
    let start = html.find(tag)?;
    let end = start + html[start..].find("</a>")?;
    strip_tags(&html[start..end])
        .split_whitespace()
        .last()
        .map(str::to_string)
}

#[tokio::test]
async fn the_overview_stream_sends_every_region_on_connect() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    let mut stream = app.sse("/events/overview").await;
    assert_opened(&mut stream).await;
    let regions = stream
        .regions(&["health", "totals", "throughput"], WAIT)
        .await;
    assert!(
        regions["health"].starts_with(r#"<div id="health""#),
        "{}",
        regions["health"]
    );
    assert!(
        regions["health"].contains("Backend embedded: reachable"),
        "{}",
        regions["health"]
    );
    assert!(
        regions["totals"].starts_with(r#"<div id="totals""#),
        "{}",
        regions["totals"]
    );
    assert!(regions["totals"].contains(r#"data-test-id="totals""#));
    assert!(
        regions["throughput"].starts_with(r#"<div id="throughput""#),
        "{}",
        regions["throughput"]
    );
    // Fragments are regions, never whole documents.
    for html in regions.values() {
        assert!(!html.contains("<html"), "{html}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_queues_stream_sends_the_table_then_its_changes() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    let mut stream = app.sse("/events/queues").await;
    assert_opened(&mut stream).await;
    let regions = stream.regions(&["health", "queues"], WAIT).await;
    // The first snapshot may predate the queue; a later one has it.
    if !regions["queues"].contains(r#"data-test-id="queue-row-emails""#) {
        stream
            .swap_until(WAIT, |e| {
                e.region() == Some("queues") && e.data.contains("queue-row-emails")
            })
            .await;
    }
    app.enqueue("reports", &json!({ "name": "b" })).await;
    let update = stream
        .swap_until(WAIT, |e| {
            e.region() == Some("queues") && e.data.contains("queue-row-reports")
        })
        .await;
    assert!(update.data.starts_with(r#"<div id="queues""#), "{update:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_queue_stream_shows_jobs_that_fail_without_reconnecting() {
    let app = TestApp::spawn().await;
    let first = app.make_failed("reports", 1).await.remove(0);
    let mut stream = app.sse("/events/queues/reports?state=failed").await;
    assert_opened(&mut stream).await;
    let regions = stream.regions(&QUEUE_REGIONS, WAIT).await;
    assert!(
        regions["jobs"].starts_with(r#"<div id="jobs""#),
        "{}",
        regions["jobs"]
    );
    assert!(
        regions["jobs"].contains(&format!(r#"data-test-id="job-row-{first}""#)),
        "{}",
        regions["jobs"]
    );
    assert!(
        regions["queue-header"].starts_with(r#"<div id="queue-header""#),
        "{}",
        regions["queue-header"]
    );
    assert!(
        regions["progress"].starts_with(r#"<div id="progress""#),
        "{}",
        regions["progress"]
    );
    assert!(
        !regions["progress"].contains("retry-progress"),
        "no run: {}",
        regions["progress"]
    );

    // A job fails while the page is open: it appears, on the same stream.
    let second = app
        .fail_jobs(
            "reports",
            vec![NewJob::new("<script>alert(1)</script>", json!({}))],
            coord::queue::JobError::fatal("<img src=x onerror=alert(1)>"),
        )
        .await
        .remove(0);
    let update = stream
        .swap_until(WAIT, |e| {
            e.region() == Some("jobs") && e.data.contains(&format!("job-row-{second}\""))
        })
        .await;
    assert!(
        update.data.contains(&format!("job-row-{first}\"")),
        "{update:?}"
    );
    // Live fragments are escaped like pages.
    assert!(!update.data.contains("<script>alert"), "{update:?}");
    assert!(!update.data.contains("<img src=x"), "{update:?}");
    assert!(update.data.contains("&lt;script&gt;"), "{update:?}");
    // The header's failed count follows.
    stream
        .swap_until(WAIT, |e| {
            e.region() == Some("queue-header")
                && tab_count(&e.data, "failed").as_deref() == Some("2")
        })
        .await;
    app.stop().await;
}

#[tokio::test]
async fn a_waiting_stream_shows_newly_enqueued_jobs() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "first" })).await;
    let mut stream = app.sse("/events/queues/emails?state=waiting").await;
    assert_opened(&mut stream).await;
    stream.regions(&QUEUE_REGIONS, WAIT).await;
    let id = app.enqueue("emails", &json!({ "name": "second" })).await;
    let update = stream
        .swap_until(WAIT, |e| {
            e.region() == Some("jobs") && e.data.contains(&format!("job-row-{id}\""))
        })
        .await;
    assert!(update.data.contains("second"), "{update:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_jobs_is_coalesced_into_a_few_updates() {
    const JOBS: usize = 2_000;
    let app = TestApp::spawn().await;
    app.enqueue("burst", &json!({ "name": "seed" })).await;
    let mut stream = app.sse("/events/queues/burst?state=waiting").await;
    assert_opened(&mut stream).await;
    let regions = stream.regions(&QUEUE_REGIONS, WAIT).await;
    assert_eq!(
        tab_count(&regions["queue-header"], "waiting").as_deref(),
        Some("1")
    );
    let before = stream.received;

    // Two thousand separate enqueues (one event each), from a few
    // producers at once.
    let started = Instant::now();
    let mut producers = tokio::task::JoinSet::new();
    for p in 0..8 {
        let queues = app.queues().clone();
        producers.spawn(async move {
            for i in 0..JOBS / 8 {
                queues
                    .enqueue(
                        &qn("burst"),
                        NewJob::new("burst", json!({ "p": p, "i": i })),
                    )
                    .await
                    .expect("enqueue");
            }
        });
    }
    producers.join_all().await;

    // Read until the header shows every job.
    let total = format!("{}", JOBS + 1);
    let total = format!("{},{}", &total[..1], &total[1..]);
    stream
        .swap_until(WAIT, |e| {
            e.region() == Some("queue-header")
                && tab_count(&e.data, "waiting").as_deref() == Some(total.as_str())
        })
        .await;
    let elapsed = started.elapsed();
    let swaps = stream.received - before;
    // The hub snapshots at most once per MIN_INTERVAL and a snapshot sends
    // at most one swap per region: a bound from the design, not a speed.
    let ticks = (elapsed.as_millis() / MIN_INTERVAL.as_millis()) as usize + 2;
    assert!(
        swaps <= ticks * QUEUE_REGIONS.len(),
        "{swaps} events in {elapsed:?} for {JOBS} jobs"
    );
    assert!(swaps < JOBS / 4, "{swaps} events for {JOBS} jobs");
    app.stop().await;
}

#[tokio::test]
async fn reconnecting_gets_a_full_snapshot_again() {
    let app = TestApp::spawn().await;
    let id = app.make_failed("reports", 1).await.remove(0);
    let path = "/events/queues/reports?state=failed";
    let mut stream = app.sse(path).await;
    assert_opened(&mut stream).await;
    let first = stream.regions(&QUEUE_REGIONS, WAIT).await;
    assert!(first["jobs"].contains(&format!("job-row-{id}\"")));
    drop(stream);

    // Nothing changed since, yet a new connection gets every region.
    let mut stream = app.sse(path).await;
    assert_opened(&mut stream).await;
    let again = stream.regions(&QUEUE_REGIONS, WAIT).await;
    assert!(again["jobs"].contains(&format!("job-row-{id}\"")));
    assert_eq!(again.len(), QUEUE_REGIONS.len());

    for path in ["/events/overview", "/events/queues"] {
        for _ in 0..2 {
            let mut stream = app.sse(path).await;
            assert_opened(&mut stream).await;
            stream.regions(&["health"], WAIT).await;
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_job_stream_follows_the_job_until_it_is_gone() {
    let app = TestApp::spawn().await;
    let id = app.make_failed("reports", 1).await.remove(0);
    let mut stream = app.sse(&format!("/events/queues/reports/jobs/{id}")).await;
    assert_opened(&mut stream).await;
    let regions = stream.regions(&["job"], WAIT).await;
    let job = &regions["job"];
    assert!(job.starts_with(r#"<div id="job""#), "{job}");
    assert!(job.contains(">failed</span>"), "{job}");
    assert!(job.contains("upstream said no"), "{job}");

    assert_eq!(
        app.post(&format!("/api/queues/reports/jobs/{id}/retry"))
            .await
            .status,
        200
    );
    stream
        .swap_until(WAIT, |e| {
            e.region() == Some("job") && e.data.contains(">waiting</span>")
        })
        .await;

    assert_eq!(
        app.post(&format!("/api/queues/reports/jobs/{id}/remove"))
            .await
            .status,
        200
    );
    let gone = stream
        .swap_until(WAIT, |e| {
            e.region() == Some("job") && e.data.contains(r#"data-test-id="job-gone""#)
        })
        .await;
    assert!(gone.data.contains("no longer exists"), "{gone:?}");
    app.stop().await;
}

/// A running job's log and progress change without a queue event: its
/// page's stream reads them again while it runs, so they arrive live.
#[tokio::test]
async fn a_running_jobs_log_and_progress_arrive_on_its_page() {
    let app = TestApp::spawn().await;
    let queue = coord::queue::QueueName::new("live-logs").expect("queue");
    let id = app
        .queues()
        .enqueue(
            &queue,
            coord::queue::NewJob::new("long", serde_json::json!({})),
        )
        .await
        .expect("enqueue");
    let (go_tx, go_rx) = tokio::sync::watch::channel(0u32);
    let worker = app
        .queues()
        .worker(queue.clone())
        .poll_interval(Duration::from_millis(20))
        .start(move |job| {
            let mut go = go_rx.clone();
            async move {
                job.log("first <line>").await.expect("log");
                // Waits for the test, so the job stays active.
                let _ = go.wait_for(|n| *n >= 1).await;
                job.log("second line").await.expect("log");
                job.progress(75).await.expect("progress");
                let _ = go.wait_for(|n| *n >= 2).await;
                Ok(serde_json::Value::Null)
            }
        })
        .expect("worker");
    let mut stream = app
        .sse(&format!("/events/queues/live-logs/jobs/{id}"))
        .await;
    assert_opened(&mut stream).await;
    stream
        .swap_until(WAIT, |e| {
            e.region() == Some("job-log") && e.data.contains("first &lt;line&gt;")
        })
        .await;
    go_tx.send(1).expect("go");
    // The new line and the progress, in whichever order they are read.
    let (mut line, mut progress) = (false, false);
    stream
        .swap_until(WAIT, |e| {
            if e.region() == Some("job-log") && e.data.contains("second line") {
                assert_eq!(e.data.matches("<li>").count(), 2, "{e:?}");
                line = true;
            }
            if e.region() == Some("job")
                && e.data
                    .contains(r#"<dd data-test-id="job-progress">75</dd>"#)
            {
                progress = true;
            }
            line && progress
        })
        .await;
    go_tx.send(2).expect("go");
    worker.shutdown(Duration::from_secs(5)).await;
    app.stop().await;
}

#[tokio::test]
async fn retry_all_progress_is_pushed_to_the_queue_page() {
    let app = TestApp::spawn().await;
    app.make_failed("bulk", 600).await;
    let back = "/queues/bulk?state=failed";
    let mut stream = app.sse(&format!("/events{back}")).await;
    assert_opened(&mut stream).await;
    stream.regions(&QUEUE_REGIONS, WAIT).await;

    let response = app
        .post_form("/queues/bulk/retry-failed", &[("back", back)])
        .await;
    assert_eq!(response.status, 303, "{}", response.body);
    let done = stream
        .swap_until(WAIT, |e| {
            e.region() == Some("progress")
                && start_tag(&e.data, "retry-progress")
                    .is_some_and(|t| attr(t, "data-finished") == Some("true"))
        })
        .await;
    let tag = start_tag(&done.data, "retry-progress").expect("progress");
    assert_eq!(attr(tag, "data-done"), Some("600"), "{tag}");
    assert_eq!(attr(tag, "data-total"), Some("600"), "{tag}");
    assert!(done.data.contains("Retried 600 failed jobs."), "{done:?}");
    // The failed table empties too.
    stream
        .swap_until(WAIT, |e| {
            e.region() == Some("jobs") && e.data.contains("No failed jobs.")
        })
        .await;
    app.stop().await;
}

#[tokio::test]
async fn broken_stream_urls_are_errors_not_streams() {
    let app = TestApp::spawn().await;
    let id = app.enqueue("emails", &json!({ "name": "a" })).await;
    let cases = [
        (
            "/events/queues/nope".to_string(),
            404,
            "queue nope not found",
        ),
        (
            "/events/queues/nope?state=failed".to_string(),
            404,
            "queue nope not found",
        ),
        (
            "/events/queues/emails?state=bogus".to_string(),
            400,
            "unknown state",
        ),
        (
            "/events/queues/emails?limit=0".to_string(),
            400,
            "between 1 and 500",
        ),
        (
            "/events/queues/emails?offset=-1".to_string(),
            400,
            "offset must be a non-negative integer",
        ),
        (
            "/events/queues/bad%20name".to_string(),
            400,
            "may only contain",
        ),
        (
            "/events/queues/emails/jobs/999".to_string(),
            404,
            "job 999 not found in queue emails",
        ),
        (format!("/events/queues/nope/jobs/{id}"), 404, "not found"),
        (
            "/events/queues/emails/jobs/bad%20id".to_string(),
            400,
            "invalid job id",
        ),
    ];
    for (path, status, reason) in cases {
        let response = app.sse(&path).await;
        assert_ne!(
            response.header("content-type"),
            Some("text/event-stream"),
            "{path}"
        );
        let response = response.into_response().await;
        assert_eq!(response.status, status, "{path}: {}", response.body);
        assert!(response.body.contains(reason), "{path}: {}", response.body);
    }
    app.stop().await;
}

#[tokio::test]
async fn stopping_the_server_ends_open_streams() {
    let app = TestApp::spawn().await;
    let id = app.enqueue("emails", &json!({ "name": "a" })).await;
    let mut streams = Vec::new();
    for path in [
        "/events/overview",
        "/events/queues",
        "/events/queues/emails?state=waiting",
    ] {
        let mut stream = app.sse(path).await;
        assert_opened(&mut stream).await;
        streams.push(stream);
    }
    let mut job = app.sse(&format!("/events/queues/emails/jobs/{id}")).await;
    assert_opened(&mut job).await;
    job.regions(&["job"], WAIT).await;
    streams.push(job);

    tokio::time::timeout(Duration::from_secs(30), app.stop())
        .await
        .expect("the server stops although streams are open");
    for mut stream in streams {
        loop {
            match stream.next(WAIT).await {
                SseNext::End => break,
                SseNext::Event(_) => continue,
                SseNext::Timeout => panic!("a stream stayed open after the server stopped"),
            }
        }
    }
}

#[tokio::test]
async fn the_overview_chart_is_resent_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    app.complete_jobs("steady", 1).await;
    let mut stream = app.sse("/events/overview").await;
    assert_opened(&mut stream).await;
    let regions = stream
        .regions(&["health", "totals", "attention", "throughput"], WAIT)
        .await;
    // The first snapshot may predate the queue; a later one charts it.
    if !regions["throughput"].contains("chart-steady") {
        stream
            .swap_until(WAIT, |e| {
                e.region() == Some("throughput") && e.data.contains("chart-steady")
            })
            .await;
    }
    // Jobs finish on every tick for five seconds: totals move each time,
    // the chart (finished minutes only) at most once, when the minute
    // turns.
    let until = Instant::now() + Duration::from_secs(5);
    let mut totals = 0;
    let mut charts = 0;
    let mut ticks = 0;
    while Instant::now() < until {
        app.complete_jobs("steady", 1).await;
        ticks += 1;
        tokio::time::sleep(MIN_INTERVAL).await;
        while let SseNext::Event(event) = stream.next(Duration::from_millis(10)).await {
            match event.region() {
                Some("totals") => totals += 1,
                Some("throughput") => charts += 1,
                _ => {}
            }
        }
    }
    assert!(totals >= 3, "{totals} totals updates in {ticks} ticks");
    assert!(charts <= 1, "{charts} chart updates in 5 s");
    app.stop().await;
}
