//! BullMQ flows through the dashboard, against real BullMQ 5: a parent and
//! children added by Node's `FlowProducer` (`end2end/bullmq/flow.mjs`),
//! children run by a real worker (`worker.mjs`), and what the job page, the
//! `waiting-children` tab and the JSON API say of them.

use serde_json::{Value, json};
use test_support::redis::REDIS_URL;

use crate::bullnode::{run, spawn_watching, work};
use crate::helpers::RedisKeys;

#[tokio::test]
async fn a_bullmq_flow_shows_on_job_pages_the_waiting_children_tab_and_the_api() {
    let prefix = format!("sy-bflow-{:08x}", rand::random::<u32>());
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let app = spawn_watching(&prefix).await;
    let tree = run(
        "flow.mjs",
        &[
            REDIS_URL,
            &prefix,
            "add",
            &json!({
                "name": "report",
                "queueName": "reports",
                "children": [
                    { "name": "send", "queueName": "mail" },
                    { "name": "send", "queueName": "mail" },
                    { "name": "resize", "queueName": "thumbs" },
                ],
            })
            .to_string(),
        ],
    )
    .await;
    let parent = tree["id"].as_str().expect("parent id").to_owned();
    let thumb = tree["children"][2]["id"]
        .as_str()
        .expect("child id")
        .to_owned();

    // The parent's tab: how many children each parent waits for.
    let tab = app.get("/bullmq/reports?state=waiting-children").await;
    assert_eq!(tab.status, 200, "{}", tab.body);
    assert!(tab.body.contains(">Children</th>"), "{}", tab.body);
    assert!(
        tab.body
            .contains(r#"data-test-id="children">3 of 3 children pending</td>"#),
        "{}",
        tab.body
    );
    let api = app
        .get("/api/bullmq/reports/jobs?state=waiting-children")
        .await
        .json();
    assert_eq!(
        api["jobs"][0]["dependencies"],
        json!({ "pending": 3, "processed": 0, "failed": 0, "ignored": 0 }),
        "{api}"
    );

    // A real worker runs mail's two children.
    work(&prefix, "mail", 2).await;
    let tab = app.get("/bullmq/reports?state=waiting-children").await;
    assert!(
        tab.body
            .contains(r#"data-test-id="children">1 of 3 children pending</td>"#),
        "{}",
        tab.body
    );

    // The parent's page: waiting for one, the others processed, linked.
    let page = app.get(&format!("/bullmq/reports/jobs/{parent}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let html = &page.body;
    assert!(html.contains(r#"data-test-id="job-flow""#), "{html}");
    assert!(html.contains("Waiting for 1 of 3 children."), "{html}");
    assert!(
        html.contains(&format!(r#"href="/bullmq/thumbs/jobs/{thumb}""#)),
        "{html}"
    );
    assert!(html.contains(r#"data-test-id="flow-processed""#), "{html}");
    assert!(!html.contains(r#"data-test-id="flow-more""#), "{html}");

    // The child's page links its parent, waiting for its children.
    let page = app.get(&format!("/bullmq/thumbs/jobs/{thumb}")).await;
    let parent_line = page
        .body
        .split(r#"data-test-id="flow-parent""#)
        .nth(1)
        .expect("a parent line");
    assert!(
        parent_line.contains(&format!(r#"href="/bullmq/reports/jobs/{parent}""#)),
        "{}",
        page.body
    );
    assert!(parent_line.contains("Waiting children"), "{}", page.body);

    // The API: the same flow as JSON, ids only.
    let api = app
        .get(&format!("/api/bullmq/reports/jobs/{parent}"))
        .await
        .json();
    let flow = &api["flow"];
    assert_eq!(flow["parent"], Value::Null, "{api}");
    assert_eq!(flow["pending"]["total"], 1, "{api}");
    assert_eq!(flow["pending"]["jobs"][0]["id"], json!(thumb), "{api}");
    assert_eq!(flow["pending"]["jobs"][0]["queue"], "thumbs", "{api}");
    assert_eq!(flow["pending"]["jobs"][0]["state"], "waiting", "{api}");
    assert_eq!(flow["processed"]["total"], 2, "{api}");
    for child in flow["processed"]["jobs"].as_array().expect("processed") {
        assert_eq!(child["state"], "completed", "{api}");
        assert!(child.get("returnvalue").is_none(), "{api}");
    }
    let api = app
        .get(&format!("/api/bullmq/thumbs/jobs/{thumb}"))
        .await
        .json();
    assert_eq!(api["flow"]["parent"]["id"], json!(parent), "{api}");
    assert_eq!(api["flow"]["parent"]["state"], "waiting-children", "{api}");
    assert_eq!(api["flow"]["onFailure"], Value::Null, "{api}");
}
