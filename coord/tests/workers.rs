//! The worker registry, written once against [`Queues`] and run on every
//! backend: a worker registers with its busy slots and the jobs in them,
//! leaves when it shuts down, lives the instances' life (live → stale →
//! gone → forgotten) when it dies, and obeys quiet, resume and stop within
//! a heartbeat.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use coord::CoordError;
use coord::instances::{InstanceStatus, Thresholds};
use coord::queue::latency::LatencyHistogram;
use coord::queue::workers::{WorkerCommand, WorkerId, WorkerState, WorkerView};
use coord::queue::{Job, JobOptions, JobState, NewJob, QueueName, Queues, WorkerHandle};
use coord::time::now_ms;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use common::{eventually, queue, until_state};

per_backend!(
    a_worker_reports_its_busy_slots_and_leaves_on_shutdown,
    quiet_takes_no_new_jobs_until_resumed,
    stop_finishes_the_running_jobs_and_leaves,
    a_killed_worker_turns_stale_then_gone_then_is_forgotten,
    commands_to_unknown_workers_are_refused,
    a_worker_ships_the_wait_and_run_times_of_its_attempts,
);

/// Heartbeats this often in the tests: commands are obeyed within it.
const BEAT: Duration = Duration::from_millis(50);

fn thresholds() -> Thresholds {
    Thresholds {
        stale_after: BEAT * 3,
        forget_after: Duration::from_secs(2),
    }
}

async fn listed(q: &Queues) -> Vec<WorkerView> {
    q.workers(now_ms(), &thresholds()).await.expect("workers")
}

async fn view_of(q: &Queues, id: &WorkerId) -> Option<WorkerView> {
    listed(q).await.into_iter().find(|v| &v.report.id == id)
}

/// A worker whose handler holds each job until `gate` hands out a permit.
fn gated_worker(
    q: &Queues,
    queue: &QueueName,
    concurrency: usize,
) -> (WorkerHandle, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let held = gate.clone();
    let worker = q
        .worker(queue.clone())
        .concurrency(concurrency)
        .heartbeat(BEAT)
        .poll_interval(Duration::from_millis(20))
        .version("1.2.3")
        .stop_grace(Duration::from_secs(10))
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

mod cases {
    use super::*;

    pub async fn a_worker_reports_its_busy_slots_and_leaves_on_shutdown(q: Queues) {
        let queue = queue("workers-busy");
        let (worker, gate) = gated_worker(&q, &queue, 3);
        let id = worker.id().clone();
        let a = q
            .enqueue(&queue, NewJob::new("a", json!({})))
            .await
            .unwrap();
        let b = q
            .enqueue(&queue, NewJob::new("b", json!({})))
            .await
            .unwrap();
        eventually("two busy slots reported", || async {
            view_of(&q, &id).await.is_some_and(|v| v.report.busy == 2)
        })
        .await;
        let view = view_of(&q, &id).await.expect("listed");
        assert_eq!(view.status, InstanceStatus::Live);
        assert_eq!(view.report.queue, queue);
        assert_eq!(view.report.concurrency, 3);
        assert_eq!(view.report.version, "1.2.3");
        assert_eq!(view.report.pid, std::process::id());
        assert!(!view.report.host.is_empty());
        assert_eq!(view.report.state, WorkerState::Running);
        assert_eq!(view.command, None);
        let mut running: Vec<_> = view.report.running.iter().map(|r| r.id.clone()).collect();
        running.sort();
        let mut expected = vec![a.clone(), b.clone()];
        expected.sort();
        assert_eq!(running, expected);
        assert!(
            view.report
                .running
                .iter()
                .all(|r| r.started_at <= view.report.heartbeat_at)
        );

        gate.add_permits(2);
        until_state(&q, &queue, &a, JobState::Completed, "a completes").await;
        until_state(&q, &queue, &b, JobState::Completed, "b completes").await;
        eventually("idle with two completed", || async {
            view_of(&q, &id)
                .await
                .is_some_and(|v| v.report.busy == 0 && v.report.completed == 2)
        })
        .await;

        worker.shutdown(Duration::from_secs(5)).await;
        // A clean stop leaves at once: not gone, not listed.
        assert!(view_of(&q, &id).await.is_none(), "{:?}", listed(&q).await);
    }

    pub async fn quiet_takes_no_new_jobs_until_resumed(q: Queues) {
        let queue = queue("workers-quiet");
        let (worker, gate) = gated_worker(&q, &queue, 2);
        gate.add_permits(100);
        let id = worker.id().clone();
        eventually("registered", || async { view_of(&q, &id).await.is_some() }).await;
        q.command_worker(&id, WorkerCommand::Quiet)
            .await
            .expect("quiet");
        eventually("reported quiet", || async {
            view_of(&q, &id)
                .await
                .is_some_and(|v| v.report.state == WorkerState::Quiet)
        })
        .await;
        assert_eq!(
            view_of(&q, &id).await.unwrap().command,
            Some(WorkerCommand::Quiet)
        );
        let job = q
            .enqueue(&queue, NewJob::new("held", json!({})))
            .await
            .unwrap();
        // Several heartbeats and polls later it still waits: quiet stays.
        tokio::time::sleep(BEAT * 8).await;
        assert_eq!(q.job(&queue, &job).await.unwrap().state, JobState::Waiting);
        assert_eq!(
            view_of(&q, &id).await.unwrap().report.state,
            WorkerState::Quiet
        );

        q.command_worker(&id, WorkerCommand::Resume)
            .await
            .expect("resume");
        until_state(&q, &queue, &job, JobState::Completed, "runs once resumed").await;
        eventually("reported running, nothing asked", || async {
            view_of(&q, &id)
                .await
                .is_some_and(|v| v.report.state == WorkerState::Running && v.command.is_none())
        })
        .await;
        worker.shutdown(Duration::from_secs(5)).await;
    }

    pub async fn stop_finishes_the_running_jobs_and_leaves(q: Queues) {
        let queue = queue("workers-stop");
        let (worker, gate) = gated_worker(&q, &queue, 1);
        let id = worker.id().clone();
        let running = q
            .enqueue(&queue, NewJob::new("long", json!({})))
            .await
            .unwrap();
        until_state(&q, &queue, &running, JobState::Active, "claimed").await;
        q.command_worker(&id, WorkerCommand::Stop)
            .await
            .expect("stop");
        eventually("reported stopping", || async {
            view_of(&q, &id)
                .await
                .is_some_and(|v| v.report.state == WorkerState::Stopping)
        })
        .await;
        let later = q
            .enqueue(&queue, NewJob::new("later", json!({})))
            .await
            .unwrap();
        gate.add_permits(10);
        until_state(
            &q,
            &queue,
            &running,
            JobState::Completed,
            "the running job finishes",
        )
        .await;
        eventually("the worker stops and leaves", || async {
            worker.is_finished() && view_of(&q, &id).await.is_none()
        })
        .await;
        // A stopping worker takes nothing new.
        assert_eq!(
            q.job(&queue, &later).await.unwrap().state,
            JobState::Waiting
        );
        let stats = worker.shutdown(Duration::from_secs(1)).await;
        assert_eq!(stats.completed, 1);
    }

    pub async fn a_killed_worker_turns_stale_then_gone_then_is_forgotten(q: Queues) {
        let queue = queue("workers-killed");
        let (worker, _gate) = gated_worker(&q, &queue, 1);
        let id = worker.id().clone();
        eventually("registered", || async { view_of(&q, &id).await.is_some() }).await;
        worker.kill();
        // Stale once three beats are missed (150 ms), gone once its entry
        // expires (six beats, 300 ms).
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !seen.contains(&InstanceStatus::Gone) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never gone: {seen:?}"
            );
            if let Some(view) = view_of(&q, &id).await
                && seen.last() != Some(&view.status)
            {
                seen.push(view.status);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            seen,
            [
                InstanceStatus::Live,
                InstanceStatus::Stale,
                InstanceStatus::Gone
            ]
        );
        // A command still reaches a gone worker's entry (it may come back).
        q.command_worker(&id, WorkerCommand::Quiet)
            .await
            .expect("gone but known");
        // Judged later than forget_after, it is removed for good.
        let later = now_ms() + 3_000;
        let views = q.workers(later, &thresholds()).await.unwrap();
        assert!(views.iter().all(|v| v.report.id != id), "{views:?}");
        assert!(view_of(&q, &id).await.is_none());
        assert!(matches!(
            q.command_worker(&id, WorkerCommand::Resume).await,
            Err(CoordError::WorkerNotFound(_))
        ));
    }

    pub async fn commands_to_unknown_workers_are_refused(q: Queues) {
        let id = WorkerId::new("nobody-1-abcdef").unwrap();
        for command in [
            WorkerCommand::Quiet,
            WorkerCommand::Resume,
            WorkerCommand::Stop,
        ] {
            let err = q.command_worker(&id, command).await.unwrap_err();
            assert!(matches!(err, CoordError::WorkerNotFound(_)), "{err:?}");
            assert!(err.is_not_found());
        }
        assert!(listed(&q).await.is_empty());
    }

    pub async fn a_worker_ships_the_wait_and_run_times_of_its_attempts(q: Queues) {
        let queue = queue("workers-latency");
        // Two jobs: one runnable now, one delayed by 300 ms (its wait
        // counts from the delay's end, not from its enqueue).
        q.enqueue(&queue, NewJob::new("now", json!({})))
            .await
            .unwrap();
        let delayed = NewJob {
            options: JobOptions {
                delay_ms: 300,
                ..JobOptions::default()
            },
            ..NewJob::new("later", json!({}))
        };
        q.enqueue(&queue, delayed).await.unwrap();
        let worker = q
            .worker(queue.clone())
            .heartbeat(BEAT)
            .poll_interval(Duration::from_millis(20))
            .start(|_job: Job| async {
                tokio::time::sleep(Duration::from_millis(80)).await;
                Ok(Value::Null)
            })
            .expect("worker");
        let id = worker.id().clone();
        // The histograms a report carries, merged over its minutes.
        let shipped = |view: &WorkerView| {
            let (mut wait, mut run) = (LatencyHistogram::new(), LatencyHistogram::new());
            for minute in &view.report.latency {
                wait.merge(&LatencyHistogram::from_pairs(&minute.wait).unwrap());
                run.merge(&LatencyHistogram::from_pairs(&minute.run).unwrap());
            }
            (wait, run)
        };
        eventually("both attempts in the report", || async {
            view_of(&q, &id)
                .await
                .is_some_and(|view| shipped(&view).1.count() == 2)
        })
        .await;
        let (wait, run) = shipped(&view_of(&q, &id).await.expect("listed"));
        let run = run.percentiles();
        assert!((80..1_000).contains(&run.p50), "{run:?}");
        // The delayed one's wait counts from its delay's end.
        let wait = wait.percentiles();
        assert_eq!(wait.count, 2);
        assert!(wait.max < 300, "{wait:?}");
        worker.shutdown(Duration::from_secs(5)).await;
    }
}
