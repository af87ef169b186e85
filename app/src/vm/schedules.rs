//! View model of the schedules page (`/schedules`) and of its edit form:
//! every repeatable job with when it runs next, what it last enqueued, and
//! the operator's pause, resume and run now (the admin's edit and remove).
//!
//! Plain data filled by the server from `coord::queue::schedules`, so the
//! pages render and test without a backend.

/// Schedules one page lists; the rest are a page away.
pub const SCHEDULES_PER_PAGE: usize = 50;

/// Next runs a row shows: the first in words, the rest on hover.
pub const NEXT_RUNS: usize = 5;

/// Whether a schedule fires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScheduleStatus {
    /// Fires at its next run.
    #[default]
    Active,
    /// Paused from the dashboard or the API.
    Paused,
    /// Past its end or its limit: it fires no more.
    Finished,
}

impl ScheduleStatus {
    /// The word shown and used in test ids and classes.
    pub fn label(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Finished => "finished",
        }
    }
}

/// One schedule's row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleRow {
    /// The schedule's id.
    pub id: String,
    /// The queue its jobs go to.
    pub queue: String,
    /// The name of each job it enqueues.
    pub job_name: String,
    /// When it ticks, in words (`cron 0 9 * * 1-5 · Europe/Berlin`,
    /// `every 30 s`).
    pub repeat: String,
    /// Active, paused or finished.
    pub status: ScheduleStatus,
    /// The next runs (ms since the epoch), at most [`NEXT_RUNS`]; empty
    /// when paused or finished.
    pub next_runs: Vec<i64>,
    /// When it last enqueued a job.
    pub last_run_at: Option<i64>,
    /// The job it last enqueued, with its page.
    pub last_job: Option<(String, String)>,
    /// Scheduled runs so far.
    pub runs: u64,
    /// At most this many runs, if limited.
    pub limit: Option<u64>,
    /// What happens to ticks missed while nothing fired them.
    pub missed: &'static str,
}

impl ScheduleRow {
    /// Pause is offered to an active schedule, Resume to a paused one;
    /// Run now to any schedule (a finished one too: a manual run is not
    /// counted against its limit).
    pub fn actions(&self) -> Vec<&'static str> {
        match self.status {
            ScheduleStatus::Active => vec!["pause", "run"],
            ScheduleStatus::Paused => vec!["resume", "run"],
            ScheduleStatus::Finished => vec!["run"],
        }
    }
}

/// Schedules by status over every match, not just the page shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleCounts {
    /// Firing.
    pub active: usize,
    /// Paused.
    pub paused: usize,
    /// Past their end or limit.
    pub finished: usize,
}

/// The schedules page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulesVm {
    /// This page of schedules, by id.
    pub schedules: Vec<ScheduleRow>,
    /// Schedules matching the filter, in all.
    pub total: usize,
    /// Position of the first row shown.
    pub offset: usize,
    /// The queue filter (`?queue=`), if any.
    pub queue: Option<String>,
    /// Counts over every schedule matching the filter.
    pub counts: ScheduleCounts,
    /// Why the schedules could not be read, when they could not.
    pub problem: Option<String>,
    /// Whether this dashboard fires due schedules itself (`--scheduler`).
    pub fires_here: bool,
    /// When the page was rendered (ms since the epoch), for "in 12 s".
    pub now_ms: i64,
    /// BullMQ's job schedulers and repeatables, when BullMQ is configured.
    pub bull: Option<BullSchedulersVm>,
    /// A one-off notice after an action.
    pub notice: Option<String>,
}

impl SchedulesVm {
    /// This page's URL at `offset`, for the pager and for forms to come
    /// back to.
    pub fn url_with_offset(&self, offset: usize) -> String {
        let mut url = String::from("/schedules");
        let mut sep = '?';
        if let Some(queue) = &self.queue {
            url.push_str(&format!(
                "{sep}queue={}",
                crate::format::encode_query(queue)
            ));
            sep = '&';
        }
        if let Some(bull) = &self.bull
            && let Some(queue) = &bull.queue
        {
            url.push_str(&format!("{sep}bull={}", crate::format::encode_query(queue)));
            sep = '&';
            if bull.offset > 0 {
                url.push_str(&format!("{sep}bull_offset={}", bull.offset));
            }
        }
        if offset > 0 {
            url.push_str(&format!("{sep}offset={offset}"));
        }
        url
    }
}

/// Where an operator's `action` (`pause`, `resume`, `run`, `remove`) on
/// schedule `id` posts.
pub fn schedule_action_path(id: &str, action: &str) -> String {
    format!("/schedules/{}/{action}", crate::format::encode_query(id))
}

/// The edit form of one schedule (or of a new one): the fields as the
/// admin typed them, so a refused save shows them again with the reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleFormVm {
    /// Editing this schedule; `None` for a new one.
    pub editing: Option<String>,
    /// The schedule's id.
    pub id: String,
    /// The queue its jobs go to.
    pub queue: String,
    /// Each job's name.
    pub job_name: String,
    /// `cron` or `every`.
    pub kind: String,
    /// The cron expression.
    pub expression: String,
    /// The cron expression's IANA time zone.
    pub time_zone: String,
    /// The interval, in words (`30s`, `5m`, `1h`).
    pub every: String,
    /// First tick no sooner than this (`2026-12-24T09:00:00Z`), if given.
    pub start_at: String,
    /// No tick after this, if given.
    pub end_at: String,
    /// At most this many runs, if given.
    pub limit: String,
    /// `skip` or `catch-up-once`.
    pub missed: String,
    /// Each job's data, as JSON.
    pub data: String,
    /// Each job's options, as JSON (`{"attempts": 3}`).
    pub options: String,
    /// Whether it is paused.
    pub paused: bool,
    /// Why the last save was refused.
    pub error: Option<String>,
}

/// BullMQ's job schedulers (`upsertJobScheduler`) and legacy repeatables
/// of one BullMQ queue, chosen on the page: listing them costs a read of
/// that queue's keys, so the page never reads every queue's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BullSchedulersVm {
    /// The BullMQ queues to choose from (at most a page of names).
    pub queues: Vec<String>,
    /// The queue shown, if one is chosen.
    pub queue: Option<String>,
    /// Its schedulers, a page of them.
    pub rows: Vec<BullSchedulerRow>,
    /// Its schedulers in all.
    pub total: u64,
    /// Position of the first row shown.
    pub offset: usize,
    /// Why they could not be read.
    pub problem: Option<String>,
}

/// Rows of BullMQ schedulers one page lists.
pub const BULL_SCHEDULERS_PER_PAGE: usize = 50;

/// One BullMQ job scheduler or legacy repeatable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BullSchedulerRow {
    /// Its key (the scheduler id, or the legacy repeat key).
    pub key: String,
    /// `scheduler` or `repeatable` (legacy).
    pub kind: &'static str,
    /// The name of each job.
    pub name: String,
    /// When it ticks, in words.
    pub repeat: String,
    /// Its next run (ms since the epoch), if known.
    pub next_run: Option<i64>,
    /// Iterations so far, where BullMQ stores them.
    pub iterations: Option<u64>,
    /// The template's data, truncated with a marker.
    pub template: String,
}

/// Where an operator's `action` (`run`, `remove`) on BullMQ scheduler
/// `key` of `queue` posts.
pub fn bull_scheduler_action_path(queue: &str, key: &str, action: &str) -> String {
    format!(
        "/bullmq/{}/schedulers/{}/{action}",
        crate::format::encode_query(queue),
        crate::format::encode_query(key)
    )
}
