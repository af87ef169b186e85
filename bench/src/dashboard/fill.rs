//! Puts the benchmark's data in Redis: one queue with many failed jobs and
//! many more waiting ones, made the way production makes them (enqueued,
//! then failed by a worker), so the failed jobs carry a real
//! `failedReason`, attempt history and finish time.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use coord::queue::{JobError, JobOptions, NewJob, QueueName, Queues};
use serde_json::{Value, json};

/// Jobs per bulk call: the most one call accepts.
const BATCH: usize = coord::queue::MAX_BATCH;
/// Worker slots while failing jobs: enough to keep Redis busy.
const FAIL_CONCURRENCY: usize = 200;
/// Failing that makes no progress for this long has hung.
const NO_PROGRESS_LIMIT: Duration = Duration::from_secs(60);

const TEMPLATES: [&str; 5] = [
    "welcome",
    "password-reset",
    "invoice-ready",
    "weekly-digest",
    "trial-ending",
];

/// Job `i`'s data: about 200 bytes of JSON, like a transactional e-mail's
/// (recipient, template, locale, account and campaign ids, a few tags).
pub fn email(i: u64) -> NewJob {
    let data: Value = json!({
        "to": format!("customer{i:07}@example.com"),
        "template": TEMPLATES[(i % TEMPLATES.len() as u64) as usize],
        "locale": if i.is_multiple_of(3) { "de-DE" } else { "en-GB" },
        "accountId": 100_000 + (i * 7919) % 900_000,
        "campaign": format!("2026-spring-{:03}", i % 250),
        "tags": ["transactional", "mail"],
        "requestedBy": "signup-service",
    });
    NewJob::new("send-email", data)
}

/// The failure a worker reports for job data made by [`email`].
fn bounce(data: &Value) -> JobError {
    let to = data
        .get("to")
        .and_then(Value::as_str)
        .unwrap_or("unknown recipient");
    JobError::fatal(format!(
        "SMTP 550 5.1.1 <{to}>: recipient address rejected: user unknown in virtual mailbox table"
    ))
}

/// How long each part of the fill took.
#[derive(Debug, Clone, Copy)]
pub struct FillTimes {
    /// Enqueueing the jobs that are then failed.
    pub enqueue_failed: Duration,
    /// The worker failing all of them.
    pub fail: Duration,
    /// Enqueueing the waiting jobs.
    pub enqueue_waiting: Duration,
}

async fn enqueue(
    queues: &Queues,
    queue: &QueueName,
    range: std::ops::Range<u64>,
    options: &JobOptions,
    what: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let total = range.end - range.start;
    let mut next = range.start;
    let mut reported = Instant::now();
    while next < range.end {
        let end = (next + BATCH as u64).min(range.end);
        let jobs = (next..end)
            .map(|i| email(i).with_options(options.clone()))
            .collect();
        let ids = queues.enqueue_bulk(queue, jobs).await?;
        ensure!(
            ids.len() as u64 == end - next,
            "bulk enqueue returned {} ids for {} jobs",
            ids.len(),
            end - next
        );
        next = end;
        if reported.elapsed() > Duration::from_secs(5) {
            reported = Instant::now();
            eprintln!("#   {what}: {} of {total} enqueued", next - range.start);
        }
    }
    Ok(started.elapsed())
}

/// Fills `queue` with `failed` failed jobs, then `waiting` waiting ones.
/// The queue must be empty.
pub async fn fill(
    queues: &Queues,
    queue: &QueueName,
    waiting: u64,
    failed: u64,
) -> anyhow::Result<FillTimes> {
    let once = JobOptions {
        attempts: 1,
        ..JobOptions::default()
    };
    eprintln!("# fill: enqueueing {failed} jobs that will fail");
    let enqueue_failed = enqueue(queues, queue, 0..failed, &once, "to fail").await?;

    eprintln!("# fill: failing them with a worker of concurrency {FAIL_CONCURRENCY}");
    let started = Instant::now();
    let worker = queues
        .worker(queue.clone())
        .concurrency(FAIL_CONCURRENCY)
        .start(|job| async move { Err::<Value, _>(bounce(&job.data)) })?;
    let mut last = 0;
    let mut last_progress = Instant::now();
    let mut reported = Instant::now();
    let outcome = loop {
        let counts = match queues.counts(queue).await {
            Ok(c) => c,
            Err(e) => break Err(anyhow::Error::from(e)),
        };
        if counts.failed >= failed {
            break Ok(());
        }
        if counts.failed > last {
            last = counts.failed;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > NO_PROGRESS_LIMIT {
            break Err(anyhow::anyhow!(
                "no job failed for {} s ({last} of {failed})",
                NO_PROGRESS_LIMIT.as_secs()
            ));
        }
        if reported.elapsed() > Duration::from_secs(5) {
            reported = Instant::now();
            eprintln!("#   failed: {} of {failed}", counts.failed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let fail = started.elapsed();
    let stats = worker.shutdown(Duration::from_secs(5)).await;
    outcome?;
    if stats.backend_errors > 0 {
        eprintln!(
            "# warning: the failing worker saw {} backend errors",
            stats.backend_errors
        );
    }

    eprintln!("# fill: enqueueing {waiting} waiting jobs");
    let enqueue_waiting = enqueue(
        queues,
        queue,
        failed..failed + waiting,
        &JobOptions::default(),
        "waiting",
    )
    .await?;
    let counts = queues.counts(queue).await?;
    if counts.waiting != waiting || counts.failed != failed {
        bail!(
            "after the fill {queue} holds {} waiting and {} failed jobs, expected {waiting} and {failed}",
            counts.waiting,
            counts.failed
        );
    }
    Ok(FillTimes {
        enqueue_failed,
        fail,
        enqueue_waiting,
    })
}
