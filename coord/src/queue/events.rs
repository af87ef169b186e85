//! Queue events, published by both backends after each change so that a
//! dashboard (and idle workers) learn of it without polling every queue.
//!
//! Events travel in batches: one worker step that completes 40 jobs and
//! claims 40 more publishes one batch with two events, which keeps the
//! event bus cheap at tens of thousands of jobs per second.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::types::{JobId, QueueName};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum QueueEventKind {
    /// New jobs are waiting or delayed.
    Enqueued,
    /// Jobs were claimed by a worker.
    Active,
    /// Jobs finished successfully.
    Completed,
    /// An attempt failed and the job will run again after its backoff.
    Retrying,
    /// Jobs moved to the failed (dead) set.
    Failed,
    /// Failed jobs were put back to waiting by an operator or API call.
    Retried,
    /// Active jobs with an expired lease were put back (or failed).
    Stalled,
    /// Delayed jobs were made runnable now.
    Promoted,
    /// Jobs were deleted.
    Removed,
    /// The queue stopped handing out jobs.
    Paused,
    /// The queue hands out jobs again.
    Resumed,
}

impl QueueEventKind {
    /// True for events after which an idle worker may find work.
    pub fn wakes_workers(self) -> bool {
        matches!(
            self,
            Self::Enqueued
                | Self::Retrying
                | Self::Retried
                | Self::Stalled
                | Self::Promoted
                | Self::Resumed
        )
    }
}

/// One kind of change to some jobs of one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueEvent {
    pub queue: QueueName,
    pub kind: QueueEventKind,
    /// The jobs concerned; empty for queue-wide events (pause, resume).
    #[serde(default)]
    pub job_ids: Vec<JobId>,
    /// Milliseconds since the epoch, on the clock of the process or Redis
    /// server that made the change.
    pub at: i64,
}

/// Events published together, shared by every subscriber without copying.
pub type EventBatch = Arc<Vec<QueueEvent>>;

/// How many batches a slow subscriber may fall behind before it is told it
/// lagged (and should reload a full snapshot instead of replaying).
pub const EVENT_BUFFER: usize = 1024;
