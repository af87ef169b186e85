//! Schedules: saved through the API or the admin's form, fired by the
//! dashboard's own scheduler (unless `--scheduler false`), listed with
//! their next runs on `/schedules` and `/api/schedules` and live over
//! `/events/schedules`; pause, resume and run now (operator) and remove
//! (admin), every one audited; bad input refused with the reason.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_redirect, eventually, notice_cookie};

/// A schedule of `queue` ticking every `every_ms`.
fn every(id: &str, queue: &str, every_ms: u64) -> Value {
    json!({
        "id": id,
        "queue": queue,
        "jobName": "tick",
        "data": { "from": id },
        "repeat": { "type": "every", "everyMs": every_ms },
    })
}

#[tokio::test]
async fn a_schedule_saved_through_the_api_is_fired_by_the_dashboard_listed_and_operated() {
    let app = TestApp::spawn().await;
    let saved = app
        .post_json("/api/schedules", &every("heartbeat", "pings", 1_000))
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let saved = saved.json();
    assert_eq!(saved["status"], "active");
    let runs: Vec<i64> = serde_json::from_value(saved["nextRuns"].clone()).expect("runs");
    assert_eq!(runs.len(), 5, "{saved}");
    assert!(runs.windows(2).all(|w| w[1] - w[0] == 1_000), "{runs:?}");

    // The dashboard fires it: its last job is a job of the queue.
    let mut stream = app.sse("/events/schedules").await;
    let fired = eventually("a fire", async || {
        let one = app.get("/api/schedules/heartbeat").await.json();
        match one["lastJobId"].as_str() {
            Some(job) if one["runs"].as_u64() >= Some(1) => Ok(job.to_owned()),
            _ => Err(one.to_string()),
        }
    })
    .await;
    assert!(fired.starts_with("heartbeat:"), "{fired}");
    let job = app.get(&format!("/api/queues/pings/jobs/{fired}")).await;
    assert_eq!(job.status, 200, "{}", job.body);
    assert_eq!(job.json()["data"], json!({ "from": "heartbeat" }));
    // …and the page's stream brings the fire without a reload.
    let swap = stream
        .swap_until(Duration::from_secs(10), |e| {
            e.region() == Some("schedules") && e.data.contains("heartbeat:")
        })
        .await;
    assert!(
        swap.data.contains("schedule-row-heartbeat"),
        "{}",
        swap.data
    );

    let listed = app.get("/api/schedules?queue=pings").await.json();
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["counts"]["active"], 1, "{listed}");
    assert_eq!(listed["firesHere"], true);
    assert_eq!(
        app.get("/api/schedules?queue=other").await.json()["total"],
        0
    );
    let page = app.get("/schedules").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"data-test-id="schedule-row-heartbeat""#),
        "{}",
        page.body
    );

    // Pause through the form: the notice says so and it fires no more.
    let paused = app
        .post_form("/schedules/heartbeat/pause", &[("back", "/schedules")])
        .await;
    assert_redirect(&paused, "/schedules");
    let notice = app
        .get_with_cookie("/schedules", &notice_cookie(&paused))
        .await;
    assert!(notice.body.contains("Paused heartbeat"), "{}", notice.body);
    let at_pause = app.get("/api/schedules/heartbeat").await.json();
    assert_eq!(at_pause["status"], "paused");
    assert_eq!(at_pause["nextRuns"], json!([]));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        app.get("/api/schedules/heartbeat").await.json()["runs"],
        at_pause["runs"],
        "a paused schedule fires nothing"
    );

    // Run now through the API: one job at once, the runs unchanged.
    let ran = app.post("/api/schedules/heartbeat/run").await;
    assert_eq!(ran.status, 200, "{}", ran.body);
    assert!(
        ran.json()["done"]
            .as_str()
            .unwrap_or_default()
            .contains("heartbeat:now-")
    );
    let after = app.get("/api/schedules/heartbeat").await.json();
    assert_eq!(after["runs"], at_pause["runs"]);
    assert!(
        after["lastJobId"]
            .as_str()
            .is_some_and(|j| j.starts_with("heartbeat:now-")),
        "{after}"
    );

    let resumed = app.post("/api/schedules/heartbeat/resume").await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(
        app.get("/api/schedules/heartbeat").await.json()["status"],
        "active"
    );

    let removed = app.post("/api/schedules/heartbeat/remove").await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(app.get("/api/schedules/heartbeat").await.status, 404);

    let audit = app.get("/api/audit?target=heartbeat").await.json();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "schedule.save",
        "schedule.pause",
        "schedule.run",
        "schedule.resume",
        "schedule.remove",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_schedules_and_actions_are_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let mut bad = every("bad", "q", 1_000);
    bad["repeat"] = json!({ "type": "cron", "expression": "61 * * * *", "timeZone": "UTC" });
    let refused = app.post_json("/api/schedules", &bad).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.error().contains("cron"), "{}", refused.body);
    let shapeless = app.post_json("/api/schedules", &json!({ "id": "x" })).await;
    assert_eq!(shapeless.status, 400, "{}", shapeless.body);
    assert!(
        shapeless.error().contains("not a schedule"),
        "{}",
        shapeless.body
    );

    // The admin's form: a refused save answers the form again, with the
    // reason and every field as typed.
    let form = app
        .post_form(
            "/schedules",
            &[
                ("id", "nightly"),
                ("queue", "reports"),
                ("job_name", "build"),
                ("kind", "cron"),
                ("expression", "0 2 * *"),
                ("time_zone", "Europe/Berlin"),
                ("data", r#"{"kind":"daily"}"#),
            ],
        )
        .await;
    assert_eq!(form.status, 400, "{}", form.body);
    assert!(form.body.contains("Not saved:"), "{}", form.body);
    assert!(
        form.body.contains(r#"value="Europe/Berlin""#),
        "{}",
        form.body
    );
    assert!(
        form.body
            .contains(r#"value="{&quot;kind&quot;:&quot;daily&quot;}""#),
        "{}",
        form.body
    );

    // A new schedule may not take an existing id; an edit needs one.
    let created = app
        .post_json("/api/schedules", &every("taken", "q", 60_000))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let again = app
        .post_form(
            "/schedules",
            &[
                ("id", "taken"),
                ("queue", "q"),
                ("job_name", "x"),
                ("kind", "every"),
                ("every", "1m"),
            ],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("edit it instead"), "{}", again.body);
    let missing = app
        .post_form(
            "/schedules/nobody/edit",
            &[
                ("queue", "q"),
                ("job_name", "x"),
                ("kind", "every"),
                ("every", "1m"),
            ],
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);

    // An edit through the form keeps the id and replaces the rest.
    let edited = app
        .post_form(
            "/schedules/taken/edit",
            &[
                ("queue", "q"),
                ("job_name", "renamed"),
                ("kind", "every"),
                ("every", "90s"),
                ("limit", "3"),
            ],
        )
        .await;
    assert_redirect(&edited, "/schedules");
    let now = app.get("/api/schedules/taken").await.json();
    assert_eq!(now["schedule"]["jobName"], "renamed");
    assert_eq!(now["schedule"]["repeat"]["everyMs"], 90_000);
    assert_eq!(now["schedule"]["limit"], 3);
    let edit_page = app.get("/schedules/taken/edit").await;
    assert_eq!(edit_page.status, 200);
    assert!(
        edit_page.body.contains(r#"value="90s""#),
        "{}",
        edit_page.body
    );

    let unknown = app.post("/api/schedules/nobody/pause").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let bogus = app.post("/api/schedules/taken/explode").await;
    assert_eq!(bogus.status, 404, "{}", bogus.body);
    assert!(
        bogus.error().contains("paused, resumed, run or removed"),
        "{}",
        bogus.body
    );
    let invalid = app.post("/api/schedules/has%20space/run").await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    app.stop().await;
}

#[tokio::test]
async fn with_scheduler_false_the_dashboard_fires_nothing_and_says_so() {
    let app = TestApp::spawn_with(|s| s.scheduler = false).await;
    let saved = app
        .post_json("/api/schedules", &every("quick", "q", 100))
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let one = app.get("/api/schedules/quick").await.json();
    assert_eq!(one["runs"], 0, "{one}");
    assert_eq!(app.get("/api/schedules").await.json()["firesHere"], false);
    let page = app.get("/schedules").await;
    assert!(page.body.contains("fires no schedules"), "{}", page.body);
    // A run now still works: it is the operator's, not the scheduler's.
    let ran = app.post("/api/schedules/quick/run").await;
    assert_eq!(ran.status, 200, "{}", ran.body);
    app.stop().await;
}
