//! BullMQ queues through the dashboard, against real BullMQ 5: a Node
//! producer and workers (`end2end/bullmq/*.mjs`, the `bullmq` package from
//! npm) on the local Redis, and Switchyard's pages, buttons, API and live
//! stream on the same keys.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use server::bullmq::BullSettings;
use server::config::secret::SecretUrl;
use test_support::http::url_encode;
use test_support::redis::REDIS_URL;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{RedisKeys, TestApp, eventually};

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../end2end/bullmq")
}

fn node(script: &str, args: &[&str]) -> Command {
    let dir = scripts();
    assert!(
        dir.join("../node_modules/bullmq").exists(),
        "bullmq is not installed: run `npm ci` in end2end (scripts/prepare does)"
    );
    let mut command = Command::new("node");
    command
        .arg(dir.join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// Runs a script to its end and returns its last JSON line.
pub(crate) async fn run(script: &str, args: &[&str]) -> Value {
    let output = node(script, args).output().await.expect("run node");
    assert!(output.status.success(), "{script} failed: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{script} printed {text:?}: {e}"))
}

/// A running BullMQ worker and the lines it prints.
struct Worker {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Worker {
    /// Starts a worker and waits until it listens.
    async fn start(prefix: &str, queue: &str, extra: &[&str]) -> Self {
        let mut args = vec![REDIS_URL, prefix, queue];
        args.extend_from_slice(extra);
        let mut child = node("worker.mjs", &args).spawn().expect("start the worker");
        let stdout = child.stdout.take().expect("stdout");
        let mut worker = Self {
            child,
            lines: BufReader::new(stdout).lines(),
        };
        let ready = worker.next().await;
        assert_eq!(ready["event"], "ready", "{ready}");
        worker
    }

    /// The next line it prints, as JSON.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("the worker answers within 30 s")
            .expect("read the worker")
            .expect("the worker printed a line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// Lines until it exits.
    async fn rest(mut self) -> Vec<Value> {
        let mut all = Vec::new();
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(30), self.lines.next_line()).await
        {
            all.push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
        }
        let _ = self.child.wait().await;
        all
    }
}

/// A dashboard watching BullMQ queues under a fresh prefix.
async fn spawn(prefix: &str) -> TestApp {
    let prefix = prefix.to_owned();
    TestApp::spawn_with(move |s| {
        s.bullmq = Some(BullSettings {
            url: SecretUrl::new(REDIS_URL),
            prefix,
            queues: Vec::new(),
            discover_every: Duration::from_millis(200),
        });
    })
    .await
}

fn fresh_prefix() -> String {
    format!("sy-bull-{:08x}", rand::random::<u32>())
}

#[tokio::test]
async fn failed_bullmq_jobs_show_and_retry_from_switchyard_runs_them_again() {
    let prefix = fresh_prefix();
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let app = spawn(&prefix).await;
    let queue = "mailer";

    // A real producer and a worker whose handler fails on purpose.
    let produced = run(
        "produce.mjs",
        &[REDIS_URL, &prefix, queue, "3", "--name", "send"],
    )
    .await;
    let ids: Vec<String> = produced["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    let failing = Worker::start(&prefix, queue, &["--fail", "--count", "3"]).await;
    let failed = failing.rest().await;
    assert_eq!(
        failed.iter().filter(|l| l["event"] == "failed").count(),
        3,
        "{failed:?}"
    );

    // The list page finds the queue by its meta key, with BullMQ's counts.
    let bull = run("counts.mjs", &[REDIS_URL, &prefix, queue]).await;
    assert_eq!(bull["counts"]["failed"], 3, "{bull}");
    let listed = eventually("the queue is listed with 3 failed", async || {
        let api = app.get("/api/bullmq").await.json();
        let row = api["queues"]
            .as_array()
            .and_then(|q| q.iter().find(|r| r["name"] == queue).cloned());
        match row {
            Some(row) if row["counts"]["failed"] == 3 => Ok(row),
            _ => Err(api.to_string()),
        }
    })
    .await;
    for state in ["waiting", "active", "delayed", "completed", "paused"] {
        assert_eq!(
            listed["counts"][state], bull["counts"][state],
            "{state}: {listed} vs {bull}"
        );
    }
    let page = app.get("/bullmq").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(queue), "{}", page.body);
    // …and next to the native queues.
    let queues = app.get("/queues").await;
    assert!(
        queues.body.contains(r#"data-test-id="bullmq-next""#) && queues.body.contains(queue),
        "{}",
        queues.body
    );

    // The failed tab shows each job with BullMQ's failure reason.
    let tab = app.get(&format!("/bullmq/{queue}?state=failed")).await;
    assert_eq!(tab.status, 200, "{}", tab.body);
    for id in &ids {
        assert!(tab.body.contains(&format!("boom {id}")), "{}", tab.body);
    }
    let detail = app
        .get(&format!("/api/bullmq/{queue}/jobs/{}", ids[0]))
        .await
        .json();
    assert_eq!(detail["state"], "failed", "{detail}");
    assert_eq!(detail["attemptsMade"], 1, "{detail}");
    assert_eq!(detail["failedReason"], format!("boom {}", ids[0]));
    assert!(
        detail["stacktrace"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{detail}"
    );

    // A worker that succeeds waits on the queue (and sleeps long between
    // polls, so only BullMQ's own wake-up makes it run the retried jobs).
    let healthy = Worker::start(&prefix, queue, &["--count", "3", "--drain-delay", "30"]).await;
    // One job by its button, the rest with Retry all failed.
    let one = app
        .post_form(
            &format!("/bullmq/{queue}/jobs/{}/retry", ids[0]),
            &[("back", &format!("/bullmq/{queue}?state=failed"))],
        )
        .await;
    assert_eq!(one.status, 303, "{}", one.body);
    let all = app
        .post_form(&format!("/bullmq/{queue}/retry-failed"), &[])
        .await;
    assert_eq!(all.status, 303, "{}", all.body);
    let done = healthy.rest().await;
    let completed: Vec<&Value> = done.iter().filter(|l| l["event"] == "completed").collect();
    assert_eq!(
        completed.len(),
        3,
        "the real worker ran them again: {done:?}"
    );
    let bull = run("counts.mjs", &[REDIS_URL, &prefix, queue]).await;
    assert_eq!(bull["counts"]["failed"], 0, "{bull}");
    assert_eq!(bull["counts"]["completed"], 3, "{bull}");

    // Both actions are in the audit log under the signed-in user.
    let audit = app.get("/api/audit?target_kind=bullmq_queue").await.json();
    assert_eq!(audit["entries"][0]["action"], "bullmq.retry_all", "{audit}");
    assert_eq!(audit["entries"][0]["actor"], "admin", "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn pause_from_switchyard_stops_the_bullmq_worker_until_resumed() {
    let prefix = fresh_prefix();
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let app = spawn(&prefix).await;
    let queue = "reports";
    run("produce.mjs", &[REDIS_URL, &prefix, queue, "1"]).await;

    let paused = app
        .post_json(&format!("/api/bullmq/{queue}/pause"), &Value::Null)
        .await;
    assert_eq!(paused.status, 200, "{}", paused.body);
    let bull = run("counts.mjs", &[REDIS_URL, &prefix, queue]).await;
    assert_eq!(bull["isPaused"], true, "BullMQ sees it paused: {bull}");

    run("produce.mjs", &[REDIS_URL, &prefix, queue, "2"]).await;
    // A worker on a paused queue takes nothing.
    let idle = Worker::start(&prefix, queue, &["--count", "1", "--timeout", "3000"]).await;
    let lines = idle.rest().await;
    assert!(
        lines.iter().all(|l| l["event"] != "completed"),
        "the worker took a job of a paused queue: {lines:?}"
    );
    let counts = app.get(&format!("/api/bullmq/{queue}")).await.json();
    assert_eq!(counts["paused"], true, "{counts}");
    let waiting = counts["counts"]["waiting"].as_u64().unwrap_or(0)
        + counts["counts"]["paused"].as_u64().unwrap_or(0);
    assert_eq!(waiting, 3, "{counts}");
    let page = app.get(&format!("/bullmq/{queue}")).await;
    assert!(page.body.contains("Paused"), "{}", page.body);

    // Resume from the page's button: the worker takes all three.
    let worker = Worker::start(&prefix, queue, &["--count", "3", "--drain-delay", "30"]).await;
    let resumed = app
        .post_form(&format!("/bullmq/{queue}/resume"), &[("back", "/bullmq")])
        .await;
    assert_eq!(resumed.status, 303, "{}", resumed.body);
    let done = worker.rest().await;
    assert_eq!(
        done.iter().filter(|l| l["event"] == "completed").count(),
        3,
        "{done:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_queue_page_follows_the_events_stream_live() {
    let prefix = fresh_prefix();
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let app = spawn(&prefix).await;
    let queue = "live";
    run("produce.mjs", &[REDIS_URL, &prefix, queue, "1"]).await;
    eventually("the queue is discovered", async || {
        let api = app.get("/api/bullmq").await.json();
        if api["queues"].as_array().is_some_and(|q| !q.is_empty()) {
            Ok(())
        } else {
            Err(api.to_string())
        }
    })
    .await;
    let mut stream = app
        .sse(&format!(
            "/events/bullmq/{}?state=failed",
            url_encode(queue)
        ))
        .await;
    // The first swaps are the page as it is: nothing failed yet.
    let first = stream
        .swap_until(Duration::from_secs(10), |e| e.region() == Some("bull-jobs"))
        .await;
    assert!(!first.data.contains("boom 1"), "{}", first.data);
    let failing = Worker::start(&prefix, queue, &["--fail", "--count", "1"]).await;
    failing.rest().await;
    // The worker's `failed` event reaches the page without a reload.
    stream
        .swap_until(Duration::from_secs(15), |e| {
            e.region() == Some("bull-jobs") && e.data.contains("boom 1")
        })
        .await;
    app.stop().await;
}

#[tokio::test]
async fn bullmq_pages_say_how_to_turn_them_on_and_refuse_bad_input() {
    let app = TestApp::spawn().await;
    let page = app.get("/bullmq").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("--bullmq"), "{}", page.body);
    let api = app.get("/api/bullmq").await;
    assert_eq!(api.status, 404, "{}", api.body);
    assert!(api.error().contains("--bullmq"), "{}", api.body);

    let prefix = fresh_prefix();
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let app = spawn(&prefix).await;
    let bad_state = app.get("/bullmq/q?state=sleeping").await;
    assert_eq!(bad_state.status, 400, "{}", bad_state.body);
    let bad_name = app.get("/api/bullmq/a%3Ab").await;
    assert_eq!(bad_name.status, 400, "{}", bad_name.body);
    let bad_clean = app
        .post_form(
            "/bullmq/q/clean",
            &[("state", "active"), ("older_than", "1d")],
        )
        .await;
    assert_eq!(bad_clean.status, 400, "{}", bad_clean.body);
    let missing = app.get("/api/bullmq/q/jobs/999").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    app.stop().await;
}

#[tokio::test]
async fn pausing_a_bullmq_queue_that_does_not_exist_is_a_404_and_creates_nothing() {
    let prefix = fresh_prefix();
    let app = spawn(&prefix).await;
    for path in ["/api/bullmq/nope/pause", "/api/bullmq/nope/resume"] {
        let response = app.post(path).await;
        assert_eq!(response.status, 404, "{path}: {}", response.body);
        assert!(response.error().contains("not found"), "{}", response.body);
    }
    let form = app.post_form("/bullmq/nope/pause", &[]).await;
    assert_eq!(form.status, 404, "{}", form.body);
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.is_empty(), "nothing was written: {keys:?}");
    app.stop().await;
}

/// The job actions reach jobs only. A queue's own key names are refused
/// with 400 and the keys live on; other keys under the queue's prefix (a
/// job's log list, a repeat config) are no job (404) and stay as they
/// were; BullMQ goes on working the queue. A Redis error inside a script
/// is answered with an error id, never with its text, and the audit log
/// keeps the same generic answer.
#[tokio::test]
async fn bullmq_job_actions_touch_only_jobs() {
    let prefix = fresh_prefix();
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let app = spawn(&prefix).await;
    let queue = "ledger";
    let produced = run(
        "produce.mjs",
        &[REDIS_URL, &prefix, queue, "2", "--delay", "600000"],
    )
    .await;
    let first = produced["ids"][0].as_str().expect("an id").to_owned();
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = |suffix: &str| format!("{prefix}:{queue}:{suffix}");
    let _: () = redis::cmd("RPUSH")
        .arg(key(&format!("{first}:logs")))
        .arg("a log line")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(key("repeat:nightly"))
        .arg("name")
        .arg("nightly")
        .query_async(&mut conn)
        .await
        .unwrap();

    for id in [
        "meta", "wait", "failed", "id", "events", "marker", "delayed",
    ] {
        for action in ["remove", "retry", "promote"] {
            let path = format!("/api/bullmq/{queue}/jobs/{id}/{action}");
            let response = app.post(&path).await;
            assert_eq!(response.status, 400, "{path}: {}", response.body);
            assert!(
                response.error().contains("queue's own keys"),
                "{path}: {}",
                response.body
            );
        }
        let shown = app.get(&format!("/api/bullmq/{queue}/jobs/{id}")).await;
        assert_eq!(shown.status, 400, "{id}: {}", shown.body);
    }
    for id in [format!("{first}:logs"), "repeat:nightly".to_owned()] {
        for action in ["remove", "retry", "promote"] {
            let path = format!("/api/bullmq/{queue}/jobs/{}/{action}", url_encode(&id));
            let response = app.post(&path).await;
            assert_eq!(response.status, 404, "{path}: {}", response.body);
        }
        let shown = app
            .get(&format!("/api/bullmq/{queue}/jobs/{}", url_encode(&id)))
            .await;
        assert_eq!(shown.status, 404, "{id}: {}", shown.body);
    }
    let exists = |suffix: String| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(suffix)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    for suffix in ["meta", "delayed", "events", "repeat:nightly"] {
        assert_eq!(exists(key(suffix)).await, 1, "{suffix} is still there");
    }
    assert_eq!(exists(key(&format!("{first}:logs"))).await, 1);

    // The queue is still BullMQ's: a real job's promote works, and BullMQ
    // counts what Switchyard did.
    let promoted = app
        .post(&format!("/api/bullmq/{queue}/jobs/{first}/promote"))
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    let bull = run("counts.mjs", &[REDIS_URL, &prefix, queue]).await;
    assert_eq!(bull["counts"]["waiting"], 1, "{bull}");
    assert_eq!(bull["counts"]["delayed"], 1, "{bull}");

    // A damaged key makes the retry script fail inside Redis (WRONGTYPE).
    let _: () = redis::cmd("SET")
        .arg(key("failed"))
        .arg("not a sorted set")
        .query_async(&mut conn)
        .await
        .unwrap();
    let second = produced["ids"][1].as_str().expect("an id");
    let damaged = app
        .post(&format!("/api/bullmq/{queue}/jobs/{second}/retry"))
        .await;
    assert_eq!(damaged.status, 500, "{}", damaged.body);
    let reason = damaged.error();
    assert!(reason.contains("error id "), "{}", damaged.body);
    for leak in ["WRONGTYPE", "user_script", "script"] {
        assert!(!reason.contains(leak), "{leak} in {}", damaged.body);
    }
    let audit = app.get("/api/audit?target_kind=bullmq_job").await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    assert!(
        audit.body.contains("error id "),
        "the failure is audited: {}",
        audit.body
    );
    assert!(!audit.body.contains("WRONGTYPE"), "{}", audit.body);
    app.stop().await;
}

#[tokio::test]
async fn many_bullmq_queues_are_paged_sorted_and_filtered() {
    let prefix = fresh_prefix();
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let app = spawn(&prefix).await;
    // Queues as BullMQ lays them out: a `meta` hash (what discovery finds)
    // and a `wait` list; queue i holds i % 4 waiting jobs.
    let client = redis::Client::open(REDIS_URL).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    for i in 0..60 {
        let base = format!("{prefix}:bq-{i:02}");
        let _: () = redis::cmd("HSET")
            .arg(format!("{base}:meta"))
            .arg("opts.maxLenEvents")
            .arg(10_000)
            .query_async(&mut con)
            .await
            .expect("meta");
        for j in 0..i % 4 {
            let _: () = redis::cmd("LPUSH")
                .arg(format!("{base}:wait"))
                .arg(format!("{j}"))
                .query_async(&mut con)
                .await
                .expect("wait");
        }
    }
    let first = eventually("every queue is counted", async || {
        let body = app.get("/api/bullmq?limit=50").await.json();
        if body["total"] == 60 && body["queues"][3]["counts"]["waiting"] == 3 {
            Ok(body)
        } else {
            Err(body.to_string())
        }
    })
    .await;
    assert_eq!(first["queues"].as_array().map(Vec::len), Some(50));
    assert_eq!(first["matching"], 60);
    let rest = app.get("/api/bullmq?offset=50").await.json();
    assert_eq!(rest["queues"].as_array().map(Vec::len), Some(10));
    assert_eq!(rest["queues"][0]["name"], "bq-50");
    let filtered = app.get("/api/bullmq?q=BQ-0").await.json();
    assert_eq!(filtered["matching"], 10, "{filtered}");
    let backlog = app.get("/api/bullmq?sort=backlog&limit=2").await.json();
    let names: Vec<&str> = backlog["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    assert_eq!(names, ["bq-03", "bq-07"]);
    let refused = app.get("/api/bullmq?sort=throughput").await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("sort by name, failures or backlog"));

    let page = app.get("/bullmq").await;
    assert_eq!(page.body.matches(r#"data-test-id="queue-row-"#).count(), 50);
    assert!(page.body.contains("1–50 of 60"), "{}", page.body);
    assert!(page.body.contains(r#"href="/bullmq?offset=50""#));
    let queues = app.get("/queues").await;
    let section = &queues.body[queues.body.find("bullmq-next").expect("section")..];
    assert_eq!(section.matches(r#"data-test-id="queue-row-"#).count(), 10);
    assert!(section.contains("All 60 BullMQ queues →"), "{section}");
    app.stop().await;
}

/// The ids a producer printed.
fn ids_of(produced: &Value) -> Vec<String> {
    produced["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Adds `n` jobs (with `produce` options) and lets a real worker fail
/// each of them once (with `worker` options); their ids.
async fn fail_jobs(
    prefix: &str,
    queue: &str,
    n: usize,
    produce: &[&str],
    worker: &[&str],
) -> Vec<String> {
    let count = n.to_string();
    let mut args = vec![REDIS_URL, prefix, queue, count.as_str()];
    args.extend_from_slice(produce);
    let ids = ids_of(&run("produce.mjs", &args).await);
    let mut options = vec!["--fail", "--count", count.as_str()];
    options.extend_from_slice(worker);
    let worker = Worker::start(prefix, queue, &options).await;
    let lines = worker.rest().await;
    assert_eq!(lines.len(), n, "{queue}: {n} jobs failed: {lines:?}");
    ids
}

/// A BullMQ queue's groups as (normalised reason → failed), once their
/// sum is `total` and the API says nothing is left out.
async fn groups_settle(app: &TestApp, queue: &str, total: u64) -> Value {
    eventually(
        &format!("{queue}'s groups hold {total} failed jobs"),
        async || {
            let api = app.get(&format!("/api/bullmq/{queue}/errors")).await.json();
            let sum: u64 = api["groups"]
                .as_array()
                .map(|g| g.iter().filter_map(|g| g["failed"].as_u64()).sum())
                .unwrap_or(0);
            let complete = api["coverage"].as_array().is_some_and(Vec::is_empty);
            if sum == total && api["failed"] == total && complete {
                Ok(api)
            } else {
                Err(api.to_string())
            }
        },
    )
    .await
}

fn group<'a>(api: &'a Value, reason: &str) -> Option<&'a Value> {
    api["groups"]
        .as_array()?
        .iter()
        .find(|g| g["reason"] == reason)
}

#[tokio::test]
async fn bullmq_error_groups_stay_exact_through_fail_retry_fail_with_a_real_worker() {
    let prefix = fresh_prefix();
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let queue = "charges";
    let reasons = "card declined for order {id}0000|SMTP 550 mailbox unavailable";
    let card = "card declined for order #";
    let smtp = "SMTP 550 mailbox unavailable";

    // Failures from before the dashboard watched: found by the backfill.
    let first = fail_jobs(&prefix, queue, 4, &[], &["--reasons", reasons]).await;
    let app = spawn(&prefix).await;
    let api = groups_settle(&app, queue, 4).await;
    assert_eq!(
        group(&api, card).map(|g| g["failed"].clone()),
        Some(2.into()),
        "{api}"
    );
    assert_eq!(
        group(&api, smtp).map(|g| g["failed"].clone()),
        Some(2.into()),
        "{api}"
    );
    assert_eq!(api["total"], 2, "{api}");

    // New failures: from the events stream.
    let more = fail_jobs(
        &prefix,
        queue,
        2,
        &["--name", "refund"],
        &["--reasons", reasons],
    )
    .await;
    let api = groups_settle(&app, queue, 6).await;
    let cards = group(&api, card).cloned().expect("card group");
    assert_eq!(cards["failed"], 3, "{api}");
    assert_eq!(
        cards["names"].as_array().map(Vec::len),
        Some(2),
        "job and refund: {cards}"
    );
    let card_id = cards["id"].as_str().unwrap_or_default().to_owned();
    let smtp_id = group(&api, smtp)
        .and_then(|g| g["id"].as_str())
        .unwrap_or_default()
        .to_owned();

    // The page shows them with their actions; every queue's page too.
    let page = app.get(&format!("/bullmq/{queue}/errors")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(card) && page.body.contains("Retry group"),
        "{}",
        page.body
    );
    let all = app.get("/api/errors").await.json();
    let listed = all["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["id"] == card_id.as_str()).cloned());
    assert_eq!(
        listed.as_ref().map(|g| g["queues"][0]["bullmq"].clone()),
        Some(true.into()),
        "{all}"
    );

    // Retry the card group: out of the failed set, run, failed again.
    let retried = app
        .post_json(
            &format!("/api/bullmq/{queue}/errors/{card_id}/retry"),
            &Value::Null,
        )
        .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    let retried = retried.json();
    assert_eq!(
        (retried["done"].clone(), retried["total"].clone()),
        (3.into(), 3.into()),
        "{retried}"
    );
    groups_settle(&app, queue, 3).await;
    let worker = Worker::start(
        &prefix,
        queue,
        &["--fail", "--reasons", reasons, "--count", "3"],
    )
    .await;
    assert_eq!(worker.rest().await.len(), 3);
    let api = groups_settle(&app, queue, 6).await;
    assert_eq!(
        group(&api, card).map(|g| g["failed"].clone()),
        Some(3.into()),
        "{api}"
    );
    // Twice in a row: the second finds nothing left to do.
    let again = app
        .post_json(
            &format!("/api/bullmq/{queue}/errors/{card_id}/retry"),
            &Value::Null,
        )
        .await
        .json();
    assert_eq!(again["done"], 3, "{again}");
    groups_settle(&app, queue, 3).await;
    let again = app
        .post_json(
            &format!("/api/bullmq/{queue}/errors/{card_id}/retry"),
            &Value::Null,
        )
        .await
        .json();
    assert_eq!(again["total"], 0, "{again}");

    // Remove the SMTP group by its button: gone from BullMQ too.
    let removed = app
        .post_form(&format!("/bullmq/{queue}/errors/{smtp_id}/remove"), &[])
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    groups_settle(&app, queue, 0).await;
    let bull = run("counts.mjs", &[REDIS_URL, &prefix, queue]).await;
    assert_eq!(bull["counts"]["failed"], 0, "{bull}");
    assert_eq!(
        bull["counts"]["waiting"], 3,
        "the retried card jobs wait: {bull}"
    );
    let audit = app.get("/api/audit?target_kind=bullmq_queue").await.json();
    assert_eq!(
        audit["entries"][0]["action"], "bullmq.remove_group",
        "{audit}"
    );
    assert!(
        audit["entries"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("3 of 3 failed jobs removed")),
        "{audit}"
    );
    assert_eq!(first.len() + more.len(), 6);

    // Jobs that leave the failed set without an event naming them (as
    // `removeOnFail` trims it) are noticed by the count and read again
    // (within SETTLE + REFILL_EVERY of the last read).
    let late = ids_of(&run("produce.mjs", &[REDIS_URL, &prefix, queue, "2"]).await);
    let worker = Worker::start(
        &prefix,
        queue,
        &["--fail", "--reasons", reasons, "--count", "5"],
    )
    .await;
    assert_eq!(worker.rest().await.len(), 5, "the 3 retried and the 2 new");
    groups_settle(&app, queue, 5).await;
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::pipe()
        .zrem(format!("{prefix}:{queue}:failed"), &late[0])
        .del(format!("{prefix}:{queue}:{}", late[0]))
        .query_async(&mut conn)
        .await
        .unwrap();
    // The count is read again on the queue's next event (or the minute's
    // sweep): here a job added.
    run("produce.mjs", &[REDIS_URL, &prefix, queue, "1"]).await;
    groups_settle(&app, queue, 4).await;

    // A mistyped group is refused with the reason.
    let bad = app
        .post_json(
            &format!("/api/bullmq/{queue}/errors/xyz/retry"),
            &Value::Null,
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    app.stop().await;
}

#[tokio::test]
async fn bullmq_retrying_and_dead_jobs_say_which_they_are() {
    let prefix = fresh_prefix();
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    let app = spawn(&prefix).await;
    let queue = "payouts";
    // Three attempts with a minute's backoff: after one failure it waits
    // in delayed with its error.
    let backing = fail_jobs(
        &prefix,
        queue,
        1,
        &["--attempts", "3", "--backoff", "60000"],
        &[],
    )
    .await;
    let api = app
        .get(&format!("/api/bullmq/{queue}/retrying"))
        .await
        .json();
    assert_eq!(api["total"], 1, "{api}");
    let job = &api["jobs"][0];
    assert_eq!(job["id"], backing[0].as_str(), "{api}");
    assert_eq!(job["attemptsLeft"], 2, "{api}");
    assert_eq!(job["lastError"], format!("boom {}", backing[0]), "{api}");
    let next = job["nextAttemptAt"].as_i64().unwrap_or(0);
    let now = coord::time::now_ms();
    assert!(next > now + 50_000 && next < now + 61_000, "{api}");
    let page = app.get(&format!("/bullmq/{queue}/retrying")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("1/3 · 2 left"), "{}", page.body);

    // Dead: one used its only attempt; one threw UnrecoverableError with
    // attempts left.
    let plain = fail_jobs(&prefix, queue, 1, &[], &[]).await;
    let fatal = fail_jobs(
        &prefix,
        queue,
        1,
        &["--attempts", "5"],
        &["--unrecoverable"],
    )
    .await;
    let exhausted = app
        .get(&format!("/api/bullmq/{queue}/jobs/{}", plain[0]))
        .await
        .json();
    assert_eq!(exhausted["failure"], "retries exhausted", "{exhausted}");
    let unrecoverable = app
        .get(&format!("/api/bullmq/{queue}/jobs/{}", fatal[0]))
        .await
        .json();
    assert_eq!(unrecoverable["failure"], "unrecoverable", "{unrecoverable}");
    assert_eq!(unrecoverable["attempts"], 5, "{unrecoverable}");
    let tab = app.get(&format!("/bullmq/{queue}?state=failed")).await;
    assert!(
        tab.body.contains("1/1") && tab.body.contains("retries exhausted"),
        "{}",
        tab.body
    );
    assert!(
        tab.body.contains("1/5") && tab.body.contains(">unrecoverable<"),
        "{}",
        tab.body
    );
    // The retrying job is not among the dead.
    let retrying = app
        .get(&format!("/api/bullmq/{queue}/retrying"))
        .await
        .json();
    assert_eq!(retrying["total"], 1, "{retrying}");
    app.stop().await;
}

/// A quiet queue is not an outage: the monitor's blocking event read
/// waits its two seconds (redis-rs's default response limit of 500 ms
/// once ended every quiet read as "timed out").
#[tokio::test]
async fn a_quiet_bullmq_queue_is_not_reported_as_an_outage() {
    let prefix = fresh_prefix();
    let _keys = RedisKeys(prefix.clone(), REDIS_URL.to_owned());
    run("produce.mjs", &[REDIS_URL, &prefix, "quiet", "1"]).await;
    let app = spawn(&prefix).await;
    eventually("the queue is listed", async || {
        let api = app.get("/api/bullmq").await.json();
        if api["queues"][0]["name"] == "quiet" {
            Ok(())
        } else {
            Err(api.to_string())
        }
    })
    .await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let api = app.get("/api/bullmq").await.json();
        assert_eq!(api["error"], Value::Null, "{api}");
    }
    app.stop().await;
}
