use std::time::Duration;

use coord::queue::QueueName;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn enqueue_answers_201_with_the_id_and_the_job_is_listed() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json(
            "/api/queues/emails/jobs",
            &json!({ "name": "welcome", "data": { "to": "a@example.com" } }),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.body);
    let id = response.json()["id"].as_str().expect("id").to_string();
    assert_eq!(
        response.header("location"),
        Some(format!("/api/queues/emails/jobs/{id}").as_str())
    );

    let job = app.get(&format!("/api/queues/emails/jobs/{id}")).await;
    assert_eq!(job.status, 200);
    let job = job.json();
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["name"], "welcome");
    assert_eq!(job["data"], json!({ "to": "a@example.com" }));
    assert_eq!(job["state"], "waiting");
    assert_eq!(job["options"]["attempts"], 3);
    assert!(
        job.get("leaseToken").is_none(),
        "lease tokens stay private: {job}"
    );

    let page = app.get("/api/queues/emails/jobs?state=waiting").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.json();
    assert_eq!(page["state"], "waiting");
    assert_eq!(page["total"], 1);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["limit"], 50);
    assert_eq!(page["jobs"][0]["id"], id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn enqueue_accepts_the_documented_backoff_shape() {
    let app = TestApp::spawn().await;
    for backoff in [
        json!({ "type": "exponential", "delayMs": 1000, "jitter": 0.2 }),
        json!({ "type": "fixed", "delayMs": 500 }),
    ] {
        let response = app
            .post_json(
                "/api/queues/emails/jobs",
                &json!({ "name": "x", "options": { "backoff": backoff } }),
            )
            .await;
        assert_eq!(response.status, 201, "{backoff}: {}", response.body);
        let id = response.json()["id"].as_str().expect("id").to_string();
        let job = app
            .get(&format!("/api/queues/emails/jobs/{id}"))
            .await
            .json();
        assert_eq!(job["options"]["backoff"], backoff);
    }
    app.stop().await;
}

#[tokio::test]
async fn enqueue_honours_the_options() {
    let app = TestApp::spawn().await;
    let body = json!({
        "name": "digest",
        "data": null,
        "options": {
            "priority": 7,
            "delayMs": 60000,
            "attempts": 5,
            "timeoutMs": null,
            "jobId": "digest-2026-11-23"
        }
    });
    let id = app.enqueue("emails", &body).await;
    assert_eq!(id, "digest-2026-11-23");
    // The same job id again keeps the first job.
    assert_eq!(app.enqueue("emails", &body).await, id);

    let job = app
        .get(&format!("/api/queues/emails/jobs/{id}"))
        .await
        .json();
    assert_eq!(job["state"], "delayed");
    assert_eq!(job["options"]["priority"], 7);
    assert_eq!(job["options"]["attempts"], 5);
    assert_eq!(app.get("/api/queues/emails").await.json()["delayed"], 1);
    app.stop().await;
}

#[tokio::test]
async fn malformed_enqueue_bodies_are_400s_with_the_reason() {
    let app = TestApp::spawn().await;
    let cases: [(&[u8], &str); 5] = [
        (b"{\"name\": ", "EOF"),
        (b"not json at all", "expected"),
        (b"{\"data\": {}}", "missing field `name`"),
        (
            b"{\"name\": \"x\", \"option\": {}}",
            "unknown field `option`",
        ),
        (
            b"{\"name\": \"x\", \"options\": {\"priority\": -1}}",
            "priority",
        ),
    ];
    for (body, reason) in cases {
        let response = app
            .post_raw("/api/queues/emails/jobs", "application/json", body)
            .await;
        let shown = String::from_utf8_lossy(body);
        assert_eq!(response.status, 400, "{shown}: {}", response.body);
        assert!(response.is_json(), "{shown}");
        assert!(
            response.error().contains(reason),
            "{shown}: {}",
            response.body
        );
    }
    assert_eq!(app.get("/api/queues").await.json()["queues"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn invalid_options_are_400s_with_the_reason() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json(
            "/api/queues/emails/jobs",
            &json!({ "name": "x", "options": { "delayMs": -5 } }),
        )
        .await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(
        response.error().contains("delay must not be negative"),
        "{}",
        response.body
    );

    let response = app
        .post_json(
            "/api/queues/emails/jobs",
            &json!({ "name": "x", "options": { "attempts": 0 } }),
        )
        .await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.error().contains("attempts"), "{}", response.body);

    let response = app
        .post_json("/api/queues/emails/jobs", &json!({ "name": "" }))
        .await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.error().contains("job name"), "{}", response.body);
    app.stop().await;
}

#[tokio::test]
async fn a_delay_over_ten_years_is_a_400() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json(
            "/api/queues/emails/jobs",
            &json!({ "name": "x", "options": { "delayMs": 9_223_372_036_854_775_807_i64 } }),
        )
        .await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(
        response
            .error()
            .contains("delayMs must be at most 315360000000 (10 years)"),
        "{}",
        response.body
    );
    let ten_years = app
        .post_json(
            "/api/queues/emails/jobs",
            &json!({ "name": "x", "options": { "delayMs": 315_360_000_000_i64 } }),
        )
        .await;
    assert_eq!(ten_years.status, 201, "{}", ten_years.body);
    assert_eq!(
        app.get("/api/queues/emails").await.json()["delayed"],
        1,
        "only the ten-year job was added"
    );
    app.stop().await;
}

#[tokio::test]
async fn enqueue_needs_a_json_content_type() {
    let app = TestApp::spawn().await;
    let response = app
        .post_raw("/api/queues/emails/jobs", "text/plain", br#"{"name":"x"}"#)
        .await;
    assert_eq!(response.status, 415, "{}", response.body);
    assert!(
        response.error().contains("application/json"),
        "{}",
        response.body
    );
    app.stop().await;
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_refused() {
    let app = TestApp::spawn().await;
    let big = format!(r#"{{"name":"x","data":"{}"}}"#, "a".repeat(1024 * 1024 + 1));
    let response = app
        .post_raw(
            "/api/queues/emails/jobs",
            "application/json",
            big.as_bytes(),
        )
        .await;
    assert_eq!(response.status, 413, "{}", response.body);
    assert!(response.is_json(), "{:?}", response.headers);
    app.stop().await;
}

#[tokio::test]
async fn listing_validates_state_offset_and_limit() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    let cases = [
        ("", "state parameter is required"),
        ("?state=dead", "unknown state \\\"dead\\\""),
        ("?state=failed&limit=501", "between 1 and 500"),
        ("?state=failed&limit=0", "between 1 and 500"),
        ("?state=failed&limit=ten", "between 1 and 500"),
        (
            "?state=failed&offset=-1",
            "offset must be a non-negative integer",
        ),
    ];
    for (query, reason) in cases {
        let response = app.get(&format!("/api/queues/emails/jobs{query}")).await;
        assert_eq!(response.status, 400, "{query}: {}", response.body);
        assert!(response.body.contains(reason), "{query}: {}", response.body);
    }
    let response = app
        .get("/api/queues/emails/jobs?state=failed&limit=500")
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    app.stop().await;
}

#[tokio::test]
async fn listing_pages_through_jobs_newest_first() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.enqueue("emails", &json!({ "name": format!("job-{i}") }))
            .await;
    }
    let page = app
        .get("/api/queues/emails/jobs?state=waiting&offset=1&limit=2")
        .await
        .json();
    assert_eq!(page["total"], 5);
    assert_eq!(page["jobs"].as_array().map(Vec::len), Some(2));
    app.stop().await;
}

#[tokio::test]
async fn listing_an_unknown_queue_is_a_404() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/queues/nope/jobs?state=waiting").await;
    assert_eq!(response.status, 404, "{}", response.body);
    assert!(response.error().contains("not found"));
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_job_is_a_404_and_a_bad_id_a_400() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    let response = app.get("/api/queues/emails/jobs/999").await;
    assert_eq!(response.status, 404, "{}", response.body);
    assert_eq!(response.error(), "job 999 not found in queue emails");

    let response = app.get("/api/queues/emails/jobs/bad%20id").await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(
        response.error().contains("invalid job id"),
        "{}",
        response.body
    );
    app.stop().await;
}

#[tokio::test]
async fn retrying_a_job_that_has_not_failed_is_a_409() {
    let app = TestApp::spawn().await;
    let id = app.enqueue("emails", &json!({ "name": "a" })).await;
    let response = app
        .post(&format!("/api/queues/emails/jobs/{id}/retry"))
        .await;
    assert_eq!(response.status, 409, "{}", response.body);
    assert!(response.error().contains("not failed"), "{}", response.body);
    app.stop().await;
}

#[tokio::test]
async fn retrying_a_failed_job_puts_it_back_to_waiting() {
    let app = TestApp::spawn().await;
    let ids = app.make_failed("reports", 1).await;
    let path = format!("/api/queues/reports/jobs/{}", ids[0]);
    let job = app.get(&path).await.json();
    assert_eq!(job["state"], "failed");
    assert_eq!(job["failedReason"], "upstream said no");

    let response = app.post(&format!("{path}/retry")).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["state"], "waiting");
    assert_eq!(app.get(&path).await.json()["state"], "waiting");
    // A second click retries nothing.
    assert_eq!(app.post(&format!("{path}/retry")).await.status, 409);
    app.stop().await;
}

#[tokio::test]
async fn promoting_runs_a_delayed_job_now() {
    let app = TestApp::spawn().await;
    let id = app
        .enqueue(
            "emails",
            &json!({ "name": "later", "options": { "delayMs": 3600000 } }),
        )
        .await;
    let path = format!("/api/queues/emails/jobs/{id}");
    let response = app.post(&format!("{path}/promote")).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(app.get(&path).await.json()["state"], "waiting");
    let response = app.post(&format!("{path}/promote")).await;
    assert_eq!(response.status, 409, "{}", response.body);
    assert!(
        response.error().contains("not delayed"),
        "{}",
        response.body
    );
    app.stop().await;
}

#[tokio::test]
async fn removing_deletes_the_job_but_never_an_active_one() {
    let app = TestApp::spawn().await;
    let id = app.enqueue("emails", &json!({ "name": "a" })).await;
    let path = format!("/api/queues/emails/jobs/{id}");
    let response = app.post(&format!("{path}/remove")).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["removed"], true);
    assert_eq!(app.get(&path).await.status, 404);
    assert_eq!(app.post(&format!("{path}/remove")).await.status, 404);

    // A job a worker holds cannot be removed.
    let id = app.enqueue("emails", &json!({ "name": "b" })).await;
    let queue = QueueName::new("emails").expect("valid");
    let claimed = app
        .queues()
        .backend()
        .step(&queue, Vec::new(), 1, Duration::from_secs(30))
        .await
        .expect("claim")
        .claimed;
    assert_eq!(claimed.len(), 1);
    let response = app
        .post(&format!("/api/queues/emails/jobs/{id}/remove"))
        .await;
    assert_eq!(response.status, 409, "{}", response.body);
    assert!(response.error().contains("active"), "{}", response.body);
    app.stop().await;
}

/// Jobs of about a megabyte each, enqueued straight through `coord` (the
/// API's body limit would refuse them).
async fn megabyte_jobs(app: &TestApp, queue: &str, n: usize) {
    let blob = "x".repeat(1 << 20);
    let jobs = (0..n)
        .map(|i| coord::queue::NewJob::new("big", json!({ "i": i, "blob": blob })))
        .collect();
    app.queues()
        .enqueue_bulk(&QueueName::new(queue).expect("name"), jobs)
        .await
        .expect("enqueue");
}

#[tokio::test]
async fn listings_of_megabyte_jobs_carry_kilobytes_and_link_the_whole_job() {
    let app = TestApp::spawn_with(|s| s.listing_value_bytes = 1_000).await;
    megabyte_jobs(&app, "bigq", 30).await;

    let response = app
        .get("/api/queues/bigq/jobs?state=waiting&limit=500")
        .await;
    assert_eq!(response.status, 200);
    // 30 jobs of a megabyte each: about a kilobyte of data each instead.
    assert!(
        response.body.len() < 30 * 3_000,
        "{} bytes",
        response.body.len()
    );
    let body = response.json();
    let job = &body["jobs"][0];
    // The newest first: job 29, whose JSON text is the blob and `"i":29`.
    assert_eq!(
        job["clipped"],
        json!([{ "field": "data", "bytes": (1 << 20) + r#"{"blob":"","i":29}"#.len() }])
    );
    assert_eq!(job["data"], json!(null), "left out");
    assert_eq!(job["name"], "big");
    let url = job["url"].as_str().expect("a link to the whole job");
    let whole = app.get(url).await.json();
    assert_eq!(whole["data"]["blob"].as_str().map(str::len), Some(1 << 20));
    assert!(whole.get("clipped").is_none(), "the job itself is whole");

    let page = app.get("/queues/bigq").await;
    assert_eq!(page.status, 200);
    assert!(page.body.len() < 200_000, "{} bytes", page.body.len());
    assert!(
        page.body.contains("truncated: data 1.0 MB — open the job"),
        "{}",
        page.body
    );
    app.stop().await;
}

#[tokio::test]
async fn a_job_larger_than_a_page_shows_is_shown_without_its_big_value() {
    let app = TestApp::spawn().await;
    let blob = "y".repeat(5 << 20);
    let id = app
        .queues()
        .enqueue(
            &QueueName::new("huge").expect("name"),
            coord::queue::NewJob::new("huge", json!({ "blob": blob })),
        )
        .await
        .expect("enqueue");
    let response = app.get(&format!("/api/queues/huge/jobs/{id}")).await;
    assert_eq!(response.status, 200);
    assert!(
        response.body.len() < 10_000,
        "{} bytes",
        response.body.len()
    );
    let job = response.json();
    assert_eq!(job["data"], json!(null));
    assert_eq!(job["name"], "huge");
    assert_eq!(job["clipped"][0]["field"], "data");
    assert_eq!(
        job["clipped"][0]["bytes"],
        (5 << 20) + r#"{"blob":""}"#.len()
    );

    let page = app.get(&format!("/queues/huge/jobs/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.len() < 100_000, "{} bytes", page.body.len());
    assert!(
        page.body.contains(
            "Not shown: data 5.0 MB, more than the 4.0 MB per value a job page or the API shows."
        ),
        "{}",
        page.body
    );
    // Finding it by id does not read it either, and still finds it.
    let found = app.get(&format!("/queues/huge/find?id={id}")).await;
    assert_eq!(found.status, 303);
    app.stop().await;
}
