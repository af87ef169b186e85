//! The audit log: the store on SQLite and PostgreSQL, every action leaving
//! one entry with its outcome and the client's address, and the Audit page
//! and `/api/audit` reading it back.

use std::time::Duration;

use serde_json::{Value, json};
use server::audit::{AuditEntry, AuditFilter, AuditLog, Outcome};
use server::config::Settings;
use server::db::Database;

use crate::helpers::{TEST_ADMIN, TestApp, assert_redirect, each_migrated_database, eventually};

fn entry(
    at: i64,
    actor: &str,
    action: &str,
    kind: &str,
    target: &str,
    outcome: Outcome,
) -> AuditEntry {
    AuditEntry {
        id: 0,
        at,
        actor: actor.into(),
        address: Some("10.0.0.1".into()),
        action: action.into(),
        target_kind: kind.into(),
        target: target.into(),
        outcome,
        detail: (outcome != Outcome::Ok).then(|| "queue ghost not found".into()),
    }
}

/// Records, lists, filters and pages on a migrated database.
async fn exercise_store(db: &Database) {
    let log = AuditLog::new(db.clone());
    let (none, total) = log
        .list(&AuditFilter::default(), 0, 50)
        .await
        .expect("list empty");
    assert!(none.is_empty());
    assert_eq!(total, 0);
    let entries = [
        entry(
            1_000,
            "anonymous",
            "queue.pause",
            "queue",
            "emails",
            Outcome::Ok,
        ),
        entry(2_000, "ada", "job.retry", "job", "emails/7", Outcome::Ok),
        entry(
            3_000,
            "anonymous",
            "queue.pause",
            "queue",
            "ghost",
            Outcome::Refused,
        ),
        entry(
            4_000,
            "ada",
            "ratelimit.unblock",
            "ratelimit_key",
            "api/50%_off",
            Outcome::Failed,
        ),
        entry(
            5_000,
            "anonymous",
            "queue.resume",
            "queue",
            "Emails",
            Outcome::Ok,
        ),
    ];
    for e in &entries {
        // `note` returns once the writer has written the entry.
        log.note(e.clone()).await;
    }
    assert_eq!(log.lost(), 0);
    let list = |filter: AuditFilter, offset: u64, limit: u64| {
        let log = log.clone();
        async move {
            let (rows, total) = log.list(&filter, offset, limit).await.expect("list");
            (rows.into_iter().map(|r| r.at).collect::<Vec<_>>(), total)
        }
    };
    // Newest first, every field back as written.
    let (all, total) = log
        .list(&AuditFilter::default(), 0, 50)
        .await
        .expect("list");
    assert_eq!(total, 5);
    assert_eq!(
        all.iter().map(|e| e.at).collect::<Vec<_>>(),
        [5_000, 4_000, 3_000, 2_000, 1_000]
    );
    let refused = &all[2];
    assert!(refused.id > 0);
    assert_eq!(
        AuditEntry {
            id: 0,
            ..refused.clone()
        },
        entries[2],
        "stored as recorded"
    );
    // Paging: the total counts every match, not the page.
    assert_eq!(
        list(AuditFilter::default(), 1, 2).await,
        (vec![4_000, 3_000], 5)
    );
    assert_eq!(list(AuditFilter::default(), 4, 2).await, (vec![1_000], 5));
    assert_eq!(list(AuditFilter::default(), 10, 2).await, (vec![], 5));
    // Each filter, and together.
    let by_action = AuditFilter {
        action: Some("queue.pause".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        list(by_action.clone(), 0, 50).await,
        (vec![3_000, 1_000], 2)
    );
    let by_actor = AuditFilter {
        actor: Some("ada".into()),
        ..AuditFilter::default()
    };
    assert_eq!(list(by_actor, 0, 1).await, (vec![4_000], 2));
    let by_kind = AuditFilter {
        target_kind: Some("job".into()),
        ..AuditFilter::default()
    };
    assert_eq!(list(by_kind, 0, 50).await, (vec![2_000], 1));
    let by_outcome = AuditFilter {
        outcome: Some(Outcome::Refused),
        ..AuditFilter::default()
    };
    assert_eq!(list(by_outcome, 0, 50).await, (vec![3_000], 1));
    // A substring of the target, case-insensitive: a queue finds its jobs.
    let q = |text: &str| AuditFilter {
        q: Some(text.into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        list(q("emails"), 0, 50).await,
        (vec![5_000, 2_000, 1_000], 3)
    );
    // Wildcards are literal.
    assert_eq!(list(q("50%_"), 0, 50).await, (vec![4_000], 1));
    assert_eq!(list(q("%"), 0, 50).await, (vec![4_000], 1));
    assert_eq!(list(q("_"), 0, 50).await, (vec![4_000], 1));
    let both = AuditFilter {
        q: Some("EMAILS".into()),
        ..by_action
    };
    assert_eq!(list(both, 0, 50).await, (vec![1_000], 1));
    // Long and multi-line text is kept to one clipped line.
    let mut long = entry(
        6_000,
        "anonymous",
        "job.enqueue",
        "queue",
        "big",
        Outcome::Failed,
    );
    long.detail = Some(format!("line one\nline two {}", "x".repeat(2_000)));
    log.note(long).await;
    let (rows, _) = log.list(&AuditFilter::default(), 0, 1).await.expect("list");
    let detail = rows[0].detail.clone().expect("detail");
    assert!(detail.starts_with("line one line two x"), "{detail}");
    assert!(detail.chars().count() <= 501, "{}", detail.len());
}

#[tokio::test]
async fn the_store_records_filters_and_pages_on_each_database() {
    each_migrated_database(async |db| exercise_store(db).await).await;
}

/// The log's entries, newest first, through the API.
async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let response = app.get(&format!("/api/audit{query}")).await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["entries"]
        .as_array()
        .expect("entries")
        .clone()
}

/// The only entry of `action`; fails when there is none or more.
async fn only(app: &TestApp, action: &str) -> Value {
    let found = entries(app, &format!("?action={action}")).await;
    assert_eq!(found.len(), 1, "{action}: {found:?}");
    let e = found[0].clone();
    // The signed-in user (the helpers sign in as `admin`).
    assert_eq!(e["actor"], TEST_ADMIN, "{e}");
    assert_eq!(e["address"], "127.0.0.1", "{e}");
    e
}

fn assert_entry(e: &Value, kind: &str, target: &str, outcome: &str) {
    assert_eq!(
        (
            e["targetKind"].as_str(),
            e["target"].as_str(),
            e["outcome"].as_str()
        ),
        (Some(kind), Some(target), Some(outcome)),
        "{e}"
    );
}

#[tokio::test]
async fn queue_and_job_actions_leave_one_entry_each() {
    let app = TestApp::spawn().await;
    assert!(entries(&app, "").await.is_empty());
    app.complete_jobs("emails", 1).await;

    // Pausing with the page's button, then resuming through the API.
    let response = app
        .post_form("/queues/emails/pause", &[("back", "/queues/emails")])
        .await;
    assert_redirect(&response, "/queues/emails");
    let paused = only(&app, "queue.pause").await;
    assert_entry(&paused, "queue", "emails", "ok");
    assert!(paused["at"].as_i64().unwrap_or_default() > 0, "{paused}");
    assert_eq!(app.post("/api/queues/emails/resume").await.status, 200);
    assert_entry(&only(&app, "queue.resume").await, "queue", "emails", "ok");
    // The API pauses only queues that exist, as the form does.
    app.make_failed("reports", 1).await;
    assert_eq!(app.post("/api/queues/reports/pause").await.status, 200);
    assert_eq!(
        entries(&app, "?action=queue.pause&outcome=ok").await.len(),
        2
    );

    // An unknown queue's button is refused (404), with the reason.
    let ghost = app.post_form("/queues/ghost/pause", &[]).await;
    assert_eq!(ghost.status, 404);
    let refused = entries(&app, "?action=queue.pause&outcome=refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_entry(&refused[0], "queue", "ghost", "refused");
    assert!(
        refused[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("queue ghost not found")),
        "{}",
        refused[0]
    );

    // Enqueueing through the API: the queue, and the new job in the detail.
    let id = app.enqueue("emails", &json!({ "name": "welcome" })).await;
    let enqueued = only(&app, "job.enqueue").await;
    assert_entry(&enqueued, "queue", "emails", "ok");
    assert_eq!(enqueued["detail"], format!("job {id}"));

    // Retrying a failed job; a second retry finds it waiting: refused,
    // from the form (a notice) and from the API (409) alike.
    let failed = app.make_failed("emails", 1).await;
    let job = failed[0].to_string();
    let response = app
        .post_form(&format!("/queues/emails/jobs/{job}/retry"), &[])
        .await;
    assert_redirect(&response, "/queues/emails?state=failed");
    let retried = only(&app, "job.retry").await;
    assert_entry(&retried, "job", &format!("emails/{job}"), "ok");
    let again = app
        .post_form(&format!("/queues/emails/jobs/{job}/retry"), &[])
        .await;
    assert_eq!(again.status, 303);
    let api = app
        .post(&format!("/api/queues/emails/jobs/{job}/retry"))
        .await;
    assert_eq!(api.status, 409);
    let refused = entries(&app, "?action=job.retry&outcome=refused").await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    for e in &refused {
        assert_entry(e, "job", &format!("emails/{job}"), "refused");
        let detail = e["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("waiting"), "{e}");
    }

    // Retry all (API): the form's operation, recorded as it starts (the
    // count is in the answer and the run's progress).
    app.make_failed("emails", 2).await;
    let answer = app.post("/api/queues/emails/retry-failed").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["retried"], 2);
    let all = only(&app, "queue.retry_all").await;
    assert_entry(&all, "queue", "emails", "ok");
    assert_eq!(all["detail"], "started");
    // Retry selected (form): the count in the detail.
    let failed = app.make_failed("emails", 2).await;
    let ids: Vec<String> = failed.iter().map(ToString::to_string).collect();
    let response = app
        .post_form(
            "/queues/emails/retry-selected",
            &[("id", ids[0].as_str()), ("id", ids[1].as_str())],
        )
        .await;
    assert_eq!(response.status, 303);
    let selected = only(&app, "queue.retry_selected").await;
    assert_entry(&selected, "queue", "emails", "ok");
    assert!(
        selected["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Retried 2 jobs")),
        "{selected}"
    );
    app.stop().await;
}

#[tokio::test]
async fn unblocks_and_alert_actions_are_recorded() {
    let app = TestApp::spawn_with(|s: &mut Settings| {
        s.alerts.interval = Duration::from_millis(200);
    })
    .await;
    // An unblock: the policy and the key; the key may be any text.
    let key = "<script>alert(1)</script>";
    let response = app
        .post_form(
            "/ratelimits/unblock",
            &[("policy", "dashboard.pages"), ("key", key)],
        )
        .await;
    assert_eq!(response.status, 303, "{}", response.body);
    let unblocked = only(&app, "ratelimit.unblock").await;
    assert_entry(
        &unblocked,
        "ratelimit_key",
        &format!("dashboard.pages/{key}"),
        "ok",
    );
    let unknown = app
        .post_json("/api/ratelimits/nope/unblock", &json!({ "key": "k" }))
        .await;
    assert_eq!(unknown.status, 404);
    let refused = entries(&app, "?action=ratelimit.unblock&outcome=refused").await;
    assert_entry(&refused[0], "ratelimit_key", "nope/k", "refused");

    // A rule (created through the API) fires; acknowledging it is recorded
    // with the alert's fingerprint, and its rule in the detail.
    app.complete_jobs("billing", 1).await;
    eventually("the hub to see the queue", async || {
        app.app
            .state
            .hub
            .current()
            .queue("billing")
            .map(|_| ())
            .ok_or("not yet".to_owned())
    })
    .await;
    let saved = app
        .post_json(
            "/api/alerts/rules",
            &json!({
                "name": "billing-failures",
                "kind": "failure_rate",
                "target": "billing",
                "threshold": 20,
                "forSecs": 0,
            }),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_entry(
        &only(&app, "alert_rule.create").await,
        "alert_rule",
        "billing-failures",
        "ok",
    );
    app.make_failed("billing", 3).await;
    let fingerprint = eventually("the alert to fire", async || {
        let body = app.get("/api/alerts").await.json();
        body["active"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["rule"] == "billing-failures").cloned())
            .filter(|a| a["status"] == "firing")
            .and_then(|a| a["fingerprint"].as_str().map(str::to_owned))
            .ok_or_else(|| body["active"].to_string())
    })
    .await;
    let response = app
        .post_form(
            &format!("/alerts/{fingerprint}/ack"),
            &[("back", "/alerts")],
        )
        .await;
    assert_redirect(&response, "/alerts");
    let acked = only(&app, "alert.ack").await;
    assert_entry(&acked, "alert", &fingerprint, "ok");
    assert_eq!(acked["detail"], "rule billing-failures");
    let response = app
        .post_form(&format!("/alerts/{fingerprint}/silence"), &[("for", "1h")])
        .await;
    assert_eq!(response.status, 303);
    let silenced = only(&app, "alert.silence").await;
    assert_eq!(silenced["detail"], "rule billing-failures, for 1 h");
    let ghost = app.post("/api/alerts/nope/ack").await;
    assert_eq!(ghost.status, 404);
    let refused = entries(&app, "?action=alert.ack&outcome=refused").await;
    assert_entry(&refused[0], "alert", "nope", "refused");

    // Updating and deleting the rule through the API.
    let saved = app
        .post_json(
            "/api/alerts/rules",
            &json!({ "name": "billing-failures", "kind": "failure_rate", "threshold": 50 }),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_entry(
        &only(&app, "alert_rule.update").await,
        "alert_rule",
        "billing-failures",
        "ok",
    );
    let deleted = app.post("/api/alerts/rules/billing-failures/delete").await;
    assert_eq!(deleted.status, 200);
    assert_entry(
        &only(&app, "alert_rule.delete").await,
        "alert_rule",
        "billing-failures",
        "ok",
    );

    // The page shows the hostile key as text.
    let page = app.get("/audit?action=ratelimit.unblock").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.is_html());
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(
        page.body
            .contains("<code>dashboard.pages/&lt;script&gt;alert(1)&lt;/script&gt;</code>"),
        "{}",
        page.body
    );
    app.stop().await;
}

#[tokio::test]
async fn the_page_filters_pages_and_refuses_bad_filters() {
    let app = TestApp::spawn().await;
    let empty = app.get("/audit").await;
    assert_eq!(empty.status, 200);
    assert!(
        empty.body.contains(r#"data-test-id="audit-empty""#),
        "{}",
        empty.body
    );
    app.complete_jobs("emails", 1).await;
    for _ in 0..3 {
        assert_eq!(app.post("/api/queues/emails/pause").await.status, 200);
    }
    assert_eq!(app.post_form("/queues/ghost/resume", &[]).await.status, 404);

    let html = app.get("/audit").await.body;
    assert_eq!(
        html.matches(r#"data-test-id="audit-row""#).count(),
        4,
        "{html}"
    );
    assert!(html.contains("<code>127.0.0.1</code>"), "{html}");
    // Newest first: the refused resume is on top.
    let resume = html.find(r#"data-action="queue.resume""#).expect("resume");
    let pause = html.find(r#"data-action="queue.pause""#).expect("pause");
    assert!(resume < pause, "{html}");

    let html = app.get("/audit?outcome=refused").await.body;
    assert_eq!(
        html.matches(r#"data-test-id="audit-row""#).count(),
        1,
        "{html}"
    );
    assert!(
        html.contains(r#"<option value="refused" selected>"#),
        "{html}"
    );
    let html = app.get("/audit?target=GHO&actor=admin").await.body;
    assert_eq!(
        html.matches(r#"data-test-id="audit-row""#).count(),
        1,
        "{html}"
    );
    let html = app.get("/audit?actor=ada").await.body;
    assert!(html.contains("No entry matches these filters."), "{html}");

    // Paging keeps the filters.
    let html = app.get("/audit?action=queue.pause&limit=2").await.body;
    assert_eq!(
        html.matches(r#"data-test-id="audit-row""#).count(),
        2,
        "{html}"
    );
    assert!(html.contains("1–2 of 3"), "{html}");
    assert!(
        html.contains(r#"href="/audit?action=queue.pause&amp;offset=2&amp;limit=2" rel="next""#),
        "{html}"
    );
    let body = app
        .get("/api/audit?action=queue.pause&offset=2&limit=2")
        .await
        .json();
    assert_eq!(body["total"], 3);
    assert_eq!(body["entries"].as_array().map(Vec::len), Some(1));

    // Bad filters: 400 with the reason, HTML on the page, JSON in the API.
    for (query, reason) in [
        ("outcome=maybe", "unknown outcome"),
        ("limit=0", "between 1 and 500"),
        ("limit=501", "between 1 and 500"),
        ("offset=-3", "offset"),
        ("actor=a%07b", "control characters"),
        ("target=a%0Ab", "control characters"),
    ] {
        let page = app.get(&format!("/audit?{query}")).await;
        assert_eq!(page.status, 400, "{query}");
        assert!(page.is_html(), "{query}");
        assert!(page.body.contains(reason), "{query}: {}", page.body);
        let api = app.get(&format!("/api/audit?{query}")).await;
        assert_eq!(api.status, 400, "{query}");
        assert!(api.error().contains(reason), "{query}: {}", api.body);
    }
    app.stop().await;
}
