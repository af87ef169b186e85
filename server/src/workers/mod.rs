//! Workers: who takes the queues' jobs, from the worker registry every
//! native worker heartbeats into (`coord::queue::workers`), and the
//! operator's quiet / resume / stop. BullMQ workers, which publish nothing
//! but their Redis connections, are read by the BullMQ monitor.
//!
//! The hub reads the registry every [`READ_EVERY`] (one listing for all
//! viewers, whatever the number of open pages) and asks for a snapshot only
//! when what a page shows changed; pages, badges and the no-worker alert
//! read that snapshot.

pub mod latency;
pub mod routes;
pub mod vm;

use std::time::Duration;

use coord::CoordError;
use coord::instances::{InstanceStatus, Thresholds};
use coord::queue::Queues;
use coord::queue::workers::{
    DEFAULT_WORKER_HEARTBEAT, WorkerCommand, WorkerId, WorkerState, WorkerView,
};
use coord::time::now_ms;

use crate::http::error::one_line;

/// How often the hub reads the registry: a command shows as taken up
/// within a worker's heartbeat plus this.
pub const READ_EVERY: Duration = Duration::from_secs(2);

/// Longest a registry read may take per tick.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Every registered worker as of one read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerFigures {
    /// By queue, then id.
    pub workers: Vec<WorkerView>,
    /// Why the registry could not be read (the last figures are then
    /// empty: a worker list that may be wrong is worse than none).
    pub problem: Option<String>,
    /// When a worker counts as stale (ms without a heartbeat).
    pub stale_after_ms: i64,
    /// When they were read (ms since the epoch).
    pub read_at: i64,
    /// Wait and run times per queue, merged from the reports so far.
    pub latency: latency::LatencyFigures,
}

/// What one queue's live workers add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueWorkers {
    /// Live workers.
    pub live: usize,
    /// Of those, quiet or stopping (taking no new jobs).
    pub quiet: usize,
    /// Busy slots over the live workers.
    pub busy: u64,
    /// Slots over the live workers.
    pub slots: u64,
}

impl QueueWorkers {
    /// Live workers that take new jobs.
    pub fn taking(&self) -> usize {
        self.live - self.quiet
    }
}

impl WorkerFigures {
    /// The workers of one queue (a binary search: the list is by queue).
    pub fn of_queue(&self, queue: &str) -> &[WorkerView] {
        let start = self
            .workers
            .partition_point(|w| w.report.queue.as_str() < queue);
        let end =
            start + self.workers[start..].partition_point(|w| w.report.queue.as_str() == queue);
        &self.workers[start..end]
    }

    /// One queue's live workers summed up; `None` when the registry could
    /// not be read (nothing is known then, not "no workers").
    pub fn queue(&self, queue: &str) -> Option<QueueWorkers> {
        if self.problem.is_some() {
            return None;
        }
        let mut sum = QueueWorkers::default();
        for worker in self.of_queue(queue) {
            if worker.status != InstanceStatus::Live {
                continue;
            }
            sum.live += 1;
            if worker.report.state != WorkerState::Running {
                sum.quiet += 1;
            }
            sum.busy += u64::from(worker.report.busy);
            sum.slots += u64::from(worker.report.concurrency);
        }
        Some(sum)
    }

    /// What a page shows of each worker, without what moves at every
    /// heartbeat (its age and time): two reads with the same gist render
    /// the same rows but for ages, which the next change brings along.
    fn gist(&self) -> Vec<Gist<'_>> {
        self.workers
            .iter()
            .map(|w| {
                (
                    w.report.id.as_str(),
                    w.status,
                    w.report.state,
                    w.report.busy,
                    w.command,
                    w.report.completed,
                    w.report.failed,
                )
            })
            .collect()
    }

    /// Whether a page would show something else than with `other`.
    pub fn same_as(&self, other: &WorkerFigures) -> bool {
        self.problem == other.problem
            && std::sync::Arc::ptr_eq(&self.latency, &other.latency)
            && self.gist() == other.gist()
    }
}

/// A worker as a page shows it, ages aside: id, status, state, busy
/// slots, command asked, completed, failed.
type Gist<'a> = (
    &'a str,
    InstanceStatus,
    WorkerState,
    u32,
    Option<WorkerCommand>,
    u64,
    u64,
);

/// The registry of the queue backend, judged by the workers' default
/// heartbeat. Cheap to clone.
#[derive(Clone)]
pub struct Workers {
    queues: Queues,
    thresholds: Thresholds,
    /// The workers' shipped latency minutes, merged once each is over.
    book: std::sync::Arc<std::sync::Mutex<latency::LatencyBook>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").finish_non_exhaustive()
    }
}

impl Workers {
    /// The registry of `queues`' backend.
    pub fn new(queues: Queues) -> Self {
        Self {
            queues,
            thresholds: Thresholds::for_interval(DEFAULT_WORKER_HEARTBEAT),
            book: std::sync::Arc::default(),
        }
    }

    /// Every worker, now. An outage is a `problem`, never an error.
    pub async fn figures(&self) -> WorkerFigures {
        let now = now_ms();
        let problem =
            match tokio::time::timeout(TIMEOUT, self.queues.workers(now, &self.thresholds)).await {
                Ok(Ok(workers)) => {
                    let latency = crate::sync::lock(&self.book).update(&workers, now);
                    return WorkerFigures {
                        workers,
                        problem: None,
                        stale_after_ms: self.stale_after_ms(),
                        read_at: now,
                        latency,
                    };
                }
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "cannot list workers");
                    one_line(&err.to_string())
                }
                Err(_) => format!("no answer within {TIMEOUT:?}"),
            };
        WorkerFigures {
            problem: Some(problem),
            stale_after_ms: self.stale_after_ms(),
            read_at: now,
            // What was merged before the outage stays true.
            latency: crate::sync::lock(&self.book).update(&[], now),
            ..WorkerFigures::default()
        }
    }

    fn stale_after_ms(&self) -> i64 {
        i64::try_from(self.thresholds.stale_after.as_millis()).unwrap_or(i64::MAX)
    }

    /// Asks a worker to go quiet, resume or stop (the one operation both
    /// the form and the API call). `WorkerNotFound` for an unknown worker.
    pub async fn command(&self, id: &WorkerId, command: WorkerCommand) -> Result<(), CoordError> {
        self.queues.command_worker(id, command).await?;
        tracing::info!(worker = %id, command = command.as_str(), "worker command stored");
        Ok(())
    }
}
