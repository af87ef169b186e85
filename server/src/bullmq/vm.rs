//! The BullMQ pages' view models from the monitor's snapshot and the jobs
//! read for a page.

use coord::bullmq::{BullCounts, BullJob, BullState};
use serde_json::Value;

use super::BullSnapshot;
use crate::http::error::AppError;
use crate::queues::vm::{NameFilter, QueuesParams, page_of};
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

/// Queues the `/queues` page shows under the native ones (it links the
/// BullMQ page for the rest).
pub const SHOWN_ON_QUEUES_PAGE: u64 = 10;

/// Validates the BullMQ list's query: the native queues page's, without
/// the throughput order (BullMQ's rates are not followed here).
pub fn parse_query(params: &QueuesParams) -> Result<app::QueuesQuery, AppError> {
    let query = params.parse()?;
    if !app::BULL_SORTS.contains(&query.sort) {
        return Err(AppError::bad_request(
            "BullMQ queues sort by name, failures or backlog (their throughput is not followed)",
        ));
    }
    Ok(query)
}

/// The names of the snapshot's queues matching `query`'s filter, in its
/// order, and how many match: one pass over the names and a sort of the
/// matches, never a Redis read.
pub fn page_names<'a>(
    snapshot: &'a BullSnapshot,
    query: &app::QueuesQuery,
    limit: u64,
) -> (Vec<(&'a String, &'a BullCounts)>, u64) {
    let filter = NameFilter::of(query);
    let mut matching: Vec<(&String, &BullCounts)> = snapshot
        .queues
        .iter()
        .filter(|(name, _)| filter.matches(name))
        .collect();
    // The snapshot is sorted by name; the other orders keep it among equals.
    match query.sort {
        app::QueueSort::Failures => matching.sort_by_key(|(_, c)| std::cmp::Reverse(c.failed)),
        app::QueueSort::Backlog => matching.sort_by_key(|(_, c)| {
            std::cmp::Reverse(c.waiting + c.delayed + c.prioritized + c.paused)
        }),
        app::QueueSort::Name | app::QueueSort::Throughput => {}
    }
    page_of(matching, query, limit)
}

/// The list page's view model from the monitor's snapshot: the page of
/// queues `query` asks for, `page_size` rows (also shown, a few, under the
/// native queues on `/queues`).
pub fn queues_vm(
    state: &AppState,
    snapshot: &BullSnapshot,
    query: &app::QueuesQuery,
    page_size: u64,
) -> app::BullQueuesVm {
    match &state.bullmq {
        None => app::BullQueuesVm::default(),
        Some(monitor) => {
            let (page, matching) = page_names(snapshot, query, page_size);
            app::BullQueuesVm {
                prefix: monitor.prefix().to_owned(),
                enabled: true,
                rows: page
                    .into_iter()
                    .map(|(name, counts)| row(name, counts))
                    .collect(),
                query: query.clone(),
                matching,
                total: snapshot.queues.len() as u64,
                page_size,
                error: snapshot.error.clone(),
                notice: None,
            }
        }
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
        attempts: job.attempts_allowed(),
        failure: failure_kind(job).map(str::to_owned),
        failed_reason: job.failed_reason.clone(),
        data_preview: preview(&job.data),
        run_at: (job.delay > 0).then(|| job.timestamp.saturating_add(job.delay)),
    }
}

/// Why a failed BullMQ job stopped, in the native rows' words: it threw
/// `UnrecoverableError` (or failed with attempts left, which only that or
/// a backoff giving up does), used every attempt, or stalled too often.
/// None for a job that is not failed (`finishedOn` unset or state known
/// to be other).
pub fn failure_kind(job: &BullJob) -> Option<&'static str> {
    let failed = match job.state {
        Some(state) => state == coord::bullmq::BullState::Failed,
        None => job.finished_on.is_some() && job.failed_reason.is_some(),
    };
    if !failed {
        return None;
    }
    let reason = job.failed_reason.as_deref().unwrap_or("");
    Some(if job.threw_unrecoverable() {
        "unrecoverable"
    } else if reason.starts_with("job stalled more than") {
        "stalled"
    } else if job.attempts_made >= job.attempts_allowed() {
        "retries exhausted"
    } else {
        "unrecoverable"
    })
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

/// The overview's BullMQ card: every queue's counts summed (one pass over
/// the monitor's latest counts; no read of Redis).
pub fn glance(snapshot: &BullSnapshot) -> app::BullGlance {
    let mut glance = app::BullGlance {
        queues: snapshot.queues.len() as u64,
        error: snapshot.error.clone(),
        ..app::BullGlance::default()
    };
    for counts in snapshot.queues.values() {
        glance.waiting += counts.waiting + counts.prioritized;
        glance.active += counts.active;
        glance.failed += counts.failed;
    }
    glance
}
