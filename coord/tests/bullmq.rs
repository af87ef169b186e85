//! `coord::bullmq` against the real Redis and the real Node BullMQ: jobs are
//! added and processed by BullMQ itself (helpers in `end2end/bullmq/`), and
//! every operation is checked by what BullMQ sees and does afterwards.
//!
//! Needs `node` on PATH and `npm ci` run in `end2end/`.

mod common;

use std::time::{Duration, Instant};

use coord::CoordError;
use coord::bullmq::{BullCounts, BullMq, BullState};
use serde_json::Value;

use common::{BullFixture as Fixture, NodeWorker, REDIS_URL, eventually, run, unique};
use test_support::redis::{PrivateRedis, free_port};

impl Fixture {
    /// A connection for inspecting keys.
    async fn raw(&self) -> test_support::redis::RawConn {
        test_support::redis::raw(&self.url).await
    }

    /// Adds `n` jobs with BullMQ; returns their ids.
    async fn produce(&self, queue: &str, n: usize, extra: &[&str]) -> Vec<String> {
        let n = n.to_string();
        let mut args = vec![self.url.as_str(), self.prefix.as_str(), queue, n.as_str()];
        args.extend_from_slice(extra);
        let reply = run("produce.mjs", &args).await;
        reply["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|id| id.as_str().expect("id text").to_owned())
            .collect()
    }

    /// Adds several groups of jobs in one process (see `produce.mjs`).
    async fn produce_plan(&self, queue: &str, plan: &str) -> Vec<String> {
        let reply = run(
            "produce.mjs",
            &[self.url.as_str(), self.prefix.as_str(), queue, plan],
        )
        .await;
        reply["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|id| id.as_str().expect("id text").to_owned())
            .collect()
    }

    /// BullMQ's own view: `getJobCounts`, `isPaused`, and a job's state.
    async fn bullmq_view(&self, queue: &str, job: Option<&str>) -> Value {
        let mut args = vec![self.url.as_str(), self.prefix.as_str(), queue];
        args.extend(job);
        run("counts.mjs", &args).await
    }

    /// Starts a real BullMQ worker and waits until it listens.
    async fn worker(&self, queue: &str, extra: &[&str]) -> NodeWorker {
        self.node_worker(queue, extra, Duration::from_secs(15))
            .await
    }
}

impl NodeWorker {
    /// The next `n` finished jobs as (event, id), sorted by id.
    async fn finished(&mut self, n: usize) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for _ in 0..n {
            let line = self.next().await;
            let event = line["event"].as_str().unwrap_or_default().to_owned();
            assert!(
                event == "completed" || event == "failed",
                "expected a finished job, got {line}"
            );
            out.push((event, line["id"].as_str().unwrap_or_default().to_owned()));
        }
        out.sort();
        out
    }
}

/// Our counts must equal BullMQ's `getJobCounts` and `isPaused`.
fn assert_same_counts(ours: &BullCounts, theirs: &Value) {
    for state in BullState::ALL {
        assert_eq!(
            Some(ours.get(state)),
            theirs["counts"][state.as_str()].as_u64(),
            "{state} count differs: ours {ours:?}, BullMQ {theirs}"
        );
    }
    assert_eq!(
        Some(ours.is_paused),
        theirs["isPaused"].as_bool(),
        "{theirs}"
    );
}

fn pairs(event: &str, ids: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<_> = ids
        .iter()
        .map(|id| (event.to_owned(), id.clone()))
        .collect();
    out.sort();
    out
}

/// Runs each case on the shared Redis and on the shared cluster.
macro_rules! on_redis_and_cluster {
    ($($case:ident: $tag:literal),* $(,)?) => {
        mod single {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Fixture::new($tag).await).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Fixture::on_cluster($tag).await).await;
                }
            )*
        }
    };
}

on_redis_and_cluster!(
    bullmq_discovery_counts_and_listings_match_bullmq: "bull-disc",
    bullmq_retried_jobs_are_processed_again_by_a_real_worker: "bull-retry",
    bullmq_retry_all_puts_jobs_in_wait_as_bullmq_retry_jobs_does: "bull-retry-all",
    bullmq_retry_all_works_for_a_queue_with_a_star_in_its_name: "bull-retry-star",
    bullmq_retry_all_makes_a_failed_child_pending_for_its_parent_again: "bull-retry-flow",
    bullmq_retry_all_leaves_the_queues_own_keys_alone: "bull-retry-damaged",
    bullmq_pause_holds_a_real_worker_and_resume_releases_it: "bull-pause",
    bullmq_promote_runs_a_delayed_job_now: "bull-promote",
    bullmq_remove_deletes_a_job_but_never_one_a_worker_holds: "bull-remove",
    bullmq_clean_removes_old_finished_jobs_only: "bull-clean",
    bullmq_events_from_bullmq_and_from_switchyard_are_read: "bull-events",
    bullmq_hostile_names_are_refused_everywhere: "bull-hostile",
);

async fn bullmq_discovery_counts_and_listings_match_bullmq(fx: Fixture) {
    let failed = fx.produce("mail", 3, &[]).await;
    let mut worker = fx
        .worker("mail", &["--fail", "--count", "3", "--drain-delay", "1"])
        .await;
    assert_eq!(worker.finished(3).await, pairs("failed", &failed));
    worker.wait_exit().await;
    let plan = r#"[{"n":2},{"n":2,"delay":60000},{"n":1,"priority":3},{"queue":"thumbs","n":1}]"#;
    let added = fx.produce_plan("mail", plan).await;
    let waiting = &added[..2];

    let names = fx.bull.discover(100_000).await.expect("discover");
    assert_eq!(names, vec!["mail".to_owned(), "thumbs".to_owned()]);
    let other = BullMq::connect(&fx.url, &unique("bull-none"))
        .await
        .expect("connect");
    assert!(other.discover(100_000).await.expect("discover").is_empty());
    assert!(fx.bull.discover(0).await.expect("bounded").is_empty());

    let counts = fx.bull.counts("mail").await.expect("counts");
    assert_eq!(
        (
            counts.waiting,
            counts.delayed,
            counts.prioritized,
            counts.failed
        ),
        (2, 2, 1, 3)
    );
    assert_same_counts(&counts, &fx.bullmq_view("mail", None).await);

    let listed = fx
        .bull
        .jobs("mail", BullState::Failed, 0, 100)
        .await
        .expect("failed jobs");
    assert_eq!(listed.len(), 3);
    for job in &listed {
        assert_eq!(
            job.failed_reason.as_deref(),
            Some(&*format!("boom {}", job.id))
        );
        assert_eq!(job.attempts_made, 1);
        assert_eq!(job.name, "job");
        assert!(job.finished_on.is_some() && job.processed_on.is_some());
        assert!(!job.stacktrace.is_empty());
    }
    let finished: Vec<i64> = listed.iter().filter_map(|j| j.finished_on).collect();
    assert!(
        finished.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {finished:?}"
    );
    let page = fx
        .bull
        .jobs("mail", BullState::Failed, 1, 1)
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, listed[1].id);

    // Lists from the head: the most recently added first.
    let wait = fx
        .bull
        .jobs("mail", BullState::Waiting, 0, 10)
        .await
        .expect("waiting");
    let ids: Vec<&str> = wait.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, vec![waiting[1].as_str(), waiting[0].as_str()]);

    let job = fx
        .bull
        .job("mail", &failed[0])
        .await
        .expect("job")
        .expect("exists");
    assert_eq!(job.state, Some(BullState::Failed));
    assert_eq!(job.data, "{\"n\":0}");
    let view = fx.bullmq_view("mail", Some(&failed[0])).await;
    assert_eq!(view["state"], "failed");
    assert_eq!(
        fx.bull
            .job("mail", &waiting[0])
            .await
            .expect("job")
            .and_then(|j| j.state),
        Some(BullState::Waiting)
    );
    assert!(fx.bull.job("mail", "nope").await.expect("job").is_none());
    fx.done().await;
}

async fn bullmq_retried_jobs_are_processed_again_by_a_real_worker(fx: Fixture) {
    let ids = fx.produce("q", 3, &[]).await;
    let mut worker = fx
        .worker("q", &["--fail", "--count", "3", "--drain-delay", "1"])
        .await;
    assert_eq!(worker.finished(3).await, pairs("failed", &ids));
    worker.wait_exit().await;

    // The worker sleeps 30 s on the marker: a prompt completion proves the
    // retry woke it.
    let mut worker = fx
        .worker("q", &["--count", "3", "--timeout", "20000"])
        .await;
    let started = Instant::now();
    fx.bull.retry_job("q", &ids[0]).await.expect("retry one");
    assert_eq!(worker.finished(1).await, pairs("completed", &ids[..1]));
    assert!(started.elapsed() < Duration::from_secs(10));

    // Only failed jobs can be retried.
    let err = fx
        .bull
        .retry_job("q", &ids[0])
        .await
        .expect_err("completed");
    assert!(
        matches!(&err, CoordError::BullWrongState { actual, expected, .. }
            if *actual == "completed" && *expected == "failed"),
        "{err:?}"
    );
    let err = fx.bull.retry_job("q", "404").await.expect_err("missing");
    assert!(err.is_not_found(), "{err:?}");

    assert_eq!(
        fx.bull.retry_all_failed("q", 1).await.expect("retry all"),
        2
    );
    assert_eq!(worker.finished(2).await, pairs("completed", &ids[1..]));
    worker.wait_exit().await;

    let counts = fx.bull.counts("q").await.expect("counts");
    assert_eq!((counts.completed, counts.failed), (3, 0));
    assert_same_counts(&counts, &fx.bullmq_view("q", None).await);
    let job = fx
        .bull
        .job("q", &ids[1])
        .await
        .expect("job")
        .expect("exists");
    assert_eq!(job.failed_reason, None);
    assert_eq!(job.returnvalue.as_deref(), Some("{\"done\":\"2\"}"));
    assert_eq!(fx.bull.retry_all_failed("q", 10).await.expect("none"), 0);
    fx.done().await;
}

/// Retry-all's batch path puts jobs where BullMQ's own `retryJobs` (and
/// `job.retry()`) does: every job in `wait`, one with a priority too, one
/// `waiting` event each, and a real worker runs them all (woken once for
/// the batch).
async fn bullmq_retry_all_puts_jobs_in_wait_as_bullmq_retry_jobs_does(fx: Fixture) {
    let mut ids = fx.produce("q", 3, &[]).await;
    ids.extend(fx.produce("q", 1, &["--priority", "3"]).await);
    let mut worker = fx
        .worker("q", &["--fail", "--count", "4", "--drain-delay", "1"])
        .await;
    assert_eq!(worker.finished(4).await.len(), 4);
    worker.wait_exit().await;

    assert_eq!(
        fx.bull.retry_all_failed("q", 2).await.expect("retry all"),
        4
    );
    let counts = fx.bull.counts("q").await.expect("counts");
    assert_eq!(
        (counts.waiting, counts.prioritized, counts.failed),
        (4, 0, 0),
        "{counts:?}"
    );
    assert_same_counts(&counts, &fx.bullmq_view("q", None).await);
    let events = fx
        .bull
        .read_events(&[("q".to_owned(), "0".to_owned())], Duration::ZERO, 1000)
        .await
        .expect("events");
    let mut waiting: Vec<String> = events
        .iter()
        .filter(|e| {
            e.event == "waiting" && e.fields.contains(&("prev".to_owned(), "failed".to_owned()))
        })
        .filter_map(|e| e.job_id.clone())
        .collect();
    waiting.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(waiting, expected, "one waiting event per job");

    let mut worker = fx
        .worker("q", &["--count", "4", "--timeout", "20000"])
        .await;
    let done = worker.finished(4).await;
    assert!(
        done.iter().all(|(event, _)| event == "completed"),
        "{done:?}"
    );
    worker.wait_exit().await;
    fx.done().await;
}

/// A `*` in a queue's name would be SORT's wildcard in the batch's GET
/// pattern: such a queue is read job by job, with the same outcome.
async fn bullmq_retry_all_works_for_a_queue_with_a_star_in_its_name(fx: Fixture) {
    fx.produce("st*r", 3, &[]).await;
    let mut worker = fx
        .worker("st*r", &["--fail", "--count", "3", "--drain-delay", "1"])
        .await;
    assert_eq!(worker.finished(3).await.len(), 3);
    worker.wait_exit().await;
    assert_eq!(
        fx.bull
            .retry_all_failed("st*r", 2)
            .await
            .expect("retry all"),
        3
    );
    let counts = fx.bull.counts("st*r").await.expect("counts");
    assert_eq!((counts.waiting, counts.failed), (3, 0), "{counts:?}");
    assert_same_counts(&counts, &fx.bullmq_view("st*r", None).await);
    fx.done().await;
}

/// A child whose failure its parent recorded (`failParentOnFailure`:
/// the parent's `unsuccessful` set) is pending for its parent again once
/// retry-all retries it, as BullMQ's `job.retry()` makes it, while a
/// plain job in the same batch only goes back to `wait`.
async fn bullmq_retry_all_makes_a_failed_child_pending_for_its_parent_again(fx: Fixture) {
    let plain = fx.produce("q", 1, &[]).await;
    let reply = run(
        "produce.mjs",
        &[
            fx.url.as_str(),
            fx.prefix.as_str(),
            "q",
            "2",
            "--flow-parent",
            "p",
            "--child-opts",
            r#"{"failParentOnFailure":true}"#,
        ],
    )
    .await;
    let parent = reply["parent"].as_str().expect("parent id").to_owned();
    let mut worker = fx
        .worker("q", &["--fail", "--count", "3", "--drain-delay", "1"])
        .await;
    assert_eq!(worker.finished(3).await.len(), 3);
    worker.wait_exit().await;

    let parent_key = format!("{}:p:{parent}", fx.prefix);
    let mut conn = fx.raw().await;
    let unsuccessful = async |conn: &mut test_support::redis::RawConn| -> Vec<String> {
        redis::cmd("ZRANGE")
            .arg(format!("{parent_key}:unsuccessful"))
            .arg(0)
            .arg(-1)
            .query_async(conn)
            .await
            .expect("zrange")
    };
    assert_eq!(
        unsuccessful(&mut conn).await.len(),
        2,
        "the parent recorded both failures"
    );

    assert_eq!(
        fx.bull
            .retry_all_failed("q", 1000)
            .await
            .expect("retry all"),
        3
    );
    let unsuccessful = unsuccessful(&mut conn).await;
    let mut pending: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{parent_key}:dependencies"))
        .query_async(&mut conn)
        .await
        .expect("smembers");
    pending.sort();
    let mut children: Vec<String> = reply["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| format!("{}:q:{}", fx.prefix, id.as_str().expect("id")))
        .collect();
    children.sort();
    assert!(unsuccessful.is_empty(), "{unsuccessful:?}");
    assert_eq!(pending, children);
    assert!(!pending.contains(&format!("{}:q:{}", fx.prefix, plain[0])));
    let counts = fx.bull.counts("q").await.expect("counts");
    assert_eq!((counts.waiting, counts.failed), (3, 0), "{counts:?}");
    fx.done().await;
}

/// Retry-all takes the failed set's members for job ids without reading
/// each job first, so a set damaged by hand with the names of the queue's
/// own keys (`meta`, a hash; `events`, a stream) must leave those keys as
/// they are, and still retry the real jobs around them.
async fn bullmq_retry_all_leaves_the_queues_own_keys_alone(fx: Fixture) {
    fx.produce("q", 2, &[]).await;
    let mut worker = fx
        .worker("q", &["--fail", "--count", "2", "--drain-delay", "1"])
        .await;
    assert_eq!(worker.finished(2).await.len(), 2);
    worker.wait_exit().await;
    fx.bull.pause("q").await.expect("pause");
    let mut conn = fx.raw().await;
    let key = |suffix: &str| format!("{}:q:{suffix}", fx.prefix);
    let _: () = redis::cmd("ZADD")
        .arg(key("failed"))
        .arg(0)
        .arg("meta")
        .arg(0)
        .arg("events")
        .query_async(&mut conn)
        .await
        .expect("zadd");
    let events_before: u64 = redis::cmd("XLEN")
        .arg(key("events"))
        .query_async(&mut conn)
        .await
        .expect("xlen");

    assert_eq!(
        fx.bull
            .retry_all_failed("q", 1000)
            .await
            .expect("retry all"),
        2
    );
    let counts = fx.bull.counts("q").await.expect("counts");
    assert!(counts.is_paused, "meta kept its paused flag: {counts:?}");
    assert_eq!((counts.paused, counts.failed), (2, 0), "{counts:?}");
    let events_after: u64 = redis::cmd("XLEN")
        .arg(key("events"))
        .query_async(&mut conn)
        .await
        .expect("xlen");
    assert!(
        events_after >= events_before,
        "{events_before} → {events_after}"
    );
    assert_same_counts(&counts, &fx.bullmq_view("q", None).await);
    fx.done().await;
}

async fn bullmq_pause_holds_a_real_worker_and_resume_releases_it(fx: Fixture) {
    let mut ids = fx.produce("q", 2, &[]).await;
    fx.bull.pause("q").await.expect("pause");
    let counts = fx.bull.counts("q").await.expect("counts");
    assert!(counts.is_paused);
    assert_eq!((counts.waiting, counts.paused), (0, 2));
    assert_same_counts(&counts, &fx.bullmq_view("q", None).await);

    let mut worker = fx
        .worker("q", &["--count", "3", "--timeout", "20000"])
        .await;
    // BullMQ itself parks new jobs while the queue is paused.
    ids.extend(fx.produce("q", 1, &[]).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let counts = fx.bull.counts("q").await.expect("counts");
    assert_eq!(
        (counts.paused, counts.active, counts.completed),
        (3, 0, 0),
        "{counts:?}"
    );
    fx.bull.pause("q").await.expect("pausing twice is harmless");

    fx.bull.resume("q").await.expect("resume");
    assert_eq!(worker.finished(3).await, pairs("completed", &ids));
    worker.wait_exit().await;
    let counts = fx.bull.counts("q").await.expect("counts");
    assert!(!counts.is_paused);
    assert_eq!(counts.completed, 3);
    assert_same_counts(&counts, &fx.bullmq_view("q", None).await);
    fx.done().await;
}

async fn bullmq_promote_runs_a_delayed_job_now(fx: Fixture) {
    let ids = fx.produce("q", 1, &["--delay", "60000"]).await;
    let mut worker = fx
        .worker("q", &["--count", "1", "--timeout", "20000"])
        .await;
    let counts = fx.bull.counts("q").await.expect("counts");
    assert_eq!(counts.delayed, 1);
    let delayed = fx
        .bull
        .jobs("q", BullState::Delayed, 0, 10)
        .await
        .expect("delayed");
    assert_eq!(delayed[0].delay, 60_000);

    let started = Instant::now();
    fx.bull.promote("q", &ids[0]).await.expect("promote");
    assert_eq!(worker.finished(1).await, pairs("completed", &ids));
    assert!(started.elapsed() < Duration::from_secs(10));
    worker.wait_exit().await;

    let job = fx
        .bull
        .job("q", &ids[0])
        .await
        .expect("job")
        .expect("exists");
    assert_eq!((job.delay, job.state), (0, Some(BullState::Completed)));
    let err = fx
        .bull
        .promote("q", &ids[0])
        .await
        .expect_err("not delayed");
    assert!(matches!(err, CoordError::BullWrongState { .. }), "{err:?}");
    fx.done().await;
}

async fn bullmq_remove_deletes_a_job_but_never_one_a_worker_holds(fx: Fixture) {
    let ids = fx.produce("q", 2, &[]).await;
    fx.bull.remove("q", &ids[0]).await.expect("remove");
    assert!(fx.bull.job("q", &ids[0]).await.expect("job").is_none());
    let view = fx.bullmq_view("q", Some(&ids[0])).await;
    assert_eq!(view["job"], Value::Null);
    assert_eq!(view["counts"]["waiting"], 1);
    let err = fx.bull.remove("q", &ids[0]).await.expect_err("gone");
    assert!(err.is_not_found(), "{err:?}");

    let mut worker = fx
        .worker(
            "q",
            &["--count", "1", "--work", "2000", "--timeout", "20000"],
        )
        .await;
    let bull = fx.bull.clone();
    eventually("the worker takes the job", || {
        let bull = bull.clone();
        async move { matches!(bull.counts("q").await, Ok(c) if c.active == 1) }
    })
    .await;
    let err = fx.bull.remove("q", &ids[1]).await.expect_err("active");
    assert!(matches!(err, CoordError::BullJobLocked { .. }), "{err:?}");
    assert_eq!(worker.finished(1).await, pairs("completed", &ids[1..]));
    worker.wait_exit().await;
    fx.bull
        .remove("q", &ids[1])
        .await
        .expect("finished jobs can go");
    let events = fx
        .bull
        .read_events(&[("q".to_owned(), "0".to_owned())], Duration::ZERO, 1000)
        .await
        .expect("events");
    let removed: Vec<_> = events
        .iter()
        .filter(|e| e.event == "removed")
        .map(|e| (e.job_id.clone().unwrap_or_default(), e.fields.clone()))
        .collect();
    let prev = |state: &str| vec![("prev".to_owned(), state.to_owned())];
    assert_eq!(
        removed,
        vec![
            (ids[0].clone(), prev("wait")),
            (ids[1].clone(), prev("completed"))
        ]
    );
    let counts = fx.bull.counts("q").await.expect("counts");
    assert_eq!(counts, BullCounts::default());
    fx.done().await;
}

async fn bullmq_clean_removes_old_finished_jobs_only(fx: Fixture) {
    let ids = fx.produce("q", 3, &[]).await;
    let mut worker = fx
        .worker("q", &["--count", "3", "--drain-delay", "1"])
        .await;
    assert_eq!(worker.finished(3).await, pairs("completed", &ids));
    worker.wait_exit().await;

    let hour = Duration::from_secs(3600);
    let cleaned = fx.bull.clean("q", BullState::Completed, hour, 100).await;
    assert_eq!(cleaned.expect("nothing that old"), 0);
    assert_eq!(
        fx.bull
            .clean("q", BullState::Completed, Duration::ZERO, 2)
            .await
            .expect("clean two"),
        2
    );
    assert_eq!(fx.bull.counts("q").await.expect("counts").completed, 1);
    assert_eq!(
        fx.bull
            .clean("q", BullState::Completed, Duration::ZERO, 100)
            .await
            .expect("clean rest"),
        1
    );
    for id in &ids {
        assert!(fx.bull.job("q", id).await.expect("job").is_none());
    }
    assert_same_counts(
        &fx.bull.counts("q").await.expect("counts"),
        &fx.bullmq_view("q", None).await,
    );
    let err = fx
        .bull
        .clean("q", BullState::Waiting, Duration::ZERO, 1)
        .await
        .expect_err("waiting jobs are not cleaned");
    assert!(err.is_bad_input(), "{err:?}");
    let events = fx
        .bull
        .read_events(&[("q".to_owned(), "0".to_owned())], Duration::ZERO, 1000)
        .await
        .expect("events");
    let cleaned: Vec<_> = events
        .iter()
        .filter(|e| e.event == "cleaned")
        .map(|e| e.fields.clone())
        .collect();
    assert!(
        cleaned.contains(&vec![("count".to_owned(), "2".to_owned())]),
        "{cleaned:?}"
    );
    fx.done().await;
}

async fn bullmq_events_from_bullmq_and_from_switchyard_are_read(fx: Fixture) {
    let ids = fx.produce("a", 1, &[]).await;
    let mut worker = fx
        .worker("a", &["--fail", "--count", "1", "--drain-delay", "1"])
        .await;
    worker.finished(1).await;
    worker.wait_exit().await;
    fx.bull.retry_job("a", &ids[0]).await.expect("retry");

    let all = fx
        .bull
        .read_events(&[("a".to_owned(), "0".to_owned())], Duration::ZERO, 1000)
        .await
        .expect("events");
    let names: Vec<&str> = all.iter().map(|e| e.event.as_str()).collect();
    for wanted in ["added", "active", "failed", "waiting"] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    let retried = all.last().expect("an event");
    assert_eq!(retried.event, "waiting");
    assert_eq!(retried.job_id.as_deref(), Some(ids[0].as_str()));
    assert!(
        retried
            .fields
            .contains(&("prev".to_owned(), "failed".to_owned()))
    );
    assert!(all.iter().all(|e| e.queue == "a"));

    // A blocking read over two queues wakes on the next event.
    fx.produce("b", 1, &[]).await;
    let from = vec![
        ("a".to_owned(), retried.id.clone()),
        ("b".to_owned(), "$".to_owned()),
    ];
    let reader = {
        let bull = fx.bull.clone();
        tokio::spawn(async move { bull.read_events(&from, Duration::from_secs(10), 10).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The shared connection stays usable while the read blocks.
    let started = Instant::now();
    fx.bull.counts("a").await.expect("counts while blocked");
    assert!(started.elapsed() < Duration::from_secs(1));
    fx.bull.pause("b").await.expect("pause");
    let got = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the read wakes")
        .expect("task")
        .expect("read");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].queue.as_str(), got[0].event.as_str()),
        ("b", "paused")
    );

    fx.bull.resume("b").await.expect("resume");
    let more = fx
        .bull
        .read_events(
            &[("b".to_owned(), got[0].id.clone())],
            Duration::from_millis(100),
            10,
        )
        .await
        .expect("read on");
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].event, "resumed");
    let none = fx
        .bull
        .read_events(
            &[("b".to_owned(), more[0].id.clone())],
            Duration::from_millis(100),
            10,
        )
        .await
        .expect("timeout is no error");
    assert!(none.is_empty());
    fx.done().await;
}

async fn bullmq_hostile_names_are_refused_everywhere(fx: Fixture) {
    let long = "x".repeat(201);
    for bad in ["a:b", "", "a\nb", long.as_str()] {
        let b = &fx.bull;
        let errors = vec![
            b.counts(bad).await.expect_err("counts"),
            b.jobs(bad, BullState::Waiting, 0, 10)
                .await
                .expect_err("jobs"),
            b.job(bad, "1").await.expect_err("job"),
            b.retry_job(bad, "1").await.expect_err("retry"),
            b.retry_all_failed(bad, 10).await.expect_err("retry all"),
            b.promote(bad, "1").await.expect_err("promote"),
            b.remove(bad, "1").await.expect_err("remove"),
            b.pause(bad).await.expect_err("pause"),
            b.resume(bad).await.expect_err("resume"),
            b.clean(bad, BullState::Completed, Duration::ZERO, 1)
                .await
                .expect_err("clean"),
            b.read_events(&[(bad.to_owned(), "$".to_owned())], Duration::ZERO, 1)
                .await
                .expect_err("events"),
        ];
        for err in errors {
            assert!(
                matches!(err, CoordError::InvalidQueueName { .. }) && err.is_bad_input(),
                "{bad:?}: {err:?}"
            );
        }
    }
    let err = fx.bull.job("q", "").await.expect_err("empty id");
    assert!(err.is_bad_input(), "{err:?}");
    let err = fx
        .bull
        .read_events(
            &[("q".to_owned(), "1; FLUSHALL".to_owned())],
            Duration::ZERO,
            1,
        )
        .await
        .expect_err("bad stream id");
    assert!(err.is_bad_input(), "{err:?}");
    for prefix in ["", "a b"] {
        let err = BullMq::connect(REDIS_URL, prefix)
            .await
            .expect_err("prefix");
        assert!(err.is_bad_input(), "{err:?}");
    }
    assert!("nope".parse::<BullState>().is_err());
    assert!(common::keys_under(&fx.prefix).await.is_empty());
    fx.done().await;
}

#[tokio::test]
async fn bullmq_an_unreachable_redis_is_an_outage_not_a_panic() {
    let port = free_port();
    let err = BullMq::connect(&format!("redis://127.0.0.1:{port}"), "bull")
        .await
        .expect_err("nothing listens");
    assert!(err.is_unavailable(), "{err:?}");

    let server = PrivateRedis::started().await;
    let bull = BullMq::connect(&server.url(), "bull")
        .await
        .expect("connect");
    assert_eq!(
        bull.counts("q").await.expect("counts"),
        BullCounts::default()
    );
    drop(server);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = bull.counts("q").await.expect_err("server gone");
    assert!(err.is_unavailable(), "{err:?}");
    let err = bull
        .read_events(&[("q".to_owned(), "$".to_owned())], Duration::ZERO, 1)
        .await
        .expect_err("server gone");
    assert!(err.is_unavailable(), "{err:?}");
}

/// On a cluster, queues named with their own hash tag (`{a}`, `{b}`) live
/// in different slots: their events are read per slot (one XREAD each,
/// never a CROSSSLOT error), and a queue without any hash tag is refused
/// with the reason rather than failing inside a script.
#[tokio::test]
async fn cluster_bullmq_events_of_queues_in_different_slots_are_read_per_slot() {
    let url = test_support::redis::cluster_url();
    let fx = Fixture::at(&url, unique("bull-slots")).await;
    let (a, b) = ("{sy-a}", "{sy-b}");
    assert_ne!(
        coord::redis::slot(format!("{}:{a}:events", fx.prefix).as_bytes()),
        coord::redis::slot(format!("{}:{b}:events", fx.prefix).as_bytes()),
        "the two queues must live in different slots for this test"
    );
    fx.produce(a, 2, &[]).await;
    fx.produce(b, 3, &[]).await;
    let events = fx
        .bull
        .read_events(
            &[
                (a.to_owned(), "0".to_owned()),
                ("plain".to_owned(), "0".to_owned()),
                (b.to_owned(), "0".to_owned()),
            ],
            Duration::from_secs(1),
            100,
        )
        .await
        .expect("events of both slots; the queue without a hash tag is skipped");
    let added = |queue: &str| {
        events
            .iter()
            .filter(|e| e.queue == queue && e.event == "added")
            .count()
    };
    assert_eq!((added(a), added(b)), (2, 3), "{events:?}");
    assert_eq!(
        fx.bull.discover(10_000).await.expect("discover"),
        vec![a.to_owned(), b.to_owned()]
    );

    // Nothing new: the read waits (part of the poll interval), then answers.
    let last = |queue: &str| {
        events
            .iter()
            .rfind(|e| e.queue == queue)
            .map(|e| e.id.clone())
            .expect("an event")
    };
    let none = fx
        .bull
        .read_events(
            &[(a.to_owned(), last(a)), (b.to_owned(), last(b))],
            Duration::from_millis(200),
            100,
        )
        .await
        .expect("empty read");
    assert!(none.is_empty(), "{none:?}");

    let err = fx.bull.counts("plain").await.expect_err("no hash tag");
    assert!(err.is_bad_input(), "{err}");
    assert!(err.to_string().contains("hash-tagged"), "{err}");
    fx.done().await;
}
