//! A running job's log lines and progress, written once against [`Queues`]
//! and run on every backend: what a handler writes is kept within the caps
//! (oldest dropped and counted), only the lease holder writes, and the
//! lines go with the job.

#[macro_use]
mod common;

use std::time::Duration;

use coord::CoordError;
use coord::queue::{
    CUT_MARK, Job, JobId, JobState, MAX_LINE_BYTES, MAX_LOG_BYTES, MAX_LOG_LINES, NewJob,
    QueueName, Queues, Retention, RetentionPolicy,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use common::queue;

per_backend!(
    a_handler_logs_and_reports_progress,
    logs_are_capped_oldest_first,
    logs_go_with_their_job,
);

/// Runs one job through a worker whose handler is `work`, and hands back
/// the job as the handler saw it once it finished.
async fn run<F, Fut>(q: &Queues, queue: &QueueName, data: Value, work: F) -> (JobId, Job)
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let id = q
        .enqueue(queue, NewJob::new("report", data))
        .await
        .expect("enqueue");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let work = std::sync::Arc::new(work);
    let worker = q
        .worker(queue.clone())
        .poll_interval(Duration::from_millis(20))
        .start(move |job: Job| {
            let (tx, work) = (tx.clone(), work.clone());
            async move {
                work(job.clone()).await;
                let _ = tx.send(job);
                Ok(Value::Null)
            }
        })
        .expect("worker");
    let seen = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the job to run")
        .expect("a job");
    for _ in 0..200 {
        match q.job(queue, &id).await {
            Ok(job) if job.state == JobState::Completed => break,
            // Retention may remove it as it completes.
            Err(CoordError::JobNotFound { .. }) => break,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.shutdown(Duration::from_secs(5)).await;
    (id, seen)
}

mod cases {
    use super::*;

    pub async fn a_handler_logs_and_reports_progress(q: Queues) {
        let queue = queue("logs-basic");
        let (id, seen) = run(&q, &queue, json!({}), |job| async move {
            job.log("starting <b>now</b>").await.expect("log");
            job.progress(50).await.expect("progress");
            job.log("line one\nline two").await.expect("log");
            job.progress(json!({ "done": 2, "of": 2 }))
                .await
                .expect("progress");
        })
        .await;
        let report = q.job_report(&queue, &id, 100).await.expect("report");
        assert_eq!(
            report.logs,
            vec![
                "starting <b>now</b>".to_owned(),
                "line one line two".to_owned()
            ]
        );
        assert_eq!(report.progress, Some(json!({ "done": 2, "of": 2 })));
        assert_eq!((report.logs_kept, report.logs_dropped), (2, 0));

        // Once the job finished, the attempt no longer holds it.
        assert!(
            matches!(seen.log("late").await, Err(CoordError::LeaseLost { .. })),
            "a finished attempt wrote to the log"
        );
        assert!(matches!(
            seen.progress(99).await,
            Err(CoordError::LeaseLost { .. })
        ));
        // A job read for display has no handler to report.
        let read = q.job(&queue, &id).await.expect("job");
        assert!(matches!(
            read.log("no").await,
            Err(CoordError::NotRunning { .. })
        ));
        assert_eq!(
            q.job_report(&queue, &id, 100)
                .await
                .expect("report")
                .logs
                .len(),
            2
        );

        // A job that never logged reports nothing; unknown ones are errors.
        let quiet = q
            .enqueue(&queue, NewJob::new("quiet", json!({})))
            .await
            .expect("enqueue");
        let report = q.job_report(&queue, &quiet, 100).await.expect("report");
        assert_eq!(report, Default::default());
        let missing = JobId::new("999999").expect("id");
        assert!(matches!(
            q.job_report(&queue, &missing, 10).await,
            Err(CoordError::JobNotFound { .. })
        ));
        let nowhere = common::queue("logs-nowhere");
        assert!(matches!(
            q.job_report(&nowhere, &id, 10).await,
            Err(CoordError::QueueNotFound(_))
        ));
        // A progress value has a size limit, checked before any write.
        let (_, _) = run(&q, &queue, json!({}), |job| async move {
            let big = "x".repeat(coord::queue::MAX_PROGRESS_BYTES);
            assert!(matches!(
                job.progress(big).await,
                Err(CoordError::InvalidOptions(_))
            ));
        })
        .await;
    }

    pub async fn logs_are_capped_oldest_first(q: Queues) {
        let queue = queue("logs-capped");
        let extra = 5;
        let (id, _) = run(&q, &queue, json!({}), move |job| async move {
            for i in 0..MAX_LOG_LINES + extra {
                job.log(format!("line {i}")).await.expect("log");
            }
        })
        .await;
        let report = q
            .job_report(&queue, &id, MAX_LOG_LINES)
            .await
            .expect("report");
        assert_eq!(report.logs_kept, u64::from(MAX_LOG_LINES));
        assert_eq!(report.logs_dropped, u64::from(extra));
        assert_eq!(report.logs.first().map(String::as_str), Some("line 5"));
        assert_eq!(
            report.logs.last().map(String::as_str),
            Some(format!("line {}", MAX_LOG_LINES + extra - 1).as_str())
        );
        // Asking for the newest few reads only those.
        let tail = q.job_report(&queue, &id, 3).await.expect("report");
        assert_eq!(tail.logs, vec!["line 1002", "line 1003", "line 1004"]);
        assert_eq!(tail.logs_kept, u64::from(MAX_LOG_LINES));

        // Long lines are cut, and the byte cap drops whole old lines.
        let (id, _) = run(&q, &queue, json!({}), |job| async move {
            for i in 0..20 {
                job.log(format!("{i:02}{}", "x".repeat(MAX_LINE_BYTES + 100)))
                    .await
                    .expect("log");
            }
        })
        .await;
        let report = q
            .job_report(&queue, &id, MAX_LOG_LINES)
            .await
            .expect("report");
        let per_line = MAX_LINE_BYTES as u64;
        let fit = u64::from(MAX_LOG_BYTES) / per_line;
        assert_eq!(report.logs_kept, fit);
        assert_eq!(report.logs_dropped, 20 - fit);
        assert!(
            report
                .logs
                .iter()
                .all(|l| l.len() == MAX_LINE_BYTES && l.ends_with(CUT_MARK))
        );
        assert!(report.logs[0].starts_with(&format!("{:02}", 20 - fit)));
    }

    pub async fn logs_go_with_their_job(q: Queues) {
        let queue = queue("logs-removed");
        let (id, _) = run(&q, &queue, json!({}), |job| async move {
            job.log("kept until removed").await.expect("log");
        })
        .await;
        assert_eq!(
            q.job_report(&queue, &id, 10)
                .await
                .expect("report")
                .logs
                .len(),
            1
        );
        q.remove(&queue, &id).await.expect("remove");
        assert!(matches!(
            q.job_report(&queue, &id, 10).await,
            Err(CoordError::JobNotFound { .. })
        ));

        // Retention removes a finished job with its lines.
        q.set_retention(
            &queue,
            RetentionPolicy {
                completed: Retention {
                    max_count: Some(0),
                    max_age_ms: None,
                },
                ..RetentionPolicy::default()
            },
        )
        .await
        .expect("retention");
        let (id, _) = run(&q, &queue, json!({}), |job| async move {
            job.log("gone with the job").await.expect("log");
        })
        .await;
        assert!(matches!(
            q.job_report(&queue, &id, 10).await,
            Err(CoordError::JobNotFound { .. })
        ));
    }
}
