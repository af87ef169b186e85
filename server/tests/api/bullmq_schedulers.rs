//! BullMQ job schedulers through the dashboard, against real BullMQ 5: a
//! scheduler and a legacy repeatable made by Node (`scheduler.mjs`),
//! listed on the schedules page and `/api/bullmq/<q>/schedulers`, run now
//! (operator) with a real worker taking the job, and removed (admin) so
//! that BullMQ itself no longer lists it; each action audited.

use serde_json::{Value, json};
use test_support::redis::REDIS_URL;

use crate::bullnode::{run, spawn_watching, work};
use crate::helpers::{RedisKeys, assert_redirect, eventually, notice_cookie};

#[tokio::test]
async fn bullmq_schedulers_are_listed_run_now_and_removed_from_the_dashboard() {
    let prefix = format!("sy-bsched-{:08x}", rand::random::<u32>());
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let app = spawn_watching(&prefix).await;
    let scheduler = async |args: Vec<String>| {
        let mut all = vec![REDIS_URL.to_owned(), prefix.clone(), "mail".to_owned()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        run("scheduler.mjs", &refs).await
    };
    scheduler(vec![
        "upsert".into(),
        "digest".into(),
        json!({ "every": 3_600_000 }).to_string(),
        json!({ "name": "send-digest", "data": { "to": "team@example.com" } }).to_string(),
    ])
    .await;
    scheduler(vec![
        "repeatable".into(),
        "legacy-report".into(),
        json!({ "pattern": "0 3 * * *", "tz": "Europe/Berlin" }).to_string(),
        json!({ "kind": "nightly" }).to_string(),
    ])
    .await;

    // Both kinds, in the API and on the page once the queue is chosen.
    let listed = eventually("both schedulers listed", async || {
        let body: Value = app.get("/api/bullmq/mail/schedulers").await.json();
        if body["total"] == 2 {
            Ok(body)
        } else {
            Err(body.to_string())
        }
    })
    .await;
    let items = listed["schedulers"].as_array().expect("items");
    let digest = items.iter().find(|s| s["key"] == "digest").expect("digest");
    assert_eq!(digest["kind"], "scheduler");
    assert_eq!(digest["every"], 3_600_000);
    assert_eq!(digest["name"], "send-digest");
    let legacy = items
        .iter()
        .find(|s| s["kind"] == "repeatable")
        .expect("legacy");
    assert_eq!(legacy["pattern"], "0 3 * * *");
    assert_eq!(legacy["tz"], "Europe/Berlin");
    let legacy_key = legacy["key"].as_str().expect("key").to_owned();

    let page = eventually("the queue offered on the page", async || {
        let page = app.get("/schedules?bull=mail").await;
        if page.body.contains(r#"data-test-id="bull-scheduler-row""#) {
            Ok(page)
        } else {
            Err(page.body)
        }
    })
    .await;
    assert!(
        page.body.contains(r#"<option value="mail" selected>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("every 1 h"), "{}", page.body);
    assert!(
        page.body.contains("cron 0 3 * * * · Europe/Berlin"),
        "{}",
        page.body
    );
    assert!(page.body.contains("team@example.com"), "{}", page.body);

    // Run now through the form: a real worker takes the job.
    let ran = app
        .post_form(
            "/bullmq/mail/schedulers/digest/run",
            &[("back", "/schedules?bull=mail")],
        )
        .await;
    assert_redirect(&ran, "/schedules?bull=mail");
    let notice = app
        .get_with_cookie("/schedules?bull=mail", &notice_cookie(&ran))
        .await;
    assert!(notice.body.contains("Added job"), "{}", notice.body);
    work(&prefix, "mail", 1).await;

    // Remove through the API: BullMQ itself no longer lists it.
    let removed = app.post("/api/bullmq/mail/schedulers/digest/remove").await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    let bull = scheduler(vec!["list".into()]).await;
    assert_eq!(bull["schedulers"], json!([legacy_key]), "{bull}");
    assert_eq!(
        app.get("/api/bullmq/mail/schedulers").await.json()["total"],
        1
    );
    let gone = app.post("/api/bullmq/mail/schedulers/digest/run").await;
    assert_eq!(gone.status, 404, "{}", gone.body);

    let audit = app.get("/api/audit?target=mail").await.json();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["bullmq.scheduler_run", "bullmq.scheduler_remove"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    app.stop().await;
}
