//! Error groups, written once against [`Queues`] and run on every backend:
//! counts stay exact through every way a job enters or leaves the failed
//! set (fail, stalled, retry, retry-all, group retry and remove, removal,
//! retention), because the group list is kept, never recomputed.

#[macro_use]
mod common;

use std::time::Duration;

use coord::errors::{GroupAction, GroupId, TREND_BUCKETS};
use coord::queue::{
    JobError, JobId, JobOptions, JobState, NewJob, Outcome, OutcomeResult, QueueName, Queues,
    Retention, RetentionPolicy,
};
use coord::time::now_ms;
use serde_json::json;

use common::queue;

per_backend!(
    groups_fold_reasons_and_follow_fail_retry_fail,
    group_actions_retry_and_remove_exactly_the_group,
    every_way_out_of_the_failed_set_leaves_the_group,
    stalled_failures_and_retries_in_flight,
    trends_and_group_listing,
    retrying_jobs_are_listed_until_they_run_again,
    stopping_retries_fails_the_job_into_its_group_marked,
);

const LEASE: Duration = Duration::from_secs(30);

/// Enqueues a job of `name` with one attempt and fails it with `reason`.
async fn fail(q: &Queues, queue: &QueueName, name: &str, reason: &str) -> JobId {
    let id = q
        .enqueue(
            queue,
            NewJob::new(name, json!({ "to": "someone" })).with_options(JobOptions {
                attempts: 1,
                ..JobOptions::default()
            }),
        )
        .await
        .expect("enqueue");
    fail_claimed(q, queue, &id, reason, 0).await;
    id
}

/// Claims the next job (which must be `id`) and fails it with `reason`.
async fn fail_claimed(q: &Queues, queue: &QueueName, id: &JobId, reason: &str, delay: u64) {
    let claimed = q
        .backend()
        .step(queue, Vec::new(), 1, LEASE)
        .await
        .expect("claim")
        .claimed;
    assert_eq!(claimed.len(), 1, "one job to claim");
    assert_eq!(&claimed[0].id, id);
    let outcome = Outcome {
        job_id: id.clone(),
        lease_token: claimed[0].lease_token.clone().expect("token"),
        started_at: now_ms(),
        finished_at: now_ms(),
        result: OutcomeResult::Failed {
            error: JobError::new(reason),
            retry_delay_ms: delay,
        },
    };
    let stepped = q
        .backend()
        .step(queue, vec![outcome], 0, LEASE)
        .await
        .expect("settle");
    assert!(stepped.stale.is_empty());
}

/// The queue's groups as (normalised reason, failed) sorted by reason.
async fn sizes(q: &Queues, queue: &QueueName) -> Vec<(String, u64)> {
    let mut groups: Vec<(String, u64)> = q
        .error_groups(queue, 100)
        .await
        .expect("groups")
        .groups
        .iter()
        .map(|g| (g.normalised(), g.failed))
        .collect();
    groups.sort();
    groups
}

fn card() -> GroupId {
    GroupId::of_reason("card declined for order 8812")
}

mod cases {
    use super::*;

    pub async fn groups_fold_reasons_and_follow_fail_retry_fail(q: Queues) {
        let queue = queue("eg-cycle");
        assert!(q.error_groups(&queue, 10).await.is_err(), "unknown queue");
        q.enqueue(&queue, NewJob::new("warm-up", json!({})))
            .await
            .unwrap();
        q.backend()
            .step(&queue, Vec::new(), 1, LEASE)
            .await
            .unwrap();
        assert_eq!(q.error_groups(&queue, 10).await.unwrap().total, 0);
        let a = fail(&q, &queue, "charge", "card declined for order 8812").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let b = fail(&q, &queue, "refund", "card declined for order 9120").await;
        let c = fail(&q, &queue, "welcome", "SMTP 550 mailbox unavailable").await;
        let d = fail(&q, &queue, "welcome", "SMTP 421 try again later").await;
        let groups = q.error_groups(&queue, 10).await.unwrap();
        assert_eq!(groups.total, 3);
        let cards = groups
            .groups
            .iter()
            .find(|g| g.id == card())
            .expect("the card group");
        assert_eq!(cards.failed, 2);
        assert_eq!(cards.normalised(), "card declined for order #");
        assert_eq!(
            cards.sample_job,
            b.as_str(),
            "the newest failure is the sample"
        );
        assert_eq!(cards.sample_reason, "card declined for order 9120");
        assert!(cards.first_seen < cards.last_seen, "{cards:?}");
        assert_eq!(
            cards.names,
            vec![("charge".to_owned(), 1), ("refund".to_owned(), 1)]
        );
        // The most recently failed first.
        assert_eq!(groups.groups[0].sample_job, d.as_str());
        assert_eq!(q.error_groups(&queue, 1).await.unwrap().groups.len(), 1);

        // fail → retry → fail: the count follows each move exactly.
        q.retry(&queue, &a).await.unwrap();
        assert_eq!(
            sizes(&q, &queue).await,
            vec![
                ("SMTP 421 try again later".to_owned(), 1),
                ("SMTP 550 mailbox unavailable".to_owned(), 1),
                ("card declined for order #".to_owned(), 1),
            ]
        );
        fail_claimed(&q, &queue, &a, "card declined for order 7777", 0).await;
        assert_eq!(
            sizes(&q, &queue).await[2],
            ("card declined for order #".to_owned(), 2)
        );
        let cards = q.error_groups(&queue, 10).await.unwrap();
        let cards = cards.groups.iter().find(|g| g.id == card()).unwrap();
        assert_eq!(cards.sample_job, a.as_str());
        // A retry that fails for another reason moves to that group.
        q.retry(&queue, &c).await.unwrap();
        fail_claimed(&q, &queue, &c, "SMTP 421 try again later", 0).await;
        assert_eq!(
            sizes(&q, &queue).await,
            vec![
                ("SMTP 421 try again later".to_owned(), 2),
                ("card declined for order #".to_owned(), 2),
            ]
        );
        // The counts add up to the failed set.
        assert_eq!(q.counts(&queue).await.unwrap().failed, 4);
    }

    pub async fn group_actions_retry_and_remove_exactly_the_group(q: Queues) {
        let queue = queue("eg-act");
        let mut cards = Vec::new();
        for n in 0..7 {
            cards.push(
                fail(
                    &q,
                    &queue,
                    "charge",
                    &format!("card declined for order {}", 1000 + n),
                )
                .await,
            );
        }
        let other = fail(&q, &queue, "welcome", "SMTP 550 mailbox unavailable").await;
        let mut progress = Vec::new();
        let retried = q
            .act_on_error_group(&queue, card(), GroupAction::Retry, 3, |n| progress.push(n))
            .await
            .unwrap();
        assert_eq!(retried, 7);
        assert_eq!(progress, vec![3, 6, 7]);
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(
            (counts.failed, counts.waiting, counts.retried_total),
            (1, 7, 7)
        );
        for id in &cards {
            let job = q.job(&queue, id).await.unwrap();
            assert_eq!((job.state, job.attempts_made), (JobState::Waiting, 0));
        }
        assert_eq!(q.job(&queue, &other).await.unwrap().state, JobState::Failed);
        assert_eq!(
            sizes(&q, &queue).await,
            vec![("SMTP 550 mailbox unavailable".to_owned(), 1)]
        );
        // Idempotent: a second run finds nothing.
        assert_eq!(
            q.act_on_error_group(&queue, card(), GroupAction::Retry, 3, |_| {})
                .await
                .unwrap(),
            0
        );

        // Remove: only the group's jobs go, and the failed count with them.
        let smtp = GroupId::of_reason("SMTP 550 mailbox unavailable");
        let removed = q
            .act_on_error_group(&queue, smtp, GroupAction::Remove, 10, |_| {})
            .await
            .unwrap();
        assert_eq!(removed, 1);
        assert!(q.job(&queue, &other).await.is_err());
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!((counts.failed, counts.waiting), (0, 7));
        assert_eq!(q.error_groups(&queue, 10).await.unwrap().total, 0);
        assert!(
            q.act_on_error_group(&queue, smtp, GroupAction::Remove, 0, |_| {})
                .await
                .is_err(),
            "a zero batch is refused"
        );
    }

    pub async fn every_way_out_of_the_failed_set_leaves_the_group(q: Queues) {
        let queue = queue("eg-out");
        let mut ids = Vec::new();
        for n in 0..6 {
            ids.push(
                fail(
                    &q,
                    &queue,
                    if n % 2 == 0 { "even" } else { "odd" },
                    &format!("timeout after {}ms", 5000 + n),
                )
                .await,
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let timeout = GroupId::of_reason("timeout after 5000ms");
        let group = |groups: coord::errors::ErrorGroups| {
            groups.groups.into_iter().find(|g| g.id == timeout)
        };
        assert_eq!(
            group(q.error_groups(&queue, 10).await.unwrap())
                .unwrap()
                .failed,
            6
        );
        // Removing the sample (the newest) makes the next newest the sample.
        q.remove(&queue, &ids[5]).await.unwrap();
        let g = group(q.error_groups(&queue, 10).await.unwrap()).unwrap();
        assert_eq!((g.failed, g.sample_job.clone()), (5, ids[4].to_string()));
        assert_eq!(g.sample_reason, "timeout after 5004ms");
        assert_eq!(g.names, vec![("even".to_owned(), 3), ("odd".to_owned(), 2)]);
        // Retention by count drops the oldest failed jobs.
        q.set_retention(
            &queue,
            RetentionPolicy {
                completed: Retention::default(),
                failed: Retention {
                    max_count: Some(3),
                    max_age_ms: None,
                },
            },
        )
        .await
        .unwrap();
        assert_eq!(q.clean(&queue, 100).await.unwrap(), 2);
        let g = group(q.error_groups(&queue, 10).await.unwrap()).unwrap();
        assert_eq!(g.failed, 3);
        assert_eq!(g.names, vec![("even".to_owned(), 2), ("odd".to_owned(), 1)]);
        // Retry-all empties every group.
        assert_eq!(q.retry_all_failed(&queue, 2, |_| {}).await.unwrap(), 3);
        let groups = q.error_groups(&queue, 10).await.unwrap();
        assert_eq!((groups.total, groups.groups.len()), (0, 0));
        // And failing again builds the group afresh.
        for id in &ids[2..5] {
            fail_claimed(&q, &queue, id, "timeout after 9999ms", 0).await;
        }
        let g = group(q.error_groups(&queue, 10).await.unwrap()).unwrap();
        assert_eq!(g.failed, 3);
        assert_eq!(q.counts(&queue).await.unwrap().failed, 3);
    }

    pub async fn stalled_failures_and_retries_in_flight(q: Queues) {
        let queue = queue("eg-stall");
        // A job that will be retried is not in a group until its last try.
        let id = q
            .enqueue(
                &queue,
                NewJob::new("sync", json!({})).with_options(JobOptions {
                    attempts: 2,
                    ..JobOptions::default()
                }),
            )
            .await
            .unwrap();
        fail_claimed(&q, &queue, &id, "upstream 503 for tenant 4411", 0).await;
        assert_eq!(q.job(&queue, &id).await.unwrap().state, JobState::Waiting);
        assert_eq!(q.error_groups(&queue, 10).await.unwrap().total, 0);
        fail_claimed(&q, &queue, &id, "upstream 503 for tenant 4412", 0).await;
        assert_eq!(
            sizes(&q, &queue).await,
            vec![("upstream 503 for tenant #".to_owned(), 1)]
        );

        // A job stalled to death lands in the stalled group.
        let stalled = q
            .enqueue(&queue, NewJob::new("sync", json!({})))
            .await
            .unwrap();
        let short = Duration::from_millis(50);
        let claimed = q
            .backend()
            .step(&queue, Vec::new(), 1, short)
            .await
            .unwrap()
            .claimed;
        assert_eq!(claimed[0].id, stalled);
        tokio::time::sleep(Duration::from_millis(120)).await;
        let report = q.recover_stalled(&queue, 0).await.unwrap();
        assert_eq!(report.failed, vec![stalled.clone()]);
        let groups = q.error_groups(&queue, 10).await.unwrap();
        assert_eq!(groups.total, 2);
        let group = &groups.groups[0];
        assert_eq!(group.sample_job, stalled.as_str());
        assert!(group.sample_reason.contains("stalled"), "{group:?}");
        assert_eq!(group.names, vec![("sync".to_owned(), 1)]);
    }

    pub async fn trends_and_group_listing(q: Queues) {
        let queue = queue("eg-list");
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(
                fail(
                    &q,
                    &queue,
                    "charge",
                    &format!("card declined for order {n}000"),
                )
                .await,
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        fail(&q, &queue, "mail", "SMTP 550 mailbox unavailable").await;
        let page = q.list_error_group(&queue, card(), 1, 2, 64).await.unwrap();
        assert_eq!(page.total, 5);
        let listed: Vec<JobId> = page.jobs.iter().map(|j| j.id.clone()).collect();
        assert_eq!(listed, vec![ids[3].clone(), ids[2].clone()], "newest first");
        let unknown = GroupId::of_reason("never happened");
        let empty = q
            .list_error_group(&queue, unknown, 0, 10, 64)
            .await
            .unwrap();
        assert_eq!((empty.total, empty.jobs.len()), (0, 0));
        assert_eq!(q.error_group_size(&queue, card()).await.unwrap(), 5);

        let now = now_ms();
        let trends = q
            .error_trends(&queue, &[card(), unknown], now + 1)
            .await
            .unwrap();
        assert_eq!(trends.len(), 2);
        assert_eq!(trends[0][TREND_BUCKETS - 1], 5, "{:?}", trends[0]);
        assert_eq!(trends[0].iter().sum::<u32>(), 5);
        assert_eq!(trends[1].iter().sum::<u32>(), 0);
        // An hour later they are out of the window.
        let later = q
            .error_trends(&queue, &[card()], now + 3_600_000 + 10_000)
            .await
            .unwrap();
        assert_eq!(later[0].iter().sum::<u32>(), 0);
        // Unknown queues are errors, as everywhere.
        let missing = common::queue("eg-none");
        assert!(q.error_groups(&missing, 10).await.is_err());
    }

    pub async fn retrying_jobs_are_listed_until_they_run_again(q: Queues) {
        let queue = queue("eg-retrying");
        fail(&q, &queue, "sync", "bad input").await;
        let three = JobOptions {
            attempts: 3,
            ..JobOptions::default()
        };
        let later = q
            .enqueue(
                &queue,
                NewJob::new("sync", json!({})).with_options(three.clone()),
            )
            .await
            .unwrap();
        fail_claimed(&q, &queue, &later, "upstream 503", 60_000).await;
        let now = q
            .enqueue(&queue, NewJob::new("sync", json!({})).with_options(three))
            .await
            .unwrap();
        fail_claimed(&q, &queue, &now, "upstream 502", 0).await;
        let healthy = q
            .enqueue(&queue, NewJob::new("sync", json!({})))
            .await
            .unwrap();

        let page = q.list_retrying(&queue, 0, 10, 1024).await.unwrap();
        let listed: Vec<JobId> = page.jobs.iter().map(|j| j.id.clone()).collect();
        assert_eq!(page.total, 2, "{listed:?}");
        assert_eq!(
            listed,
            vec![now.clone(), later.clone()],
            "due first, then by run time"
        );
        assert_eq!(page.jobs[0].failed_reason.as_deref(), Some("upstream 502"));
        assert_eq!(page.jobs[1].state, JobState::Delayed);
        assert_eq!(
            q.list_retrying(&queue, 1, 10, 1024)
                .await
                .unwrap()
                .jobs
                .len(),
            1
        );

        // Claimed, a job is no longer waiting to be retried.
        let claimed = q
            .backend()
            .step(&queue, Vec::new(), 10, LEASE)
            .await
            .unwrap()
            .claimed;
        let mut ids: Vec<JobId> = claimed.iter().map(|j| j.id.clone()).collect();
        ids.sort();
        let mut expected = vec![now.clone(), healthy];
        expected.sort();
        assert_eq!(ids, expected);
        let page = q.list_retrying(&queue, 0, 10, 1024).await.unwrap();
        assert_eq!((page.total, page.jobs[0].id.clone()), (1, later.clone()));
        // Removed, neither.
        q.remove(&queue, &later).await.unwrap();
        assert_eq!(q.list_retrying(&queue, 0, 10, 1024).await.unwrap().total, 0);
        assert!(
            q.list_retrying(&common::queue("eg-none"), 0, 10, 1024)
                .await
                .is_err()
        );
    }

    pub async fn stopping_retries_fails_the_job_into_its_group_marked(q: Queues) {
        let queue = queue("eg-stop");
        fail(&q, &queue, "charge", "card declined for order 1234").await;
        let three = JobOptions {
            attempts: 3,
            ..JobOptions::default()
        };
        let backing = q
            .enqueue(
                &queue,
                NewJob::new("charge", json!({})).with_options(three.clone()),
            )
            .await
            .unwrap();
        fail_claimed(&q, &queue, &backing, "card declined for order 5678", 60_000).await;
        let due = q
            .enqueue(
                &queue,
                NewJob::new("refund", json!({})).with_options(three.clone()),
            )
            .await
            .unwrap();
        fail_claimed(&q, &queue, &due, "card declined for order 9012", 0).await;
        let fresh = q
            .enqueue(&queue, NewJob::new("charge", json!({})).with_options(three))
            .await
            .unwrap();
        assert_eq!(
            sizes(&q, &queue).await,
            vec![("card declined for order #".to_owned(), 1)]
        );

        // A delayed one and a waiting one: failed now, in their group.
        let before = now_ms();
        q.stop_retrying(&queue, &backing).await.unwrap();
        q.stop_retrying(&queue, &due).await.unwrap();
        assert_eq!(
            sizes(&q, &queue).await,
            vec![("card declined for order #".to_owned(), 3)]
        );
        let counts = q.counts(&queue).await.unwrap();
        assert_eq!(
            (
                counts.waiting,
                counts.delayed,
                counts.failed,
                counts.failed_total
            ),
            (1, 0, 3, 3)
        );
        let job = q.job(&queue, &backing).await.unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.run_at, None);
        assert_eq!(
            job.failed_reason.as_deref(),
            Some("card declined for order 5678")
        );
        assert_eq!(job.attempts_made, 1, "its attempts are as they were");
        let stopped = job.options.retries_stopped_at.expect("marked");
        assert!(stopped >= before - 1_000, "{stopped} vs {before}");
        assert_eq!(job.finished_at, Some(stopped), "the stop is its end");
        assert_eq!(job.options.attempts, 3);
        assert_eq!(q.list_retrying(&queue, 0, 10, 1024).await.unwrap().total, 0);

        // Nothing to stop: never failed, already failed, unknown.
        assert!(matches!(
            q.stop_retrying(&queue, &fresh).await,
            Err(coord::CoordError::NotRetrying { .. })
        ));
        assert!(matches!(
            q.stop_retrying(&queue, &backing).await,
            Err(coord::CoordError::WrongState { .. })
        ));
        assert!(matches!(
            q.stop_retrying(&queue, &JobId::new("nope").unwrap()).await,
            Err(coord::CoordError::JobNotFound { .. })
        ));

        // Retried from the failed set, it runs again; failing for good
        // then, it is no longer the operator's stop (a later end).
        q.retry(&queue, &backing).await.unwrap();
        assert_eq!(
            sizes(&q, &queue).await,
            vec![("card declined for order #".to_owned(), 2)]
        );
        let again = q.job(&queue, &backing).await.unwrap();
        assert_eq!(again.state, JobState::Waiting);
        // A producer cannot set the mark.
        let refused = q
            .enqueue(
                &queue,
                NewJob::new("x", json!({})).with_options(JobOptions {
                    retries_stopped_at: Some(1),
                    ..JobOptions::default()
                }),
            )
            .await;
        assert!(matches!(refused, Err(coord::CoordError::InvalidOptions(_))));
    }
}
