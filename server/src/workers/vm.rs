//! The workers page's view model, and what queue rows and pages say about
//! their workers, from the registry's figures.

use app::vm::workers::{
    BullWorkerRow, JOBS_PER_ROW, QueueWorkersVm, RunningJobVm, WORKERS_PER_PAGE, WorkerCounts,
    WorkerRow, WorkerStateVm, WorkersVm,
};
use coord::bullmq::BullWorker;
use coord::instances::InstanceStatus;
use coord::queue::workers::{WorkerState, WorkerView};

use super::WorkerFigures;

/// The page's filter and position, from its query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct WorkersQuery {
    /// Only the workers of this queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// The first row shown.
    #[serde(default)]
    pub offset: usize,
}

impl WorkersQuery {
    /// The filter, with an empty one meaning none.
    pub fn queue(&self) -> Option<&str> {
        self.queue
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
    }
}

fn state(state: WorkerState) -> WorkerStateVm {
    match state {
        WorkerState::Running => WorkerStateVm::Running,
        WorkerState::Quiet => WorkerStateVm::Quiet,
        WorkerState::Stopping => WorkerStateVm::Stopping,
    }
}

/// The command a worker has not taken up yet, by comparing what was asked
/// with what it reports: a quiet asked of a running worker, a stop of one
/// not stopping, a resume (nothing stored) of a quiet one.
fn asked(view: &WorkerView) -> Option<String> {
    use coord::queue::workers::WorkerCommand as C;
    let waiting = match (view.command, view.report.state) {
        (Some(C::Quiet), WorkerState::Running) => Some(C::Quiet),
        (Some(C::Stop), WorkerState::Running | WorkerState::Quiet) => Some(C::Stop),
        (None, WorkerState::Quiet) => Some(C::Resume),
        _ => None,
    };
    waiting.map(|c| c.as_str().to_owned())
}

fn row(view: &WorkerView, now: i64) -> WorkerRow {
    let report = &view.report;
    let queue = report.queue.as_str();
    let running: Vec<RunningJobVm> = report
        .running
        .iter()
        .take(JOBS_PER_ROW)
        .map(|job| RunningJobVm {
            id: job.id.to_string(),
            href: format!("/queues/{queue}/jobs/{}", job.id.as_str()),
            run_ms: now.saturating_sub(job.started_at).max(0),
        })
        .collect();
    WorkerRow {
        id: report.id.to_string(),
        queue: queue.to_owned(),
        state: state(report.state),
        liveness: crate::instances::vm::state(view.status),
        asked: asked(view),
        busy: report.busy,
        concurrency: report.concurrency,
        running_more: report.busy.saturating_sub(running.len() as u32),
        running,
        host: report.host.clone(),
        pid: report.pid,
        version: report.version.clone(),
        uptime_ms: now.saturating_sub(report.started_at).max(0),
        heartbeat_age_ms: view.heartbeat_age_ms,
        completed: report.completed,
        failed: report.failed,
    }
}

fn count(counts: &mut WorkerCounts, view: &WorkerView) {
    match view.status {
        InstanceStatus::Stale => counts.stale += 1,
        InstanceStatus::Gone => counts.gone += 1,
        InstanceStatus::Live => {
            match view.report.state {
                WorkerState::Running => counts.running += 1,
                WorkerState::Quiet => counts.quiet += 1,
                WorkerState::Stopping => counts.stopping += 1,
            }
            counts.busy += u64::from(view.report.busy);
            counts.slots += u64::from(view.report.concurrency);
        }
    }
}

/// The page for `query`: one page of rows, counts over every match. Costs
/// one pass over the workers listed; rendering is bounded by the page.
pub fn page(figures: &WorkerFigures, query: &WorkersQuery) -> WorkersVm {
    let matching: &[WorkerView] = match query.queue() {
        Some(queue) => figures.of_queue(queue),
        None => &figures.workers,
    };
    let mut counts = WorkerCounts::default();
    for view in matching {
        count(&mut counts, view);
    }
    let offset = if query.offset < matching.len() {
        query.offset - query.offset % WORKERS_PER_PAGE
    } else {
        0
    };
    let now = figures.read_at;
    WorkersVm {
        workers: matching
            .iter()
            .skip(offset)
            .take(WORKERS_PER_PAGE)
            .map(|view| row(view, now))
            .collect(),
        total: matching.len(),
        offset,
        queue: query.queue().map(str::to_owned),
        counts,
        stale_after_ms: figures.stale_after_ms,
        problem: figures.problem.clone(),
        ..WorkersVm::default()
    }
}

/// Adds the BullMQ workers (one `CLIENT LIST` read by the caller) to the
/// page, a page of them at most.
pub fn with_bull(
    mut vm: WorkersVm,
    bull: Result<Vec<(String, Vec<BullWorker>)>, String>,
) -> WorkersVm {
    match bull {
        Ok(queues) => {
            let all: Vec<BullWorkerRow> = queues
                .into_iter()
                .flat_map(|(queue, workers)| {
                    let href = app::bull_queue_path(&queue);
                    workers.into_iter().map(move |w| BullWorkerRow {
                        queue: queue.clone(),
                        href: href.clone(),
                        name: w.name,
                        addr: w.addr,
                        age_secs: w.age_secs,
                        idle_secs: w.idle_secs,
                        node: w.node,
                    })
                })
                .collect();
            vm.bull_total = all.len();
            vm.bull = all.into_iter().take(WORKERS_PER_PAGE).collect();
        }
        Err(note) => vm.bull_note = Some(note),
    }
    vm
}

/// What a queue's row and page say about its workers.
pub fn queue_workers(figures: Option<&WorkerFigures>, queue: &str) -> QueueWorkersVm {
    let Some(sum) = figures.and_then(|f| f.queue(queue)) else {
        return QueueWorkersVm::Unknown;
    };
    if sum.live == 0 {
        QueueWorkersVm::None
    } else if sum.taking() == 0 {
        QueueWorkersVm::AllQuiet { workers: sum.live }
    } else {
        QueueWorkersVm::Working {
            workers: sum.live,
            quiet: sum.quiet,
            busy: sum.busy,
            slots: sum.slots,
        }
    }
}

/// A queue's latency figures, and whether their headline is current
/// ([`super::latency::QueueLatency::is_recent`]).
fn current<'a>(
    figures: Option<&'a WorkerFigures>,
    queue: &str,
) -> Option<(&'a super::latency::QueueLatency, bool)> {
    let figures = figures?;
    let latency = figures.latency.get(queue)?;
    Some((latency, latency.is_recent(figures.read_at)))
}

/// A queue's p95 wait over the last minutes, for its row.
pub fn wait_p95(figures: Option<&WorkerFigures>, queue: &str) -> Option<u64> {
    let (latency, fresh) = current(figures, queue)?;
    (fresh && latency.wait.count > 0).then_some(latency.wait.p95)
}

/// Percentiles as the pages show them (native and BullMQ queues alike).
pub fn percentiles(p: &coord::queue::latency::Percentiles) -> app::PercentilesVm {
    app::PercentilesVm {
        p50: p.p50,
        p95: p.p95,
        p99: p.p99,
        max: p.max,
    }
}

/// A queue's wait and run times for its page: the last minutes merged
/// and the hour's p95 per minute.
pub fn latency(figures: Option<&WorkerFigures>, queue: &str) -> Option<app::LatencyVm> {
    let (latency, fresh) = current(figures, queue)?;
    let newest = latency.points.back().map_or(0, |p| p.minute);
    let oldest = newest - (super::latency::RECENT_MINUTES as i64 - 1) * 60_000;
    // Without a recent minute, only the hour's points are worth showing.
    let (minutes, attempts) = if fresh {
        (
            latency.points.iter().filter(|p| p.minute >= oldest).count(),
            latency.run.count,
        )
    } else {
        (0, 0)
    };
    Some(app::LatencyVm {
        minutes,
        attempts,
        wait: percentiles(&latency.wait),
        run: percentiles(&latency.run),
        points: latency
            .points
            .iter()
            .map(|p| (p.minute, u64::from(p.wait_p95), u64::from(p.run_p95)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use coord::queue::latency::Percentiles;

    use super::*;
    use crate::workers::latency::{LatencyPoint, QueueLatency};

    #[test]
    fn a_queue_with_latency_gets_its_percentiles_and_points_and_others_none() {
        let p = |p95| Percentiles {
            count: 10,
            p50: 1,
            p95,
            p99: p95 + 1,
            max: p95 + 2,
            sum: 100,
        };
        let points = (0..7)
            .map(|i| LatencyPoint {
                minute: i * 60_000,
                count: 2,
                wait_p95: 100 + i as u32,
                run_p95: 5,
            })
            .collect();
        let queue = QueueLatency {
            points,
            wait: p(900),
            run: p(40),
            // As merging leaves it: the newest point's minute.
            last: Some((6 * 60_000, p(900), p(40))),
            ..QueueLatency::default()
        };
        let figures = WorkerFigures {
            latency: Arc::new(HashMap::from([("emails".to_owned(), Arc::new(queue))])),
            read_at: 7 * 60_000,
            ..WorkerFigures::default()
        };
        assert_eq!(wait_p95(Some(&figures), "emails"), Some(900));
        assert_eq!(wait_p95(Some(&figures), "reports"), None);
        assert_eq!(wait_p95(None, "emails"), None);
        let vm = latency(Some(&figures), "emails").expect("latency");
        assert_eq!(vm.minutes, 5, "the headline covers the newest five");
        assert_eq!(vm.attempts, 10);
        assert_eq!((vm.wait.p95, vm.wait.p99, vm.run.max), (900, 901, 42));
        assert_eq!(vm.points.len(), 7);
        assert_eq!(vm.points[6], (360_000, 106, 5));
        assert!(latency(Some(&figures), "reports").is_none());
        // An hour later the points remain, the headline does not.
        let later = WorkerFigures {
            read_at: 60 * 60_000,
            ..figures
        };
        assert_eq!(wait_p95(Some(&later), "emails"), None);
        let vm = latency(Some(&later), "emails").expect("points");
        assert_eq!((vm.minutes, vm.attempts, vm.points.len()), (0, 0, 7));
    }
}
