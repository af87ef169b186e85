//! `/search` and `/api/search`: a job id found in every queue that has
//! it, text search with qualifiers across queues (the embedded backend's
//! index, filled by the server's indexer), and clear errors.

use coord::queue::NewJob;
use serde_json::{Value, json};
use test_support::html::{element, text_of};

use crate::helpers::{TestApp, eventually, qn};

/// Waits until the server's indexer has caught up, then searches.
async fn search(app: &TestApp, q: &str) -> Value {
    let path = format!("/api/search?q={}", urlencoding(q));
    eventually("the index to catch up", async || {
        let response = app.get(&path).await;
        if response.status != 200 {
            return Err(format!("{}: {}", response.status, response.body));
        }
        let body = response.json();
        if body["unindexed"] == 0 {
            Ok(body)
        } else {
            Err(format!("{body}"))
        }
    })
    .await
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn hits(body: &Value) -> Vec<(String, String)> {
    body["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            (
                h["queue"].as_str().expect("queue").to_owned(),
                h["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_api_finds_ids_in_every_queue_and_jobs_by_data_name_and_error() {
    let app = TestApp::spawn().await;
    let welcome = app
        .queues()
        .enqueue(
            &qn("emails"),
            NewJob::new(
                "send-welcome",
                json!({ "to": "ada@example.com", "plan": "pro" }),
            ),
        )
        .await
        .expect("enqueue");
    let hook = app
        .queues()
        .enqueue(
            &qn("webhooks"),
            NewJob::new(
                "deliver",
                json!({ "to": "https://crm.example.org", "plan": "free" }),
            ),
        )
        .await
        .expect("enqueue");
    let failed = app.make_failed("reports", 1).await.remove(0);

    // An id: every queue that has it, with its state there.
    let body = search(&app, welcome.as_str()).await;
    let found: Vec<(String, String)> = body["job"]["foundIn"]
        .as_array()
        .expect("foundIn")
        .iter()
        .map(|f| {
            (
                f["queue"].as_str().unwrap().to_owned(),
                f["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        found.contains(&("emails".to_owned(), "waiting".to_owned())),
        "{body}"
    );
    assert!(
        found.contains(&("webhooks".to_owned(), "waiting".to_owned())),
        "{body}"
    );
    let body = search(&app, "no-such-job-id").await;
    assert_eq!(body["job"]["foundIn"], json!([]), "{body}");

    // Text with qualifiers, across queues.
    let body = search(&app, "data.plan:pro").await;
    assert_eq!(
        hits(&body),
        vec![("emails".to_owned(), welcome.to_string())],
        "{body}"
    );
    assert_eq!(body["complete"], true, "{body}");
    assert!(
        body["searched"].as_str().unwrap().contains("text index"),
        "{body}"
    );
    let body = search(&app, "example queue:webhooks").await;
    assert_eq!(
        hits(&body),
        vec![("webhooks".to_owned(), hook.to_string())],
        "{body}"
    );
    let body = search(&app, "error:\"said no\" state:failed").await;
    assert_eq!(
        hits(&body),
        vec![("reports".to_owned(), failed.to_string())],
        "{body}"
    );
    assert_eq!(body["hits"][0]["failedReason"], "upstream said no");
    assert_eq!(body["job"], Value::Null, "qualifiers are not an id");
    app.stop().await;
}

#[tokio::test]
async fn bad_searches_are_400s_with_the_reason() {
    let app = TestApp::spawn().await;
    for (q, why) in [
        ("colour%3Ared", "unknown qualifier"),
        ("state%3Asleeping", "unknown state"),
        ("", "type a job id"),
    ] {
        let response = app.get(&format!("/api/search?q={q}")).await;
        assert_eq!(response.status, 400, "{q}: {}", response.body);
        assert!(response.body.contains(why), "{q}: {}", response.body);
    }
    let response = app.get("/api/search").await;
    assert_eq!(response.status, 400, "{}", response.body);
    // An id that reads like a qualifier is found where it exists.
    app.queues()
        .enqueue(
            &qn("orders"),
            NewJob::new("x", json!({})).with_options(coord::queue::JobOptions {
                job_id: Some(coord::queue::JobId::new("order:12").expect("id")),
                ..Default::default()
            }),
        )
        .await
        .expect("enqueue");
    let body = app.get("/api/search?q=order%3A12").await.json();
    assert_eq!(body["job"]["foundIn"][0]["queue"], "orders", "{body}");
    // The page says why above the form, keeping what was typed.
    let response = app.get("/search?q=colour%3Ared").await;
    assert_eq!(response.status, 400);
    assert!(text_of(&response.body, "search-error").contains("unknown qualifier"));
    assert!(
        response.body.contains(r#"value="colour:red""#),
        "{}",
        response.body
    );
    app.stop().await;
}

#[tokio::test]
async fn the_page_lists_hits_and_says_where_an_id_is_and_every_page_has_the_box() {
    let app = TestApp::spawn().await;
    let id = app
        .queues()
        .enqueue(
            &qn("emails"),
            NewJob::new("send <b>welcome</b>", json!({ "n": "zebracorn" })),
        )
        .await
        .expect("enqueue");
    search(&app, "zebracorn").await;
    let response = app.get("/search?q=zebracorn").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let table = element(&response.body, "search-hits");
    assert!(
        table.contains(&format!(r#"href="/queues/emails/jobs/{id}""#)),
        "{table}"
    );
    assert!(table.contains("send &lt;b&gt;welcome&lt;/b&gt;"), "{table}");
    assert!(text_of(&response.body, "search-scope").starts_with("Searched the text index"));

    let response = app.get(&format!("/search?q={id}")).await;
    assert!(
        text_of(&response.body, "found-in").contains(&format!("Job {id} found in 1 queue")),
        "{}",
        response.body
    );
    let response = app.get("/search?q=nothing-has-this-id").await;
    assert_eq!(
        text_of(&response.body, "found-in"),
        "No queue has job nothing-has-this-id."
    );
    let response = app.get("/search").await;
    assert_eq!(response.status, 200);
    assert!(response.body.contains(r#"data-test-id="search-empty""#));

    // Every page of the dashboard carries the box.
    for page in ["/", "/queues", "/errors", "/queues/emails"] {
        let body = app.get(page).await.body;
        assert!(body.contains(r#"data-test-id="header-search""#), "{page}");
    }
    app.stop().await;
}
