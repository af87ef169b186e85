//! Repeatable jobs: a [`Schedule`] enqueues a job into its target queue at
//! every tick of a cron expression (in an IANA time zone) or of a fixed
//! interval, within an optional start, end and limit on runs.
//!
//! Schedules are stored in the queue backend (the `schedules` table on
//! SQLite; `<p>:{<queue>}:schedule:<id>` hashes under the target queue's
//! hash tag and the `<p>:schedules` index on Redis), and fired by a
//! [`Scheduler`] that any number of processes run at once. **No leader is
//! needed**: each tick fires exactly once across all of them, because the
//! backend fires it with a compare-and-set of the schedule's stored next
//! run (and its version, which every edit bumps) made atomically with the
//! enqueue of the tick's job — one Lua script on Redis, one `BEGIN
//! IMMEDIATE` transaction on SQLite. Whoever loses the race learns the new
//! next run and moves on; the job's id is deterministic
//! (`<schedule>:<tick ms>`), so even a fire whose answer was lost and that
//! ran again could not enqueue the tick twice (an existing id is kept).
//!
//! Next runs are computed here, in Rust (`croner` for cron expressions,
//! `chrono-tz` for zones), never in the backend: the backend only stores
//! and compares them.
//!
//! Cron expressions have five fields (minute to weekday) or six (seconds
//! first), with croner's extensions (`L`, `W`, `#`, names, `@daily`…).
//! Around a daylight-saving change croner follows the Open Cron Pattern
//! Specification: a wall-clock time that does not exist (skipped forward)
//! runs once at the first instant after the gap for fixed-time patterns,
//! and a wall-clock time that happens twice runs once, at its first pass
//! (see the Europe/Berlin tests in `coord/tests/schedules.rs`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::TimeZone;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::Queues;
use super::types::{JobId, JobOptions, NewJob, QueueName};
use crate::error::{CoordError, Result};
use crate::time::now_ms;

/// A tick later than this (ms) when the scheduler gets to it is missed,
/// and handled by the schedule's [`MissedPolicy`]; a tick less late fires
/// as usual (so a short pause of the scheduler loses nothing).
pub const MISSED_AFTER_MS: i64 = 1_000;

/// Fires a scheduler hands the backend at once.
const MAX_FIRES: usize = 1_000;

/// Most next runs [`Queues::next_runs`] computes at once.
pub const MAX_NEXT_RUNS: usize = 100;

/// A schedule's id: 1–64 characters of `A-Z a-z 0-9 _ . -`, so that
/// `<id>:<tick ms>` is a valid [`JobId`] and the id is safe in keys, rows
/// and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScheduleId(String);

impl ScheduleId {
    /// Accepts 1–64 characters of `A-Z a-z 0-9 _ . -`.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("must not be empty")
        } else if id.len() > 64 {
            Some("must be at most 64 characters")
        } else if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            Some("may only contain letters, digits, '_', '.' and '-'")
        } else if id.bytes().all(|b| b == b'.') {
            Some("must not be only dots")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CoordError::InvalidSchedule {
                id,
                reason: reason.into(),
            }),
            None => Ok(Self(id)),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the job fired for the tick at `tick_ms`.
    pub fn tick_job_id(&self, tick_ms: i64) -> JobId {
        JobId::new(format!("{}:{tick_ms}", self.0)).expect("a schedule id and a number")
    }

    /// The id of the job an operator's run-now enqueued at `at_ms`.
    pub fn manual_job_id(&self, at_ms: i64) -> JobId {
        JobId::new(format!("{}:now-{at_ms}", self.0)).expect("a schedule id and a number")
    }
}

impl fmt::Display for ScheduleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ScheduleId {
    type Err = CoordError;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for ScheduleId {
    type Error = CoordError;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<ScheduleId> for String {
    fn from(id: ScheduleId) -> String {
        id.0
    }
}

/// When a schedule ticks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Repeat {
    /// A cron expression (5 fields, or 6 with seconds first) read in an
    /// IANA time zone (`Europe/Berlin`, `UTC`).
    Cron {
        expression: String,
        time_zone: String,
    },
    /// Every `every_ms` milliseconds, counted from the schedule's start
    /// (or from the Unix epoch without one: `every_ms` = one hour ticks at
    /// the top of every UTC hour).
    Every { every_ms: u64 },
}

/// What the scheduler does with ticks it missed by more than
/// [`MISSED_AFTER_MS`] (every scheduler was down, or the schedule was
/// resumed after its ticks went by).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MissedPolicy {
    /// Fire nothing for them: the next run becomes the first tick not
    /// yet missed.
    #[default]
    Skip,
    /// Fire one job for all of them (with the id of the first missed
    /// tick), then go on from the first tick not yet missed.
    CatchUpOnce,
}

/// A repeatable job: what to enqueue where, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub id: ScheduleId,
    /// The queue its jobs go to.
    pub queue: QueueName,
    /// The name of every job it enqueues.
    pub job_name: String,
    /// The data of every job it enqueues, as it is (a template: copied
    /// into each job).
    pub data: Value,
    /// The options of every job it enqueues; `jobId` must be unset (each
    /// job's id is `<schedule>:<tick ms>`).
    #[serde(default)]
    pub options: JobOptions,
    pub repeat: Repeat,
    /// No tick before this (ms since the epoch).
    #[serde(default)]
    pub start_at: Option<i64>,
    /// No tick after this (ms since the epoch).
    #[serde(default)]
    pub end_at: Option<i64>,
    /// At most this many scheduled runs (run-now does not count).
    #[serde(default)]
    pub limit: Option<u64>,
    /// A paused schedule fires nothing; resuming it starts from the first
    /// tick after now.
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub missed: MissedPolicy,
}

impl Schedule {
    /// An interval schedule with default options.
    pub fn every(id: ScheduleId, queue: QueueName, job_name: &str, every: Duration) -> Self {
        Self::new(
            id,
            queue,
            job_name,
            Repeat::Every {
                every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            },
        )
    }

    /// A cron schedule with default options.
    pub fn cron(
        id: ScheduleId,
        queue: QueueName,
        job_name: &str,
        expression: &str,
        time_zone: &str,
    ) -> Self {
        Self::new(
            id,
            queue,
            job_name,
            Repeat::Cron {
                expression: expression.into(),
                time_zone: time_zone.into(),
            },
        )
    }

    fn new(id: ScheduleId, queue: QueueName, job_name: &str, repeat: Repeat) -> Self {
        Self {
            id,
            queue,
            job_name: job_name.into(),
            data: Value::Null,
            options: JobOptions::default(),
            repeat,
            start_at: None,
            end_at: None,
            limit: None,
            paused: false,
            missed: MissedPolicy::Skip,
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> CoordError {
        CoordError::InvalidSchedule {
            id: self.id.to_string(),
            reason: reason.into(),
        }
    }

    /// Rejects a schedule that could not run: a bad cron expression, an
    /// unknown zone, an interval of 0, an end before the start, a limit of
    /// 0, a job no queue would take.
    pub fn validate(&self) -> Result<()> {
        self.ticks()?;
        if let (Some(start), Some(end)) = (self.start_at, self.end_at)
            && end < start
        {
            return Err(self.invalid(format!("ends ({end}) before it starts ({start})")));
        }
        if self.limit == Some(0) {
            return Err(self.invalid("a limit on runs must be at least 1"));
        }
        if self.options.job_id.is_some() {
            return Err(self.invalid("jobId must be unset: each job's id is <schedule>:<tick>"));
        }
        NewJob::new(self.job_name.clone(), Value::Null)
            .with_options(self.options.clone())
            .validate()
            .map_err(|e| self.invalid(e.to_string()))
    }

    /// The ticks of the schedule, checked.
    fn ticks(&self) -> Result<Ticks> {
        match &self.repeat {
            Repeat::Every { every_ms } => {
                if *every_ms == 0 {
                    return Err(self.invalid("the interval must be at least 1 ms"));
                }
                let every = i64::try_from(*every_ms)
                    .ok()
                    .filter(|ms| *ms <= super::MAX_DELAY_MS)
                    .ok_or_else(|| self.invalid("the interval must be at most 10 years"))?;
                Ok(Ticks::Every {
                    every,
                    anchor: self.start_at.unwrap_or(0),
                })
            }
            Repeat::Cron {
                expression,
                time_zone,
            } => {
                let zone: chrono_tz::Tz = time_zone
                    .parse()
                    .map_err(|_| self.invalid(format!("unknown time zone {time_zone:?}")))?;
                let cron = CronParser::builder()
                    .seconds(Seconds::Optional)
                    .build()
                    .parse(expression)
                    .map_err(|e| {
                        self.invalid(format!("bad cron expression {expression:?}: {e}"))
                    })?;
                Ok(Ticks::Cron(Box::new(cron), zone))
            }
        }
    }

    /// The first tick strictly after `after_ms` within start and end (the
    /// limit is the caller's), or `None`.
    pub fn tick_after(&self, after_ms: i64) -> Result<Option<i64>> {
        let from = match self.start_at {
            Some(start) => after_ms.max(start.saturating_sub(1)),
            None => after_ms,
        };
        let tick = self.ticks()?.after(from);
        Ok(tick.filter(|t| self.end_at.is_none_or(|end| *t <= end)))
    }

    /// The next `n` runs after `after_ms`, with `runs` runs made so far
    /// (the limit counts them).
    pub fn runs_after(&self, after_ms: i64, runs: u64, n: usize) -> Result<Vec<i64>> {
        let mut left = self.limit.map_or(n as u64, |l| l.saturating_sub(runs));
        let mut out = Vec::new();
        let mut at = after_ms;
        while out.len() < n && left > 0 {
            match self.tick_after(at)? {
                Some(tick) => {
                    out.push(tick);
                    at = tick;
                    left -= 1;
                }
                None => break,
            }
        }
        Ok(out)
    }
}

enum Ticks {
    Every { every: i64, anchor: i64 },
    Cron(Box<Cron>, chrono_tz::Tz),
}

impl Ticks {
    fn after(&self, after: i64) -> Option<i64> {
        match self {
            Ticks::Every { every, anchor } => {
                if after < *anchor {
                    return Some(*anchor);
                }
                let k = (after - anchor).div_euclid(*every) + 1;
                k.checked_mul(*every)?.checked_add(*anchor)
            }
            Ticks::Cron(cron, zone) => {
                let start = zone.timestamp_millis_opt(after).single()?;
                let next = cron.find_next_occurrence(&start, false).ok()?;
                Some(next.timestamp_millis())
            }
        }
    }
}

/// A stored schedule with where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleState {
    /// The definition; `paused` is the stored flag.
    pub schedule: Schedule,
    /// When it fires next; `None` once past its end or limit (or never).
    pub next_run_at: Option<i64>,
    /// When it last enqueued a job (a tick or a run-now).
    pub last_run_at: Option<i64>,
    /// The last job it enqueued.
    pub last_job_id: Option<JobId>,
    /// Scheduled runs so far (run-now does not count).
    pub runs: u64,
    /// Bumped by every edit, pause and resume: a fire planned on an older
    /// version is refused.
    pub version: i64,
}

impl ScheduleState {
    /// The next `n` runs (at most [`MAX_NEXT_RUNS`]), from the stored next
    /// run, within the end and the limit; none while paused.
    pub fn next_runs(&self, n: usize) -> Result<Vec<i64>> {
        let n = n.min(MAX_NEXT_RUNS);
        match self.next_run_at {
            Some(next) if n > 0 && !self.schedule.paused => {
                let mut runs = vec![next];
                runs.extend(self.schedule.runs_after(next, self.runs + 1, n - 1)?);
                Ok(runs)
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// A moment as people and APIs write it (RFC 3339:
/// `2026-12-24T09:00:00Z`, `2026-12-24T10:00:00+01:00`) in ms since the
/// epoch, for a schedule's start and end.
pub fn parse_time(text: &str) -> std::result::Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{text:?} is not a time like 2026-12-24T09:00:00Z ({e})"))
}

/// One atomic fire, as a backend carries it out: when the stored next run
/// and version still are `expected`, set the next run to `next_run_at`
/// and enqueue `job` (counting a run) if there is one. With `expected`
/// `None` (run-now) the job is enqueued and recorded as the last run, and
/// nothing else changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire {
    pub id: ScheduleId,
    pub queue: QueueName,
    /// `(next run, version)` the fire was planned on.
    pub expected: Option<(i64, i64)>,
    pub next_run_at: Option<i64>,
    /// The job, with its id set.
    pub job: Option<NewJob>,
}

/// What a fire did.
#[derive(Debug, Clone, PartialEq)]
pub enum Fired {
    /// Done: the stored next run is the one asked for.
    Done,
    /// Someone else fired or edited it first: where it stands now.
    Stale {
        next_run_at: Option<i64>,
        version: i64,
        paused: bool,
        runs: u64,
    },
    /// The schedule is gone (removed, or moved to another queue).
    Missing,
}

/// What to do with a schedule due at `now`: the fire to run.
pub fn plan_fire(state: &ScheduleState, now: i64) -> Result<Option<Fire>> {
    let schedule = &state.schedule;
    let Some(tick) = state.next_run_at else {
        return Ok(None);
    };
    if schedule.paused || tick > now {
        return Ok(None);
    }
    let limit_left = |runs: u64| schedule.limit.is_none_or(|l| runs < l);
    let job_for = |tick: i64| {
        let mut options = schedule.options.clone();
        options.job_id = Some(schedule.id.tick_job_id(tick));
        NewJob {
            name: schedule.job_name.clone(),
            data: schedule.data.clone(),
            options,
        }
    };
    let (job, after) = if now - tick <= MISSED_AFTER_MS {
        (limit_left(state.runs).then(|| job_for(tick)), tick)
    } else {
        // Missed: go on from the first tick not missed yet.
        let job = match schedule.missed {
            MissedPolicy::Skip => None,
            MissedPolicy::CatchUpOnce => limit_left(state.runs).then(|| job_for(tick)),
        };
        (job, (now - MISSED_AFTER_MS).max(tick))
    };
    let runs = state.runs + u64::from(job.is_some());
    let next = if limit_left(runs) {
        schedule.tick_after(after)?
    } else {
        None
    };
    Ok(Some(Fire {
        id: schedule.id.clone(),
        queue: schedule.queue.clone(),
        expected: Some((tick, state.version)),
        next_run_at: next,
        job,
    }))
}

/// Builds a [`Scheduler`]: `Queues::scheduler().start()`.
#[derive(Clone)]
pub struct Scheduler {
    queues: Queues,
    refresh: Duration,
}

impl Scheduler {
    pub(super) fn new(queues: Queues) -> Self {
        Self {
            queues,
            refresh: Duration::from_secs(1),
        }
    }

    /// How often the schedules are read again, to see edits made
    /// elsewhere (1 s by default). Between reads the scheduler sleeps until
    /// the earliest next run.
    pub fn refresh(mut self, every: Duration) -> Self {
        self.refresh = every.max(Duration::from_millis(10));
        self
    }

    /// Starts firing schedules in a task of its own. Any number of
    /// processes may run one at once: each tick fires once across all of
    /// them (see the module's documentation), so there is no leader to
    /// elect, and a scheduler that dies costs nothing but its share of the
    /// work.
    pub fn start(self) -> SchedulerHandle {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(self.run(stopped));
        SchedulerHandle {
            task: Some(task),
            stop,
        }
    }

    async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut states: Vec<ScheduleState> = Vec::new();
        let mut refresh_at = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                return;
            }
            // Due fires go first: a read of every schedule is not worth
            // their lateness (the compare-and-set keeps a fire planned on
            // an older read harmless), unless the read is a period late.
            let now = now_ms();
            let any_due = states
                .iter()
                .any(|s| !s.schedule.paused && s.next_run_at.is_some_and(|t| t <= now));
            let instant = tokio::time::Instant::now();
            if (instant >= refresh_at && !any_due) || instant >= refresh_at + self.refresh {
                match self.queues.schedules().await {
                    Ok(read) => states = read,
                    Err(e) => tracing::warn!(error = %e, "cannot read the schedules; trying again"),
                }
                refresh_at = tokio::time::Instant::now() + self.refresh;
            }
            let now = now_ms();
            let mut due = Vec::new();
            for (i, state) in states.iter().enumerate() {
                if state.schedule.paused || state.next_run_at.is_none_or(|t| t > now) {
                    continue;
                }
                match plan_fire(state, now) {
                    Ok(Some(fire)) => due.push((i, fire)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(schedule = %state.schedule.id, error = %e, "cannot plan a schedule's fire")
                    }
                }
            }
            if !due.is_empty() {
                let mut failed = false;
                for chunk in due.chunks(MAX_FIRES) {
                    let fires: Vec<Fire> = chunk.iter().map(|(_, f)| f.clone()).collect();
                    match self.queues.backend().fire_schedules(&fires).await {
                        Ok(outcomes) => {
                            for ((i, fire), fired) in chunk.iter().zip(outcomes) {
                                apply(&mut states[*i], fire, fired);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot fire schedules; trying again");
                            failed = true;
                        }
                    }
                }
                if failed {
                    // Read them afresh before the next try.
                    refresh_at = tokio::time::Instant::now()
                        .checked_sub(self.refresh)
                        .unwrap_or_else(tokio::time::Instant::now);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = stop.changed() => return,
                    }
                }
                continue;
            }
            let earliest = states
                .iter()
                .filter(|s| !s.schedule.paused)
                .filter_map(|s| s.next_run_at)
                .min();
            let mut wake = refresh_at;
            if let Some(at) = earliest {
                let wait = Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0));
                wake = wake.min(tokio::time::Instant::now() + wait);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Updates what the scheduler knows of a schedule after a fire.
fn apply(state: &mut ScheduleState, fire: &Fire, fired: Fired) {
    match fired {
        // The compare-and-set held: nobody else changed it meanwhile.
        Fired::Done => {
            state.next_run_at = fire.next_run_at;
            state.runs += u64::from(fire.job.is_some());
        }
        Fired::Stale {
            next_run_at,
            version,
            paused,
            runs,
        } => {
            state.next_run_at = next_run_at;
            state.version = version;
            state.schedule.paused = paused;
            state.runs = runs;
        }
        Fired::Missing => {
            state.next_run_at = None;
            state.schedule.paused = true;
        }
    }
}

/// A running [`Scheduler`]. Dropping it stops the scheduler at once (as a
/// crash would: nothing is lost, another scheduler or the next start fires
/// what is due); [`SchedulerHandle::shutdown`] lets a fire under way end
/// first.
pub struct SchedulerHandle {
    task: Option<JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl SchedulerHandle {
    /// Stops after the fire under way, if any.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops at once, wherever it is (what a crash does).
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
