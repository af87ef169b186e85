//! Error groups through the server: the pages, their JSON twins, a group's
//! retry and removal (forms and API, audited), and the failed tab filtered
//! to a group, on the embedded backend and on Redis.

use coord::errors::GroupId;
use coord::queue::{JobError, JobState, NewJob};
use serde_json::{Value, json};
use test_support::html::{attr, start_tag, text_of};

use crate::helpers::{TestApp, assert_redirect, eventually, qn};

fn card() -> GroupId {
    GroupId::of_reason("card declined for order 8812")
}

fn smtp() -> GroupId {
    GroupId::of_reason("SMTP 550 mailbox unavailable")
}

/// Fails `n` jobs named `name` in `queue`, each with its own order number.
async fn fail_cards(app: &TestApp, queue: &str, name: &str, n: usize) {
    for i in 0..n {
        app.fail_jobs(
            queue,
            vec![NewJob::new(name, json!({ "order": 1000 + i }))],
            JobError::fatal(format!("card declined for order {}", 1000 + i)),
        )
        .await;
    }
}

async fn fail_smtp(app: &TestApp, queue: &str, n: usize) {
    let jobs = (0..n)
        .map(|i| NewJob::new("welcome", json!({ "to": format!("user{i}@example.com") })))
        .collect();
    app.fail_jobs(queue, jobs, JobError::fatal("SMTP 550 mailbox unavailable"))
        .await;
}

fn occurrences(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

async fn groups_are_listed_per_queue_and_across_queues(app: TestApp) {
    fail_cards(&app, "payments", "charge", 3).await;
    fail_cards(&app, "refunds", "refund", 2).await;
    fail_smtp(&app, "payments", 4).await;

    let api = app.get("/api/queues/payments/errors").await;
    assert_eq!(api.status, 200, "{}", api.body);
    let body = api.json();
    assert_eq!(body["total"], 2, "{body}");
    assert_eq!(body["failed"], 7, "{body}");
    // Most failed first.
    assert_eq!(body["groups"][0]["id"], smtp().to_string(), "{body}");
    assert_eq!(body["groups"][0]["failed"], 4);
    assert_eq!(body["groups"][1]["reason"], "card declined for order #");
    assert_eq!(body["groups"][1]["names"][0]["name"], "charge");
    assert_eq!(body["groups"][1]["lastHour"], 3, "{body}");
    assert_eq!(
        body["groups"][1]["sample"]["reason"],
        "card declined for order 1002"
    );
    let recent = app
        .get("/api/queues/payments/errors?sort=recent&limit=1")
        .await
        .json();
    assert_eq!(recent["groups"].as_array().map(Vec::len), Some(1));
    assert_eq!(recent["total"], 2);

    // Every queue's page reads the queues the hub knows to have failed
    // jobs: both, once its next snapshot saw them.
    let cards = eventually("both queues' cards are merged", async || {
        let all = app.get("/api/errors").await.json();
        let cards = all["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["id"] == card().to_string()))
            .cloned()
            .ok_or_else(|| all.to_string())?;
        if cards["failed"] == 5 {
            Ok(cards)
        } else {
            Err(cards.to_string())
        }
    })
    .await;
    assert_eq!(
        cards["queues"][0],
        json!({ "queue": "payments", "bullmq": false, "failed": 3 })
    );
    assert_eq!(
        cards["queues"][1],
        json!({ "queue": "refunds", "bullmq": false, "failed": 2 })
    );
    assert_eq!(cards["lastHour"], 5, "{cards}");

    let page = app.get("/queues/payments/errors").await;
    assert_eq!(page.status, 200);
    let html = page.body;
    assert_eq!(
        occurrences(&html, r#"data-test-id="error-group""#),
        2,
        "{html}"
    );
    assert_eq!(
        text_of(&html, "errors-summary"),
        "7 failed jobs in 2 groups."
    );
    assert!(html.contains("card declined for order #"), "{html}");
    let row = start_tag(&html, "error-group").expect("a row");
    assert_eq!(attr(row, "data-failed"), Some("4"));
    assert!(html.contains(&format!(
        "/queues/payments?state=failed&amp;group={}",
        card()
    )));
    let every = app.get("/errors").await;
    assert_eq!(every.status, 200);
    assert!(
        every.body.contains("/queues/refunds/errors#group-"),
        "{}",
        every.body
    );

    // Bad input is a clear 4xx, never a page of nothing.
    assert_eq!(app.get("/queues/nosuch/errors").await.status, 404);
    assert_eq!(app.get("/api/queues/nosuch/errors").await.status, 404);
    let bad = app.get("/api/errors?sort=oldest").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("sort must be failed or recent"),
        "{}",
        bad.body
    );
    assert_eq!(app.get("/errors?limit=0").await.status, 400);
    app.stop().await;
}

#[tokio::test]
async fn groups_are_listed_per_queue_and_across_queues_embedded() {
    groups_are_listed_per_queue_and_across_queues(TestApp::spawn().await).await;
}

#[tokio::test]
async fn groups_are_listed_per_queue_and_across_queues_on_redis() {
    groups_are_listed_per_queue_and_across_queues(TestApp::spawn_redis().await).await;
}

#[tokio::test]
async fn retrying_a_group_retries_exactly_that_group_and_is_audited() {
    let app = TestApp::spawn().await;
    fail_cards(&app, "payments", "charge", 12).await;
    fail_smtp(&app, "payments", 5).await;
    let back = "/queues/payments/errors";
    let response = app
        .post_form(
            &format!("/queues/payments/errors/{}/retry", card()),
            &[("back", back)],
        )
        .await;
    let cookie = assert_redirect(&response, back);
    let html = app.get_with_cookie(back, &cookie).await.body;
    assert!(
        html.contains("Retrying the group&#x27;s failed jobs")
            || html.contains("Retrying the group's failed jobs"),
        "{html}"
    );
    eventually("the group retry ends", async || {
        match app.app.state.hub.progress(&qn("payments")) {
            Some(p) if p.finished => Ok(p),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let counts = app.counts("payments").await;
    assert_eq!((counts.failed, counts.waiting), (5, 12), "{counts:?}");
    let page = app.get(back).await.body;
    assert!(
        page.contains("Retried 12 failed jobs of the group “card declined for order #”."),
        "{page}"
    );
    assert_eq!(occurrences(&page, r#"data-test-id="error-group""#), 1);
    let audit = app.get("/api/audit?action=queue.retry_group").await.json();
    let entry = &audit["entries"][0];
    assert_eq!(entry["target"], "payments", "{audit}");
    assert_eq!(entry["outcome"], "ok", "{audit}");
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("card declined for order #") && detail.contains("12 failed jobs"),
        "{detail}"
    );

    // An empty group: nothing started, and the record says so.
    let again = app
        .post_json(
            &format!("/api/queues/payments/errors/{}/retry", card()),
            &json!({}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["done"], 0);
    // A malformed id is a 400 with the reason.
    let bad = app
        .post_form(
            "/queues/payments/errors/not-a-group/retry",
            &[("back", back)],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("16 lowercase hex digits"), "{}", bad.body);
    app.stop().await;
}

#[tokio::test]
async fn removing_a_group_through_the_api_removes_only_its_jobs() {
    let app = TestApp::spawn_redis().await;
    fail_cards(&app, "payments", "charge", 3).await;
    fail_smtp(&app, "payments", 6).await;
    let response = app
        .post_json(
            &format!("/api/queues/payments/errors/{}/remove", smtp()),
            &json!({}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(
        (
            body["done"].clone(),
            body["total"].clone(),
            body["finished"].clone()
        ),
        (json!(6), json!(6), json!(true)),
        "{body}"
    );
    let counts = app.counts("payments").await;
    assert_eq!(counts.failed, 3, "{counts:?}");
    let page = app
        .queues()
        .list(&qn("payments"), JobState::Failed, 0, 10)
        .await
        .expect("list");
    assert!(page.jobs.iter().all(|j| j.name == "charge"), "{page:?}");
    let audit = app.get("/api/audit?action=queue.remove_group").await.json();
    assert_eq!(audit["entries"][0]["outcome"], "ok", "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn the_failed_tab_filtered_to_a_group_lists_it_and_acts_on_it() {
    let app = TestApp::spawn().await;
    fail_cards(&app, "payments", "charge", 7).await;
    fail_smtp(&app, "payments", 12).await;
    let url = format!("/queues/payments?state=failed&group={}", card());
    let page = app.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let html = page.body;
    assert_eq!(
        occurrences(&html, r#"data-test-id="failed-reason""#),
        7,
        "{html}"
    );
    assert!(!html.contains("SMTP 550"), "only the group's jobs: {html}");
    assert_eq!(text_of(&html, "retry-matching"), "Retry 7 matching");
    assert_eq!(text_of(&html, "remove-matching"), "Remove 7 matching");
    assert!(
        start_tag(&html, "retry-all").is_none(),
        "no retry-all under a group filter"
    );
    assert!(
        text_of(&html, "filter-group").contains("card declined for order #"),
        "{html}"
    );
    // The group and the name filter together: searched within the group.
    let both = app.get(&format!("{url}&name=charge")).await.body;
    assert!(
        text_of(&both, "search-note")
            .contains("Searched all 7 failed jobs of the error group: 7 match."),
        "{both}"
    );
    assert_eq!(
        app.get(&format!("/queues/payments?state=waiting&group={}", card()))
            .await
            .status,
        400
    );
    assert_eq!(
        app.get("/queues/payments?state=failed&group=xyz")
            .await
            .status,
        400
    );
    app.stop().await;
}

#[tokio::test]
async fn an_error_page_stream_shows_new_groups_without_reconnecting() {
    let app = TestApp::spawn().await;
    fail_cards(&app, "payments", "charge", 2).await;
    let mut stream = app.sse("/events/queues/payments/errors").await;
    let wait = std::time::Duration::from_secs(10);
    let first = stream
        .swap_until(wait, |e| e.region() == Some("error-groups"))
        .await;
    assert!(first.data.contains(r#"data-failed="2""#), "{first:?}");
    assert!(!first.data.contains("SMTP 550"), "{first:?}");
    fail_smtp(&app, "payments", 3).await;
    let update = stream
        .swap_until(wait, |e| {
            e.region() == Some("error-groups") && e.data.contains("SMTP 550")
        })
        .await;
    assert!(update.data.contains(r#"data-failed="3""#), "{update:?}");
    assert_eq!(app.get("/events/queues/nosuch/errors").await.status, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_filtered_retry_acts_on_exactly_the_jobs_matching_at_the_click() {
    let app = TestApp::spawn().await;
    let welcome = |n: usize| {
        (0..n)
            .map(|i| NewJob::new("welcome", json!({ "to": format!("u{i}@example.com") })))
            .collect::<Vec<_>>()
    };
    app.fail_jobs(
        "mail",
        welcome(7),
        JobError::fatal("SMTP 421 try again later"),
    )
    .await;
    fail_cards(&app, "mail", "invoice", 12).await;
    let page = app.get("/queues/mail?state=failed&name=welcome").await.body;
    assert_eq!(text_of(&page, "retry-matching"), "Retry 7 matching");
    assert_eq!(text_of(&page, "remove-matching"), "Remove 7 matching");
    assert!(
        start_tag(&page, "retry-all").is_none(),
        "no retry-all under a filter: {page}"
    );
    assert!(
        page.contains("/queues/mail?state=waiting&amp;name=welcome"),
        "the filter travels with the tabs: {page}"
    );

    let response = app
        .post_json(
            "/api/queues/mail/retry-matching?state=failed&name=welcome",
            &json!({}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(
        (body["matched"].clone(), body["done"].clone()),
        (json!(7), json!(7)),
        "{body}"
    );
    // Failures after the click are not part of it.
    app.fail_jobs(
        "mail",
        welcome(3),
        JobError::fatal("SMTP 421 try again later"),
    )
    .await;
    let counts = app.counts("mail").await;
    assert_eq!((counts.failed, counts.waiting), (15, 7), "{counts:?}");
    let audit = app
        .get("/api/audit?action=queue.retry_matching")
        .await
        .json();
    let detail = audit["entries"][0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        detail,
        "name “welcome”: 7 matching (searched all 19 failed jobs)"
    );

    // The form: remove what a text filter matches, and nothing else.
    let back = "/queues/mail?state=failed&q=order";
    let response = app
        .post_form(
            "/queues/mail/remove-matching",
            &[("state", "failed"), ("q", "order"), ("back", back)],
        )
        .await;
    let cookie = assert_redirect(&response, back);
    let html = app.get_with_cookie(back, &cookie).await.body;
    assert!(html.contains("Removing the 12 matching jobs"), "{html}");
    eventually("the removal ends", async || {
        match app.app.state.hub.progress(&qn("mail")) {
            Some(p) if p.finished => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(app.counts("mail").await.failed, 3);

    // Without a filter, or retrying another state: refused with the reason.
    let none = app
        .post_json("/api/queues/mail/retry-matching?state=failed", &json!({}))
        .await;
    assert_eq!(none.status, 400, "{}", none.body);
    assert!(none.body.contains("a filter"), "{}", none.body);
    let waiting = app
        .post_json(
            "/api/queues/mail/retry-matching?state=waiting&name=welcome",
            &json!({}),
        )
        .await;
    assert_eq!(waiting.status, 400, "{}", waiting.body);
    app.stop().await;
}

#[tokio::test]
async fn retrying_jobs_and_why_failed_jobs_stopped_are_shown() {
    use coord::queue::{JobOptions, Outcome, OutcomeResult};
    let app = TestApp::spawn().await;
    let queue = qn("sync");
    let backend = app.queues().backend().clone();
    let lease = std::time::Duration::from_secs(30);
    // One job backing off for a minute after a retryable failure.
    app.queues()
        .enqueue(
            &queue,
            NewJob::new("pull", json!({})).with_options(JobOptions {
                attempts: 4,
                ..JobOptions::default()
            }),
        )
        .await
        .expect("enqueue");
    let claimed = backend
        .step(&queue, Vec::new(), 1, lease)
        .await
        .expect("claim")
        .claimed;
    let id = claimed[0].id.clone();
    let now = coord::time::now_ms();
    backend
        .step(
            &queue,
            vec![Outcome {
                job_id: id.clone(),
                lease_token: claimed[0].lease_token.clone().unwrap_or_default(),
                started_at: now,
                finished_at: now,
                result: OutcomeResult::Failed {
                    error: JobError::new("upstream <503>"),
                    retry_delay_ms: 60_000,
                },
            }],
            0,
            lease,
        )
        .await
        .expect("fail");
    // And two failed for good: one fatal, one out of attempts.
    app.fail_jobs(
        "sync",
        vec![NewJob::new("push", json!({}))],
        JobError::fatal("bad input"),
    )
    .await;
    app.fail_jobs(
        "sync",
        vec![NewJob::new("push", json!({})).with_options(JobOptions {
            attempts: 1,
            ..JobOptions::default()
        })],
        JobError::new("timeout"),
    )
    .await;

    let page = app.get("/queues/sync/retrying").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        text_of(&page.body, "retrying-summary"),
        "1 job failed and will run again."
    );
    assert_eq!(text_of(&page.body, "last-error"), "upstream &lt;503&gt;");
    assert_eq!(text_of(&page.body, "attempts-left"), "1/4 · 3 left");
    let api = app.get("/api/queues/sync/retrying").await.json();
    assert_eq!(api["total"], 1, "{api}");
    assert_eq!(api["jobs"][0]["id"], id.to_string());
    assert_eq!(api["jobs"][0]["attemptsLeft"], 3);
    assert_eq!(api["jobs"][0]["lastError"], "upstream <503>");
    assert!(
        api["jobs"][0]["nextAttemptAt"].as_i64().unwrap_or(0) > now,
        "{api}"
    );

    // The delayed tab shows the last error, not only the data.
    let delayed = app.get("/queues/sync?state=delayed").await.body;
    assert!(
        text_of(&delayed, "last-error").contains("last error: upstream &lt;503&gt;"),
        "{delayed}"
    );
    // Failed rows say why they stopped.
    let failed = app.get("/queues/sync?state=failed").await.body;
    let mut kinds: Vec<String> = failed
        .match_indices(r#"data-test-id="failure-kind""#)
        .map(|(at, _)| {
            let rest = &failed[at..];
            let text = &rest[rest.find('>').map_or(0, |i| i + 1)..];
            text.split('<').next().unwrap_or("").to_owned()
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec!["retries exhausted", "unrecoverable"],
        "{failed}"
    );
    assert_eq!(app.get("/queues/nosuch/retrying").await.status, 404);
    assert_eq!(app.get("/queues/sync/retrying?limit=0").await.status, 400);

    // An operator stops the backing-off job's retries: from its row's
    // button it goes to the failed set, badged as theirs, audited.
    assert!(
        page.body
            .contains(&format!("/queues/sync/jobs/{id}/stop-retrying")),
        "{}",
        page.body
    );
    let job_page = app.get(&format!("/queues/sync/jobs/{id}")).await.body;
    assert!(
        job_page.contains(r#"data-test-id="stop-retrying""#),
        "{job_page}"
    );
    let stopped = app
        .post_form(
            &format!("/queues/sync/jobs/{id}/stop-retrying"),
            &[("back", "/queues/sync/retrying")],
        )
        .await;
    assert_eq!(stopped.status, 303, "{}", stopped.body);
    let page = app.get("/queues/sync/retrying").await;
    assert_eq!(
        text_of(&page.body, "retrying-summary"),
        "0 jobs failed and will run again."
    );
    let detail = app.get(&format!("/api/queues/sync/jobs/{id}")).await.json();
    assert_eq!(detail["state"], "failed", "{detail}");
    assert_eq!(detail["failure"], "stopped by an operator", "{detail}");
    assert_eq!(detail["retrying"], false, "{detail}");
    let failed = app.get("/queues/sync?state=failed").await.body;
    assert!(failed.contains(">stopped by an operator<"), "{failed}");
    let job_page = app.get(&format!("/queues/sync/jobs/{id}")).await.body;
    assert!(job_page.contains(">stopped by an operator<"), "{job_page}");
    assert!(
        !job_page.contains(r#"data-test-id="stop-retrying""#),
        "{job_page}"
    );
    let audit = app.get("/api/audit").await.json();
    assert_eq!(
        audit["entries"][0]["action"], "job.stop_retrying",
        "{audit}"
    );
    // Again through the API: it is failed now, a conflict with the reason.
    let again = app
        .post_json(
            &format!("/api/queues/sync/jobs/{id}/stop-retrying"),
            &Value::Null,
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("is failed"), "{}", again.body);
    // The error groups count it in.
    let groups = app.get("/api/queues/sync/errors").await.json();
    assert!(
        groups["groups"].as_array().is_some_and(|g| g
            .iter()
            .any(|g| g["reason"] == "upstream <503>" && g["failed"] == 1)),
        "{groups}"
    );
    app.stop().await;
}
