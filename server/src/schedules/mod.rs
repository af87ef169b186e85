//! Schedules: the repeatable jobs of `coord::queue::schedules`, their next
//! runs and last jobs, and the operator's pause / resume / run now (the
//! admin's edit and remove). BullMQ's own job schedulers are read by the
//! BullMQ monitor, one chosen queue at a time.
//!
//! The hub reads every schedule every [`READ_EVERY`] (one read for all
//! viewers, whatever the number of open pages) and asks for a snapshot
//! only when what a page shows changed: a fire, an edit, a pause.
//!
//! The dashboard also fires due schedules itself unless started with
//! `--scheduler false`: firing needs no leader (each tick is a
//! compare-and-set in the backend), so a dashboard beside the services'
//! schedulers adds nothing but a second pair of hands, and a deployment
//! whose services run none still has its schedules fired.

pub mod routes;
pub mod vm;

use std::time::Duration;

use coord::CoordError;
use coord::queue::Queues;
use coord::queue::schedules::{ScheduleId, ScheduleState, SchedulerHandle};
use coord::time::now_ms;

use crate::http::error::one_line;

/// How often the hub reads the schedules: a fire shows within this.
pub const READ_EVERY: Duration = Duration::from_secs(2);

/// Longest a read of the schedules may take per tick.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Every schedule as of one read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleFigures {
    /// By id.
    pub schedules: Vec<ScheduleState>,
    /// Why the schedules could not be read (the list is then empty: a
    /// list that may be wrong is worse than none).
    pub problem: Option<String>,
    /// When they were read (ms since the epoch).
    pub read_at: i64,
}

impl ScheduleFigures {
    /// Whether a page would show something else than with `other` (the
    /// read time aside: the page script keeps "in 12 s" current).
    pub fn same_as(&self, other: &ScheduleFigures) -> bool {
        self.problem == other.problem && self.schedules == other.schedules
    }
}

/// What an operator may ask of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleAction {
    /// Fire nothing until resumed.
    Pause,
    /// Fire again from the next tick after now.
    Resume,
    /// Enqueue one job now.
    Run,
    /// Delete it (its jobs stay).
    Remove,
}

impl ScheduleAction {
    /// The word in paths and audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Run => "run",
            Self::Remove => "remove",
        }
    }
}

impl std::str::FromStr for ScheduleAction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "pause" => Ok(Self::Pause),
            "resume" => Ok(Self::Resume),
            "run" => Ok(Self::Run),
            "remove" => Ok(Self::Remove),
            _ => Err(()),
        }
    }
}

/// The schedules of the queue backend. Cheap to clone.
#[derive(Clone)]
pub struct Schedules {
    queues: Queues,
    fires_here: bool,
}

impl std::fmt::Debug for Schedules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedules")
            .field("fires_here", &self.fires_here)
            .finish_non_exhaustive()
    }
}

impl Schedules {
    /// The schedules of `queues`' backend; `fires_here` when this server
    /// runs a scheduler ([`Schedules::start_scheduler`]).
    pub fn new(queues: Queues, fires_here: bool) -> Self {
        Self { queues, fires_here }
    }

    /// Whether this server fires due schedules.
    pub fn fires_here(&self) -> bool {
        self.fires_here
    }

    /// The scheduler this server runs, if it fires schedules: dropped (as
    /// at shutdown), it stops at once, and what it would have fired is
    /// fired by another scheduler or after the next start.
    pub fn start_scheduler(&self) -> Option<SchedulerHandle> {
        self.fires_here.then(|| self.queues.scheduler().start())
    }

    /// Every schedule, now. An outage is a `problem`, never an error.
    pub async fn figures(&self) -> ScheduleFigures {
        let now = now_ms();
        let problem = match tokio::time::timeout(TIMEOUT, self.queues.schedules()).await {
            Ok(Ok(mut schedules)) => {
                schedules.sort_by(|a, b| a.schedule.id.cmp(&b.schedule.id));
                return ScheduleFigures {
                    schedules,
                    problem: None,
                    read_at: now,
                };
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot read the schedules");
                one_line(&err.to_string())
            }
            Err(_) => format!("no answer within {TIMEOUT:?}"),
        };
        ScheduleFigures {
            problem: Some(problem),
            read_at: now,
            ..ScheduleFigures::default()
        }
    }

    /// Carries out an operator's action (the one operation the form and
    /// the API both call) and says what was done, in words.
    /// `ScheduleNotFound` for an unknown schedule.
    pub async fn act(&self, id: &ScheduleId, action: ScheduleAction) -> Result<String, CoordError> {
        let told = match action {
            ScheduleAction::Pause => {
                self.queues.pause_schedule(id).await?;
                format!("Paused {id}: it fires nothing until resumed.")
            }
            ScheduleAction::Resume => {
                self.queues.resume_schedule(id).await?;
                let next = self.queues.next_runs(id, 1).await?;
                match next.first() {
                    Some(at) => format!(
                        "Resumed {id}: it next fires at {}.",
                        app::format_timestamp(*at)
                    ),
                    None => {
                        format!("Resumed {id}, but it fires no more: it is past its end or limit.")
                    }
                }
            }
            ScheduleAction::Run => {
                let job = self.queues.run_schedule_now(id).await?;
                format!("Enqueued job {job} from {id} now; its next scheduled run is unchanged.")
            }
            ScheduleAction::Remove => {
                self.queues.remove_schedule(id).await?;
                format!("Removed {id}; the jobs it enqueued stay.")
            }
        };
        tracing::info!(schedule = %id, action = action.as_str(), "schedule action");
        Ok(told)
    }

    /// The queue backend's schedules, for the edit form and the API.
    pub fn queues(&self) -> &Queues {
        &self.queues
    }
}
