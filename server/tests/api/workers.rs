//! Workers: the registry read by the Workers page and `/api/workers`, the
//! quiet / resume / stop actions (operator, audited, obeyed at the worker's
//! next heartbeat), and the "no workers" / "all workers quiet" badges.

use std::sync::Arc;
use std::time::Duration;

use auth::users::Role;
use coord::queue::{Job, JobState, WorkerHandle};
use serde_json::{Value, json};
use server::auth;
use tokio::sync::Semaphore;

use crate::helpers::{TestApp, assert_redirect, eventually, notice_cookie, qn};

/// A worker on `queue` of the app's backend that holds each job until
/// `gate` hands out a permit, beating every 100 ms.
fn worker(app: &TestApp, queue: &str) -> (WorkerHandle, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let held = gate.clone();
    let worker = app
        .queues()
        .worker(qn(queue))
        .concurrency(2)
        .heartbeat(Duration::from_millis(100))
        .poll_interval(Duration::from_millis(20))
        .version("7.1.0")
        .start(move |_job: Job| {
            let gate = held.clone();
            async move {
                gate.acquire().await.expect("gate").forget();
                Ok(Value::Null)
            }
        })
        .expect("worker");
    (worker, gate)
}

/// The worker `id` as `/api/workers` lists it, once it matches `check`.
async fn listed(app: &TestApp, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually("the worker as listed", async || {
        let body: Value = app.get("/api/workers").await.json();
        let found = body["workers"]
            .as_array()
            .and_then(|all| all.iter().find(|w| w["id"] == id).cloned());
        match found {
            Some(worker) if check(&worker) => Ok(worker),
            other => Err(format!("{other:?} in {body}")),
        }
    })
    .await
}

#[tokio::test]
async fn a_worker_is_listed_with_its_running_job_and_obeys_quiet_resume_and_stop() {
    let app = TestApp::spawn().await;
    let (handle, gate) = worker(&app, "emails");
    let id = handle.id().to_string();
    let job = app.enqueue("emails", &json!({ "name": "send" })).await;

    let busy = listed(&app, &id, |w| w["busy"] == 1).await;
    assert_eq!(busy["queue"], "emails");
    assert_eq!(busy["state"], "running");
    assert_eq!(busy["status"], "live");
    assert_eq!(busy["concurrency"], 2);
    assert_eq!(busy["version"], "7.1.0");
    assert_eq!(busy["pid"], std::process::id());
    assert_eq!(busy["running"][0]["id"], job.as_str());

    // The page names the worker and links the job it runs.
    let page = app.get("/workers").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<title>Workers · Switchyard</title>"));
    assert!(
        page.body
            .contains(&format!(r#"data-test-id="worker-row-{id}""#)),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!(r#"href="/queues/emails/jobs/{job}""#)),
        "{}",
        page.body
    );

    // A viewer may look, not act.
    let viewer = app.sign_in_as("watcher", Role::Viewer).await;
    let refused = app
        .post_form_as(Some(&viewer), &format!("/workers/{id}/quiet"), &[])
        .await;
    assert_eq!(refused.status, 403);

    // Quiet through the form: the notice says what happens, and the worker
    // reports quiet at its next heartbeat.
    let quiet = app
        .post_form(
            &format!("/workers/{id}/quiet"),
            &[("back", "/workers?queue=emails")],
        )
        .await;
    assert_redirect(&quiet, "/workers?queue=emails");
    let notice = app
        .get_with_cookie("/workers?queue=emails", &notice_cookie(&quiet))
        .await;
    assert!(notice.body.contains("takes no new jobs"), "{}", notice.body);
    listed(&app, &id, |w| w["state"] == "quiet").await;
    let waiting = app.enqueue("emails", &json!({ "name": "later" })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let job_state = app
        .queues()
        .job(
            &qn("emails"),
            &coord::queue::JobId::new(waiting.as_str()).unwrap(),
        )
        .await
        .unwrap()
        .state;
    assert_eq!(
        job_state,
        JobState::Waiting,
        "a quiet worker takes nothing new"
    );

    // Resume through the API: the waiting job runs.
    let resumed = app.post(&format!("/api/workers/{id}/resume")).await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(resumed.json()["command"], "resume");
    listed(&app, &id, |w| w["state"] == "running" && w["busy"] == 2).await;

    // Each action is in the audit log.
    let audit = app.get("/audit").await.body;
    for action in ["worker.quiet", "worker.resume"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }

    // Stop: it finishes what it runs, then leaves the registry.
    let stopped = app.post(&format!("/api/workers/{id}/stop")).await;
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    listed(&app, &id, |w| w["state"] == "stopping").await;
    gate.add_permits(10);
    eventually("the worker gone from the list", async || {
        let body: Value = app.get("/api/workers").await.json();
        if body["total"] == 0 && handle.is_finished() {
            Ok(())
        } else {
            Err(body.to_string())
        }
    })
    .await;
    handle.shutdown(Duration::from_secs(1)).await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_workers_and_actions_are_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let unknown = app.post("/api/workers/nobody-1-abcdef/quiet").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.error().contains("no worker nobody-1-abcdef"),
        "{}",
        unknown.body
    );
    let bogus = app.post("/api/workers/nobody-1-abcdef/pause").await;
    assert_eq!(bogus.status, 404);
    assert!(
        bogus.error().contains("quiet, resume or stop"),
        "{}",
        bogus.body
    );
    let invalid = app.post("/api/workers/has%20space/stop").await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    // The page says there is nobody, and how workers get listed.
    let page = app.get("/workers").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("WorkerBuilder"), "{}", page.body);
    app.stop().await;
}

#[tokio::test]
async fn queue_rows_say_when_no_worker_or_only_quiet_ones_take_their_jobs() {
    let app = TestApp::spawn().await;
    app.enqueue("orphans", &json!({ "name": "x" })).await;
    let (handle, gate) = worker(&app, "staffed");
    gate.add_permits(100);
    let id = handle.id().to_string();
    listed(&app, &id, |w| w["status"] == "live").await;
    app.enqueue("staffed", &json!({ "name": "x" })).await;

    let badge = |html: &str, queue: &str| -> Option<String> {
        let row = html.find(&format!(r#"data-test-id="queue-row-{queue}""#))?;
        let end = html[row..].find("</tr>")? + row;
        let at = html[row..end].find(r#"data-test-id="queue-workers""#)? + row;
        let text_start = html[at..].find('>')? + at + 1;
        let text_end = html[text_start..].find('<')? + text_start;
        Some(html[text_start..text_end].to_owned())
    };
    eventually("the badges", async || {
        let html = app.get("/queues").await.body;
        match (badge(&html, "orphans"), badge(&html, "staffed")) {
            (Some(b), None) if b == "no workers" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    app.post(&format!("/api/workers/{id}/quiet")).await;
    eventually("all quiet", async || {
        let html = app.get("/queues").await.body;
        match badge(&html, "staffed") {
            Some(b) if b == "all workers quiet" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // The queue page names its workers and links them.
    let page = app.get("/queues/staffed").await.body;
    assert!(page.contains(r#"href="/workers?queue=staffed""#), "{page}");
    handle.shutdown(Duration::from_secs(1)).await;
    app.stop().await;
}
