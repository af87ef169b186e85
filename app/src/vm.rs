//! View models: the plain data the pages render.
//!
//! They are defined here, not in `coord`, so that this crate never depends on
//! a queue backend, a database driver or Redis: the server maps its domain
//! types into these structs, and the pages can be rendered (and tested) from
//! hand-made values alone.

/// Job states in the order every page shows them, with the label used in
/// table headers and tabs. Kept in one place so the overview table, the tabs
/// and the CSS classes cannot disagree on names.
pub const STATES: [(&str, &str); 5] = [
    ("waiting", "Waiting"),
    ("active", "Active"),
    ("delayed", "Delayed"),
    ("completed", "Completed"),
    ("failed", "Failed"),
];

/// One queue's row in the overview table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueRow {
    /// The queue's name, already validated by the server (URL-safe).
    pub name: String,
    /// Jobs ready to run.
    pub waiting: u64,
    /// Jobs held by a worker right now.
    pub active: u64,
    /// Jobs waiting for their delay or backoff to pass.
    pub delayed: u64,
    /// Finished jobs still kept by retention.
    pub completed: u64,
    /// Jobs in the dead set, waiting for an operator.
    pub failed: u64,
    /// Whether workers are told to stop taking jobs of this queue.
    pub paused: bool,
}

impl QueueRow {
    /// The count for a state name from [`STATES`]; 0 for an unknown name, so
    /// a renamed state shows as empty instead of breaking the page.
    pub fn count(&self, state: &str) -> u64 {
        match state {
            "waiting" => self.waiting,
            "active" => self.active,
            "delayed" => self.delayed,
            "completed" => self.completed,
            "failed" => self.failed,
            _ => 0,
        }
    }
}

/// Everything the queues page (`/`) shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverviewVm {
    /// Which deployment serves the queues (`embedded`, `redis`), so an
    /// operator knows what a "backend down" line refers to.
    pub backend: String,
    /// Whether the backend answered its health check.
    pub backend_ok: bool,
    /// Round trip of the health check, when it answered.
    pub latency_ms: Option<f64>,
    /// Why the backend is not usable, when it is not.
    pub problem: Option<String>,
    /// Every known queue, sorted by name.
    pub queues: Vec<QueueRow>,
}

/// One job's row on a queue's page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRow {
    /// The job's id (validated, URL-safe).
    pub id: String,
    /// The job's name, as the producer gave it (any text: must be escaped).
    pub name: String,
    /// A short preview of the job's JSON data (any text: must be escaped).
    pub data_preview: String,
    /// Attempts started so far.
    pub attempts_made: u32,
    /// Attempts allowed before the job fails for good.
    pub attempts: u32,
    /// Lower runs first.
    pub priority: u32,
    /// How long ago the job was enqueued, in milliseconds.
    pub age_ms: i64,
    /// The last error, for failed and retrying jobs.
    pub failed_reason: Option<String>,
}

/// Everything a queue's page (`/queues/{queue}`) shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueuePageVm {
    /// The queue with its counts, for the header and the state tabs.
    pub queue: QueueRow,
    /// The state whose jobs are listed (a name from [`STATES`]).
    pub state: String,
    /// One page of jobs in that state, newest first.
    pub jobs: Vec<JobRow>,
    /// Jobs in that state in all.
    pub total: u64,
    /// Position of the first listed job.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
}

/// Renders an age in milliseconds the way an operator reads it at a glance
/// ("4 s ago", "12 min ago"), since exact timestamps are in the JSON API.
pub fn format_age(age_ms: i64) -> String {
    let secs = age_ms.max(0) / 1000;
    if secs < 60 {
        format!("{secs} s ago")
    } else if secs < 3600 {
        format!("{} min ago", secs / 60)
    } else if secs < 86_400 {
        format!("{} h ago", secs / 3600)
    } else {
        format!("{} d ago", secs / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(format_age(-5), "0 s ago");
        assert_eq!(format_age(4_999), "4 s ago");
        assert_eq!(format_age(125_000), "2 min ago");
        assert_eq!(format_age(7_200_000), "2 h ago");
        assert_eq!(format_age(3 * 86_400_000), "3 d ago");
    }

    #[test]
    fn counts_by_state_name() {
        let row = QueueRow {
            waiting: 1,
            active: 2,
            delayed: 3,
            completed: 4,
            failed: 5,
            ..QueueRow::default()
        };
        let counts: Vec<u64> = STATES.iter().map(|(s, _)| row.count(s)).collect();
        assert_eq!(counts, [1, 2, 3, 4, 5]);
        assert_eq!(row.count("nope"), 0);
    }
}
