//! The schedules page's view model from the hub's figures, and the edit
//! form both ways: a stored schedule as form fields, and the fields an
//! admin posted as a schedule (or the reason they are not one).

use app::vm::schedules::{
    NEXT_RUNS, SCHEDULES_PER_PAGE, ScheduleCounts, ScheduleFormVm, ScheduleRow, ScheduleStatus,
    SchedulesVm,
};
use coord::queue::schedules::{
    MissedPolicy, Repeat, Schedule, ScheduleId, ScheduleState, parse_time,
};
use coord::queue::{JobOptions, QueueName};
use serde_json::Value;

use super::ScheduleFigures;

/// The page's filters and positions, from its query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct SchedulesQuery {
    /// Only the schedules enqueueing into this queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// The first row shown.
    #[serde(default)]
    pub offset: usize,
    /// The BullMQ queue whose schedulers are listed.
    #[serde(default)]
    pub bull: Option<String>,
    /// The first BullMQ scheduler shown.
    #[serde(default)]
    pub bull_offset: usize,
}

fn non_empty(text: Option<&String>) -> Option<&str> {
    text.map(|q| q.trim()).filter(|q| !q.is_empty())
}

impl SchedulesQuery {
    /// The queue filter, with an empty one meaning none.
    pub fn queue(&self) -> Option<&str> {
        non_empty(self.queue.as_ref())
    }

    /// The BullMQ queue chosen, if any.
    pub fn bull(&self) -> Option<&str> {
        non_empty(self.bull.as_ref())
    }

    /// The same query without the BullMQ part, which live updates leave
    /// as the page loaded it (one stream serves every BullMQ choice).
    pub fn native(&self) -> SchedulesQuery {
        SchedulesQuery {
            queue: self.queue().map(str::to_owned),
            offset: self.offset,
            ..SchedulesQuery::default()
        }
    }
}

/// A cron repetition in words, native and BullMQ alike.
pub fn cron_words(expression: &str, time_zone: &str) -> String {
    format!("cron {expression} · {time_zone}")
}

/// An interval repetition in words, native and BullMQ alike.
pub fn every_words(every_ms: u64) -> String {
    format!(
        "every {}",
        app::format_window(i64::try_from(every_ms).unwrap_or(i64::MAX))
    )
}

/// When a schedule ticks, in words.
pub fn repeat_words(repeat: &Repeat) -> String {
    match repeat {
        Repeat::Cron {
            expression,
            time_zone,
        } => cron_words(expression, time_zone),
        Repeat::Every { every_ms } => every_words(*every_ms),
    }
}

fn missed_word(policy: MissedPolicy) -> &'static str {
    match policy {
        MissedPolicy::Skip => "skip",
        MissedPolicy::CatchUpOnce => "catch up once",
    }
}

/// Active, paused, or finished (past its end or limit).
pub fn status(state: &ScheduleState) -> ScheduleStatus {
    if state.schedule.paused {
        ScheduleStatus::Paused
    } else if state.next_run_at.is_none() {
        ScheduleStatus::Finished
    } else {
        ScheduleStatus::Active
    }
}

fn row(state: &ScheduleState) -> ScheduleRow {
    let schedule = &state.schedule;
    let queue = schedule.queue.as_str();
    ScheduleRow {
        id: schedule.id.to_string(),
        queue: queue.to_owned(),
        job_name: schedule.job_name.clone(),
        repeat: repeat_words(&schedule.repeat),
        status: status(state),
        // A stored schedule was validated; one that no longer computes
        // (a zone database change) shows its stored next run alone.
        next_runs: state
            .next_runs(NEXT_RUNS)
            .unwrap_or_else(|_| state.next_run_at.into_iter().collect()),
        last_run_at: state.last_run_at,
        last_job: state.last_job_id.as_ref().map(|id| {
            (
                id.to_string(),
                format!("/queues/{queue}/jobs/{}", app::encode_query(id.as_str())),
            )
        }),
        runs: state.runs,
        limit: schedule.limit,
        missed: missed_word(schedule.missed),
    }
}

/// The schedules the query's queue filter lets through, by id.
pub fn matching<'a>(
    figures: &'a ScheduleFigures,
    query: &SchedulesQuery,
) -> Vec<&'a ScheduleState> {
    figures
        .schedules
        .iter()
        .filter(|s| query.queue().is_none_or(|q| s.schedule.queue.as_str() == q))
        .collect()
}

/// Schedules by status, over every match (the page and the API).
pub fn counts(matching: &[&ScheduleState]) -> ScheduleCounts {
    let mut counts = ScheduleCounts::default();
    for state in matching {
        match status(state) {
            ScheduleStatus::Active => counts.active += 1,
            ScheduleStatus::Paused => counts.paused += 1,
            ScheduleStatus::Finished => counts.finished += 1,
        }
    }
    counts
}

/// A page of the schedules matching the query, with counts over every
/// match. Only the page's rows compute their next runs.
pub fn page(figures: &ScheduleFigures, query: &SchedulesQuery, fires_here: bool) -> SchedulesVm {
    let matching = matching(figures, query);
    SchedulesVm {
        schedules: matching
            .iter()
            .skip(query.offset)
            .take(SCHEDULES_PER_PAGE)
            .map(|s| row(s))
            .collect(),
        total: matching.len(),
        offset: query.offset,
        queue: query.queue().map(str::to_owned),
        counts: counts(&matching),
        problem: figures.problem.clone(),
        fires_here,
        now_ms: figures.read_at,
        bull: None,
        notice: None,
    }
}

/// An interval as the form writes it: the largest unit that divides it
/// (`90s`, `5m`, `250ms`).
fn every_text(ms: u64) -> String {
    [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ]
    .iter()
    .find(|(unit, _)| ms >= *unit && ms.is_multiple_of(*unit))
    .map(|(unit, name)| format!("{}{name}", ms / unit))
    .unwrap_or_else(|| format!("{ms}ms"))
}

/// An interval the form was given: a whole number of `ms`, `s`, `m`, `h`
/// or `d`.
fn parse_every(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("the interval {text:?} is not like 30s, 5m, 1h or 250ms");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (amount, unit) = text.split_at(split);
    let amount: u64 = amount.parse().map_err(|_| bad())?;
    let unit = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    amount.checked_mul(unit).ok_or_else(bad)
}

/// A stored schedule as the edit form's fields.
pub fn form_of(state: &ScheduleState) -> ScheduleFormVm {
    let s = &state.schedule;
    let (kind, expression, time_zone, every) = match &s.repeat {
        Repeat::Cron {
            expression,
            time_zone,
        } => ("cron", expression.clone(), time_zone.clone(), String::new()),
        Repeat::Every { every_ms } => {
            ("every", String::new(), String::new(), every_text(*every_ms))
        }
    };
    let time = |at: Option<i64>| at.map(app::format::iso_timestamp).unwrap_or_default();
    ScheduleFormVm {
        editing: Some(s.id.to_string()),
        id: s.id.to_string(),
        queue: s.queue.to_string(),
        job_name: s.job_name.clone(),
        kind: kind.into(),
        expression,
        time_zone,
        every,
        start_at: time(s.start_at),
        end_at: time(s.end_at),
        limit: s.limit.map(|l| l.to_string()).unwrap_or_default(),
        missed: match s.missed {
            MissedPolicy::Skip => "skip",
            MissedPolicy::CatchUpOnce => "catch-up-once",
        }
        .into(),
        data: serde_json::to_string(&s.data).unwrap_or_default(),
        options: serde_json::to_string(&s.options).unwrap_or_default(),
        paused: s.paused,
        error: None,
    }
}

/// The form of a new schedule: a cron at nine on weekdays, UTC.
pub fn new_form() -> ScheduleFormVm {
    ScheduleFormVm {
        kind: "cron".into(),
        time_zone: "UTC".into(),
        missed: "skip".into(),
        data: "{}".into(),
        options: "{}".into(),
        ..ScheduleFormVm::default()
    }
}

/// The form's fields from what was posted, kept as typed.
pub fn form_from_pairs(pairs: &[(String, String)], editing: Option<&str>) -> ScheduleFormVm {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    ScheduleFormVm {
        editing: editing.map(str::to_owned),
        id: editing.map_or_else(|| field("id"), str::to_owned),
        queue: field("queue"),
        job_name: field("job_name"),
        kind: field("kind"),
        expression: field("expression"),
        time_zone: field("time_zone"),
        every: field("every"),
        start_at: field("start_at"),
        end_at: field("end_at"),
        limit: field("limit"),
        missed: field("missed"),
        data: field("data"),
        options: field("options"),
        paused: field("paused") == "on",
        error: None,
    }
}

/// The schedule the form describes, checked as the backend would, or the
/// reason it is not one (in the words of the field at fault).
pub fn schedule_of(form: &ScheduleFormVm) -> Result<Schedule, String> {
    let id = ScheduleId::new(form.id.trim()).map_err(|e| e.to_string())?;
    let queue = QueueName::new(form.queue.trim()).map_err(|e| e.to_string())?;
    let repeat = match form.kind.as_str() {
        "cron" => Repeat::Cron {
            expression: form.expression.trim().to_owned(),
            time_zone: match form.time_zone.trim() {
                "" => "UTC".to_owned(),
                zone => zone.to_owned(),
            },
        },
        "every" => Repeat::Every {
            every_ms: parse_every(&form.every)?,
        },
        other => return Err(format!("repeats must be cron or every, not {other:?}")),
    };
    let time = |text: &str, what: &str| -> Result<Option<i64>, String> {
        match text.trim() {
            "" => Ok(None),
            t => parse_time(t)
                .map(Some)
                .map_err(|e| format!("the {what}: {e}")),
        }
    };
    let json = |text: &str, what: &str| -> Result<Value, String> {
        match text.trim() {
            "" => Ok(Value::Null),
            t => serde_json::from_str(t).map_err(|e| format!("the job {what} are not JSON: {e}")),
        }
    };
    let options = match json(&form.options, "options")? {
        Value::Null => JobOptions::default(),
        value => serde_json::from_value(value)
            .map_err(|e| format!("the job options are not job options: {e}"))?,
    };
    let schedule = Schedule {
        id,
        queue,
        job_name: form.job_name.trim().to_owned(),
        data: json(&form.data, "data")?,
        options,
        repeat,
        start_at: time(&form.start_at, "start")?,
        end_at: time(&form.end_at, "end")?,
        limit: match form.limit.trim() {
            "" => None,
            n => Some(
                n.parse()
                    .map_err(|_| format!("the limit {n:?} is not a whole number of runs"))?,
            ),
        },
        paused: form.paused,
        missed: match form.missed.as_str() {
            "" | "skip" => MissedPolicy::Skip,
            "catch-up-once" => MissedPolicy::CatchUpOnce,
            other => {
                return Err(format!(
                    "missed ticks must be skip or catch-up-once, not {other:?}"
                ));
            }
        },
    };
    schedule.validate().map_err(|e| e.to_string())?;
    Ok(schedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_back_as_typed() {
        for text in ["30s", "5m", "1h", "2d", "250ms", "90s"] {
            let ms = parse_every(text).expect(text);
            assert_eq!(every_text(ms), text);
        }
        assert!(parse_every("5 minutes").is_err());
        assert!(parse_every("").is_err());
        assert!(parse_every("99999999999999999999d").is_err());
    }

    #[test]
    fn a_form_round_trips_through_a_schedule() {
        let mut form = new_form();
        form.id = "nightly-report".into();
        form.queue = "reports".into();
        form.job_name = "build".into();
        form.expression = "0 2 * * *".into();
        form.time_zone = "Europe/Berlin".into();
        form.start_at = "2026-12-24T09:00:00Z".into();
        form.limit = "10".into();
        form.data = r#"{"kind":"daily"}"#.into();
        form.options = r#"{"attempts":3}"#.into();
        let schedule = schedule_of(&form).expect("valid");
        assert_eq!(schedule.limit, Some(10));
        assert_eq!(schedule.options.attempts, 3);
        let state = ScheduleState {
            schedule,
            next_run_at: None,
            last_run_at: None,
            last_job_id: None,
            runs: 0,
            version: 1,
        };
        let back = form_of(&state);
        assert_eq!(back.expression, "0 2 * * *");
        assert_eq!(back.start_at, "2026-12-24T09:00:00Z");
        assert_eq!(schedule_of(&back).expect("still valid"), state.schedule);
    }

    #[test]
    fn bad_fields_say_which() {
        let mut form = new_form();
        form.id = "x".into();
        form.queue = "q".into();
        form.job_name = "j".into();
        form.expression = "61 * * * *".into();
        assert!(schedule_of(&form).unwrap_err().contains("cron"));
        form.expression = "* * * * *".into();
        form.time_zone = "Mars/Olympus".into();
        assert!(schedule_of(&form).unwrap_err().contains("time zone"));
        form.time_zone = "UTC".into();
        form.end_at = "tomorrow".into();
        assert!(schedule_of(&form).unwrap_err().contains("the end"));
        form.end_at = String::new();
        form.data = "{".into();
        assert!(
            schedule_of(&form)
                .unwrap_err()
                .contains("data are not JSON")
        );
        form.data = "{}".into();
        form.id = "a b".into();
        assert!(schedule_of(&form).is_err());
    }
}
