//! The worker registry: who is working on which queue, on what, and the
//! operator's say over them.
//!
//! Every native worker ([`super::WorkerBuilder`]) writes a [`WorkerReport`]
//! every few seconds into its queue backend (SQLite rows or Redis keys), so a
//! dashboard sharing the backend lists the workers of every process: their
//! host and pid, their busy slots and the jobs in them. Entries live the
//! instances' life (live → stale → gone → forgotten, judged by the reader's
//! [`Thresholds`]), so a crashed worker is shown, then forgotten.
//!
//! The operator can ask a worker to go [quiet](WorkerCommand::Quiet) (take
//! no new jobs, finish the running ones), to [resume](WorkerCommand::Resume)
//! or to [stop](WorkerCommand::Stop). What is stored beside the entry is
//! the state asked for (quiet, stop, or nothing: resuming clears it), and
//! every heartbeat is answered with it. So a command is obeyed within one
//! heartbeat interval, survives a dashboard restart and a lost answer, and
//! a quiet worker stays quiet until it is resumed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::latency::{LatencyMinute, MAX_PAIRS};
use super::types::{JobId, QueueName};
use crate::error::{CoordError, Result};
use crate::instance::{MAX_INSTANCE_ID_LEN, host_label, name_problem};
use crate::instances::{InstanceStatus, Thresholds};

/// Running jobs one report names (the longest-running first): enough to see
/// what a worker is stuck on, while a report of a worker running 10,000
/// jobs at once stays a few kilobytes. [`WorkerReport::busy`] counts them
/// all.
pub const MAX_REPORTED_JOBS: usize = 20;

/// Longest accepted version text.
pub const MAX_WORKER_LABEL_LEN: usize = 64;

/// How often a worker reports by default (the instances' interval): a
/// command is obeyed within this long.
pub const DEFAULT_WORKER_HEARTBEAT: Duration = Duration::from_secs(5);

/// The name of one running worker: unique per start, so two workers of one
/// process (or a restarted one) never share an entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkerId(String);

impl WorkerId {
    /// Checks a name given in a URL or stored: an instance name's rules.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        match name_problem(&name) {
            Some(reason) => Err(CoordError::InvalidWorker(format!(
                "invalid worker id {name:?}: {reason}"
            ))),
            None => Ok(Self(name)),
        }
    }

    /// `<host>-<pid>-<6 hex digits>`: where it runs, and a random part that
    /// tells apart the workers of one process.
    pub fn generate() -> Self {
        let pid = std::process::id().to_string();
        let host = host_label(MAX_INSTANCE_ID_LEN - pid.len() - 8);
        Self(format!(
            "{host}-{pid}-{:06x}",
            rand::random::<u32>() & 0xff_ffff
        ))
    }

    /// The id as text, for keys, URLs and logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for WorkerId {
    type Err = CoordError;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for WorkerId {
    type Error = CoordError;

    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<WorkerId> for String {
    fn from(id: WorkerId) -> Self {
        id.0
    }
}

/// What a worker is doing with new jobs, as it reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WorkerState {
    /// Claiming jobs as slots free up.
    #[default]
    Running,
    /// Asked to take no new jobs; finishing the running ones.
    Quiet,
    /// Asked to stop: finishing the running ones, then leaving.
    Stopping,
}

impl WorkerState {
    /// The word the UI and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Quiet => "quiet",
            Self::Stopping => "stopping",
        }
    }
}

/// What the operator asks of a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WorkerCommand {
    /// Take no new jobs (Sidekiq's "quiet"); running ones finish.
    Quiet,
    /// Take jobs again after [`WorkerCommand::Quiet`].
    Resume,
    /// Finish the running jobs (within the worker's grace) and stop.
    Stop,
}

impl WorkerCommand {
    /// The word the UI, the API and the audit log use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quiet => "quiet",
            Self::Resume => "resume",
            Self::Stop => "stop",
        }
    }
}

impl FromStr for WorkerCommand {
    type Err = CoordError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "quiet" => Ok(Self::Quiet),
            "resume" => Ok(Self::Resume),
            "stop" => Ok(Self::Stop),
            other => Err(CoordError::InvalidWorker(format!(
                "unknown worker command {other:?} (quiet, resume or stop)"
            ))),
        }
    }
}

/// One job in a busy slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningJob {
    /// The job's id in the worker's queue.
    pub id: JobId,
    /// When its handler started (ms since the epoch), for how long it runs.
    pub started_at: i64,
}

/// What one worker says about itself at each heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerReport {
    /// Which worker this is; the registry key.
    pub id: WorkerId,
    /// The queue it works on.
    pub queue: QueueName,
    /// The host it runs on, as the kernel names it.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// The software version the service gave it (`-` when it gave none).
    pub version: String,
    /// Jobs it runs at once at most.
    pub concurrency: u32,
    /// Slots in use now.
    pub busy: u32,
    /// The longest-running of the jobs in those slots, at most
    /// [`MAX_REPORTED_JOBS`].
    pub running: Vec<RunningJob>,
    /// Whether it takes new jobs.
    pub state: WorkerState,
    /// Jobs it completed since it started.
    pub completed: u64,
    /// Attempts that failed since it started.
    pub failed: u64,
    /// When it started (ms since the epoch).
    pub started_at: i64,
    /// When this report was written (ms since the epoch).
    pub heartbeat_at: i64,
    /// Wait and run times of the attempts it finished this minute and
    /// the last ([`super::latency`]).
    #[serde(default)]
    pub latency: Vec<LatencyMinute>,
}

impl WorkerReport {
    /// Refuses reports that would garble a dashboard before they are
    /// stored.
    pub fn validate(&self) -> Result<()> {
        for (what, value) in [("host", &self.host), ("version", &self.version)] {
            if value.is_empty()
                || value.chars().count() > MAX_WORKER_LABEL_LEN
                || value.chars().any(char::is_control)
            {
                return Err(CoordError::InvalidWorker(format!(
                    "worker {}: {what} must be 1–{MAX_WORKER_LABEL_LEN} printable characters",
                    self.id
                )));
            }
        }
        if self.latency.len() > 2
            || self
                .latency
                .iter()
                .any(|m| m.wait.len() > MAX_PAIRS || m.run.len() > MAX_PAIRS)
        {
            return Err(CoordError::InvalidWorker(format!(
                "worker {}: a report carries two minutes of at most {MAX_PAIRS} latency buckets",
                self.id
            )));
        }
        if self.running.len() > MAX_REPORTED_JOBS {
            return Err(CoordError::InvalidWorker(format!(
                "worker {}: a report names at most {MAX_REPORTED_JOBS} running jobs",
                self.id
            )));
        }
        Ok(())
    }
}

/// One row of the workers page: the last report and what it means now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerView {
    /// The last report (for a gone worker, its last words).
    pub report: WorkerReport,
    /// Live, stale or gone at the time of listing.
    pub status: InstanceStatus,
    /// How old the last heartbeat was at the time of listing.
    pub heartbeat_age_ms: i64,
    /// What the operator asked of it (`Quiet` or `Stop`; nothing once
    /// resumed). Compared with the reported state, it shows a command
    /// not taken up yet.
    pub command: Option<WorkerCommand>,
}

/// Judges stored entries the one way both backends do: each entry's last
/// report, whether its time to live ran out, and its command. Returns the
/// views, sorted by queue then id, and the ids to forget.
pub(crate) fn judge_entries(
    entries: Vec<(WorkerReport, bool, Option<WorkerCommand>)>,
    now_ms: i64,
    thresholds: &Thresholds,
) -> (Vec<WorkerView>, Vec<WorkerId>) {
    let mut views = Vec::with_capacity(entries.len());
    let mut forget = Vec::new();
    for (report, expired, command) in entries {
        match thresholds.judge(now_ms, report.heartbeat_at, expired) {
            Some((status, heartbeat_age_ms)) => views.push(WorkerView {
                report,
                status,
                heartbeat_age_ms,
                command,
            }),
            None => forget.push(report.id),
        }
    }
    views.sort_by(|a, b| (&a.report.queue, &a.report.id).cmp(&(&b.report.queue, &b.report.id)));
    (views, forget)
}

/// Decodes a stored command; an unknown word is logged and ignored, never
/// obeyed.
pub(crate) fn stored_command(text: Option<&str>) -> Option<WorkerCommand> {
    let text = text?;
    match text.parse() {
        Ok(command) => Some(command),
        Err(_) => {
            tracing::warn!(command = text, "unknown stored worker command; ignored");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_differ() {
        let a = WorkerId::generate();
        let b = WorkerId::generate();
        assert!(WorkerId::new(a.as_str()).is_ok(), "{a}");
        assert_ne!(a, b);
        assert!(a.as_str().contains(&format!("-{}-", std::process::id())));
        assert!(WorkerId::new("has space").is_err());
        assert!(WorkerId::new("").is_err());
    }

    #[test]
    fn commands_round_trip_and_unknown_ones_are_refused() {
        for c in [
            WorkerCommand::Quiet,
            WorkerCommand::Resume,
            WorkerCommand::Stop,
        ] {
            assert_eq!(c.as_str().parse::<WorkerCommand>().unwrap(), c);
        }
        assert!("pause".parse::<WorkerCommand>().is_err());
        assert_eq!(stored_command(Some("nonsense")), None);
    }
}
