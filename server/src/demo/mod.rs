//! Synthetic producers and workers, so `switchyard demo` shows a live
//! dashboard at once: a few queues with jobs arriving every second, some
//! delayed, some urgent, workers that take a realistic while, and failures
//! with real-looking error messages and cause chains; a share of them fail
//! for good so the failed set always has something to inspect.
//!
//! A job whose data has a `"fail"` string fails for good with that message,
//! so an operator (or a browser test) can make a failure on demand:
//! `switchyard enqueue webhooks deliver '{"fail":"boom"}'`; a `"flaky"`
//! string fails it the same way but as retryable, so its attempts and
//! backoff apply (a job for the Retrying view).

pub mod fleet;
pub mod ratelimits;

use std::time::Duration;

use coord::CoordError;
use coord::queue::schedules::{MissedPolicy, Schedule, ScheduleId};
use coord::queue::{
    Backoff, Job, JobError, JobOptions, NewJob, QueueName, Queues, Retention, RetentionPolicy,
    WorkerHandle,
};
use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Completed jobs each demo queue keeps, so a demo left running for days
/// does not grow its database without bound.
const KEEP_COMPLETED: u64 = 1000;
/// Failed jobs each demo queue keeps.
const KEEP_FAILED: u64 = 500;

/// One failure a handler can report.
struct Failure {
    message: &'static str,
    chain: &'static [&'static str],
    /// False for errors no retry fixes: the job fails for good at once.
    retryable: bool,
}

/// How one demo queue behaves.
struct Profile {
    queue: &'static str,
    job_names: &'static [&'static str],
    concurrency: usize,
    attempts: u32,
    /// Milliseconds between producer ticks (random in this range).
    tick_ms: (u64, u64),
    /// Jobs enqueued per tick (random in this range).
    per_tick: (usize, usize),
    /// Chance that a job is enqueued with a delay, and the delay range.
    delayed: f64,
    delay_ms: (i64, i64),
    /// Handler run time.
    work_ms: (u64, u64),
    /// Chance that an attempt fails, and how.
    failure_rate: f64,
    failures: &'static [Failure],
}

static PROFILES: [Profile; 4] = [
    Profile {
        queue: "emails",
        job_names: &["welcome", "receipt", "password-reset", "weekly-digest"],
        concurrency: 8,
        attempts: 3,
        tick_ms: (300, 700),
        per_tick: (1, 3),
        delayed: 0.1,
        delay_ms: (2_000, 15_000),
        work_ms: (20, 150),
        failure_rate: 0.12,
        failures: &[
            Failure {
                message: "SMTP delivery failed: 421 4.7.0 Try again later",
                chain: &[
                    "smtp.relay.example.net:587 answered 421 4.7.0",
                    "rate limit exceeded for sender noreply@example.com",
                ],
                retryable: true,
            },
            Failure {
                message: "recipient rejected: 550 5.1.1 mailbox unavailable",
                chain: &["the email account that you tried to reach does not exist"],
                retryable: false,
            },
        ],
    },
    Profile {
        queue: "reports",
        job_names: &["monthly-revenue", "churn-by-plan", "usage-export"],
        concurrency: 2,
        attempts: 2,
        tick_ms: (900, 1_800),
        per_tick: (1, 2),
        delayed: 0.3,
        delay_ms: (3_000, 30_000),
        work_ms: (200, 500),
        failure_rate: 0.15,
        failures: &[Failure {
            message: "report query failed: canceling statement due to statement timeout",
            chain: &[
                "query on analytics.events exceeded statement_timeout (30000 ms)",
                "replica lag 41 s",
            ],
            retryable: true,
        }],
    },
    Profile {
        queue: "webhooks",
        job_names: &["invoice.paid", "customer.created", "subscription.canceled"],
        concurrency: 4,
        attempts: 3,
        tick_ms: (250, 600),
        per_tick: (1, 2),
        delayed: 0.0,
        delay_ms: (0, 0),
        work_ms: (30, 300),
        failure_rate: 0.15,
        failures: &[
            Failure {
                message: "POST https://hooks.example.com/billing returned 503 Service Unavailable",
                chain: &["upstream connect error or disconnect/reset before headers"],
                retryable: true,
            },
            Failure {
                message: "POST https://hooks.example.org/crm failed: connection refused",
                chain: &[
                    "error trying to connect: tcp connect error",
                    "Connection refused (os error 111)",
                ],
                retryable: true,
            },
            Failure {
                message: "endpoint answered 410 Gone: subscription removed by the receiver",
                chain: &[],
                retryable: false,
            },
        ],
    },
    Profile {
        queue: "thumbnails",
        job_names: &["avatar", "product-photo", "cover-image"],
        concurrency: 4,
        attempts: 3,
        tick_ms: (400, 900),
        per_tick: (1, 3),
        delayed: 0.05,
        delay_ms: (1_000, 5_000),
        work_ms: (50, 300),
        failure_rate: 0.10,
        failures: &[
            Failure {
                message: "image decode failed: unexpected end of file",
                chain: &["jpeg: truncated scan data after 48213 bytes"],
                retryable: false,
            },
            Failure {
                message: "upload to object storage failed: request timed out",
                chain: &["PUT thumbs/256/8f3a2c.webp: timed out after 5 s"],
                retryable: true,
            },
        ],
    },
];

/// The running demo: stop it to shut its workers down cleanly.
pub struct Demo {
    workers: Vec<WorkerHandle>,
    producers: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Demo {
    /// Sets retention on the demo queues, then starts one producer and one
    /// worker per queue.
    pub async fn start(queues: &Queues) -> Result<Self, CoordError> {
        let (stop, stopped) = watch::channel(false);
        let mut workers = Vec::new();
        let mut producers = Vec::new();
        for profile in &PROFILES {
            let name = QueueName::new(profile.queue)?;
            queues
                .set_retention(
                    &name,
                    RetentionPolicy {
                        completed: Retention {
                            max_count: Some(KEEP_COMPLETED),
                            max_age_ms: None,
                        },
                        failed: Retention {
                            max_count: Some(KEEP_FAILED),
                            max_age_ms: None,
                        },
                    },
                )
                .await?;
            let worker = queues
                .worker(name.clone())
                .concurrency(profile.concurrency)
                .lease(Duration::from_secs(10))
                .version(env!("CARGO_PKG_VERSION"))
                .start(move |job| work(profile, job))?;
            workers.push(worker);
            producers.push(tokio::spawn(produce(
                queues.clone(),
                name,
                profile,
                stopped.clone(),
            )));
        }
        add_schedules(queues).await?;
        Ok(Self {
            workers,
            producers,
            stop,
        })
    }

    /// Stops the producers, then lets running jobs finish for up to `grace`.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        for producer in self.producers {
            let _ = producer.await;
        }
        for worker in self.workers {
            worker.shutdown(grace).await;
        }
    }
}

/// The demo's schedules: one every half minute (so the Schedules page
/// moves), a nightly cron in a zone with daylight saving, and a paused
/// one. Left as they are when they exist, so what an operator changed
/// survives a restart.
async fn add_schedules(queues: &Queues) -> Result<(), CoordError> {
    let id = ScheduleId::new;
    let mut digest = Schedule::every(
        id("emails-digest")?,
        QueueName::new("emails")?,
        "digest",
        Duration::from_secs(30),
    );
    digest.data = json!({ "to": "team@example.com", "template": "digest" });
    let mut nightly = Schedule::cron(
        id("reports-nightly")?,
        QueueName::new("reports")?,
        "build",
        "0 2 * * *",
        "Europe/Berlin",
    );
    nightly.data = json!({ "report": "daily-sales" });
    nightly.missed = MissedPolicy::CatchUpOnce;
    let mut sweep = Schedule::cron(
        id("webhooks-sweep")?,
        QueueName::new("webhooks")?,
        "sweep",
        "*/5 * * * *",
        "UTC",
    );
    sweep.paused = true;
    for schedule in [digest, nightly, sweep] {
        match queues.schedule(&schedule.id).await {
            Ok(_) => {}
            Err(CoordError::ScheduleNotFound(_)) => {
                queues.upsert_schedule(schedule).await?;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Enqueues a few jobs per tick until stopped; backend errors are logged and
/// the producer carries on, as a real service would.
async fn produce(
    queues: Queues,
    queue: QueueName,
    profile: &'static Profile,
    mut stopped: watch::Receiver<bool>,
) {
    let mut rng: StdRng = rand::make_rng();
    let mut serial: u64 = 0;
    loop {
        let pause = Duration::from_millis(rng.random_range(profile.tick_ms.0..=profile.tick_ms.1));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => return,
        }
        let count = rng.random_range(profile.per_tick.0..=profile.per_tick.1);
        let jobs: Vec<NewJob> = (0..count)
            .map(|_| {
                serial += 1;
                new_job(profile, serial, &mut rng)
            })
            .collect();
        if let Err(err) = queues.enqueue_bulk(&queue, jobs).await {
            tracing::warn!(%queue, error = %err, "demo producer could not enqueue");
        }
    }
}

fn new_job(profile: &Profile, serial: u64, rng: &mut StdRng) -> NewJob {
    let name = profile
        .job_names
        .choose(rng)
        .copied()
        .unwrap_or(profile.queue);
    // Mostly default priority, now and then an urgent or a background job.
    let priority = match rng.random_range(0..10) {
        0 => 0,
        1 => 10,
        _ => 5,
    };
    let delay_ms = if rng.random_bool(profile.delayed) {
        rng.random_range(profile.delay_ms.0..=profile.delay_ms.1)
    } else {
        0
    };
    let options = JobOptions {
        priority,
        delay_ms,
        attempts: profile.attempts,
        backoff: Backoff::Exponential {
            delay_ms: 500,
            jitter: 0.2,
        },
        timeout_ms: Some(5_000),
        job_id: None,
        retries_stopped_at: None,
    };
    NewJob::new(name, data_for(profile.queue, name, serial, rng)).with_options(options)
}

fn data_for(queue: &str, name: &str, serial: u64, rng: &mut StdRng) -> Value {
    let account = rng.random_range(1000..9999);
    let locale = ["en", "de", "fr"].choose(rng).copied().unwrap_or("en");
    let format = ["pdf", "csv"].choose(rng).copied().unwrap_or("pdf");
    match queue {
        "emails" => json!({
            "to": format!("user{account}@example.com"),
            "template": name,
            "locale": locale,
        }),
        "reports" => json!({
            "report": name,
            "accountId": account,
            "format": format,
        }),
        "webhooks" => json!({
            "event": name,
            "deliveryId": format!("dlv_{serial:06}"),
            "accountId": account,
        }),
        _ => json!({
            "image": format!("uploads/2026/11/IMG_{account}.jpg"),
            "kind": name,
            "sizes": [64, 256, 1024],
        }),
    }
}

/// A handler: sleeps a while, then succeeds or fails as the profile says,
/// or as the job's `"fail"` field demands.
async fn work(profile: &'static Profile, job: Job) -> Result<Value, JobError> {
    if let Some(message) = job.data.get("fail").and_then(Value::as_str) {
        return Err(JobError::fatal(message));
    }
    if let Some(message) = job.data.get("flaky").and_then(Value::as_str) {
        return Err(JobError::new(message));
    }
    let (pause, failure) = {
        let mut rng = rand::rng();
        let pause = Duration::from_millis(rng.random_range(profile.work_ms.0..=profile.work_ms.1));
        let failure = if rng.random_bool(profile.failure_rate) {
            profile.failures.choose(&mut rng)
        } else {
            None
        };
        (pause, failure)
    };
    // Some log lines and, for the longer jobs, progress in quarters, as a
    // real handler would write them. Best effort: a job whose lease was
    // lost carries on and its outcome is refused anyway.
    let _ = job
        .log(format!(
            "attempt {} of {} started",
            job.attempts_made, job.options.attempts
        ))
        .await;
    if pause >= Duration::from_secs(1) {
        for quarter in 1..=4u32 {
            tokio::time::sleep(pause / 4).await;
            let _ = job.progress(quarter * 25).await;
        }
    } else {
        tokio::time::sleep(pause).await;
    }
    if let Some(f) = failure {
        let _ = job.log(format!("failed: {}", f.message)).await;
    } else {
        let _ = job.log(format!("done in {} ms", pause.as_millis())).await;
    }
    match failure {
        Some(f) => Err(JobError {
            message: f.message.to_string(),
            chain: f.chain.iter().map(|s| s.to_string()).collect(),
            retryable: f.retryable,
        }),
        None => Ok(json!({
            "job": job.id,
            "tookMs": pause.as_millis() as u64,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_valid_and_some_failures_are_final() {
        let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(7);
        for profile in &PROFILES {
            QueueName::new(profile.queue).expect("valid queue name");
            assert!((2..=8).contains(&profile.concurrency));
            for serial in 0..50 {
                new_job(profile, serial, &mut rng)
                    .validate()
                    .expect("valid job");
            }
        }
        assert!(
            PROFILES
                .iter()
                .flat_map(|p| p.failures)
                .any(|f| !f.retryable),
            "some jobs must end in the failed set quickly"
        );
    }
}
