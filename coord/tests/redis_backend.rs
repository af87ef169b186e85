//! Tests of what is specific to the Redis backend: the key layout (one hash
//! slot per queue), events crossing processes through pub/sub, outage
//! behaviour, and the exact state transitions of its Lua scripts. The shared
//! behaviour is covered by the conformance suite.

use std::time::{Duration, Instant};

use coord::CoordError;
use coord::queue::redis::RedisBackend;
use coord::queue::{
    JobError, JobId, JobOptions, JobState, NewJob, Outcome, OutcomeResult, QueueBackend,
    QueueEventKind, Queues, Retention, RetentionPolicy,
};
use serde_json::json;

mod common;

use common::{REDIS_URL, delete_prefix as cleanup, keys_under, queue, unique};
use test_support::redis::{PrivateRedis, free_port};

async fn backend(prefix: &str) -> RedisBackend {
    RedisBackend::connect(REDIS_URL, prefix)
        .await
        .expect("connect to the test Redis at 127.0.0.1:6379")
}

fn job_with(name: &str, options: JobOptions) -> NewJob {
    NewJob::new(name, json!({"n": name})).with_options(options)
}

fn completed(job: &coord::queue::Job, value: serde_json::Value) -> Outcome {
    Outcome {
        job_id: job.id.clone(),
        lease_token: job.lease_token.clone().expect("claimed job has a token"),
        started_at: 1,
        finished_at: 2,
        result: OutcomeResult::Completed { value },
    }
}

fn failed(job: &coord::queue::Job, error: JobError, retry_delay_ms: u64) -> Outcome {
    Outcome {
        job_id: job.id.clone(),
        lease_token: job.lease_token.clone().expect("claimed job has a token"),
        started_at: 1,
        finished_at: 2,
        result: OutcomeResult::Failed {
            error,
            retry_delay_ms,
        },
    }
}

const LEASE: Duration = Duration::from_secs(30);

/// Claims up to `n` waiting jobs of `q` and fails each for good with the
/// reason `reason` gives it, as a worker would; their ids.
async fn fail_next(
    b: &RedisBackend,
    q: &coord::queue::QueueName,
    n: usize,
    reason: impl Fn(&coord::queue::Job) -> String,
) -> Vec<JobId> {
    let claimed = b.step(q, Vec::new(), n, LEASE).await.unwrap().claimed;
    let outcomes = claimed
        .iter()
        .map(|job| failed(job, JobError::new(reason(job)), 0))
        .collect();
    b.step(q, outcomes, 0, LEASE).await.unwrap();
    claimed.into_iter().map(|job| job.id).collect()
}

#[tokio::test]
async fn every_key_of_a_queue_carries_its_hash_tag() {
    let prefix = unique("t");
    let b = backend(&prefix).await;
    let q = queue("tags");
    let delayed = JobOptions {
        delay_ms: 60_000,
        ..JobOptions::default()
    };
    let once = JobOptions {
        attempts: 1,
        ..JobOptions::default()
    };
    b.enqueue_bulk(
        &q,
        vec![
            job_with("a", JobOptions::default()),
            job_with("b", once),
            job_with("c", delayed),
            job_with("d", JobOptions::default()),
            job_with("e", JobOptions::default()),
        ],
    )
    .await
    .unwrap();
    b.set_retention(
        &q,
        RetentionPolicy {
            completed: Retention {
                max_count: Some(10),
                max_age_ms: None,
            },
            failed: Retention::default(),
        },
    )
    .await
    .unwrap();
    let step = b.step(&q, vec![], 2, LEASE).await.unwrap();
    assert_eq!(step.claimed.len(), 2);
    // A log list carries the queue's tag too (`logs:<id>`).
    let token = step.claimed[0].lease_token.clone().unwrap();
    assert!(
        b.append_logs(&q, &step.claimed[0].id, &token, &["hello".to_owned()])
            .await
            .unwrap()
    );
    let outcomes = vec![
        completed(&step.claimed[0], json!(1)),
        failed(&step.claimed[1], JobError::fatal("boom"), 0),
    ];
    b.step(&q, outcomes, 1, LEASE).await.unwrap();
    b.set_paused(&q, true).await.unwrap();
    assert!(
        keys_under(&prefix)
            .await
            .iter()
            .any(|k| k.ends_with(&format!(":logs:{}", step.claimed[0].id)))
    );

    let keys = keys_under(&prefix).await;
    let tag = format!("{{{}}}", q.as_str());
    let mut kinds: Vec<&str> = Vec::new();
    for key in &keys {
        if *key == format!("{prefix}:queues") {
            continue;
        }
        let rest = key
            .strip_prefix(&format!("{prefix}:"))
            .unwrap_or_else(|| panic!("{key} outside the prefix"));
        // Redis hashes the first {...} of a key: it must be the queue's.
        let first_tag = &rest[rest.find('{').unwrap()..=rest.find('}').unwrap()];
        assert_eq!(first_tag, tag, "{key}");
        kinds.push(rest[tag.len() + 1..].split(':').next().unwrap());
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "active",
            "completed",
            "delayed",
            "error",
            "errors",
            "failed",
            "job",
            "logs",
            "meta",
            "name",
            "names",
            "waiting"
        ]
    );
    assert_eq!(b.queues().await.unwrap(), vec![q]);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn events_reach_another_backend_on_the_same_prefix() {
    let prefix = unique("t");
    let producer = backend(&prefix).await;
    let watcher = backend(&prefix).await;
    let mut events = watcher.events();
    let q = queue("ev");
    let ids = producer
        .enqueue_bulk(
            &q,
            vec![
                job_with("a", JobOptions::default()),
                job_with("b", JobOptions::default()),
            ],
        )
        .await
        .unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("open channel");
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].queue, q);
    assert_eq!(batch[0].kind, QueueEventKind::Enqueued);
    assert_eq!(batch[0].job_ids, ids);
    assert!(batch[0].at > 1_600_000_000_000);

    // One step that claims and completes publishes one grouped batch.
    let step = producer.step(&q, vec![], 1, LEASE).await.unwrap();
    let _ = events.recv().await.unwrap();
    producer
        .step(&q, vec![completed(&step.claimed[0], json!(null))], 1, LEASE)
        .await
        .unwrap();
    let batch = events.recv().await.unwrap();
    let kinds: Vec<_> = batch.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [QueueEventKind::Completed, QueueEventKind::Active]);
    assert_eq!(batch[0].job_ids, vec![ids[0].clone()]);
    assert_eq!(batch[1].job_ids, vec![ids[1].clone()]);

    // A malformed message on the channel is skipped, not fatal.
    let mut conn = common::raw_redis().await;
    let _: () = redis::cmd("PUBLISH")
        .arg(format!("{prefix}:events"))
        .arg("not json")
        .query_async(&mut conn)
        .await
        .unwrap();

    // Queue-wide events carry an empty id list.
    producer.set_paused(&q, true).await.unwrap();
    let batch = events.recv().await.unwrap();
    assert_eq!(batch[0].kind, QueueEventKind::Paused);
    assert!(batch[0].job_ids.is_empty());
    cleanup(&prefix).await;
}

#[tokio::test]
async fn dropping_the_backend_stops_its_listener() {
    let prefix = unique("t");
    let b = backend(&prefix).await;
    let mut events = b.events();
    let channel = format!("{prefix}:events");
    let subscribers = || async {
        let mut conn = common::raw_redis().await;
        let reply: (String, u64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut conn)
            .await
            .unwrap();
        reply.1
    };
    assert_eq!(subscribers().await, 1);
    let clone = b.clone();
    drop(b);
    assert_eq!(subscribers().await, 1, "a clone keeps it alive");
    drop(clone);
    let closed = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    assert!(
        matches!(
            closed,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed))
        ),
        "{closed:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while subscribers().await != 0 {
        assert!(
            Instant::now() < deadline,
            "the subscription outlived the backend"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unreachable_redis_is_unavailable_quickly_and_hides_the_password() {
    let start = Instant::now();
    let err = RedisBackend::connect("redis://user:hunter2@127.0.0.1:1", "t")
        .await
        .expect_err("nothing listens on port 1");
    assert!(start.elapsed() < Duration::from_secs(6));
    let CoordError::Unavailable(message) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn bad_prefixes_and_urls_are_rejected() {
    for prefix in ["", "a{b}", "a b"] {
        let err = RedisBackend::connect(REDIS_URL, prefix).await.err();
        assert!(
            matches!(err, Some(CoordError::InvalidOptions(_))),
            "{prefix:?}: {err:?}"
        );
    }
    let err = RedisBackend::connect("http://127.0.0.1:6379", "t")
        .await
        .err();
    assert!(
        matches!(err, Some(CoordError::InvalidOptions(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_job_lives_through_claim_retry_and_completion() {
    let prefix = unique("t");
    let b = backend(&prefix).await;
    let q = queue("life");
    let opts = JobOptions {
        attempts: 2,
        job_id: Some(JobId::new("order-1").unwrap()),
        ..JobOptions::default()
    };
    let ids = b
        .enqueue_bulk(&q, vec![job_with("send", opts.clone())])
        .await
        .unwrap();
    assert_eq!(ids, vec![JobId::new("order-1").unwrap()]);
    // The same id again keeps the first job; a generated id follows.
    let again = b
        .enqueue_bulk(
            &q,
            vec![
                NewJob::new("other", json!(2)).with_options(opts.clone()),
                NewJob::new("gen", json!(3)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(again[0], ids[0]);
    assert_eq!(again[1].as_str(), "1");
    let stored = b.job(&q, &ids[0]).await.unwrap();
    assert_eq!(stored.name, "send");
    assert_eq!(stored.options, opts);
    assert_eq!(stored.state, JobState::Waiting);
    assert_eq!(stored.history, vec![]);

    let step = b.step(&q, vec![], 1, LEASE).await.unwrap();
    let job = &step.claimed[0];
    assert_eq!(job.id, ids[0]);
    assert_eq!(job.state, JobState::Active);
    assert_eq!(job.attempts_made, 1);
    assert!(job.processed_at.is_some());
    assert_eq!(job.data, json!({"n": "send"}));

    // A failed attempt with a delay goes to delayed, keeping the error.
    let error = JobError {
        message: "smtp \"down\"".into(),
        chain: vec!["io: refused".into()],
        retryable: true,
    };
    let step2 = b
        .step(&q, vec![failed(job, error, 60_000)], 0, LEASE)
        .await
        .unwrap();
    assert!(step2.stale.is_empty());
    let due = step2.next_due_at.expect("a delayed job");
    let delayed = b.job(&q, &ids[0]).await.unwrap();
    assert_eq!(delayed.state, JobState::Delayed);
    assert_eq!(delayed.run_at, Some(due));
    assert_eq!(delayed.failed_reason.as_deref(), Some("smtp \"down\""));
    assert_eq!(delayed.stacktrace, vec!["io: refused".to_string()]);
    assert_eq!(delayed.history.len(), 1);
    assert_eq!(delayed.history[0].attempt, 1);
    assert_eq!(delayed.history[0].error.as_deref(), Some("smtp \"down\""));
    assert_eq!(delayed.lease_token, None);

    // The old token is stale now.
    let stale = b
        .step(&q, vec![completed(job, json!(0))], 0, LEASE)
        .await
        .unwrap();
    assert_eq!(stale.stale, vec![ids[0].clone()]);

    b.promote(&q, &ids[0]).await.unwrap();
    assert!(matches!(
        b.promote(&q, &ids[0]).await,
        Err(CoordError::WrongState {
            actual: JobState::Waiting,
            expected: JobState::Delayed,
            ..
        })
    ));
    // Same priority: the promoted job queues behind the generated one.
    let step3 = b.step(&q, vec![], 5, LEASE).await.unwrap();
    let order: Vec<&str> = step3.claimed.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(order, ["1", "order-1"]);
    let second = &step3.claimed[1];
    assert_eq!(second.attempts_made, 2);
    assert!(matches!(
        b.remove(&q, &second.id).await,
        Err(CoordError::JobActive { .. })
    ));
    b.step(
        &q,
        vec![
            completed(second, json!({"ok": true})),
            failed(&step3.claimed[0], JobError::fatal("bad input"), 0),
        ],
        0,
        LEASE,
    )
    .await
    .unwrap();
    let done = b.job(&q, &ids[0]).await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.return_value, Some(json!({"ok": true})));
    assert_eq!(done.history.len(), 2);
    assert_eq!(done.history[1].error, None);
    assert!(done.finished_at.is_some());

    let counts = b.counts(&q).await.unwrap();
    assert_eq!(
        (
            counts.waiting,
            counts.active,
            counts.completed,
            counts.failed
        ),
        (0, 0, 1, 1)
    );
    assert_eq!((counts.completed_total, counts.failed_total), (1, 1));

    b.retry(&q, &again[1]).await.unwrap();
    assert!(matches!(
        b.retry(&q, &again[1]).await,
        Err(CoordError::WrongState {
            actual: JobState::Waiting,
            expected: JobState::Failed,
            ..
        })
    ));
    let retried = b.job(&q, &again[1]).await.unwrap();
    assert_eq!(retried.attempts_made, 0);
    assert_eq!(retried.failed_reason, None);
    assert_eq!(retried.finished_at, None);
    assert_eq!(retried.history.len(), 1);
    assert_eq!(b.counts(&q).await.unwrap().retried_total, 1);

    let page = b.list(&q, JobState::Completed, 0, 10, None).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.jobs[0].id, ids[0]);

    b.remove(&q, &ids[0]).await.unwrap();
    assert!(matches!(
        b.job(&q, &ids[0]).await,
        Err(CoordError::JobNotFound { .. })
    ));
    assert!(matches!(
        b.counts(&queue("nope")).await,
        Err(CoordError::QueueNotFound(_))
    ));
    let empty = b.step(&queue("nope"), vec![], 10, LEASE).await.unwrap();
    assert!(
        b.queues()
            .await
            .unwrap()
            .iter()
            .all(|q| q.as_str() != "nope")
    );
    assert!(empty.claimed.is_empty() && empty.next_due_at.is_none());
    cleanup(&prefix).await;
}

#[tokio::test]
async fn generated_ids_skip_ids_taken_by_callers() {
    let prefix = unique("t");
    let b = backend(&prefix).await;
    let q = queue("ids");
    let taken = JobOptions {
        job_id: Some(JobId::new("2").unwrap()),
        ..JobOptions::default()
    };
    b.enqueue_bulk(&q, vec![job_with("x", taken)])
        .await
        .unwrap();
    let ids = b
        .enqueue_bulk(
            &q,
            (0..3)
                .map(|i| job_with(&format!("g{i}"), JobOptions::default()))
                .collect(),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = ids.iter().map(JobId::as_str).collect();
    assert_eq!(ids, ["1", "3", "4"]);
    assert_eq!(
        b.job(&q, &JobId::new("2").unwrap()).await.unwrap().name,
        "x"
    );
    let page = b.list(&q, JobState::Waiting, 1, 2, None).await.unwrap();
    assert_eq!(page.total, 4);
    let names: Vec<&str> = page.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["g1", "g0"]);
    let beyond = b.list(&q, JobState::Waiting, 100, 10, None).await.unwrap();
    assert!(beyond.jobs.is_empty());
    assert_eq!(beyond.total, 4);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn odd_names_and_payloads_survive_a_claim() {
    let prefix = unique("t");
    let b = backend(&prefix).await;
    let q = queue("odd");
    let name = "nul\0in \"the\" name \u{e9}";
    let data = json!({"text": "x\u{0}y", "emoji": "\u{1F600}", "big": 12345678901234567u64});
    b.enqueue_bulk(&q, vec![NewJob::new(name, data.clone())])
        .await
        .unwrap();
    let claimed = b.step(&q, vec![], 1, LEASE).await.unwrap().claimed;
    assert_eq!(claimed[0].name, name);
    assert_eq!(claimed[0].data, data);
    let error = JobError {
        message: "reason\0with nul".into(),
        chain: vec!["a\0b".into()],
        retryable: true,
    };
    b.step(&q, vec![failed(&claimed[0], error, 0)], 0, LEASE)
        .await
        .unwrap();
    let again = b.step(&q, vec![], 1, LEASE).await.unwrap().claimed;
    assert_eq!(again[0].name, name);
    assert_eq!(again[0].failed_reason.as_deref(), Some("reason\0with nul"));
    assert_eq!(again[0].stacktrace, vec!["a\0b".to_string()]);
    assert_eq!(again[0].history.len(), 1);
    assert_eq!(again[0], b.job(&q, &again[0].id).await.unwrap());
    // Outcomes of both kinds in one step, a stale one first.
    let mixed = b
        .step(
            &q,
            vec![
                failed(&claimed[0], JobError::new("late"), 0),
                completed(&again[0], json!("done")),
            ],
            0,
            LEASE,
        )
        .await
        .unwrap();
    assert_eq!(mixed.stale, vec![claimed[0].id.clone()]);
    let done = b.job(&q, &again[0].id).await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.return_value, Some(json!("done")));
    cleanup(&prefix).await;
}

#[tokio::test]
async fn priorities_pause_and_retention() {
    let prefix = unique("t");
    let b = backend(&prefix).await;
    let q = queue("prio");
    let jobs = (0..6)
        .map(|i| {
            let o = JobOptions {
                priority: [5, 0, 4095, 0, 5, 1][i],
                ..JobOptions::default()
            };
            job_with(&format!("j{i}"), o)
        })
        .collect();
    b.enqueue_bulk(&q, jobs).await.unwrap();
    b.set_paused(&q, true).await.unwrap();
    assert!(
        b.step(&q, vec![], 10, LEASE)
            .await
            .unwrap()
            .claimed
            .is_empty()
    );
    assert!(b.counts(&q).await.unwrap().paused);
    b.set_paused(&q, false).await.unwrap();
    let claimed = b.step(&q, vec![], 10, LEASE).await.unwrap().claimed;
    let names: Vec<&str> = claimed.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["j1", "j3", "j5", "j0", "j4", "j2"]);
    // The active set's internal anchor member is never seen as a job.
    let active = b.list(&q, JobState::Active, 0, 10, None).await.unwrap();
    assert_eq!((active.total, active.jobs.len()), (6, 6));
    let second = b.list(&q, JobState::Active, 5, 10, None).await.unwrap();
    assert_eq!(second.jobs.len(), 1);
    assert_eq!(b.counts(&q).await.unwrap().active, 6);

    let policy = RetentionPolicy {
        completed: Retention {
            max_count: Some(2),
            max_age_ms: None,
        },
        failed: Retention {
            max_count: None,
            max_age_ms: Some(3_600_000),
        },
    };
    b.set_retention(&q, policy).await.unwrap();
    assert_eq!(b.retention(&q).await.unwrap(), policy);
    let outcomes = claimed.iter().map(|j| completed(j, json!(1))).collect();
    b.step(&q, outcomes, 0, LEASE).await.unwrap();
    let counts = b.counts(&q).await.unwrap();
    assert_eq!((counts.completed, counts.completed_total), (2, 6));
    assert_eq!(counts.active, 0);
    assert_eq!(
        b.list(&q, JobState::Active, 0, 10, None)
            .await
            .unwrap()
            .total,
        0
    );
    // The newest two survive, and the trimmed job hashes are gone.
    let kept = b.list(&q, JobState::Completed, 0, 10, None).await.unwrap();
    assert_eq!(kept.total, 2);
    assert_eq!(
        keys_under(&prefix)
            .await
            .iter()
            .filter(|k| k.contains(":job:"))
            .count(),
        2
    );

    b.set_retention(
        &q,
        RetentionPolicy {
            completed: Retention {
                max_count: Some(0),
                max_age_ms: None,
            },
            failed: Retention::default(),
        },
    )
    .await
    .unwrap();
    assert_eq!(b.clean(&q, 1).await.unwrap(), 1);
    assert_eq!(b.clean(&q, 10).await.unwrap(), 1);
    assert_eq!(b.clean(&q, 10).await.unwrap(), 0);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn expired_leases_are_recovered() {
    let prefix = unique("t");
    let b = backend(&prefix).await;
    let q = queue("stall");
    let one = JobOptions {
        attempts: 1,
        ..JobOptions::default()
    };
    let ids = b
        .enqueue_bulk(
            &q,
            vec![job_with("a", JobOptions::default()), job_with("b", one)],
        )
        .await
        .unwrap();
    let claimed = b
        .step(&q, vec![], 2, Duration::from_millis(1))
        .await
        .unwrap()
        .claimed;
    assert_eq!(claimed.len(), 2);
    let held: Vec<(JobId, String)> = claimed
        .iter()
        .map(|j| (j.id.clone(), j.lease_token.clone().unwrap()))
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = b.recover_stalled(&q, 1).await.unwrap();
    assert_eq!(report.requeued, vec![ids[0].clone()]);
    assert_eq!(report.failed, vec![ids[1].clone()]);
    let lost = b.extend_leases(&q, &held, LEASE).await.unwrap();
    assert_eq!(lost.len(), 2);
    let dead = b.job(&q, &ids[1]).await.unwrap();
    assert_eq!(dead.state, JobState::Failed);
    assert_eq!(
        dead.failed_reason.as_deref(),
        Some("job stalled and has no attempts left")
    );
    assert_eq!(dead.history.len(), 1);
    let back = b.job(&q, &ids[0]).await.unwrap();
    assert_eq!((back.state, back.stalled_count), (JobState::Waiting, 1));
    let counts = b.counts(&q).await.unwrap();
    assert_eq!((counts.stalled_total, counts.failed_total), (2, 1));

    // A live lease is extended, not lost.
    let again = b.step(&q, vec![], 1, LEASE).await.unwrap().claimed;
    let held = vec![(again[0].id.clone(), again[0].lease_token.clone().unwrap())];
    assert!(b.extend_leases(&q, &held, LEASE).await.unwrap().is_empty());
    assert!(b.recover_stalled(&q, 1).await.unwrap().requeued.is_empty());
    assert_eq!(b.retry_failed_batch(&q, 10).await.unwrap(), 1);
    assert_eq!(b.retry_failed_batch(&q, 10).await.unwrap(), 0);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn survives_a_redis_restart() {
    let port = free_port();
    let server = PrivateRedis::start(port);
    server.ready().await;
    let b = RedisBackend::connect(&server.url(), "restart")
        .await
        .unwrap();
    let mut events = b.events();
    let q = queue("restart");
    b.enqueue_bulk(&q, vec![job_with("a", JobOptions::default())])
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();

    drop(server);
    let err = b.counts(&q).await.expect_err("Redis is down");
    assert!(
        matches!(err, CoordError::Unavailable(_) | CoordError::Redis(_)),
        "{err:?}"
    );
    // Calls fail soon rather than waiting for Redis to come back, so that
    // callers can apply their own backoff.
    let t = Instant::now();
    assert!(b.step(&q, vec![], 1, LEASE).await.is_err());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    let server = PrivateRedis::start(port);
    server.ready().await;
    // Commands come back (the data is gone: the server kept nothing).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match b
            .enqueue_bulk(&q, vec![job_with("b", JobOptions::default())])
            .await
        {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("backend did not recover: {e:?}"),
        }
    }
    // And so do events, once the listener has resubscribed.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut received = false;
    while !received && Instant::now() < deadline {
        b.set_paused(&q, false).await.unwrap();
        if let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(300), events.recv()).await
        {
            received = batch.iter().any(|e| e.kind == QueueEventKind::Resumed);
        }
    }
    assert!(received, "events did not resume after the restart");
    drop(server);
}

/// Retry-all reads its batch with one SORT and writes each record without
/// reading it first, so a failed set damaged by hand must still drain: a
/// member whose record is gone leaves no stub record behind, a member
/// whose key is no hash is left alone, and the real failed jobs around
/// them are retried, in failure order.
#[tokio::test]
async fn retry_all_drains_a_failed_set_damaged_by_hand() {
    let prefix = unique("t");
    let b = backend(&prefix).await;
    let q = queue("damaged");
    let once = JobOptions {
        attempts: 1,
        ..JobOptions::default()
    };
    let ids = b
        .enqueue_bulk(
            &q,
            (0..3)
                .map(|n| job_with(&format!("j{n}"), once.clone()))
                .collect(),
        )
        .await
        .unwrap();
    let step = b.step(&q, vec![], 3, LEASE).await.unwrap();
    let outcomes = step
        .claimed
        .iter()
        .map(|job| failed(job, JobError::fatal("boom"), 0))
        .collect();
    b.step(&q, outcomes, 0, LEASE).await.unwrap();

    let mut conn = common::raw_redis().await;
    let failed_key = format!("{prefix}:{{{q}}}:failed");
    let job_key = |id: &str| format!("{prefix}:{{{q}}}:job:{id}");
    // Scores 0: the damaged members come first, in the same batch as the
    // real jobs.
    let _: () = redis::cmd("ZADD")
        .arg(&failed_key)
        .arg(0)
        .arg("gone")
        .arg(0)
        .arg("text")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(job_key("text"))
        .arg("not a record")
        .query_async(&mut conn)
        .await
        .unwrap();

    let retried = Queues::new(std::sync::Arc::new(backend(&prefix).await))
        .retry_all_failed(&q, 1000, |_| {})
        .await
        .unwrap();
    assert_eq!(retried, 3);
    let left: u64 = redis::cmd("ZCARD")
        .arg(&failed_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "the damaged members left the failed set");
    let stub: bool = redis::cmd("EXISTS")
        .arg(job_key("gone"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!stub, "no record was made up for the missing job");
    let text: String = redis::cmd("GET")
        .arg(job_key("text"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(text, "not a record");
    let counts = b.counts(&q).await.unwrap();
    assert_eq!((counts.waiting, counts.failed), (3, 0), "{counts:?}");
    let step = b.step(&q, vec![], 3, LEASE).await.unwrap();
    let order: Vec<_> = step.claimed.iter().map(|job| job.id.clone()).collect();
    assert_eq!(order, ids, "retried in failure order");
    for job in &step.claimed {
        assert_eq!(job.attempts_made, 1, "a fresh attempt budget");
        assert_eq!(job.failed_reason, None);
    }
    cleanup(&prefix).await;
}

/// Every way a job is deleted takes its log list along: removal, a
/// group's removal, and retention.
#[tokio::test]
async fn deleted_jobs_leave_no_log_list() {
    let prefix = unique("t");
    let b = backend(&prefix).await;
    let q = queue("logs-gone");
    let once = JobOptions {
        attempts: 1,
        ..JobOptions::default()
    };
    b.enqueue_bulk(&q, (0..3).map(|_| job_with("a", once.clone())).collect())
        .await
        .unwrap();
    let step = b.step(&q, vec![], 3, LEASE).await.unwrap();
    for job in &step.claimed {
        let token = job.lease_token.clone().unwrap();
        assert!(
            b.append_logs(&q, &job.id, &token, &["line".to_owned()])
                .await
                .unwrap()
        );
    }
    let logs = || async {
        keys_under(&prefix)
            .await
            .into_iter()
            .filter(|k| k.contains(":logs:"))
            .count()
    };
    assert_eq!(logs().await, 3);
    let [one, two, three] = &step.claimed[..] else {
        panic!("three claimed");
    };
    let outcomes = vec![
        completed(one, json!(1)),
        failed(two, JobError::fatal("boom"), 0),
        completed(three, json!(1)),
    ];
    b.step(&q, outcomes, 0, LEASE).await.unwrap();
    b.remove(&q, &one.id).await.unwrap();
    assert_eq!(logs().await, 2, "removal");
    let group = b.error_groups(&q, 10).await.unwrap().groups[0].id;
    b.error_group_batch(&q, group, coord::errors::GroupAction::Remove, 10)
        .await
        .unwrap();
    assert_eq!(logs().await, 1, "a group's removal");
    b.set_retention(
        &q,
        RetentionPolicy {
            completed: Retention {
                max_count: Some(0),
                max_age_ms: None,
            },
            failed: Retention::default(),
        },
    )
    .await
    .unwrap();
    b.clean(&q, 100).await.unwrap();
    assert_eq!(logs().await, 0, "retention");
    cleanup(&prefix).await;
}

/// `name:` and `error:` read the indexes the scripts keep, so a job far
/// older than the newest a scan reads is found, and the search says it
/// read everything; the name index stays bounded (newest names, newest
/// ids per name) and skips ids whose job is gone.
#[tokio::test]
async fn name_and_error_searches_read_their_indexes_and_stay_bounded() {
    use coord::search::SearchQuery;
    let prefix = unique("t");
    let b = std::sync::Arc::new(backend(&prefix).await);
    let q = queue("indexed");
    let queues = Queues::new(b.clone());
    let once = JobOptions {
        attempts: 1,
        ..JobOptions::default()
    };
    // An old declined card under 1,200 newer failures, and an old welcome
    // mail under 3,000 newer waiting jobs: both beyond what a scan reads.
    b.enqueue_bulk(&q, vec![job_with("charge", once.clone())])
        .await
        .unwrap();
    fail_next(&b, &q, 1, |_| "card declined for order 8812".into()).await;
    let noise = (0..1200).map(|_| job_with("sync", once.clone())).collect();
    b.enqueue_bulk(&q, noise).await.unwrap();
    for _ in 0..12 {
        fail_next(&b, &q, 100, |_| "timeout after 30000 ms".into()).await;
    }
    assert_eq!(queues.counts(&q).await.unwrap().failed, 1201);
    let welcome = b
        .enqueue_bulk(&q, vec![job_with("welcome", once.clone())])
        .await
        .unwrap();
    for _ in 0..3 {
        let jobs = (0..1000)
            .map(|_| job_with("digest", once.clone()))
            .collect();
        b.enqueue_bulk(&q, jobs).await.unwrap();
    }
    let search = |text: &str| {
        let queues = queues.clone();
        let query = SearchQuery::parse(text).unwrap();
        async move { queues.search(&query, 50).await.unwrap() }
    };
    let scan = search("welcome").await;
    assert!(
        scan.hits.is_empty(),
        "too old for the scan: {:?}",
        scan.hits
    );
    assert!(!scan.complete, "and the scan says it was partial");
    let found = search("name:welc").await;
    assert_eq!(found.hits.len(), 1, "{:?}", found.hits);
    assert_eq!(found.hits[0].id, welcome[0]);
    assert!(found.complete, "{}", found.searched);
    assert!(found.searched.contains("name index"), "{}", found.searched);
    let declined = search("error:\"order 9999\"").await;
    assert!(declined.hits.is_empty(), "its own reason decides");
    let declined = search("error:\"declined for order 8812\"").await;
    assert_eq!(declined.hits.len(), 1, "{:?}", declined.hits);
    assert!(declined.complete, "{}", declined.searched);
    assert!(
        declined.searched.contains("error groups"),
        "{}",
        declined.searched
    );

    // A removed job is gone from the answer, though its id stays indexed.
    let gone = b
        .enqueue_bulk(&q, vec![job_with("farewell", once.clone())])
        .await
        .unwrap();
    b.remove(&q, &gone[0]).await.unwrap();
    assert!(search("name:farewell").await.hits.is_empty());

    // Bounded: 5,000 ids per name (older ones trimmed, said), 50 names.
    let mut conn = redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let base = format!("{prefix}:{{{}}}:", q.as_str());
    let size: u64 = redis::cmd("LLEN")
        .arg(format!("{base}name:digest"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(size, 3000);
    let more = (0..2500)
        .map(|_| job_with("digest", once.clone()))
        .collect();
    b.enqueue_bulk(&q, more).await.unwrap();
    let size: u64 = redis::cmd("LLEN")
        .arg(format!("{base}name:digest"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(size, 5000);
    assert!(!search("name:digest").await.complete);
    for n in 0..60 {
        b.enqueue_bulk(&q, vec![job_with(&format!("kind-{n}"), once.clone())])
            .await
            .unwrap();
    }
    let names: u64 = redis::cmd("ZCARD")
        .arg(format!("{base}names"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(names, 50);
    let dropped: bool = redis::cmd("EXISTS")
        .arg(format!("{base}name:welcome"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!dropped, "the oldest names' sets go with them");
    // Names that take turns, one job a call, stay bounded too.
    for _ in 0..5200 {
        for name in ["charge", "receipt"] {
            b.enqueue_bulk(&q, vec![job_with(name, once.clone())])
                .await
                .unwrap();
        }
    }
    for name in ["charge", "receipt"] {
        let len: u64 = redis::cmd("LLEN")
            .arg(format!("{base}name:{name}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((5000..=5064).contains(&len), "{name}: {len}");
    }
    let newest = search("name:kind-59").await;
    assert_eq!(newest.hits.len(), 1);
    assert!(
        !newest.complete,
        "a queue at 50 names may have dropped some"
    );
    cleanup(&prefix).await;
}

/// Failed jobs written before error groups existed (no `error_group`, no
/// group keys) are booked into their groups when the queue's groups are
/// first read, placed at their own failure time, and only once.
#[tokio::test]
async fn failed_jobs_from_before_error_groups_are_booked_once() {
    let prefix = unique("t");
    let b = std::sync::Arc::new(backend(&prefix).await);
    let q = queue("upgraded");
    let queues = Queues::new(b.clone());
    let once = JobOptions {
        attempts: 1,
        ..JobOptions::default()
    };
    // 1,200 failures, a hundred a step (so many share a millisecond, and
    // the walk crosses runs of equal scores between its batches).
    let mut ids = Vec::new();
    for _ in 0..12 {
        let jobs = (0..100).map(|_| job_with("charge", once.clone())).collect();
        b.enqueue_bulk(&q, jobs).await.unwrap();
        let batch = fail_next(&b, &q, 100, |job| {
            let n: u64 = job.id.as_str().parse().unwrap();
            if n.is_multiple_of(3) {
                "SMTP 550 mailbox unavailable".to_owned()
            } else {
                format!("card declined for order {}", 8000 + n)
            }
        })
        .await;
        ids.extend(batch);
    }
    let before = queues.error_groups(&q, 100).await.unwrap();
    // Strip what the groups keep, as a build before them would have left,
    // and date the SMTP failures two hours back.
    let mut conn = redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let base = format!("{prefix}:{{{}}}:", q.as_str());
    let old = (coord::time::now_ms() - 2 * 3_600_000).to_string();
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.hdel(format!("{base}job:{}", id.as_str()), "error_group");
        if id.as_str().parse::<u64>().unwrap().is_multiple_of(3) {
            pipe.hset(format!("{base}job:{}", id.as_str()), "finished_at", &old);
        }
    }
    for group in &before.groups {
        pipe.del(format!("{base}error:{}", group.id))
            .del(format!("{base}error:{}:jobs", group.id));
    }
    pipe.del(format!("{base}errors")).hdel(
        format!("{base}meta"),
        &[
            "groups_backfilled",
            "groups_backfill",
            "groups_backfill_until",
        ],
    );
    let _: () = pipe.query_async(&mut conn).await.unwrap();

    let sizes = |groups: &coord::errors::ErrorGroups| {
        let mut s: Vec<(String, u64)> = groups
            .groups
            .iter()
            .map(|g| (g.normalised(), g.failed))
            .collect();
        s.sort();
        s
    };
    // 1,000 a read: the first read books part, the second the rest.
    let first = queues.error_groups(&q, 100).await.unwrap();
    let booked: u64 = first.groups.iter().map(|g| g.failed).sum();
    assert_eq!(booked, 1000, "{first:?}");
    let after = queues.error_groups(&q, 100).await.unwrap();
    assert_eq!(sizes(&after), sizes(&before));
    assert_eq!(
        sizes(&after),
        vec![
            ("SMTP 550 mailbox unavailable".to_owned(), 400),
            ("card declined for order #".to_owned(), 800)
        ]
    );
    // Once: a third read books nothing more.
    let again = queues.error_groups(&q, 100).await.unwrap();
    assert_eq!(sizes(&again), sizes(&after));
    let smtp = after
        .groups
        .iter()
        .find(|g| g.normalised().starts_with("SMTP"))
        .unwrap();
    let trends = queues
        .error_trends(&q, &[smtp.id], coord::time::now_ms())
        .await
        .unwrap();
    assert_eq!(
        trends[0].iter().sum::<u32>(),
        0,
        "placed at their own failure time, two hours back"
    );
    assert!(smtp.last_seen < coord::time::now_ms() - 3_600_000);
    cleanup(&prefix).await;
}
