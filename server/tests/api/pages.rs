//! The HTML pages: the overview, the queues table, a queue's jobs, a job,
//! the configuration, the static assets and the error pages.

use std::time::Duration;

use coord::queue::{Backoff, JobError, JobOptions, JobState, NewJob};
use serde_json::json;
use test_support::html::{attr, element, row, start_tag, strip_tags, text_of};
use test_support::http::url_encode;

use crate::helpers::{TestApp, eventually, qn, row_count};

/// The figure of a total tile on the overview (`total-<state>`).
fn total(html: &str, state: &str) -> String {
    let tag = start_tag(html, &format!("total-{state}"))
        .unwrap_or_else(|| panic!("no total-{state} in {html}"));
    let start = html.find(tag).expect("tag") + tag.len();
    let end = start + html[start..].find("</span>").expect("figure end");
    strip_tags(&html[start..end])
}

/// The `href` of the pager link with `rel`, unescaped.
fn pager_link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!(r#"rel="{rel}""#))?;
    let open = html[..at].rfind('<')?;
    let close = at + html[at..].find('>')?;
    attr(&html[open..=close], "href").map(|h| h.replace("&amp;", "&"))
}

#[tokio::test]
async fn overview_without_queues_shows_totals_alerts_and_health() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.is_html());
    let html = &response.body;
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<title>Switchyard</title>"), "{html}");
    assert!(
        html.contains(r#"<link rel="stylesheet" href="/style.css">"#),
        "{html}"
    );
    assert!(html.contains(r#"src="/app.js""#), "{html}");
    assert!(html.contains(r#"data-live="/events/overview""#), "{html}");
    assert!(html.contains(r#"data-test-id="totals""#), "{html}");
    assert!(html.contains(r#"data-test-id="alerts""#), "{html}");
    assert!(html.contains(r#"data-test-id="throughput""#), "{html}");
    assert!(html.contains("No throughput yet"), "{html}");
    assert!(html.contains("Backend embedded: reachable"), "{html}");
    assert!(
        text_of(html, "backend-status").contains("Backend embedded: reachable"),
        "{html}"
    );
    for state in ["waiting", "active", "delayed", "completed", "failed"] {
        assert_eq!(total(html, state), "0", "{state}: {html}");
    }
    assert!(!html.contains("data-test-id=\"chart-"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn overview_shows_totals_across_queues_and_a_chart_per_queue() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "welcome" })).await;
    app.enqueue("emails", &json!({ "name": "welcome" })).await;
    app.enqueue(
        "emails",
        &json!({ "name": "later", "options": { "delayMs": 60000 } }),
    )
    .await;
    app.make_failed("reports", 2).await;

    // The overview draws from the hub's snapshots, which follow the
    // changes within a tick.
    let html = eventually("the overview shows both queues", async || {
        let response = app.get("/").await;
        let html = response.body;
        if response.status == 200
            && html.contains(r#"data-test-id="chart-emails""#)
            && html.contains(r#"data-test-id="chart-reports""#)
            && total(&html, "failed") == "2"
            && total(&html, "waiting") == "2"
        {
            Ok(html)
        } else {
            Err(html)
        }
    })
    .await;
    assert_eq!(total(&html, "delayed"), "1", "{html}");
    assert_eq!(total(&html, "active"), "0", "{html}");
    assert!(html.contains("2 queues"), "{html}");
    assert!(html.contains(r#"data-test-id="alerts""#), "{html}");
    assert!(html.contains(r#"href="/queues/emails""#), "{html}");
    assert!(!html.contains("No throughput yet"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn queues_page_lists_each_queue_with_counts_health_and_actions() {
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

    let response = app.get("/queues").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.is_html());
    let html = &response.body;
    assert!(
        html.contains("<title>Queues · Switchyard</title>"),
        "{html}"
    );
    assert!(html.contains(r#"data-live="/events/queues""#), "{html}");
    for header in [
        "Queue",
        "Health",
        "Waiting",
        "Active",
        "Delayed",
        "Completed",
        "Failed",
        "Jobs/min",
        "Failure rate",
        "State",
    ] {
        assert!(
            html.contains(&format!(">{header}</th>")),
            "{header}: {html}"
        );
    }
    // The queues page reads fresh counts: no waiting for a snapshot.
    assert_eq!(row_count(html, "emails", "waiting"), "2");
    assert_eq!(row_count(html, "emails", "delayed"), "1");
    assert_eq!(row_count(html, "emails", "failed"), "0");
    assert_eq!(row_count(html, "reports", "failed"), "1");
    assert_eq!(row_count(html, "reports", "waiting"), "0");

    let emails = row(html, "queue-row-emails").expect("emails row");
    assert!(emails.contains("Running"), "{emails}");
    assert!(
        emails.contains(r#"action="/queues/emails/pause""#),
        "{emails}"
    );
    assert!(emails.contains(r#"data-test-id="pause-queue""#), "{emails}");
    assert!(emails.contains(r#"href="/queues/emails""#), "{emails}");
    assert!(
        emails.contains(r#"href="/queues/emails?state=delayed""#),
        "{emails}"
    );
    let health = start_tag(emails, "queue-health").expect("health badge");
    assert!(attr(health, "class").is_some_and(|c| c.starts_with("badge ")));
    assert!(emails.contains(">Healthy</span>"), "{emails}");

    let reports = row(html, "queue-row-reports").expect("reports row");
    assert!(reports.contains("Paused"), "{reports}");
    assert!(
        reports.contains(r#"action="/queues/reports/resume""#),
        "{reports}"
    );
    assert!(
        reports.contains(r#"data-test-id="resume-queue""#),
        "{reports}"
    );
    assert!(reports.contains(r#"data-test-id="queue-health""#));
    assert!(!html.contains(r#"data-test-id="empty-state""#), "{html}");
    // The rows come sorted by name.
    assert!(
        html.find("queue-row-emails") < html.find("queue-row-reports"),
        "{html}"
    );
    app.stop().await;
}

#[tokio::test]
async fn queues_page_without_queues_says_how_to_get_one() {
    let app = TestApp::spawn().await;
    let response = app.get("/queues").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let html = &response.body;
    assert!(html.contains(r#"data-test-id="empty-state""#), "{html}");
    assert!(
        html.contains("No queues yet — enqueue a job or run"),
        "{html}"
    );
    assert!(!html.contains(r#"data-test-id="queues-table""#), "{html}");
    assert!(html.contains("Backend embedded: reachable"), "{html}");
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
async fn the_page_script_is_served() {
    let app = TestApp::spawn().await;
    let response = app.get("/app.js").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(response.body.contains("EventSource"), "{}", response.body);
    assert!(response.body.contains("swap"), "{}", response.body);
    app.stop().await;
}

#[tokio::test]
async fn the_queue_page_shows_waiting_jobs_by_default() {
    let app = TestApp::spawn().await;
    let first = app.enqueue("emails", &json!({ "name": "welcome" })).await;
    let second = app.enqueue("emails", &json!({ "name": "receipt" })).await;
    let delayed = app
        .enqueue(
            "emails",
            &json!({ "name": "later", "options": { "delayMs": 60000 } }),
        )
        .await;

    let response = app.get("/queues/emails").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.is_html());
    let html = &response.body;
    assert!(
        html.contains("<title>emails · Switchyard</title>"),
        "{html}"
    );
    let tab = start_tag(html, "tab-waiting").expect("waiting tab");
    assert_eq!(attr(tab, "aria-current"), Some("page"), "{tab}");
    let failed_tab = start_tag(html, "tab-failed").expect("failed tab");
    assert_eq!(attr(failed_tab, "aria-current"), None, "{failed_tab}");
    assert!(
        html.contains(r#"<div id="queue-header" data-title="emails · Switchyard">"#),
        "{html}"
    );
    assert!(html.contains(r#"data-test-id="pause-queue""#), "{html}");
    assert!(
        html.contains(r#"data-live="/events/queues/emails?state=waiting&amp;limit=50""#),
        "{html}"
    );
    for id in [&first, &second] {
        assert!(
            html.contains(&format!(r#"data-test-id="job-row-{id}""#)),
            "{id}: {html}"
        );
    }
    assert!(
        !html.contains(&format!(r#"data-test-id="job-row-{delayed}""#)),
        "{html}"
    );
    // Newest first.
    assert!(
        html.find(&format!("job-row-{second}")) < html.find(&format!("job-row-{first}")),
        "{html}"
    );
    assert_eq!(strip_tags(element(html, "pager")), "1–2 of 2", "{html}");
    assert!(pager_link(html, "next").is_none(), "{html}");
    assert!(pager_link(html, "prev").is_none(), "{html}");
    // Bulk retry only makes sense on the failed tab.
    assert!(!html.contains(r#"data-test-id="retry-all""#), "{html}");
    assert!(html.contains(r#"data-test-id="filter-form""#), "{html}");
    assert!(html.contains(r#"data-test-id="find-form""#), "{html}");

    // Every state has its tab.
    for state in ["waiting", "active", "delayed", "completed", "failed"] {
        let response = app.get(&format!("/queues/emails?state={state}")).await;
        assert_eq!(response.status, 200, "{state}: {}", response.body);
        let tab = start_tag(&response.body, &format!("tab-{state}")).expect("tab");
        assert_eq!(attr(tab, "aria-current"), Some("page"), "{state}: {tab}");
    }
    let html = app.get("/queues/emails?state=delayed").await.body;
    assert!(html.contains(&format!("job-row-{delayed}\"")), "{html}");
    assert!(
        html.contains(&format!(
            r#"action="/queues/emails/jobs/{delayed}/promote""#
        )),
        "{html}"
    );
    let html = app.get("/queues/emails?state=completed").await.body;
    assert!(html.contains("No completed jobs."), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn the_failed_tab_has_per_row_and_bulk_actions() {
    let app = TestApp::spawn().await;
    let ids = app.make_failed("reports", 2).await;
    let response = app.get("/queues/reports?state=failed").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let html = &response.body;
    let tab = start_tag(html, "tab-failed").expect("failed tab");
    assert_eq!(attr(tab, "aria-current"), Some("page"), "{tab}");
    assert!(html.contains(">Failed reason</th>"), "{html}");
    for id in &ids {
        let row = row(html, &format!("job-row-{id}")).unwrap_or_else(|| panic!("{id}: {html}"));
        assert!(
            row.contains(&format!(r#"action="/queues/reports/jobs/{id}/retry""#)),
            "{row}"
        );
        assert!(
            row.contains(&format!(r#"action="/queues/reports/jobs/{id}/remove""#)),
            "{row}"
        );
        assert!(row.contains(r#"data-test-id="retry-job""#), "{row}");
        assert!(row.contains(r#"data-test-id="remove-job""#), "{row}");
        let pick = start_tag(row, "select-job").expect("checkbox");
        assert_eq!(attr(pick, "name"), Some("id"), "{pick}");
        assert_eq!(attr(pick, "value"), Some(id.as_str()), "{pick}");
        assert_eq!(attr(pick, "form"), Some("selection"), "{pick}");
        assert_eq!(text_of(row, "failed-reason"), "upstream said no");
        // Each form comes back to this very page.
        assert!(
            row.contains(r#"name="back" value="/queues/reports?state=failed&amp;limit=50""#),
            "{row}"
        );
    }
    let selected = start_tag(html, "retry-selected").expect("retry selected");
    assert!(selected.starts_with("<button"), "{selected}");
    assert!(
        html.contains(r#"action="/queues/reports/retry-selected""#),
        "{html}"
    );
    assert!(start_tag(html, "retry-all").is_some(), "{html}");
    assert!(
        html.contains(r#"action="/queues/reports/retry-failed""#),
        "{html}"
    );
    assert!(html.contains("Retry all 2 failed jobs?"), "{html}");
    assert!(html.contains("1–2 of 2"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn more_jobs_than_a_page_are_paged_newest_first() {
    let app = TestApp::spawn().await;
    let jobs = (0..7)
        .map(|i| NewJob::new(format!("job-{i}"), json!({ "i": i })))
        .collect();
    let ids = app
        .queues()
        .enqueue_bulk(&qn("emails"), jobs)
        .await
        .expect("enqueue");
    let has =
        |html: &str, i: usize| html.contains(&format!(r#"data-test-id="job-row-{}""#, ids[i]));

    let html = app.get("/queues/emails?state=waiting&limit=3").await.body;
    assert!(has(&html, 6) && has(&html, 5) && has(&html, 4), "{html}");
    assert!(!has(&html, 3), "{html}");
    assert!(html.contains("1–3 of 7"), "{html}");
    assert!(start_tag(&html, "pager").is_some(), "{html}");
    assert!(pager_link(&html, "prev").is_none(), "{html}");
    let next = pager_link(&html, "next").expect("a next link");
    assert_eq!(next, "/queues/emails?state=waiting&limit=3&offset=3");

    let response = app.get(&next).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let html = response.body;
    assert!(has(&html, 3) && has(&html, 2) && has(&html, 1), "{html}");
    assert!(!has(&html, 4) && !has(&html, 0), "{html}");
    assert!(html.contains("4–6 of 7"), "{html}");
    assert_eq!(
        pager_link(&html, "prev").as_deref(),
        Some("/queues/emails?state=waiting&limit=3")
    );
    let last = pager_link(&html, "next").expect("a next link");
    assert_eq!(last, "/queues/emails?state=waiting&limit=3&offset=6");

    let html = app.get(&last).await.body;
    assert!(has(&html, 0), "{html}");
    assert!(html.contains("7–7 of 7"), "{html}");
    assert!(pager_link(&html, "next").is_none(), "{html}");

    // Past the end: an empty page, not an error.
    let response = app.get("/queues/emails?state=waiting&offset=100").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.body.contains(r#"data-test-id="empty-jobs""#));
    app.stop().await;
}

#[tokio::test]
async fn the_job_table_filters_by_name_and_by_data_or_error_text() {
    let app = TestApp::spawn().await;
    let welcome = app
        .enqueue(
            "emails",
            &json!({ "name": "send-welcome", "data": { "to": "alice@example.com" } }),
        )
        .await;
    let receipt = app
        .enqueue(
            "emails",
            &json!({ "name": "send-receipt", "data": { "to": "bob@example.com" } }),
        )
        .await;
    let cleanup = app
        .enqueue("emails", &json!({ "name": "cleanup", "data": {} }))
        .await;
    let shown = |html: &str, id: &str| html.contains(&format!(r#"data-test-id="job-row-{id}""#));

    let response = app.get("/queues/emails?name=SEND").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let html = response.body;
    assert!(shown(&html, &welcome) && shown(&html, &receipt), "{html}");
    assert!(!shown(&html, &cleanup), "{html}");
    assert_eq!(
        text_of(&html, "search-note"),
        "Searched all 3 waiting jobs: 2 match."
    );
    let input = start_tag(&html, "filter-name").expect("name input");
    assert_eq!(attr(input, "value"), Some("SEND"), "{input}");

    let html = app.get("/queues/emails?q=alice").await.body;
    assert!(shown(&html, &welcome), "{html}");
    assert!(!shown(&html, &receipt) && !shown(&html, &cleanup), "{html}");
    assert_eq!(
        text_of(&html, "search-note"),
        "Searched all 3 waiting jobs: 1 matches."
    );

    let html = app.get("/queues/emails?name=send&q=bob").await.body;
    assert!(shown(&html, &receipt), "{html}");
    assert!(!shown(&html, &welcome), "{html}");

    let html = app.get("/queues/emails?q=nobody-like-this").await.body;
    assert!(html.contains("No waiting jobs match the filter."), "{html}");
    assert_eq!(
        text_of(&html, "search-note"),
        "Searched all 3 waiting jobs: 0 match."
    );

    // The text filter also looks at the failed reason.
    let failed = app
        .fail_jobs(
            "reports",
            vec![
                NewJob::new("notify", json!({ "n": 1 })),
                NewJob::new("notify", json!({ "n": 2 })),
            ],
            JobError::fatal("SMTP 421 mailbox busy"),
        )
        .await;
    let html = app.get("/queues/reports?state=failed&q=MAILBOX").await.body;
    assert!(
        shown(&html, failed[0].as_str()) && shown(&html, failed[1].as_str()),
        "{html}"
    );
    assert_eq!(
        text_of(&html, "search-note"),
        "Searched all 2 failed jobs: 2 match."
    );
    let html = app
        .get("/queues/reports?state=failed&q=%22n%22%3A2")
        .await
        .body;
    assert!(shown(&html, failed[1].as_str()), "{html}");
    assert!(!shown(&html, failed[0].as_str()), "{html}");

    // Without a filter there is no note.
    let html = app.get("/queues/emails").await.body;
    assert!(!html.contains(r#"data-test-id="search-note""#), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_queue_page_is_a_404_page_with_the_reason() {
    let app = TestApp::spawn().await;
    let response = app.get("/queues/nope").await;
    assert_eq!(response.status, 404);
    assert!(response.is_html());
    assert!(response.body.contains("404 Not Found"), "{}", response.body);
    assert_eq!(text_of(&response.body, "error-title"), "404 Not Found");
    assert_eq!(
        text_of(&response.body, "error-message"),
        "queue nope not found"
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

    let long = "x".repeat(201);
    let cases = [
        ("state=dead".to_string(), "unknown state"),
        ("state=bogus".to_string(), "unknown state"),
        (
            "offset=-1".to_string(),
            "offset must be a non-negative integer",
        ),
        (
            "offset=ten".to_string(),
            "offset must be a non-negative integer",
        ),
        (
            "limit=0".to_string(),
            "limit must be an integer between 1 and 500",
        ),
        (
            "limit=501".to_string(),
            "limit must be an integer between 1 and 500",
        ),
        (
            format!("name={long}"),
            "the name filter is limited to 200 characters",
        ),
        (
            format!("q={long}"),
            "the q filter is limited to 200 characters",
        ),
        ("q=a%07b".to_string(), "control characters"),
    ];
    for (query, reason) in cases {
        let response = app.get(&format!("/queues/emails?{query}")).await;
        assert_eq!(response.status, 400, "{query}: {}", response.body);
        assert!(response.is_html(), "{query}");
        assert_eq!(text_of(&response.body, "error-title"), "400 Bad Request");
        assert!(
            text_of(&response.body, "error-message").contains(reason),
            "{query}: {}",
            response.body
        );
    }
    // The bounds themselves are fine.
    let fine = format!("/queues/emails?limit=500&offset=0&name={}", "x".repeat(200));
    assert_eq!(app.get(&fine).await.status, 200);
    assert_eq!(app.get("/queues/emails?limit=1").await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn find_jumps_to_a_job_by_id() {
    let app = TestApp::spawn().await;
    let id = app.enqueue("emails", &json!({ "name": "a" })).await;

    let response = app.get(&format!("/queues/emails/find?id={id}")).await;
    assert_eq!(response.status, 303, "{}", response.body);
    assert_eq!(
        response.header("location"),
        Some(format!("/queues/emails/jobs/{id}").as_str())
    );
    // What is pasted with spaces around it still finds the job.
    let response = app.get(&format!("/queues/emails/find?id=%20{id}%20")).await;
    assert_eq!(response.status, 303, "{}", response.body);

    let response = app.get("/queues/emails/find?id=999").await;
    assert_eq!(response.status, 404, "{}", response.body);
    assert!(response.is_html());
    assert_eq!(
        text_of(&response.body, "error-message"),
        "job 999 not found in queue emails"
    );

    for bad in ["a%20b", "a%2Fb", "", "%3Cscript%3E"] {
        let response = app.get(&format!("/queues/emails/find?id={bad}")).await;
        assert_eq!(response.status, 400, "{bad:?}: {}", response.body);
        assert!(response.is_html(), "{bad:?}");
        assert!(
            text_of(&response.body, "error-message").contains("invalid job id"),
            "{bad:?}: {}",
            response.body
        );
    }
    let response = app.get("/queues/emails/find").await;
    assert_eq!(response.status, 400, "{}", response.body);

    let response = app.get(&format!("/queues/nope/find?id={id}")).await;
    assert_eq!(response.status, 404, "{}", response.body);
    app.stop().await;
}

#[tokio::test]
async fn the_job_page_shows_data_options_attempts_and_timeline() {
    let app = TestApp::spawn().await;
    let queue = qn("emails");
    let id = app
        .queues()
        .enqueue(
            &queue,
            NewJob::new(
                "send-welcome",
                json!({ "to": "a@example.com", "lines": [1, 2] }),
            )
            .with_options(JobOptions {
                attempts: 2,
                backoff: Backoff::Fixed { delay_ms: 0 },
                ..JobOptions::default()
            }),
        )
        .await
        .expect("enqueue");
    // A real worker whose handler logs, reports progress and always
    // fails: two attempts, then the dead set.
    let worker = app
        .queues()
        .worker(queue.clone())
        .poll_interval(Duration::from_millis(20))
        .start(|job| async move {
            job.log(format!("attempt {} <b>tried</b>", job.attempts_made))
                .await
                .expect("log");
            job.progress(json!({ "step": job.attempts_made }))
                .await
                .expect("progress");
            Err(JobError {
                message: "SMTP 421 try again later".into(),
                chain: vec!["connection reset by <peer>".into()],
                retryable: true,
            })
        })
        .expect("worker starts");
    let queues = app.queues().clone();
    eventually("the job fails for good", async || {
        let job = queues.job(&queue, &id).await.map_err(|e| e.to_string())?;
        if job.state == JobState::Failed {
            Ok(())
        } else {
            Err(format!(
                "{:?} after {} attempts",
                job.state, job.attempts_made
            ))
        }
    })
    .await;
    worker.shutdown(Duration::from_secs(5)).await;

    let response = app.get(&format!("/queues/emails/jobs/{id}")).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.is_html());
    let html = &response.body;
    assert!(
        html.contains(&format!("<title>Job {id} · emails · Switchyard</title>")),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"data-live="/events/queues/emails/jobs/{id}""#)),
        "{html}"
    );
    assert_eq!(text_of(html, "job-state"), "failed");
    assert_eq!(
        text_of(html, "job-summary"),
        "Attempts 2/2 · stalled 0 times"
    );
    // Data and options are indented JSON.
    let data = text_of(html, "job-data");
    assert!(
        data.contains("{\n  \"lines\": [\n    1,\n    2\n  ],\n  \"to\": \"a@example.com\"\n}"),
        "{data}"
    );
    let options = text_of(html, "job-options");
    assert!(options.contains("\n  \"attempts\": 2,"), "{options}");
    assert!(options.contains("\"type\": \"fixed\""), "{options}");
    // The last error, and every attempt with its error and causes.
    assert!(html.contains(r#"data-test-id="job-error""#), "{html}");
    let history = element(html, "job-history");
    assert_eq!(history.matches("<tr>").count(), 3, "header + 2: {history}");
    assert_eq!(
        history.matches("SMTP 421 try again later").count(),
        2,
        "{history}"
    );
    assert!(
        history.contains("connection reset by &lt;peer&gt;"),
        "{history}"
    );
    assert!(!html.contains("<peer>"), "{html}");
    // The timeline has when it was enqueued, started and finished.
    let timeline = element(html, "job-timeline");
    for label in ["Enqueued", "Started", "Finished"] {
        assert!(
            timeline.contains(&format!("<dt>{label}</dt>")),
            "{timeline}"
        );
    }
    assert!(!timeline.contains("<dd>–</dd>"), "{timeline}");
    assert!(timeline.contains(" UTC"), "{timeline}");
    // Its log (escaped, every attempt's lines) and its last progress,
    // alike on the page and in the API.
    assert_eq!(text_of(html, "job-progress"), r#"{"step":2}"#);
    let logs = element(html, "job-logs");
    assert_eq!(logs.matches("<li>").count(), 2, "{logs}");
    assert!(
        logs.contains("attempt 2 &lt;b&gt;tried&lt;/b&gt;"),
        "{logs}"
    );
    let api = app.get(&format!("/api/queues/emails/jobs/{id}")).await;
    assert_eq!(api.status, 200, "{}", api.body);
    let api = api.json();
    assert_eq!(
        api["logs"],
        json!(["attempt 1 <b>tried</b>", "attempt 2 <b>tried</b>"])
    );
    assert_eq!(api["progress"], json!({ "step": 2 }));
    assert_eq!(api["logsDropped"], 0);
    // A failed job can be retried or removed from its page.
    assert!(
        html.contains(&format!(r#"action="/queues/emails/jobs/{id}/retry""#)),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"action="/queues/emails/jobs/{id}/remove""#)),
        "{html}"
    );
    assert!(!html.contains(r#"data-test-id="promote-job""#), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn a_completed_job_page_shows_its_result() {
    let app = TestApp::spawn().await;
    let queue = qn("emails");
    let id = app
        .queues()
        .enqueue(
            &queue,
            NewJob::new("send", json!({ "to": "b@example.com" })),
        )
        .await
        .expect("enqueue");
    let worker = app
        .queues()
        .worker(queue.clone())
        .poll_interval(Duration::from_millis(20))
        .start(|job| async move { Ok(json!({ "sent": true, "to": job.data["to"] })) })
        .expect("worker starts");
    let queues = app.queues().clone();
    eventually("the job completes", async || {
        let job = queues.job(&queue, &id).await.map_err(|e| e.to_string())?;
        if job.state == JobState::Completed {
            Ok(())
        } else {
            Err(format!("{:?}", job.state))
        }
    })
    .await;
    worker.shutdown(Duration::from_secs(5)).await;

    let response = app.get(&format!("/queues/emails/jobs/{id}")).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let html = &response.body;
    assert_eq!(text_of(html, "job-state"), "completed");
    assert!(html.contains("<h2>Result</h2>"), "{html}");
    assert!(html.contains("\"sent\": true"), "{html}");
    let history = element(html, "job-history");
    assert!(history.contains(">completed</span>"), "{history}");
    assert!(!html.contains(r#"data-test-id="job-error""#), "{html}");
    assert!(!html.contains(r#"data-test-id="retry-job""#), "{html}");
    assert!(html.contains(r#"data-test-id="remove-job""#), "{html}");

    let html = app.get("/queues/emails?state=completed").await.body;
    assert!(html.contains(&format!("job-row-{id}\"")), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn a_delayed_job_page_offers_to_run_it_now() {
    let app = TestApp::spawn().await;
    let id = app
        .enqueue(
            "emails",
            &json!({ "name": "later", "data": null, "options": { "delayMs": 3600000 } }),
        )
        .await;
    let html = app.get(&format!("/queues/emails/jobs/{id}")).await.body;
    assert_eq!(text_of(&html, "job-state"), "delayed");
    assert!(html.contains("<dt>Runs at</dt>"), "{html}");
    assert!(
        html.contains(&format!(r#"action="/queues/emails/jobs/{id}/promote""#)),
        "{html}"
    );
    assert!(!html.contains(r#"data-test-id="retry-job""#), "{html}");
    assert!(html.contains("No attempt has finished yet."), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_job_page_is_a_404_page() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    let response = app.get("/queues/emails/jobs/999").await;
    assert_eq!(response.status, 404, "{}", response.body);
    assert!(response.is_html());
    assert_eq!(
        text_of(&response.body, "error-message"),
        "job 999 not found in queue emails"
    );
    let response = app.get("/queues/nope/jobs/1").await;
    assert_eq!(response.status, 404, "{}", response.body);
    assert!(response.is_html());
    let response = app.get("/queues/emails/jobs/bad%20id").await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(
        response.body.contains("invalid job id"),
        "{}",
        response.body
    );
    app.stop().await;
}

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "<img src=x onerror=alert(1)>";
const SCRIPT_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
const IMG_ESCAPED: &str = "&lt;img src=x onerror=alert(1)&gt;";

fn assert_escaped(html: &str, what: &str) {
    assert!(
        !html.contains("<script>alert"),
        "{what}: raw script: {html}"
    );
    assert!(!html.contains("<img src=x"), "{what}: raw img: {html}");
    assert!(!html.contains("onerror=alert(1)>"), "{what}: {html}");
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
async fn markup_in_names_data_and_errors_is_shown_as_text_everywhere() {
    let app = TestApp::spawn().await;
    let hostile = || NewJob::new(SCRIPT, json!({ "html": IMG, "note": SCRIPT }));
    let waiting = app
        .queues()
        .enqueue(&qn("emails"), hostile())
        .await
        .expect("enqueue");
    let failed = app
        .fail_jobs(
            "reports",
            vec![hostile()],
            JobError::fatal(format!("{SCRIPT} {IMG}")),
        )
        .await
        .remove(0);

    let pages = [
        (
            "/queues/emails?state=waiting".to_string(),
            waiting.to_string(),
        ),
        (
            "/queues/reports?state=failed".to_string(),
            failed.to_string(),
        ),
        (
            format!("/queues/emails/jobs/{waiting}"),
            waiting.to_string(),
        ),
        (format!("/queues/reports/jobs/{failed}"), failed.to_string()),
        (
            format!("/queues/reports?state=failed&q={}", url_encode("onerror")),
            failed.to_string(),
        ),
    ];
    for (path, id) in pages {
        let response = app.get(&path).await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        let html = &response.body;
        assert!(html.contains(&id), "{path}: {html}");
        assert_escaped(html, &path);
        assert!(html.contains(SCRIPT_ESCAPED), "{path}: {html}");
        assert!(html.contains(IMG_ESCAPED), "{path}: {html}");
    }

    // Reflected input: the filter box and error messages.
    let path = format!(
        "/queues/emails?name={}",
        url_encode(&format!("\"><{}", &SCRIPT[1..]))
    );
    let response = app.get(&path).await;
    assert_eq!(response.status, 200, "{}", response.body);
    // Inside a quoted attribute only the quote matters: it is escaped, so
    // the value cannot end early and open a tag.
    assert!(
        !response.body.contains("\"><script>alert"),
        "{}",
        response.body
    );
    let input = start_tag(&response.body, "filter-name").expect("name input");
    assert!(
        attr(input, "value").is_some_and(|v| v.starts_with("&quot;")),
        "{input}"
    );
    let path = format!("/queues/emails?state={}", url_encode(SCRIPT));
    let response = app.get(&path).await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert_escaped(&response.body, &path);
    assert!(response.body.contains(SCRIPT_ESCAPED), "{}", response.body);
    let path = format!("/no/{}", url_encode(SCRIPT));
    let response = app.get(&path).await;
    assert_eq!(response.status, 404, "{}", response.body);
    assert_escaped(&response.body, &path);
    app.stop().await;
}

#[tokio::test]
async fn the_configuration_page_lists_the_settings() {
    let app = TestApp::spawn().await;
    let response = app.get("/config").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.is_html());
    let html = &response.body;
    assert!(
        html.contains("<title>Configuration · Switchyard</title>"),
        "{html}"
    );
    assert!(
        text_of(html, "config-summary").ends_with("embedded deployment"),
        "{html}"
    );
    for flag in [
        "--listen",
        "--redis",
        "--redis-prefix",
        "--database-url",
        "--log",
        "--busy-active",
        "--warning-failure-rate",
    ] {
        let id = format!("config-{}", flag.trim_start_matches('-'));
        let row = row(html, &id).unwrap_or_else(|| panic!("no {id}: {html}"));
        assert!(row.contains(&format!("<code>{flag}</code>")), "{row}");
    }
    let redis = row(html, "config-redis").expect("redis row");
    assert!(redis.contains("not set: embedded deployment"), "{redis}");
    let listen = row(html, "config-listen").expect("listen row");
    assert!(listen.contains("127.0.0.1:0"), "{listen}");
    let busy = row(html, "config-busy-active").expect("busy row");
    assert!(busy.contains("<code>100</code>"), "{busy}");
    let rate = row(html, "config-warning-failure-rate").expect("rate row");
    assert!(rate.contains("<code>5%</code>"), "{rate}");
    assert!(!html.contains("data-live"), "a static page: {html}");
    app.stop().await;
}

#[tokio::test]
async fn no_page_shows_the_redis_password() {
    const PASSWORD: &str = "hunter2-s3cret";
    // The local Redis accepts any password for its password-less default
    // user when the user is named, so the server starts with it.
    let app = TestApp::spawn_redis_at(&format!("redis://default:{PASSWORD}@127.0.0.1:6379")).await;
    let response = app.get("/config").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let html = &response.body;
    let redis = row(html, "config-redis").expect("redis row");
    assert!(
        redis.contains("redis://default:***@127.0.0.1:6379"),
        "{redis}"
    );
    assert!(
        text_of(html, "config-summary").ends_with("redis deployment"),
        "{html}"
    );
    app.enqueue("emails", &json!({ "name": "a" })).await;
    for path in [
        "/config",
        "/",
        "/queues",
        "/queues/emails",
        "/queues/nope",
        "/health/ready",
    ] {
        let response = app.get(path).await;
        assert!(
            !response.body.contains(PASSWORD),
            "{path}: {}",
            response.body
        );
    }
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
    assert!(!response.body.contains("data-live"), "{}", response.body);
    // The shell is every page's: the signed-in admin's menu, the sections
    // only an admin sees, the banner and the skip link.
    for part in [
        r#"data-test-id="user-menu""#,
        r#"href="/users""#,
        r#"href="/config""#,
        r#"id="alert-banner""#,
        r#"data-test-id="skip-link""#,
    ] {
        assert!(response.body.contains(part), "{part}: {}", response.body);
    }
    // Signed out, an error page has no menu to show.
    let anonymous = app.get_as(None, "/no/such/page").await;
    assert_eq!(anonymous.status, 404);
    assert!(
        !anonymous.body.contains(r#"data-test-id="user-menu""#),
        "{}",
        anonymous.body
    );
    app.stop().await;
}

#[tokio::test]
async fn a_queue_opens_on_its_most_useful_tab() {
    let app = TestApp::spawn().await;
    let tab = |body: &str, state: &str| {
        body.contains(&format!(
            r#"aria-current="page" data-test-id="tab-{state}""#
        ))
    };
    let queue = qn("tabs");
    app.queues()
        .enqueue(&queue, NewJob::new("n", json!({})))
        .await
        .expect("enqueue");
    // Nothing failed or running: Waiting.
    let body = app.get("/queues/tabs").await.body;
    assert!(tab(&body, "waiting"), "{body}");
    // Running: Active.
    let backend = app.queues().backend().clone();
    let claimed = backend
        .step(&queue, Vec::new(), 1, Duration::from_secs(60))
        .await
        .expect("claim")
        .claimed;
    assert_eq!(claimed.len(), 1);
    let body = app.get("/queues/tabs").await.body;
    assert!(tab(&body, "active"), "{body}");
    // Failed: Failed, whatever else runs.
    app.fail_jobs(
        "tabs",
        vec![NewJob::new("f", json!({}))],
        JobError::fatal("boom"),
    )
    .await;
    let body = app.get("/queues/tabs").await.body;
    assert!(tab(&body, "failed"), "{body}");
    // A link naming a tab still gets that tab.
    let body = app.get("/queues/tabs?state=waiting").await.body;
    assert!(tab(&body, "waiting"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn the_overview_explains_an_unreachable_backend_with_a_503() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    // Wait until the hub knows the queue, so there are figures to keep.
    eventually("the overview knows the queue", async || {
        let html = app.get("/").await.body;
        if html.contains(r#"data-test-id="chart-emails""#) {
            Ok(())
        } else {
            Err(html)
        }
    })
    .await;
    // The embedded queues and the server's tables share this pool.
    app.app.state.db.close().await;

    // The overview follows the hub's snapshots: the next one (a heartbeat
    // at the latest) finds the backend gone.
    let response = eventually("the overview answers 503", async || {
        let response = app.get("/").await;
        if response.status == 503 {
            Ok(response)
        } else {
            Err(format!("{} {}", response.status, response.body))
        }
    })
    .await;
    assert!(response.is_html());
    let html = &response.body;
    assert!(
        text_of(html, "backend-status").starts_with("Backend embedded: unreachable"),
        "{html}"
    );
    // The last known figures stay, marked as such; never "no queues".
    assert!(html.contains(r#"data-test-id="stale-note""#), "{html}");
    assert_eq!(total(html, "waiting"), "1", "{html}");
    assert!(!html.contains("No queues yet"), "{html}");

    // The queues page asks the backend itself: 503 at once.
    let response = app.get("/queues").await;
    assert_eq!(response.status, 503, "{}", response.body);
    assert!(response.is_html());
    let html = &response.body;
    assert!(
        text_of(html, "backend-status").starts_with("Backend embedded: unreachable"),
        "{html}"
    );
    assert!(!html.contains("No queues yet"), "{html}");
    assert!(
        html.contains(r#"data-test-id="queue-row-emails""#),
        "{html}"
    );
    assert!(html.contains(r#"data-test-id="stale-note""#), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn a_failing_queue_is_flagged_on_the_overview_and_the_queues_page() {
    let app = TestApp::spawn().await;
    // A delayed job creates the queue without anything a claim would take.
    app.enqueue(
        "reports",
        &json!({ "name": "later", "options": { "delayMs": 3600000 } }),
    )
    .await;
    app.enqueue("emails", &json!({ "name": "fine" })).await;
    // Rates need a first sample of the counters, taken by a hub tick.
    eventually("the hub has seen the queue", async || {
        let html = app.get("/").await.body;
        if html.contains(r#"data-test-id="chart-reports""#) {
            Ok(())
        } else {
            Err(html)
        }
    })
    .await;
    app.make_failed("reports", 3).await;

    // Every finished job failed: far above the 5% threshold.
    let html = eventually("the overview names the failing queue", async || {
        let html = app.get("/").await.body;
        if html.contains(r#"data-test-id="queue-warnings""#) {
            Ok(html)
        } else {
            Err(html)
        }
    })
    .await;
    let warnings = element(&html, "queue-warnings");
    assert!(
        warnings.contains(r#"href="/queues/reports?state=failed""#),
        "{warnings}"
    );
    assert!(!warnings.contains("emails"), "{warnings}");
    // The chart shows finished minutes only (it changes once a minute).
    assert!(html.contains(r#"data-test-id="chart-reports""#), "{html}");

    let html = app.get("/queues").await.body;
    let reports = row(&html, "queue-row-reports").expect("row");
    assert_eq!(text_of(reports, "queue-health"), "Warning", "{reports}");
    assert_eq!(text_of(reports, "failure-rate"), "100.0%", "{reports}");
    let emails = row(&html, "queue-row-emails").expect("row");
    assert_eq!(text_of(emails, "queue-health"), "Healthy", "{emails}");
    let page = app.get("/queues/reports").await.body;
    assert_eq!(text_of(&page, "queue-health"), "Warning", "{page}");
    app.stop().await;
}

#[tokio::test]
async fn a_queue_with_more_active_jobs_than_the_threshold_is_busy() {
    let app = TestApp::spawn_with(|s| s.busy_active = 1).await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    app.enqueue("emails", &json!({ "name": "b" })).await;
    let html = app.get("/queues").await.body;
    let emails = row(&html, "queue-row-emails").expect("row");
    assert_eq!(text_of(emails, "queue-health"), "Healthy", "{emails}");
    assert!(html.contains("Busy: more than 1 active jobs."), "{html}");

    let claimed = app
        .queues()
        .backend()
        .step(&qn("emails"), Vec::new(), 2, Duration::from_secs(30))
        .await
        .expect("claim")
        .claimed;
    assert_eq!(claimed.len(), 2);
    // Badges on the queues page come from fresh counts.
    let html = app.get("/queues").await.body;
    let emails = row(&html, "queue-row-emails").expect("row");
    assert_eq!(text_of(emails, "queue-health"), "Busy", "{emails}");
    assert_eq!(row_count(&html, "emails", "active"), "2");
    let html = app.get("/queues/emails?state=active").await.body;
    assert_eq!(text_of(&html, "queue-health"), "Busy", "{html}");
    // An active job cannot be removed from the table.
    assert!(!html.contains(r#"data-test-id="remove-job""#), "{html}");
    assert!(
        html.contains(&format!("job-row-{}\"", claimed[0].id)),
        "{html}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_filter_searches_the_newest_5000_jobs_and_says_so() {
    let app = TestApp::spawn().await;
    let queue = qn("big");
    let old = app
        .queues()
        .enqueue(&queue, NewJob::new("needle-old", json!({})))
        .await
        .expect("enqueue");
    let hay = (0..5_000)
        .map(|i| NewJob::new("hay", json!({ "i": i })))
        .collect();
    app.queues()
        .enqueue_bulk(&queue, hay)
        .await
        .expect("enqueue");
    let new = app
        .queues()
        .enqueue(&queue, NewJob::new("needle-new", json!({})))
        .await
        .expect("enqueue");

    let response = app.get("/queues/big?name=needle").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let html = response.body;
    assert!(html.contains(&format!("job-row-{new}\"")), "{html}");
    assert!(
        !html.contains(&format!("job-row-{old}\"")),
        "the oldest job is past the search limit"
    );
    assert_eq!(
        text_of(&html, "search-note"),
        "Searched the newest 5,000 of 5,002 waiting jobs: 1 matches. \
         Narrow the filter or remove old jobs to search further."
    );
    // Unfiltered, every job is reachable by paging.
    let html = app.get("/queues/big?offset=5001&limit=1").await.body;
    assert!(html.contains(&format!("job-row-{old}\"")), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn filtered_results_are_paged_with_the_filter_kept() {
    let app = TestApp::spawn().await;
    let jobs = (0..10)
        .map(|i| {
            let name = if i % 2 == 0 { "send" } else { "other" };
            NewJob::new(name, json!({ "i": i }))
        })
        .collect();
    let ids = app
        .queues()
        .enqueue_bulk(&qn("emails"), jobs)
        .await
        .expect("enqueue");
    // Matches, newest first: 8, 6, 4, 2, 0.
    let html = app.get("/queues/emails?name=send&limit=2").await.body;
    assert!(html.contains("1–2 of 5"), "{html}");
    let next = pager_link(&html, "next").expect("next");
    assert_eq!(
        next,
        "/queues/emails?state=waiting&limit=2&offset=2&name=send"
    );
    let html = app.get(&next).await.body;
    assert!(html.contains("3–4 of 5"), "{html}");
    for (i, id) in ids.iter().enumerate() {
        let shown = html.contains(&format!("job-row-{id}\""));
        assert_eq!(shown, i == 4 || i == 2, "job {i}: {html}");
    }
    app.stop().await;
}

#[tokio::test]
async fn pages_that_need_the_backend_answer_503_when_it_is_gone() {
    let app = TestApp::spawn().await;
    let id = app.enqueue("emails", &json!({ "name": "a" })).await;
    app.app.state.db.close().await;
    for path in [
        "/queues/emails".to_string(),
        format!("/queues/emails/jobs/{id}"),
        format!("/queues/emails/find?id={id}"),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status, 503, "{path}: {}", response.body);
        assert!(response.is_html(), "{path}");
        assert_eq!(
            text_of(&response.body, "error-title"),
            "503 Service Unavailable",
            "{path}"
        );
    }
    let response = app
        .post_form("/queues/emails/pause", &[("back", "/queues/emails")])
        .await;
    assert_eq!(response.status, 503, "{}", response.body);
    app.stop().await;
}
