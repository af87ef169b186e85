//! The dashboard's buttons: HTML form posts that act, answer 303 back to
//! the page they came from, and carry a one-off notice in a cookie.

use serde_json::json;
use test_support::html::{attr, row, start_tag, text_of};

use crate::helpers::{TestApp, assert_redirect, eventually, notice_cookie, qn};

/// Follows an action's redirect with its notice cookie: the page must show
/// the notice once and clear the cookie. Returns the page.
async fn follow(app: &TestApp, location: &str, cookie: &str) -> String {
    let response = app.get_with_cookie(location, cookie).await;
    assert_eq!(response.status, 200, "{location}: {}", response.body);
    let cleared = response
        .set_cookie("switchyard_notice")
        .unwrap_or_else(|| panic!("the notice cookie is not cleared: {:?}", response.headers));
    assert!(cleared.starts_with("switchyard_notice=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(cleared.contains("Path=/"), "{cleared}");
    response.body
}

#[tokio::test]
async fn retrying_a_failed_job_comes_back_with_a_notice() {
    let app = TestApp::spawn().await;
    let id = app.make_failed("reports", 1).await.remove(0);
    let back = "/queues/reports?state=failed&limit=50";
    let response = app
        .post_form(
            &format!("/queues/reports/jobs/{id}/retry"),
            &[("back", back)],
        )
        .await;
    let cookie = assert_redirect(&response, back);
    let set = response.set_cookie("switchyard_notice").expect("cookie");
    for part in ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age="] {
        assert!(set.contains(part), "{part}: {set}");
    }
    let counts = app.counts("reports").await;
    assert_eq!((counts.failed, counts.waiting), (0, 1), "{counts:?}");
    assert_eq!(counts.retried_total, 1);
    let job = app
        .get(&format!("/api/queues/reports/jobs/{id}"))
        .await
        .json();
    assert_eq!(job["state"], "waiting");

    let html = follow(&app, back, &cookie).await;
    assert_eq!(
        text_of(&html, "notice"),
        format!("Job {id} was retried: it is waiting to run again.")
    );
    // The page the notice is shown on already has the new state.
    assert!(html.contains("No failed jobs."), "{html}");
    // Shown once: without the cookie, no notice.
    let html = app.get(back).await.body;
    assert!(!html.contains(r#"data-test-id="notice""#), "{html}");

    // A second click (a double submit, a colleague's retry) does nothing,
    // and says so instead of showing an error page.
    let response = app
        .post_form(
            &format!("/queues/reports/jobs/{id}/retry"),
            &[("back", back)],
        )
        .await;
    let cookie = assert_redirect(&response, back);
    let html = follow(&app, back, &cookie).await;
    let notice = text_of(&html, "notice");
    assert!(notice.starts_with("Nothing was done"), "{notice}");
    assert!(notice.contains("is waiting, not failed"), "{notice}");
    let counts = app.counts("reports").await;
    assert_eq!((counts.failed, counts.waiting), (0, 1), "{counts:?}");
    assert_eq!(counts.retried_total, 1, "retried once only");
    app.stop().await;
}

#[tokio::test]
async fn job_actions_without_a_back_field_return_to_the_state_they_act_on() {
    let app = TestApp::spawn().await;
    let id = app.make_failed("reports", 1).await.remove(0);
    let response = app
        .post_form(&format!("/queues/reports/jobs/{id}/retry"), &[])
        .await;
    assert_redirect(&response, "/queues/reports?state=failed");

    let delayed = app
        .enqueue(
            "emails",
            &json!({ "name": "later", "options": { "delayMs": 3600000 } }),
        )
        .await;
    let response = app
        .post_form(&format!("/queues/emails/jobs/{delayed}/promote"), &[])
        .await;
    assert_redirect(&response, "/queues/emails?state=delayed");
    app.stop().await;
}

#[tokio::test]
async fn removing_a_job_comes_back_with_a_notice() {
    let app = TestApp::spawn().await;
    let ids = app.make_failed("reports", 2).await;
    let back = "/queues/reports?state=failed";
    let path = format!("/queues/reports/jobs/{}/remove", ids[0]);
    let response = app.post_form(&path, &[("back", back)]).await;
    let cookie = assert_redirect(&response, back);
    let html = follow(&app, back, &cookie).await;
    assert_eq!(
        text_of(&html, "notice"),
        format!("Job {} was removed.", ids[0])
    );
    assert!(!html.contains(&format!("job-row-{}\"", ids[0])), "{html}");
    assert!(html.contains(&format!("job-row-{}\"", ids[1])), "{html}");
    assert_eq!(
        app.get(&format!("/api/queues/reports/jobs/{}", ids[0]))
            .await
            .status,
        404
    );
    assert_eq!(app.counts("reports").await.failed, 1);

    // Removing it again: a notice, not an error page.
    let response = app.post_form(&path, &[("back", back)]).await;
    let cookie = assert_redirect(&response, back);
    let html = follow(&app, back, &cookie).await;
    assert_eq!(
        text_of(&html, "notice"),
        format!("Nothing was done: job {} no longer exists.", ids[0])
    );
    assert_eq!(app.counts("reports").await.failed, 1);
    app.stop().await;
}

#[tokio::test]
async fn promoting_a_delayed_job_makes_it_wait_to_run() {
    let app = TestApp::spawn().await;
    let id = app
        .enqueue(
            "emails",
            &json!({ "name": "later", "options": { "delayMs": 3600000 } }),
        )
        .await;
    let back = format!("/queues/emails/jobs/{id}");
    let response = app
        .post_form(&format!("{back}/promote"), &[("back", &back)])
        .await;
    let cookie = assert_redirect(&response, &back);
    let counts = app.counts("emails").await;
    assert_eq!((counts.delayed, counts.waiting), (0, 1), "{counts:?}");
    let html = follow(&app, &back, &cookie).await;
    assert_eq!(text_of(&html, "notice"), format!("Job {id} will run now."));
    assert_eq!(text_of(&html, "job-state"), "waiting");

    let response = app
        .post_form(&format!("{back}/promote"), &[("back", &back)])
        .await;
    let cookie = assert_redirect(&response, &back);
    let html = follow(&app, &back, &cookie).await;
    assert!(
        text_of(&html, "notice").contains("is waiting, not delayed"),
        "{html}"
    );
    app.stop().await;
}

#[tokio::test]
async fn pause_and_resume_flip_the_queue_and_show_it() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;

    let back = "/queues/emails?state=waiting&limit=50";
    let response = app
        .post_form("/queues/emails/pause", &[("back", back)])
        .await;
    let cookie = assert_redirect(&response, back);
    assert!(app.counts("emails").await.paused);
    let html = follow(&app, back, &cookie).await;
    assert_eq!(
        text_of(&html, "notice"),
        "Queue emails is paused: workers take no new jobs until it is resumed."
    );
    assert!(html.contains(r#"data-test-id="paused-badge""#), "{html}");
    assert!(html.contains(r#"data-test-id="resume-queue""#), "{html}");
    assert!(html.contains(r#"action="/queues/emails/resume""#), "{html}");
    let queues = app.get("/queues").await.body;
    let emails = row(&queues, "queue-row-emails").expect("row");
    assert!(emails.contains("Paused"), "{emails}");
    assert!(
        emails.contains(r#"data-test-id="resume-queue""#),
        "{emails}"
    );

    let response = app
        .post_form("/queues/emails/resume", &[("back", back)])
        .await;
    let cookie = assert_redirect(&response, back);
    assert!(!app.counts("emails").await.paused);
    let html = follow(&app, back, &cookie).await;
    assert_eq!(text_of(&html, "notice"), "Queue emails is running again.");
    assert!(!html.contains(r#"data-test-id="paused-badge""#), "{html}");
    assert!(html.contains(r#"data-test-id="pause-queue""#), "{html}");
    let queues = app.get("/queues").await.body;
    let emails = row(&queues, "queue-row-emails").expect("row");
    assert!(emails.contains("Running"), "{emails}");

    // Without a back field, the queue's own page.
    let response = app.post_form("/queues/emails/pause", &[]).await;
    assert_redirect(&response, "/queues/emails");
    app.stop().await;
}

/// The queues table's Pause/Resume buttons come back to `/queues`: the
/// notice must be shown (and cleared) there, not linger in its cookie and
/// pop up on whatever queue page is opened next.
#[tokio::test]
async fn a_notice_for_the_queues_page_is_shown_there_once() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    let html = app.get("/queues").await.body;
    assert!(start_tag(&html, "pause-queue").is_some(), "{html}");
    assert!(
        html.contains(r#"name="back" value="/queues""#),
        "the table's forms come back here: {html}"
    );

    let response = app
        .post_form("/queues/emails/pause", &[("back", "/queues")])
        .await;
    let cookie = assert_redirect(&response, "/queues");
    let html = follow(&app, "/queues", &cookie).await;
    assert_eq!(
        text_of(&html, "notice"),
        "Queue emails is paused: workers take no new jobs until it is resumed."
    );
    app.stop().await;
}

#[tokio::test]
async fn retry_selected_retries_each_ticked_job_once() {
    let app = TestApp::spawn().await;
    let ids = app.make_failed("reports", 5).await;
    // Already retried by someone else, and removed by someone else.
    assert_eq!(
        app.post(&format!("/api/queues/reports/jobs/{}/retry", ids[2]))
            .await
            .status,
        200
    );
    assert_eq!(
        app.post(&format!("/api/queues/reports/jobs/{}/remove", ids[3]))
            .await
            .status,
        200
    );
    let back = "/queues/reports?state=failed&limit=50";
    let fields = [
        ("back", back),
        ("id", ids[0].as_str()),
        ("id", ids[1].as_str()),
        ("id", ids[2].as_str()),
        ("id", ids[3].as_str()),
    ];
    let response = app
        .post_form("/queues/reports/retry-selected", &fields)
        .await;
    let cookie = assert_redirect(&response, back);
    let counts = app.counts("reports").await;
    assert_eq!(
        counts.failed, 1,
        "only the unticked job is left: {counts:?}"
    );
    assert_eq!(counts.waiting, 3, "{counts:?}");
    assert_eq!(counts.retried_total, 3, "{counts:?}");
    let html = follow(&app, back, &cookie).await;
    assert_eq!(
        text_of(&html, "notice"),
        "Retried 2 jobs. 2 were no longer failed and left as they were."
    );
    assert!(html.contains(&format!("job-row-{}\"", ids[4])), "{html}");

    // The same form submitted again retries nothing more.
    let response = app
        .post_form("/queues/reports/retry-selected", &fields)
        .await;
    let cookie = assert_redirect(&response, back);
    let html = follow(&app, back, &cookie).await;
    assert_eq!(
        text_of(&html, "notice"),
        "Retried 0 jobs. 4 were no longer failed and left as they were."
    );
    assert_eq!(app.counts("reports").await.retried_total, 3);

    // One job: singular.
    let response = app
        .post_form(
            "/queues/reports/retry-selected",
            &[("back", back), ("id", ids[4].as_str())],
        )
        .await;
    let cookie = assert_redirect(&response, back);
    let html = follow(&app, back, &cookie).await;
    assert_eq!(text_of(&html, "notice"), "Retried 1 job.");
    app.stop().await;
}

#[tokio::test]
async fn retry_selected_with_nothing_ticked_says_so() {
    let app = TestApp::spawn().await;
    app.make_failed("reports", 1).await;
    let back = "/queues/reports?state=failed";
    let response = app
        .post_form("/queues/reports/retry-selected", &[("back", back)])
        .await;
    let cookie = assert_redirect(&response, back);
    let html = follow(&app, back, &cookie).await;
    assert_eq!(text_of(&html, "notice"), "Select the jobs to retry first.");
    assert_eq!(app.counts("reports").await.failed, 1);
    app.stop().await;
}

#[tokio::test]
async fn retry_selected_refuses_too_many_or_invalid_ids() {
    let app = TestApp::spawn().await;
    let ids = app.make_failed("reports", 1).await;
    let many: Vec<String> = (0..501).map(|i| format!("{}", i + 1)).collect();
    let mut fields = vec![("back", "/queues/reports?state=failed")];
    fields.extend(many.iter().map(|id| ("id", id.as_str())));
    let response = app
        .post_form("/queues/reports/retry-selected", &fields)
        .await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.is_html());
    let message = text_of(&response.body, "error-message");
    assert!(
        message.contains("at most 500 jobs can be retried at once (got 501)"),
        "{message}"
    );
    assert_eq!(app.counts("reports").await.failed, 1, "nothing retried");

    let response = app
        .post_form(
            "/queues/reports/retry-selected",
            &[("id", ids[0].as_str()), ("id", "not valid")],
        )
        .await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.is_html());
    assert!(
        text_of(&response.body, "error-message").contains("invalid job id"),
        "{}",
        response.body
    );
    assert_eq!(
        app.counts("reports").await.failed,
        1,
        "a bad id stops the whole selection before anything is retried"
    );
    app.stop().await;
}

#[tokio::test]
async fn retry_all_runs_in_the_background_and_retries_each_job_once() {
    let app = TestApp::spawn().await;
    // More than two batches of 500.
    const FAILED: u64 = 1_200;
    app.make_failed("bulk", FAILED as usize).await;
    let back = "/queues/bulk?state=failed";

    // Several clicks in quick succession (double submits, two operators).
    let fields = [("back", back)];
    let clicks = futures_util::future::join_all(
        (0..4).map(|_| app.post_form("/queues/bulk/retry-failed", &fields)),
    )
    .await;
    let mut notices = Vec::new();
    for response in &clicks {
        let cookie = assert_redirect(response, back);
        let html = follow(&app, back, &cookie).await;
        notices.push(text_of(&html, "notice"));
    }
    for notice in &notices {
        assert!(
            notice == "Retrying all failed jobs; progress shows below."
                || notice == "A retry of all failed jobs is already running on this queue.",
            "{notice}"
        );
    }
    assert!(
        notices.iter().any(|n| n.starts_with("Retrying all")),
        "{notices:?}"
    );

    // The page shows the run's progress until it ends.
    let progress = eventually("the retry-all run finishes", async || {
        let html = app.get(back).await.body;
        match start_tag(&html, "retry-progress") {
            Some(tag) if attr(tag, "data-finished") == Some("true") => Ok(tag.to_string()),
            Some(tag) => Err(tag.to_string()),
            None => Err(html),
        }
    })
    .await;
    assert!(attr(&progress, "data-done").is_some(), "{progress}");

    let counts = app.counts("bulk").await;
    assert_eq!(counts.failed, 0, "{counts:?}");
    assert_eq!(counts.waiting, FAILED, "{counts:?}");
    assert_eq!(
        counts.retried_total, FAILED,
        "every failed job retried exactly once: {counts:?}"
    );
    // When only one run started, it covered every job and says so.
    if notices
        .iter()
        .filter(|n| n.starts_with("Retrying all"))
        .count()
        == 1
    {
        assert_eq!(attr(&progress, "data-done"), Some("1200"), "{progress}");
        assert_eq!(attr(&progress, "data-total"), Some("1200"), "{progress}");
        let html = app.get(back).await.body;
        assert!(html.contains("Retried 1,200 failed jobs."), "{html}");
    }
    let hub = app.app.state.hub.progress(&qn("bulk")).expect("a run");
    assert!(hub.finished, "{hub:?}");
    assert_eq!(hub.error, None);

    // Clicking after it ended starts a new (empty) run: nothing to retry.
    let response = app
        .post_form("/queues/bulk/retry-failed", &[("back", back)])
        .await;
    let cookie = assert_redirect(&response, back);
    let html = follow(&app, back, &cookie).await;
    assert_eq!(
        text_of(&html, "notice"),
        "Retrying all failed jobs; progress shows below."
    );
    eventually("the empty run finishes", async || {
        match app.app.state.hub.progress(&qn("bulk")) {
            Some(p) if p.finished => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(app.counts("bulk").await.retried_total, FAILED);
    app.stop().await;
}

#[tokio::test]
async fn actions_never_redirect_to_another_site() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    for evil in [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
        "/queues\r\nSet-Cookie: x=1",
        "",
    ] {
        let response = app
            .post_form("/queues/emails/pause", &[("back", evil)])
            .await;
        assert_redirect(&response, "/queues/emails");
        assert!(response.set_cookie("x").is_none(), "{:?}", response.headers);
        let response = app
            .post_form("/queues/emails/resume", &[("back", evil)])
            .await;
        assert_redirect(&response, "/queues/emails");
    }
    app.stop().await;
}

#[tokio::test]
async fn actions_on_an_unknown_queue_are_404_pages() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    for path in [
        "/queues/nope/retry-failed",
        "/queues/nope/retry-selected",
        "/queues/nope/pause",
        "/queues/nope/resume",
    ] {
        let response = app
            .post_form(path, &[("back", "/queues"), ("id", "1")])
            .await;
        assert_eq!(response.status, 404, "{path}: {}", response.body);
        assert!(response.is_html(), "{path}");
        assert_eq!(
            text_of(&response.body, "error-message"),
            "queue nope not found",
            "{path}"
        );
    }
    // Pausing a queue that does not exist must not create it.
    let queues = app.get("/api/queues").await.json();
    assert_eq!(
        queues["queues"].as_array().map(Vec::len),
        Some(1),
        "{queues}"
    );
    app.stop().await;
}

#[tokio::test]
async fn job_actions_on_an_unknown_queue_are_404_pages() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    for verb in ["retry", "remove", "promote"] {
        let path = format!("/queues/nope/jobs/1/{verb}");
        let response = app.post_form(&path, &[("back", "/queues")]).await;
        assert_eq!(response.status, 404, "{path}: {}", response.body);
        assert!(response.is_html(), "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn actions_take_form_bodies_only() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    let response = app
        .post_json("/queues/emails/pause", &json!({ "back": "/queues" }))
        .await;
    assert_eq!(response.status, 415, "{}", response.body);
    assert!(response.is_html());
    assert!(
        text_of(&response.body, "error-message").contains("application/x-www-form-urlencoded"),
        "{}",
        response.body
    );
    let response = app.post("/queues/emails/pause").await;
    assert!(
        matches!(response.status, 400 | 415),
        "no content type: {} {}",
        response.status,
        response.body
    );
    assert!(!app.counts("emails").await.paused, "nothing was paused");

    // And POST only.
    let response = app.get("/queues/emails/pause").await;
    assert_eq!(response.status, 405, "{}", response.body);
    assert!(response.is_html());
    app.stop().await;
}

#[tokio::test]
async fn a_notice_cookie_is_shown_as_text_and_bad_ones_are_ignored() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    let response = app
        .get_with_cookie(
            "/queues/emails",
            "other=1; switchyard_notice=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        !response.body.contains("<script>alert"),
        "{}",
        response.body
    );
    assert_eq!(
        text_of(&response.body, "notice"),
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    );
    let response = app
        .get_with_cookie("/queues/emails", "switchyard_notice=%zz")
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        !response.body.contains(r#"data-test-id="notice""#),
        "{}",
        response.body
    );
    // A notice set by an action round-trips with its punctuation.
    let response = app
        .post_form("/queues/emails/pause", &[("back", "/queues/emails")])
        .await;
    let cookie = notice_cookie(&response);
    let html = follow(&app, "/queues/emails", &cookie).await;
    assert_eq!(
        text_of(&html, "notice"),
        "Queue emails is paused: workers take no new jobs until it is resumed."
    );
    app.stop().await;
}
