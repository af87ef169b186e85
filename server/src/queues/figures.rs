//! What the hub knows about the native queues at one moment: counts, rates,
//! the badge and the last hour's throughput per queue. Domain figures only:
//! pages turn them into view models ([`super::vm`]), alerting and
//! `/metrics` read them as they are, so changing a page never changes an
//! alert or a Prometheus series.

use coord::errors::{GroupAction, GroupId};
use coord::queue::{JobId, QueueCounts, QueueName};
use serde::Serialize;
use std::sync::Arc;

/// Failed jobs moved back per atomic step of a "retry all", native and
/// BullMQ queues alike: BullMQ's own batch, a few milliseconds of Redis
/// time, so one request never holds the backend for long.
pub const RETRY_BATCH: usize = 1000;

/// The finished minutes of a queue's last hour (the minute under way left
/// out), as a chart shows them: they change once a minute.
pub fn finished_minutes(minutes: &[MinutePoint]) -> &[MinutePoint] {
    &minutes[..minutes.len().saturating_sub(1)]
}

/// Jobs a queue finished in its last hour of finished minutes.
pub fn hour_volume(q: &QueueFigures) -> u64 {
    finished_minutes(&q.minutes)
        .iter()
        .map(|m| m.completed + m.failed)
        .sum()
}

/// The `n` queues that finished the most jobs in the last hour, by name
/// among equals, without sorting all of them. It depends on finished
/// minutes only, so it changes when the minute turns, not on every tick:
/// the overview charts these, and the history keeps their series.
pub fn busiest_of_hour<'a>(
    queues: impl Iterator<Item = &'a QueueFigures>,
    n: usize,
) -> Vec<&'a QueueFigures> {
    top(queues, n, |q| std::cmp::Reverse(hour_volume(q)))
}

/// The first `n` queues in the order of `key` (then by name), in that
/// order, without sorting all of them: what every bounded list of queues
/// (the overview's, the busiest on `/metrics`) picks with.
pub fn top<'a, K: Ord>(
    queues: impl Iterator<Item = &'a QueueFigures>,
    n: usize,
    key: impl Fn(&QueueFigures) -> K,
) -> Vec<&'a QueueFigures> {
    let mut all: Vec<&QueueFigures> = queues.collect();
    let by = |a: &&QueueFigures, b: &&QueueFigures| key(a).cmp(&key(b)).then(a.name.cmp(&b.name));
    if all.len() > n {
        all.select_nth_unstable_by(n, by);
        all.truncate(n);
    }
    all.sort_unstable_by(by);
    all
}

/// One minute of finished jobs of a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinutePoint {
    /// Start of the minute (ms since the epoch).
    pub minute_ms: i64,
    /// Jobs completed in it.
    pub completed: u64,
    /// Jobs that failed for good in it.
    pub failed: u64,
}

/// A queue's badge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueHealth {
    /// Nothing to look at.
    #[default]
    Healthy,
    /// More active jobs than the busy threshold.
    Busy,
    /// A recent failure rate above the warning threshold.
    Warning,
}

/// When a queue is Busy or in Warning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Active jobs above which a queue is Busy.
    pub busy_active: u64,
    /// Failure rate (percent) above which a queue is in Warning.
    pub warning_failure_rate: f64,
}

impl Thresholds {
    /// The badge for a queue's counts and recent failure rate.
    pub fn health(&self, counts: &QueueCounts, failure_rate: Option<f64>) -> QueueHealth {
        if failure_rate.is_some_and(|r| r * 100.0 > self.warning_failure_rate) {
            QueueHealth::Warning
        } else if counts.active > self.busy_active {
            QueueHealth::Busy
        } else {
            QueueHealth::Healthy
        }
    }
}

/// One queue as of a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueFigures {
    /// The queue's name.
    pub name: String,
    /// Its counts, including the lifetime totals.
    pub counts: QueueCounts,
    /// Finished jobs per minute over the recent window.
    pub jobs_per_min: Option<f64>,
    /// Share of finished jobs that failed (0–1), when any finished.
    pub failure_rate: Option<f64>,
    /// Its badge under the hub's thresholds.
    pub health: QueueHealth,
    /// Jobs that failed for good over the recent window.
    pub failed_recent: u64,
    /// Throughput per minute over the last hour and the minute under
    /// way, oldest first.
    pub minutes: Arc<Vec<MinutePoint>>,
    /// `seq` of the last snapshot in which its jobs changed: a page
    /// showing its jobs reloads them only when this moves.
    pub changed: u64,
}

/// What a bulk run of a queue does. One runs per queue at a time, so two
/// clicks never act on one job twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BulkAction {
    /// Every failed job back to waiting.
    #[default]
    RetryAll,
    /// Every failed job of one error group retried or removed.
    Group {
        /// The group.
        group: GroupId,
        /// Retry or remove.
        action: GroupAction,
        /// The group's normalised reason, for the progress line.
        reason: String,
    },
    /// The jobs a filter matched when the button was pressed, each
    /// retried or removed unless it moved on meanwhile.
    Matching {
        /// Their ids, newest first.
        ids: Arc<Vec<JobId>>,
        /// Retry or remove.
        action: GroupAction,
        /// The state they matched in: a job found in another one when its
        /// turn comes (retried or finished meanwhile) is left alone.
        state: coord::queue::JobState,
        /// The filter in words (`name “welcome”, text “421”`).
        filter: String,
    },
}

impl BulkAction {
    /// Whether the run removes jobs rather than retrying them.
    pub fn removes(&self) -> bool {
        matches!(
            self,
            BulkAction::Group {
                action: GroupAction::Remove,
                ..
            } | BulkAction::Matching {
                action: GroupAction::Remove,
                ..
            }
        )
    }

    /// The jobs it acts on, as a progress line names them.
    pub fn subject(&self) -> String {
        match self {
            BulkAction::RetryAll => "failed jobs".to_owned(),
            BulkAction::Group { reason, .. } => format!("failed jobs of the group “{reason}”"),
            BulkAction::Matching { filter, .. } => format!("jobs matching {filter}"),
        }
    }
}

/// A bulk run of a queue (retry all, a group's retry or removal), running
/// or just finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryProgress {
    /// What it does.
    pub action: BulkAction,
    /// Jobs retried or removed so far.
    pub done: u64,
    /// Jobs it was to act on when it started.
    pub total: u64,
    /// Whether the run has ended.
    pub finished: bool,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

/// A queue and its counts, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    /// The queue.
    pub name: QueueName,
    /// Its counts, flattened next to the name in JSON.
    #[serde(flatten)]
    pub counts: QueueCounts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_outranks_busy() {
        let t = Thresholds {
            busy_active: 10,
            warning_failure_rate: 5.0,
        };
        let busy = QueueCounts {
            active: 11,
            ..QueueCounts::default()
        };
        assert_eq!(t.health(&busy, Some(0.01)), QueueHealth::Busy);
        assert_eq!(t.health(&busy, Some(0.06)), QueueHealth::Warning);
        assert_eq!(
            t.health(&QueueCounts::default(), None),
            QueueHealth::Healthy
        );
        let at_threshold = QueueCounts {
            active: 10,
            ..QueueCounts::default()
        };
        assert_eq!(t.health(&at_threshold, Some(0.05)), QueueHealth::Healthy);
    }
}
