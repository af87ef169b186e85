//! The BullMQ pages' view models from the monitor's snapshot and the jobs
//! read for a page.

use coord::bullmq::{
    BullChildren, BullCounts, BullDependencies, BullFlow, BullFlowJob, BullJob, BullOnFailure,
    BullState,
};
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
        children: None,
    }
}

/// A parent's children as the `waiting-children` tab counts them.
pub fn child_counts(deps: &BullDependencies) -> app::BullChildCounts {
    app::BullChildCounts {
        pending: deps.pending,
        total: deps.total(),
    }
}

/// The job page's Flow section; `None` for a job outside any flow, so the
/// page shows no empty section.
pub fn flow_vm(flow: &BullFlow) -> Option<app::BullFlowVm> {
    if flow.is_empty() {
        return None;
    }
    let kinds: [(&str, &BullChildren); 4] = [
        ("pending", &flow.pending),
        ("failed", &flow.failed),
        ("ignored", &flow.ignored),
        ("processed", &flow.processed),
    ];
    Some(app::BullFlowVm {
        parent: flow.parent.as_ref().map(flow_job),
        on_failure: flow.on_failure.map(|option| {
            match option {
                BullOnFailure::FailParent => "failParent",
                BullOnFailure::IgnoreDependency => "ignoreDependency",
                BullOnFailure::RemoveDependency => "removeDependency",
                BullOnFailure::ContinueParent => "continueParent",
            }
            .to_owned()
        }),
        groups: kinds
            .into_iter()
            .filter(|(_, children)| children.total > 0)
            .map(|(kind, children)| app::BullChildGroup {
                kind: kind.to_owned(),
                total: children.total,
                jobs: children.jobs.iter().map(flow_job).collect(),
            })
            .collect(),
        error: None,
    })
}

fn flow_job(job: &BullFlowJob) -> app::BullFlowJobVm {
    app::BullFlowJobVm {
        queue: job.queue.clone(),
        key: job.key.clone(),
        id: job.id.clone(),
        name: job.name.clone(),
        state: job
            .state
            .map_or_else(|| "gone".to_owned(), |s| s.as_str().to_owned()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(queue: Option<&str>, id: &str, state: Option<BullState>) -> BullFlowJob {
        BullFlowJob {
            key: format!("bull:{}:{id}", queue.unwrap_or("x")),
            queue_key: format!("bull:{}", queue.unwrap_or("x")),
            queue: queue.map(str::to_owned),
            id: id.to_owned(),
            name: Some("send".to_owned()),
            state,
        }
    }

    #[test]
    fn a_job_outside_any_flow_gets_no_flow_section() {
        assert_eq!(flow_vm(&BullFlow::default()), None);
    }

    #[test]
    fn flows_become_groups_in_page_order_without_empty_kinds() {
        let flow = BullFlow {
            parent: Some(job(Some("reports"), "1", Some(BullState::WaitingChildren))),
            on_failure: Some(BullOnFailure::IgnoreDependency),
            pending: BullChildren {
                total: 250,
                jobs: vec![job(Some("mail"), "7", Some(BullState::Failed))],
            },
            processed: BullChildren {
                total: 2,
                jobs: vec![job(Some("mail"), "5", None)],
            },
            ..BullFlow::default()
        };
        let vm = flow_vm(&flow).expect("a flow");
        let parent = vm.parent.as_ref().expect("parent");
        assert_eq!(parent.href().as_deref(), Some("/bullmq/reports/jobs/1"));
        assert_eq!(parent.state, "waiting-children");
        assert_eq!(vm.on_failure.as_deref(), Some("ignoreDependency"));
        let kinds: Vec<_> = vm.groups.iter().map(|g| g.kind.as_str()).collect();
        assert_eq!(kinds, ["pending", "processed"]);
        assert_eq!(vm.groups[0].more(), 249);
        assert_eq!(vm.groups[0].jobs[0].state, "failed");
        assert_eq!(vm.groups[1].jobs[0].state, "gone", "its hash was removed");
        assert_eq!((vm.total("pending"), vm.children()), (250, 252));
        assert_eq!(vm.error, None);
        // A child under another prefix has no page here.
        let far = flow_job(&job(None, "9", Some(BullState::Waiting)));
        assert_eq!(far.href(), None);
        assert_eq!(far.key, "bull:x:9");
    }

    #[test]
    fn child_counts_are_pending_of_all_kinds() {
        let deps = BullDependencies {
            pending: 2,
            processed: 3,
            failed: 1,
            ignored: 1,
        };
        assert_eq!(
            child_counts(&deps),
            app::BullChildCounts {
                pending: 2,
                total: 7
            }
        );
    }
}
