//! The queue conformance suite: every case is written once against
//! [`Queues`] and run against the embedded (SQLite) backend and the Redis
//! backend, so the two deployments cannot drift apart.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use coord::CoordError;
use coord::queue::{
    Backoff, JobError, JobId, JobOptions, JobState, NewJob, Outcome, OutcomeResult, QueueEventKind,
    QueueName, Queues, Retention, RetentionPolicy,
};
use coord::time::now_ms;
use serde_json::{Value, json};

use common::{eventually, queue, until_state};

per_backend!(
    enqueue_then_read_back,
    caller_id_makes_enqueue_idempotent,
    bulk_enqueue_keeps_order,
    priority_then_fifo,
    delayed_job_runs_when_due,
    promote_delayed_job,
    completion_is_recorded,
    failure_retries_then_dies,
    retry_delay_moves_job_to_delayed,
    fatal_error_skips_remaining_attempts,
    stale_lease_outcome_is_ignored,
    retry_failed_job_once,
    retry_all_failed_in_batches,
    remove_rules,
    pause_and_resume,
    listing_is_newest_first_and_paginated,
    clipped_listing_leaves_out_long_values_where_they_are_stored,
    retention_keeps_newest_completed,
    retention_by_age,
    stalled_job_is_requeued_then_failed,
    extended_lease_is_not_stalled,
    unknown_queue_and_job,
    bad_input_is_rejected_and_writes_nothing,
    events_are_published,
    worker_processes_everything,
    killed_worker_job_completes_later,
    worker_times_out_long_jobs,
    worker_retries_with_backoff,
    worker_rejects_bad_settings,
    shutdown_records_running_jobs,
    health_reports_latency,
);

const LEASE: Duration = Duration::from_secs(30);

fn data(n: u64) -> Value {
    json!({ "n": n })
}

fn job(n: u64) -> NewJob {
    NewJob::new("test", data(n))
}

fn with(options: JobOptions) -> NewJob {
    job(0).with_options(options)
}

fn opts() -> JobOptions {
    JobOptions::default()
}

fn completed(job_id: &JobId, token: &str, value: Value) -> Outcome {
    Outcome {
        job_id: job_id.clone(),
        lease_token: token.to_string(),
        started_at: now_ms(),
        finished_at: now_ms(),
        result: OutcomeResult::Completed { value },
    }
}

fn failed(job_id: &JobId, token: &str, error: JobError, retry_delay_ms: u64) -> Outcome {
    Outcome {
        job_id: job_id.clone(),
        lease_token: token.to_string(),
        started_at: now_ms(),
        finished_at: now_ms(),
        result: OutcomeResult::Failed {
            error,
            retry_delay_ms,
        },
    }
}

/// Claims up to `n` jobs with no outcomes.
async fn claim(q: &Queues, queue: &QueueName, n: usize) -> Vec<coord::queue::Job> {
    q.backend()
        .step(queue, Vec::new(), n, LEASE)
        .await
        .expect("step")
        .claimed
}

/// Claims exactly one job and returns it.
async fn claim_one(q: &Queues, queue: &QueueName) -> coord::queue::Job {
    let mut jobs = claim(q, queue, 1).await;
    assert_eq!(jobs.len(), 1, "expected one job to claim");
    jobs.remove(0)
}

async fn settle(q: &Queues, queue: &QueueName, outcomes: Vec<Outcome>) -> coord::queue::StepResult {
    q.backend()
        .step(queue, outcomes, 0, LEASE)
        .await
        .expect("step")
}

fn token(job: &coord::queue::Job) -> String {
    job.lease_token
        .clone()
        .expect("a claimed job carries its lease token")
}

/// Makes a job that is in the failed set, with one failed attempt.
async fn make_failed(q: &Queues, queue: &QueueName, n: u64) -> JobId {
    let id = q
        .enqueue(
            queue,
            job(n).with_options(JobOptions {
                attempts: 1,
                ..opts()
            }),
        )
        .await
        .expect("enqueue");
    let claimed = claim_one(q, queue).await;
    assert_eq!(claimed.id, id);
    settle(
        q,
        queue,
        vec![failed(&id, &token(&claimed), JobError::new("boom"), 0)],
    )
    .await;
    id
}

mod cases {
    use super::*;

    pub async fn enqueue_then_read_back(q: Queues) {
        let queue = queue("read");
        let id = q
            .enqueue(
                &queue,
                NewJob::new("send-email", json!({"to": "a@example.com"})),
            )
            .await
            .unwrap();
        let job = q.job(&queue, &id).await.unwrap();
        assert_eq!(job.id, id);
        assert_eq!(job.queue, queue);
        assert_eq!(job.name, "send-email");
        assert_eq!(job.data, json!({"to": "a@example.com"}));
        assert_eq!(job.state, JobState::Waiting);
        assert_eq!(job.attempts_made, 0);
        assert_eq!(job.options, JobOptions::default());
        assert!(job.created_at > 0 && job.created_at <= now_ms() + 1000);
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(counts.waiting, 1);
        assert_eq!(
            counts.active + counts.delayed + counts.completed + counts.failed,
            0
        );
        assert!(!counts.paused);
        assert!(q.queues().await.unwrap().contains(&queue));
    }

    pub async fn caller_id_makes_enqueue_idempotent(q: Queues) {
        let queue = queue("idem");
        let given = JobId::new("order-42").unwrap();
        let first = NewJob::new("charge", json!({"amount": 1})).with_options(JobOptions {
            job_id: Some(given.clone()),
            ..opts()
        });
        let second = NewJob::new("charge", json!({"amount": 2})).with_options(JobOptions {
            job_id: Some(given.clone()),
            ..opts()
        });
        assert_eq!(q.enqueue(&queue, first).await.unwrap(), given);
        assert_eq!(q.enqueue(&queue, second).await.unwrap(), given);
        assert_eq!(q.counts(&queue).await.unwrap().waiting, 1);
        assert_eq!(
            q.job(&queue, &given).await.unwrap().data,
            json!({"amount": 1})
        );
        let generated_a = q.enqueue(&queue, job(1)).await.unwrap();
        let generated_b = q.enqueue(&queue, job(2)).await.unwrap();
        assert_ne!(generated_a, generated_b);
    }

    pub async fn bulk_enqueue_keeps_order(q: Queues) {
        let queue = queue("bulk");
        let ids = q
            .enqueue_bulk(&queue, (0..100).map(job).collect())
            .await
            .unwrap();
        assert_eq!(ids.len(), 100);
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 100);
        for (n, id) in ids.iter().enumerate().step_by(17) {
            assert_eq!(q.job(&queue, id).await.unwrap().data, data(n as u64));
        }
        assert_eq!(q.counts(&queue).await.unwrap().waiting, 100);
        // Claim order is enqueue order for equal priorities.
        let claimed: Vec<JobId> = claim(&q, &queue, 100)
            .await
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(claimed, ids);
    }

    pub async fn priority_then_fifo(q: Queues) {
        let queue = queue("prio");
        let mut ids = Vec::new();
        for priority in [5, 0, 5, 1, 0] {
            let id = q
                .enqueue(&queue, with(JobOptions { priority, ..opts() }))
                .await
                .unwrap();
            ids.push(id);
        }
        let mut order = Vec::new();
        for _ in 0..5 {
            order.push(claim_one(&q, &queue).await.id);
        }
        assert_eq!(
            order,
            vec![
                ids[1].clone(),
                ids[4].clone(),
                ids[3].clone(),
                ids[0].clone(),
                ids[2].clone()
            ]
        );
    }

    pub async fn delayed_job_runs_when_due(q: Queues) {
        let queue = queue("delay");
        let before = now_ms();
        let id = q
            .enqueue(
                &queue,
                with(JobOptions {
                    delay_ms: 300,
                    ..opts()
                }),
            )
            .await
            .unwrap();
        let job = q.job(&queue, &id).await.unwrap();
        assert_eq!(job.state, JobState::Delayed);
        let run_at = job.run_at.expect("a delayed job has run_at");
        assert!(
            run_at >= before + 300 - 50,
            "run_at {run_at} vs enqueue {before}"
        );
        assert_eq!(q.counts(&queue).await.unwrap().delayed, 1);
        let step = q
            .backend()
            .step(&queue, Vec::new(), 1, LEASE)
            .await
            .unwrap();
        assert!(
            step.claimed.is_empty(),
            "a delayed job is not claimable early"
        );
        assert_eq!(step.next_due_at, Some(run_at));
        let q2 = q.clone();
        let queue2 = queue.clone();
        eventually("the delayed job becomes claimable", move || {
            let q = q2.clone();
            let queue = queue2.clone();
            async move { !claim(&q, &queue, 1).await.is_empty() }
        })
        .await;
        // Compared on the backend's own clock (Redis uses its server's).
        let claimed = q.job(&queue, &id).await.unwrap();
        assert_eq!(claimed.state, JobState::Active);
        assert!(claimed.processed_at.expect("processed_at") >= run_at);
    }

    pub async fn promote_delayed_job(q: Queues) {
        let queue = queue("promote");
        let id = q
            .enqueue(
                &queue,
                with(JobOptions {
                    delay_ms: 3_600_000,
                    ..opts()
                }),
            )
            .await
            .unwrap();
        q.promote(&queue, &id).await.unwrap();
        assert_eq!(q.job(&queue, &id).await.unwrap().state, JobState::Waiting);
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!((counts.waiting, counts.delayed), (1, 0));
        let again = q.promote(&queue, &id).await.unwrap_err();
        assert!(
            matches!(
                again,
                CoordError::WrongState {
                    actual: JobState::Waiting,
                    expected: JobState::Delayed,
                    ..
                }
            ),
            "{again:?}"
        );
        assert_eq!(claim_one(&q, &queue).await.id, id);
    }

    pub async fn completion_is_recorded(q: Queues) {
        let queue = queue("complete");
        let id = q.enqueue(&queue, job(7)).await.unwrap();
        let claimed = claim_one(&q, &queue).await;
        assert_eq!(claimed.id, id);
        assert_eq!(claimed.state, JobState::Active);
        assert_eq!(claimed.attempts_made, 1);
        assert_eq!(claimed.data, data(7));
        assert!(claimed.processed_at.is_some());
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!((counts.waiting, counts.active), (0, 1));

        let result = settle(
            &q,
            &queue,
            vec![completed(&id, &token(&claimed), json!({"ok": true}))],
        )
        .await;
        assert!(result.stale.is_empty());
        let done = q.job(&queue, &id).await.unwrap();
        assert_eq!(done.state, JobState::Completed);
        assert_eq!(done.return_value, Some(json!({"ok": true})));
        assert!(done.finished_at.is_some());
        assert_eq!(done.history.len(), 1);
        assert_eq!(done.history[0].attempt, 1);
        assert_eq!(done.history[0].error, None);
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(
            (counts.active, counts.completed, counts.completed_total),
            (0, 1, 1)
        );
    }

    pub async fn failure_retries_then_dies(q: Queues) {
        let queue = queue("fail");
        let id = q
            .enqueue(
                &queue,
                with(JobOptions {
                    attempts: 2,
                    ..opts()
                }),
            )
            .await
            .unwrap();
        let first = claim_one(&q, &queue).await;
        let error = JobError {
            message: "upstream said 503".into(),
            chain: vec!["http error".into(), "connection reset".into()],
            retryable: true,
        };
        settle(
            &q,
            &queue,
            vec![failed(&id, &token(&first), error.clone(), 0)],
        )
        .await;
        let retrying = q.job(&queue, &id).await.unwrap();
        assert_eq!(retrying.state, JobState::Waiting);
        assert_eq!(retrying.failed_reason.as_deref(), Some("upstream said 503"));
        assert_eq!(q.counts(&queue).await.unwrap().failed, 0);

        let second = claim_one(&q, &queue).await;
        assert_eq!(second.attempts_made, 2);
        assert_ne!(
            token(&first),
            token(&second),
            "each claim gets a fresh lease"
        );
        settle(
            &q,
            &queue,
            vec![failed(&id, &token(&second), JobError::new("still down"), 0)],
        )
        .await;
        let dead = q.job(&queue, &id).await.unwrap();
        assert_eq!(dead.state, JobState::Failed);
        assert_eq!(dead.failed_reason.as_deref(), Some("still down"));
        assert_eq!(dead.history.len(), 2);
        assert_eq!(dead.history[0].error.as_deref(), Some("upstream said 503"));
        assert_eq!(dead.history[0].chain, error.chain);
        assert_eq!(dead.history[1].attempt, 2);
        assert!(dead.finished_at.is_some());
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(
            (
                counts.failed,
                counts.failed_total,
                counts.waiting,
                counts.active
            ),
            (1, 1, 0, 0)
        );
    }

    pub async fn retry_delay_moves_job_to_delayed(q: Queues) {
        let queue = queue("backoff");
        let id = q.enqueue(&queue, job(1)).await.unwrap();
        let claimed = claim_one(&q, &queue).await;
        let before = now_ms();
        settle(
            &q,
            &queue,
            vec![failed(
                &id,
                &token(&claimed),
                JobError::new("later"),
                60_000,
            )],
        )
        .await;
        let job = q.job(&queue, &id).await.unwrap();
        assert_eq!(job.state, JobState::Delayed);
        assert!(job.run_at.expect("run_at") >= before + 59_000);
        assert_eq!(q.counts(&queue).await.unwrap().delayed, 1);
    }

    pub async fn fatal_error_skips_remaining_attempts(q: Queues) {
        let queue = queue("fatal");
        let id = q
            .enqueue(
                &queue,
                with(JobOptions {
                    attempts: 5,
                    ..opts()
                }),
            )
            .await
            .unwrap();
        let claimed = claim_one(&q, &queue).await;
        settle(
            &q,
            &queue,
            vec![failed(
                &id,
                &token(&claimed),
                JobError::fatal("bad payload"),
                0,
            )],
        )
        .await;
        let job = q.job(&queue, &id).await.unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.attempts_made, 1);
    }

    pub async fn stale_lease_outcome_is_ignored(q: Queues) {
        let queue = queue("stale");
        let id = q.enqueue(&queue, job(1)).await.unwrap();
        let claimed = claim_one(&q, &queue).await;
        let result = settle(
            &q,
            &queue,
            vec![completed(&id, "not-the-token", Value::Null)],
        )
        .await;
        assert_eq!(result.stale, vec![id.clone()]);
        assert_eq!(q.job(&queue, &id).await.unwrap().state, JobState::Active);
        let result = settle(
            &q,
            &queue,
            vec![completed(&id, &token(&claimed), Value::Null)],
        )
        .await;
        assert!(result.stale.is_empty());
        // Settling the same outcome twice changes nothing the second time.
        let again = settle(
            &q,
            &queue,
            vec![completed(&id, &token(&claimed), Value::Null)],
        )
        .await;
        assert_eq!(again.stale, vec![id.clone()]);
        assert_eq!(q.counts(&queue).await.unwrap().completed_total, 1);
    }

    pub async fn retry_failed_job_once(q: Queues) {
        let queue = queue("retry");
        let id = make_failed(&q, &queue, 1).await;
        q.retry(&queue, &id).await.unwrap();
        let job = q.job(&queue, &id).await.unwrap();
        assert_eq!(job.state, JobState::Waiting);
        assert_eq!(job.attempts_made, 0);
        assert_eq!(job.history.len(), 1, "history survives a retry");
        let second = q.retry(&queue, &id).await.unwrap_err();
        assert!(
            matches!(
                second,
                CoordError::WrongState {
                    actual: JobState::Waiting,
                    expected: JobState::Failed,
                    ..
                }
            ),
            "{second:?}"
        );
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(
            (counts.waiting, counts.failed, counts.retried_total),
            (1, 0, 1)
        );
        let missing = q
            .retry(&queue, &JobId::new("nope").unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(missing, CoordError::JobNotFound { .. }),
            "{missing:?}"
        );
    }

    pub async fn retry_all_failed_in_batches(q: Queues) {
        let queue = queue("retryall");
        let mut ids = Vec::new();
        for n in 0..25 {
            ids.push(make_failed(&q, &queue, n).await);
        }
        assert_eq!(q.counts(&queue).await.unwrap().failed, 25);
        let mut progress = Vec::new();
        let retried = q
            .retry_all_failed(&queue, 10, |done| progress.push(done))
            .await
            .unwrap();
        assert_eq!(retried, 25);
        assert_eq!(progress, vec![10, 20, 25]);
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(
            (counts.failed, counts.waiting, counts.retried_total),
            (0, 25, 25)
        );
        // Oldest failures are retried first, so they also run first.
        assert_eq!(claim_one(&q, &queue).await.id, ids[0]);
        // A second "retry all" finds nothing: no job is retried twice.
        assert_eq!(q.retry_all_failed(&queue, 10, |_| {}).await.unwrap(), 0);
        assert!(q.retry_all_failed(&queue, 0, |_| {}).await.is_err());
    }

    pub async fn remove_rules(q: Queues) {
        let queue = queue("remove");
        let waiting = q.enqueue(&queue, job(1)).await.unwrap();
        q.remove(&queue, &waiting).await.unwrap();
        assert!(matches!(
            q.job(&queue, &waiting).await,
            Err(CoordError::JobNotFound { .. })
        ));
        assert_eq!(q.counts(&queue).await.unwrap().waiting, 0);
        let again = q.remove(&queue, &waiting).await.unwrap_err();
        assert!(matches!(again, CoordError::JobNotFound { .. }), "{again:?}");

        let active = q.enqueue(&queue, job(2)).await.unwrap();
        claim_one(&q, &queue).await;
        let err = q.remove(&queue, &active).await.unwrap_err();
        assert!(matches!(err, CoordError::JobActive { .. }), "{err:?}");
        assert_eq!(q.counts(&queue).await.unwrap().active, 1);

        let dead = make_failed(&q, &queue, 3).await;
        q.remove(&queue, &dead).await.unwrap();
        assert_eq!(q.counts(&queue).await.unwrap().failed, 0);
    }

    pub async fn pause_and_resume(q: Queues) {
        let queue = queue("pause");
        q.enqueue(&queue, job(1)).await.unwrap();
        q.pause(&queue).await.unwrap();
        assert!(q.counts(&queue).await.unwrap().paused);
        assert!(
            claim(&q, &queue, 5).await.is_empty(),
            "a paused queue hands out nothing"
        );
        // Producers keep enqueueing while paused.
        q.enqueue(&queue, job(2)).await.unwrap();
        assert_eq!(q.counts(&queue).await.unwrap().waiting, 2);
        q.resume(&queue).await.unwrap();
        assert!(!q.counts(&queue).await.unwrap().paused);
        assert_eq!(claim(&q, &queue, 5).await.len(), 2);
        // Pausing an unseen queue registers it, so operators can pause
        // before the first job arrives.
        let fresh = super::queue("pause-fresh");
        q.pause(&fresh).await.unwrap();
        assert!(q.counts(&fresh).await.unwrap().paused);
    }

    pub async fn listing_is_newest_first_and_paginated(q: Queues) {
        let queue = queue("list");
        let ids = q
            .enqueue_bulk(&queue, (0..5).map(job).collect())
            .await
            .unwrap();
        let page = q.list(&queue, JobState::Waiting, 0, 2).await.unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(
            page.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
            vec![ids[4].clone(), ids[3].clone()]
        );
        let page = q.list(&queue, JobState::Waiting, 4, 2).await.unwrap();
        assert_eq!(
            page.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
            vec![ids[0].clone()]
        );
        let beyond = q.list(&queue, JobState::Waiting, 10, 2).await.unwrap();
        assert!(beyond.jobs.is_empty());
        assert_eq!(beyond.total, 5);
        assert!(q.list(&queue, JobState::Waiting, 0, 0).await.is_err());
        assert!(q.list(&queue, JobState::Waiting, 0, 501).await.is_err());

        // Failed jobs list the most recent failure first.
        let failed_queue = super::queue("list-failed");
        let first = make_failed(&q, &failed_queue, 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = make_failed(&q, &failed_queue, 2).await;
        let page = q
            .list(&failed_queue, JobState::Failed, 0, 10)
            .await
            .unwrap();
        assert_eq!(
            page.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
            vec![second, first]
        );
        assert_eq!(page.jobs[0].failed_reason.as_deref(), Some("boom"));
    }

    pub async fn clipped_listing_leaves_out_long_values_where_they_are_stored(q: Queues) {
        let queue = queue("clip");
        let big = "é".repeat(300_000);
        let small = q
            .enqueue(&queue, NewJob::new("small", json!({ "n": 1 })))
            .await
            .unwrap();
        let large = q
            .enqueue(&queue, NewJob::new("large", json!({ "blob": big })))
            .await
            .unwrap();
        let page = q
            .list_clipped(&queue, JobState::Waiting, 0, 10, 1_000)
            .await
            .unwrap();
        assert_eq!(page.total, 2);
        let (l, s) = (&page.jobs[0], &page.jobs[1]);
        assert_eq!((&l.id, &s.id), (&large, &small));
        assert!(s.clipped.is_empty(), "{:?}", s.clipped);
        assert_eq!(s.data, json!({ "n": 1 }));
        // The large value is left out (its length read, never the value),
        // with its whole size (JSON text: 2 bytes per "é").
        assert_eq!(l.clipped.len(), 1, "{:?}", l.clipped);
        assert_eq!(l.clipped[0].field, "data");
        assert_eq!(l.clipped[0].bytes, 600_011);
        assert_eq!(l.data, Value::Null);
        assert_eq!(l.name, "large", "the rest of the job is there");
        // Unclipped listings and the job itself are whole.
        let whole = q.list(&queue, JobState::Waiting, 0, 1).await.unwrap();
        assert!(whole.jobs[0].clipped.is_empty());
        assert_eq!(
            whole.jobs[0].data["blob"].as_str().map(str::len),
            Some(600_000)
        );
        let job = q.job(&queue, &large).await.unwrap();
        assert!(job.clipped.is_empty());
        assert_eq!(job.data["blob"].as_str().map(str::len), Some(600_000));
        // One job, clipped the same way; under the clip, whole.
        let one = q.job_clipped(&queue, &large, 1_000).await.unwrap();
        assert_eq!(one.clipped, l.clipped);
        assert_eq!(one.data, Value::Null);
        let one = q.job_clipped(&queue, &large, 1_000_000).await.unwrap();
        assert!(one.clipped.is_empty());
        assert_eq!(one, job);
        let missing = JobId::new("no-such-job").unwrap();
        assert!(matches!(
            q.job_clipped(&queue, &missing, 1_000).await,
            Err(CoordError::JobNotFound { .. })
        ));
        assert!(
            q.list_clipped(&queue, JobState::Waiting, 0, 10, 0)
                .await
                .is_err()
        );

        // A failure's long reason, stack trace and history are cut too.
        let failing = super::queue("clip-failed");
        q.enqueue(&failing, NewJob::new("doomed", json!({})))
            .await
            .unwrap();
        let job = claim_one(&q, &failing).await;
        let reason = format!("upstream said {}", "no ".repeat(2_000));
        let error = JobError {
            message: reason.clone(),
            chain: vec!["x".repeat(5_000)],
            retryable: false,
        };
        settle(&q, &failing, vec![failed(&job.id, &token(&job), error, 0)]).await;
        let page = q
            .list_clipped(&failing, JobState::Failed, 0, 10, 1_000)
            .await
            .unwrap();
        let clipped: Vec<&str> = page.jobs[0]
            .clipped
            .iter()
            .map(|c| c.field.as_str())
            .collect();
        assert!(clipped.contains(&"failedReason"), "{clipped:?}");
        assert!(clipped.contains(&"stacktrace"), "{clipped:?}");
        assert!(clipped.contains(&"history"), "{clipped:?}");
        assert_eq!(page.jobs[0].failed_reason, None);
        assert!(page.jobs[0].stacktrace.is_empty());
        assert!(page.jobs[0].history.is_empty());
        let whole = q.job(&failing, &job.id).await.unwrap();
        assert_eq!(whole.failed_reason.as_deref(), Some(reason.as_str()));
    }

    pub async fn retention_keeps_newest_completed(q: Queues) {
        let queue = queue("keep");
        let policy = RetentionPolicy {
            completed: Retention {
                max_count: Some(3),
                max_age_ms: None,
            },
            failed: Retention::default(),
        };
        q.set_retention(&queue, policy).await.unwrap();
        assert_eq!(q.retention(&queue).await.unwrap(), policy);
        let ids = q
            .enqueue_bulk(&queue, (0..5).map(job).collect())
            .await
            .unwrap();
        for _ in 0..5 {
            let claimed = claim_one(&q, &queue).await;
            settle(
                &q,
                &queue,
                vec![completed(&claimed.id, &token(&claimed), Value::Null)],
            )
            .await;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(counts.completed, 3);
        assert_eq!(
            counts.completed_total, 5,
            "totals are not reduced by retention"
        );
        assert!(matches!(
            q.job(&queue, &ids[0]).await,
            Err(CoordError::JobNotFound { .. })
        ));
        assert!(matches!(
            q.job(&queue, &ids[1]).await,
            Err(CoordError::JobNotFound { .. })
        ));
        assert_eq!(
            q.job(&queue, &ids[4]).await.unwrap().state,
            JobState::Completed
        );
    }

    pub async fn retention_by_age(q: Queues) {
        let queue = queue("age");
        for n in 0..3 {
            make_failed(&q, &queue, n).await;
        }
        q.set_retention(
            &queue,
            RetentionPolicy {
                completed: Retention::default(),
                failed: Retention {
                    max_count: None,
                    max_age_ms: Some(50),
                },
            },
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let removed = q.clean(&queue, 100).await.unwrap();
        assert_eq!(removed, 3);
        assert_eq!(q.counts(&queue).await.unwrap().failed, 0);
    }

    pub async fn stalled_job_is_requeued_then_failed(q: Queues) {
        let queue = queue("stall");
        let id = q.enqueue(&queue, job(1)).await.unwrap();
        let short = Duration::from_millis(100);
        let first = q
            .backend()
            .step(&queue, Vec::new(), 1, short)
            .await
            .unwrap()
            .claimed;
        assert_eq!(first.len(), 1);
        assert!(
            q.recover_stalled(&queue, 1)
                .await
                .unwrap()
                .requeued
                .is_empty(),
            "lease still valid"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let report = q.recover_stalled(&queue, 1).await.unwrap();
        assert_eq!(report.requeued, vec![id.clone()]);
        let job = q.job(&queue, &id).await.unwrap();
        assert_eq!((job.state, job.stalled_count), (JobState::Waiting, 1));
        assert_eq!(q.counts(&queue).await.unwrap().stalled_total, 1);
        // The stalled worker's late outcome is refused: its lease is gone.
        let late = settle(
            &q,
            &queue,
            vec![completed(&id, &token(&first[0]), Value::Null)],
        )
        .await;
        assert_eq!(late.stale, vec![id.clone()]);

        q.backend()
            .step(&queue, Vec::new(), 1, short)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let report = q.recover_stalled(&queue, 1).await.unwrap();
        assert_eq!(report.failed, vec![id.clone()]);
        let job = q.job(&queue, &id).await.unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert!(job.failed_reason.expect("reason").contains("stalled"));
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(
            (counts.failed, counts.active, counts.stalled_total),
            (1, 0, 2)
        );
    }

    pub async fn extended_lease_is_not_stalled(q: Queues) {
        let queue = queue("extend");
        let id = q.enqueue(&queue, job(1)).await.unwrap();
        let claimed = q
            .backend()
            .step(&queue, Vec::new(), 1, Duration::from_millis(300))
            .await
            .unwrap()
            .claimed;
        let held = vec![(id.clone(), token(&claimed[0]))];
        let lost = q
            .backend()
            .extend_leases(&queue, &held, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(lost.is_empty());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            q.recover_stalled(&queue, 1)
                .await
                .unwrap()
                .requeued
                .is_empty()
        );
        let wrong = vec![(id.clone(), "stolen".to_string())];
        let lost = q
            .backend()
            .extend_leases(&queue, &wrong, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(lost, vec![id]);
    }

    pub async fn unknown_queue_and_job(q: Queues) {
        let queue = queue("unknown");
        assert!(matches!(
            q.counts(&queue).await,
            Err(CoordError::QueueNotFound(_))
        ));
        assert!(matches!(
            q.list(&queue, JobState::Failed, 0, 10).await,
            Err(CoordError::QueueNotFound(_))
        ));
        assert!(!q.queues().await.unwrap().contains(&queue));
        q.enqueue(&queue, job(1)).await.unwrap();
        let missing = JobId::new("999999").unwrap();
        let err = q.job(&queue, &missing).await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        assert!(matches!(
            q.remove(&queue, &missing).await,
            Err(CoordError::JobNotFound { .. })
        ));
        assert!(matches!(
            q.promote(&queue, &missing).await,
            Err(CoordError::JobNotFound { .. })
        ));
        // A worker may start before any producer: stepping an unseen queue
        // is not an error.
        let fresh = super::queue("unseen");
        assert!(claim(&q, &fresh, 5).await.is_empty());
    }

    pub async fn bad_input_is_rejected_and_writes_nothing(q: Queues) {
        let queue = queue("bad");
        let negative = q
            .enqueue(
                &queue,
                with(JobOptions {
                    delay_ms: -5,
                    ..opts()
                }),
            )
            .await
            .unwrap_err();
        assert!(
            negative.is_bad_input() && negative.to_string().contains("negative"),
            "{negative}"
        );
        let zero = q
            .enqueue(
                &queue,
                with(JobOptions {
                    attempts: 0,
                    ..opts()
                }),
            )
            .await
            .unwrap_err();
        assert!(zero.is_bad_input(), "{zero}");
        let prio = q
            .enqueue(
                &queue,
                with(JobOptions {
                    priority: 100_000,
                    ..opts()
                }),
            )
            .await
            .unwrap_err();
        assert!(prio.is_bad_input(), "{prio}");
        let jitter = q
            .enqueue(
                &queue,
                with(JobOptions {
                    backoff: Backoff::Exponential {
                        delay_ms: 10,
                        jitter: 2.0,
                    },
                    ..opts()
                }),
            )
            .await
            .unwrap_err();
        assert!(jitter.is_bad_input(), "{jitter}");
        // One bad job in a bulk rejects the whole bulk.
        let bulk = vec![
            job(1),
            with(JobOptions {
                delay_ms: -1,
                ..opts()
            }),
        ];
        assert!(q.enqueue_bulk(&queue, bulk).await.is_err());
        assert!(
            matches!(q.counts(&queue).await, Err(CoordError::QueueNotFound(_))),
            "nothing was written"
        );

        assert!(matches!(
            NewJob::from_json_text("x", "{not json"),
            Err(CoordError::MalformedData(_))
        ));
        assert!(QueueName::new("has space").is_err());
        assert!(QueueName::new("").is_err());
        assert!(QueueName::new("{slot}").is_err());
        assert!(JobId::new("a/b").is_err());
    }

    pub async fn events_are_published(q: Queues) {
        let queue = queue("events");
        let mut events = q.events();
        let id = q.enqueue(&queue, job(1)).await.unwrap();
        let claimed = claim_one(&q, &queue).await;
        settle(
            &q,
            &queue,
            vec![completed(&id, &token(&claimed), Value::Null)],
        )
        .await;
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !seen.contains(&QueueEventKind::Completed) {
            let batch = tokio::time::timeout_at(deadline, events.recv())
                .await
                .expect("events arrive")
                .expect("event stream open");
            for event in batch.iter().filter(|e| e.queue == queue) {
                assert!(event.at > 0);
                if event.kind != QueueEventKind::Paused {
                    assert_eq!(event.job_ids, vec![id.clone()], "{event:?}");
                }
                seen.push(event.kind);
            }
        }
        assert_eq!(
            seen,
            vec![
                QueueEventKind::Enqueued,
                QueueEventKind::Active,
                QueueEventKind::Completed
            ]
        );
    }

    pub async fn worker_processes_everything(q: Queues) {
        let queue = queue("worker");
        let ids = q
            .enqueue_bulk(
                &queue,
                (0..200)
                    .map(|n| {
                        job(n).with_options(JobOptions {
                            attempts: 1,
                            ..opts()
                        })
                    })
                    .collect(),
            )
            .await
            .unwrap();
        let worker = q
            .worker(queue.clone())
            .concurrency(8)
            .start(|job| async move {
                let n = job.data["n"].as_u64().unwrap_or(0);
                if n % 10 == 0 {
                    Err(JobError::new(format!("job {n} fails on purpose")))
                } else {
                    Ok(json!({ "double": n * 2 }))
                }
            })
            .unwrap();
        let (q2, queue2) = (q.clone(), queue.clone());
        eventually("all 200 jobs finish", move || {
            let (q, queue) = (q2.clone(), queue2.clone());
            async move {
                let c = q.counts(&queue).await.unwrap();
                c.completed + c.failed == 200
            }
        })
        .await;
        let stats = worker.shutdown(Duration::from_secs(5)).await;
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(
            (
                counts.completed,
                counts.failed,
                counts.active,
                counts.waiting
            ),
            (180, 20, 0, 0)
        );
        assert_eq!(
            (stats.completed, stats.failed, stats.in_flight),
            (180, 20, 0)
        );
        assert_eq!(
            q.job(&queue, &ids[3]).await.unwrap().return_value,
            Some(json!({"double": 6}))
        );
        assert_eq!(
            q.job(&queue, &ids[10])
                .await
                .unwrap()
                .failed_reason
                .as_deref(),
            Some("job 10 fails on purpose")
        );
    }

    pub async fn killed_worker_job_completes_later(q: Queues) {
        let queue = queue("crash");
        let id = q.enqueue(&queue, job(1)).await.unwrap();
        // The first worker takes the job and hangs; then it is killed the
        // way a crashed process stops: no outcome, no more heartbeats.
        let doomed = q
            .worker(queue.clone())
            .lease(Duration::from_millis(300))
            .start(|_job| async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(Value::Null)
            })
            .unwrap();
        until_state(
            &q,
            &queue,
            &id,
            JobState::Active,
            "the first worker takes the job",
        )
        .await;
        doomed.kill();

        let rescuer = q
            .worker(queue.clone())
            .lease(Duration::from_millis(300))
            .stalled_interval(Duration::from_millis(100))
            .start(|job| async move { Ok(json!({ "rescued": job.id.to_string() })) })
            .unwrap();
        until_state(
            &q,
            &queue,
            &id,
            JobState::Completed,
            "the stalled job completes on the second worker",
        )
        .await;
        rescuer.shutdown(Duration::from_secs(5)).await;
        let job = q.job(&queue, &id).await.unwrap();
        assert_eq!(job.stalled_count, 1);
        assert_eq!(job.attempts_made, 2);
        assert_eq!(job.return_value, Some(json!({ "rescued": id.to_string() })));
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(
            (counts.completed, counts.stalled_total, counts.active),
            (1, 1, 0)
        );
    }

    pub async fn worker_times_out_long_jobs(q: Queues) {
        let queue = queue("timeout");
        let id = q
            .enqueue(
                &queue,
                with(JobOptions {
                    attempts: 1,
                    timeout_ms: Some(100),
                    ..opts()
                }),
            )
            .await
            .unwrap();
        let worker = q
            .worker(queue.clone())
            .start(|_job| async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(Value::Null)
            })
            .unwrap();
        until_state(&q, &queue, &id, JobState::Failed, "the job times out").await;
        worker.shutdown(Duration::from_secs(1)).await;
        let job = q.job(&queue, &id).await.unwrap();
        assert!(job.failed_reason.expect("reason").contains("timed out"));
    }

    pub async fn worker_retries_with_backoff(q: Queues) {
        let queue = queue("retries");
        let id = q
            .enqueue(
                &queue,
                with(JobOptions {
                    attempts: 3,
                    backoff: Backoff::Fixed { delay_ms: 50 },
                    ..opts()
                }),
            )
            .await
            .unwrap();
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let worker = q
            .worker(queue.clone())
            .poll_interval(Duration::from_millis(50))
            .start(move |job| {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    if job.attempts_made < 3 {
                        Err(JobError::new(format!(
                            "attempt {} failed",
                            job.attempts_made
                        )))
                    } else {
                        Ok(json!("third time lucky"))
                    }
                }
            })
            .unwrap();
        until_state(
            &q,
            &queue,
            &id,
            JobState::Completed,
            "the job completes on its third attempt",
        )
        .await;
        worker.shutdown(Duration::from_secs(1)).await;
        let job = q.job(&queue, &id).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(job.attempts_made, 3);
        let errors: Vec<_> = job.history.iter().map(|a| a.error.clone()).collect();
        assert_eq!(
            errors,
            vec![
                Some("attempt 1 failed".into()),
                Some("attempt 2 failed".into()),
                None
            ]
        );
        // Each retry waited at least its backoff.
        assert!(job.history[1].started_at >= job.history[0].finished_at + 45);
    }

    pub async fn worker_rejects_bad_settings(q: Queues) {
        let queue = queue("settings");
        let zero = q
            .worker(queue.clone())
            .concurrency(0)
            .start(|_job| async move { Ok(Value::Null) });
        assert!(matches!(zero, Err(CoordError::InvalidWorker(_))));
        let tiny = q
            .worker(queue)
            .lease(Duration::from_millis(1))
            .start(|_job| async move { Ok(Value::Null) });
        assert!(matches!(tiny, Err(CoordError::InvalidWorker(_))));
    }

    pub async fn shutdown_records_running_jobs(q: Queues) {
        let queue = queue("shutdown");
        let id = q.enqueue(&queue, job(1)).await.unwrap();
        let worker = q
            .worker(queue.clone())
            .start(|_job| async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(json!("finished during shutdown"))
            })
            .unwrap();
        until_state(
            &q,
            &queue,
            &id,
            JobState::Active,
            "the worker takes the job",
        )
        .await;
        let stats = worker.shutdown(Duration::from_secs(5)).await;
        assert_eq!(stats.completed, 1);
        assert_eq!(q.job(&queue, &id).await.unwrap().state, JobState::Completed);
    }

    pub async fn health_reports_latency(q: Queues) {
        let health = q.health().await.unwrap();
        assert!(health.latency < Duration::from_secs(5));
    }
}
