//! View model of the workers page (`/workers`) and of what queue pages and
//! rows say about their workers: who is working, on what, and whether a
//! queue has anyone taking its jobs.
//!
//! Plain data filled by the server from `coord::queue::workers` (native
//! workers' heartbeats) and `coord::bullmq` (BullMQ connections seen in
//! `CLIENT LIST`), so pages render and test without Redis.

use crate::vm::instances::InstanceState;

/// Workers one page lists; the rest are a page away.
pub const WORKERS_PER_PAGE: usize = 50;

/// Running jobs a row names; the rest are counted ("and 4 more").
pub const JOBS_PER_ROW: usize = 3;

/// What a worker does with new jobs, as it reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkerStateVm {
    /// Taking jobs.
    #[default]
    Running,
    /// Takes no new jobs (asked from the dashboard).
    Quiet,
    /// Finishing its jobs before it stops.
    Stopping,
}

impl WorkerStateVm {
    /// The word shown and used in test ids.
    pub fn label(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Quiet => "quiet",
            Self::Stopping => "stopping",
        }
    }
}

/// One job in a busy slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunningJobVm {
    /// The job's id.
    pub id: String,
    /// Its page.
    pub href: String,
    /// How long it has run (ms).
    pub run_ms: i64,
}

/// One native worker's row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerRow {
    /// The worker id (`host-pid-xxxxxx`).
    pub id: String,
    /// The queue it works on.
    pub queue: String,
    /// Running, quiet or stopping.
    pub state: WorkerStateVm,
    /// Live, stale or gone (its heartbeats).
    pub liveness: InstanceState,
    /// What the operator asked and the worker has not taken up yet
    /// (`quiet`, `stop`, `resume`), shown as "quiet asked…".
    pub asked: Option<String>,
    /// Slots in use.
    pub busy: u32,
    /// Slots in all.
    pub concurrency: u32,
    /// The longest-running jobs, at most [`JOBS_PER_ROW`].
    pub running: Vec<RunningJobVm>,
    /// Busy slots not named in `running`.
    pub running_more: u32,
    /// Host it runs on.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// The service's version (`-` when it gave none).
    pub version: String,
    /// How long it has been running (ms).
    pub uptime_ms: i64,
    /// Age of its last heartbeat (ms).
    pub heartbeat_age_ms: i64,
    /// Jobs it completed since it started.
    pub completed: u64,
    /// Attempts that failed since it started.
    pub failed: u64,
}

/// Where an operator's `action` (`quiet`, `resume`, `stop`) on worker `id`
/// posts. The id is encoded: its host part is whatever the machine is
/// called, so it may hold characters a path cannot.
pub fn worker_action_path(id: &str, action: &str) -> String {
    format!("/workers/{}/{action}", crate::format::encode_query(id))
}

/// The workers page filtered to `queue`, for the queue pages' worker
/// badges and links: the same URL the page's own filter makes.
pub fn queue_workers_url(queue: &str) -> String {
    WorkersVm {
        queue: Some(queue.to_owned()),
        ..WorkersVm::default()
    }
    .url_with_offset(0)
}

impl WorkerRow {
    /// The command asked of the worker that its last heartbeat does not
    /// show taken up yet, if any: what the row says is on its way.
    pub fn pending_ask(&self) -> Option<&str> {
        let asked = self.asked.as_deref()?;
        let taken = matches!(
            (asked, self.state),
            ("quiet", WorkerStateVm::Quiet)
                | ("stop", WorkerStateVm::Stopping)
                | ("resume", WorkerStateVm::Running)
        );
        (!taken).then_some(asked)
    }

    /// Quiet is offered to a live running worker, Resume to a quiet one,
    /// Stop to any live worker not already stopping.
    pub fn actions(&self) -> Vec<&'static str> {
        if self.liveness != InstanceState::Live {
            return Vec::new();
        }
        match self.state {
            WorkerStateVm::Running => vec!["quiet", "stop"],
            WorkerStateVm::Quiet => vec!["resume", "stop"],
            WorkerStateVm::Stopping => Vec::new(),
        }
    }
}

/// Workers by state over everything listed (not just the page shown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Live workers taking jobs.
    pub running: usize,
    /// Live workers told to be quiet.
    pub quiet: usize,
    /// Live workers finishing before they stop.
    pub stopping: usize,
    /// Workers whose heartbeats are late.
    pub stale: usize,
    /// Workers whose entries expired (crashed), until forgotten.
    pub gone: usize,
    /// Busy slots over live workers.
    pub busy: u64,
    /// Slots over live workers.
    pub slots: u64,
}

/// One BullMQ worker connection, as `CLIENT LIST` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BullWorkerRow {
    /// The BullMQ queue.
    pub queue: String,
    /// The queue's page.
    pub href: String,
    /// The worker's `name` option, when it set one.
    pub name: Option<String>,
    /// The connection's address (`ip:port`).
    pub addr: String,
    /// How long the connection has existed (s).
    pub age_secs: u64,
    /// How long since its last command (s).
    pub idle_secs: u64,
    /// On a cluster, the node it was seen on.
    pub node: Option<String>,
}

/// The workers page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkersVm {
    /// This page of native workers, by queue then id.
    pub workers: Vec<WorkerRow>,
    /// Native workers matching the filter, in all.
    pub total: usize,
    /// Position of the first row shown.
    pub offset: usize,
    /// The queue filter (`?queue=`), if any.
    pub queue: Option<String>,
    /// Counts over every worker matching the filter.
    pub counts: WorkerCounts,
    /// When a worker counts as stale (ms without a heartbeat).
    pub stale_after_ms: i64,
    /// Why the native workers could not be read, when they could not.
    pub problem: Option<String>,
    /// BullMQ worker connections (matching the filter when it names a
    /// BullMQ queue), at most a page.
    pub bull: Vec<BullWorkerRow>,
    /// BullMQ connections in all, when more than shown.
    pub bull_total: usize,
    /// Why BullMQ workers are not listed (BullMQ off, `CLIENT LIST`
    /// refused), when they are not.
    pub bull_note: Option<String>,
    /// A one-off notice after an action.
    pub notice: Option<String>,
}

impl WorkersVm {
    /// This page's URL at `offset`, for the pager and for forms to come
    /// back to.
    pub fn url_with_offset(&self, offset: usize) -> String {
        let mut url = String::from("/workers");
        let mut sep = '?';
        if let Some(queue) = &self.queue {
            url.push_str(&format!(
                "{sep}queue={}",
                crate::format::encode_query(queue)
            ));
            sep = '&';
        }
        if offset > 0 {
            url.push_str(&format!("{sep}offset={offset}"));
        }
        url
    }
}

/// What a queue's row and page say about its workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueWorkersVm {
    /// The registry could not be read: say nothing.
    #[default]
    Unknown,
    /// No live worker takes this queue's jobs ("no workers").
    None,
    /// Every live worker is quiet or stopping ("all workers quiet").
    AllQuiet {
        /// Live workers.
        workers: usize,
    },
    /// Live workers take jobs.
    Working {
        /// Live workers.
        workers: usize,
        /// Of those, quiet or stopping.
        quiet: usize,
        /// Busy slots over them.
        busy: u64,
        /// Slots over them.
        slots: u64,
    },
}
