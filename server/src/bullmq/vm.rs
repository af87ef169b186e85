//! The BullMQ pages' view models from the monitor's snapshot and the jobs
//! read for a page.

use coord::bullmq::{BullCounts, BullJob, BullState};
use serde_json::Value;

use super::BullSnapshot;
use crate::state::AppState;

/// A queue row for the pages.
pub fn row(name: &str, counts: &BullCounts) -> app::BullQueueRow {
    app::BullQueueRow {
        name: name.to_owned(),
        counts: BullState::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), counts.get(*s)))
            .collect(),
        paused: counts.is_paused,
    }
}

/// The list page's view model from the monitor's snapshot (also shown
/// under the native queues on `/queues`).
pub fn queues_vm(state: &AppState, snapshot: &BullSnapshot) -> app::BullQueuesVm {
    match &state.bullmq {
        None => app::BullQueuesVm::default(),
        Some(monitor) => app::BullQueuesVm {
            prefix: monitor.prefix().to_owned(),
            enabled: true,
            rows: snapshot
                .queues
                .iter()
                .map(|(name, counts)| row(name, counts))
                .collect(),
            error: snapshot.error.clone(),
            notice: None,
        },
    }
}

/// A job as a table row.
pub fn job_row(job: &BullJob) -> app::BullJobRow {
    app::BullJobRow {
        id: job.id.clone(),
        name: job.name.clone(),
        timestamp: job.timestamp,
        processed_on: job.processed_on,
        finished_on: job.finished_on,
        attempts_made: job.attempts_made,
        failed_reason: job.failed_reason.clone(),
        data_preview: preview(&job.data),
        run_at: (job.delay > 0).then(|| job.timestamp.saturating_add(job.delay)),
    }
}

/// Compact JSON text of a job's data, cut for a table cell.
fn preview(raw: &str) -> String {
    match serde_json::from_str::<Value>(raw) {
        Ok(value) => crate::queues::vm::data_preview(&value),
        Err(_) => raw.chars().take(120).collect(),
    }
}

/// Indented JSON, or the text as stored when it is not JSON.
pub fn pretty(raw: &str) -> String {
    serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_owned())
}
