//! Synthetic worker heartbeats for `--heartbeats N`: the registry writes N
//! workers would make, offered at their real rate (one per worker every
//! [`DEFAULT_WORKER_HEARTBEAT`], spread evenly over the interval) while the
//! throughput is measured, so that their cost to the job steps — on SQLite
//! they share the one writer — shows in the jobs/s and their own latency
//! can be read. Each beat is its own task: a slow write does not hold the
//! next ones back, as it would not among separate workers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use coord::instances::DEFAULT_TTL_INTERVALS;
use coord::queue::latency::LatencyMinute;
use coord::queue::workers::{
    DEFAULT_WORKER_HEARTBEAT, RunningJob, WorkerId, WorkerReport, WorkerState,
};
use coord::queue::{JobId, QueueBackend, QueueName};
use coord::time::now_ms;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::stats::Summary;

/// Heartbeats under way; [`Heartbeats::stop`] ends them.
pub struct Heartbeats {
    workers: usize,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    latencies: Arc<Mutex<Vec<Duration>>>,
    /// Failed beats, and the first failure's message.
    errors: Arc<Mutex<(u64, Option<String>)>>,
}

/// What the beats cost, summarised.
pub struct Beats {
    pub workers: usize,
    pub errors: u64,
    pub first_error: Option<String>,
    pub latency: Summary,
}

/// A report of the size a busy worker sends: a few running jobs and two
/// minutes of wait and run histograms.
fn report(i: usize, queue: &QueueName, now: i64) -> anyhow::Result<WorkerReport> {
    let pairs: Vec<(u64, u64)> = (1..=24).map(|v| (v * 3, 40 - v)).collect();
    let minute = now - now.rem_euclid(60_000);
    Ok(WorkerReport {
        id: WorkerId::new(format!("bench-worker-{i}"))?,
        queue: queue.clone(),
        host: "bench-host".into(),
        pid: 10_000 + i as u32,
        version: "bench".into(),
        concurrency: 10,
        busy: 3,
        running: (0..3)
            .map(|j| {
                Ok(RunningJob {
                    id: JobId::new(format!("{i}-{j}"))?,
                    started_at: now - 100 * j,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        state: WorkerState::Running,
        completed: 0,
        failed: 0,
        started_at: now,
        heartbeat_at: now,
        latency: [minute - 60_000, minute]
            .into_iter()
            .map(|minute| LatencyMinute {
                minute,
                wait: pairs.clone(),
                run: pairs.clone(),
            })
            .collect(),
    })
}

impl Heartbeats {
    /// Starts `workers` synthetic workers of `queue` heartbeating through
    /// `backend`.
    pub fn start(
        backend: Arc<dyn QueueBackend>,
        workers: usize,
        queue: &QueueName,
    ) -> anyhow::Result<Self> {
        let now = now_ms();
        let reports = (0..workers)
            .map(|i| report(i, queue, now))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for r in &reports {
            r.validate().context("a synthetic worker report")?;
        }
        let ttl = DEFAULT_WORKER_HEARTBEAT.saturating_mul(DEFAULT_TTL_INTERVALS);
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new((0u64, None)));
        let (stop, mut stopped) = watch::channel(false);
        let (lat, err) = (latencies.clone(), errors.clone());
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(DEFAULT_WORKER_HEARTBEAT / workers as u32);
            let mut beats = JoinSet::new();
            let mut next = 0;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stopped.changed() => break,
                }
                let mut report = reports[next].clone();
                next = (next + 1) % reports.len();
                report.heartbeat_at = now_ms();
                let (backend, lat, err) = (backend.clone(), lat.clone(), err.clone());
                beats.spawn(async move {
                    let started = Instant::now();
                    match backend.worker_heartbeat(&report, ttl).await {
                        Ok(_) => lock(&lat).push(started.elapsed()),
                        Err(e) => {
                            let mut err = lock(&err);
                            err.0 += 1;
                            err.1.get_or_insert_with(|| e.to_string());
                        }
                    }
                });
                while beats.try_join_next().is_some() {}
            }
            while beats.join_next().await.is_some() {}
        });
        Ok(Self {
            workers,
            stop,
            task,
            latencies,
            errors,
        })
    }

    /// Forgets the latencies so far: the registration's inserts are not
    /// the steady state's updates.
    pub fn forget(&self) {
        lock(&self.latencies).clear();
    }

    /// Stops the beats (those under way finish) and summarises them.
    pub async fn stop(self) -> Beats {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let latencies = lock(&self.latencies);
        let (errors, first_error) = lock(&self.errors).clone();
        Beats {
            workers: self.workers,
            errors,
            first_error,
            latency: Summary::of(&latencies),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
