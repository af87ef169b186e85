//! BullMQ's repeating jobs, listed, removed and run on demand, so an
//! operator can see what a service schedules and stop or trigger it
//! without a deploy.
//!
//! BullMQ 5 has two kinds, learnt from its `JobScheduler` and `Repeat`
//! classes and the scripts that add, update and remove them:
//!
//! - **job schedulers** (`queue.upsertJobScheduler(id, repeat, template)`):
//!   member `id` of the queue's `repeat` sorted set, scored by the next
//!   run in ms, and the hash `repeat:<id>` holding the schedule (`pattern`
//!   or `every`, `tz`, `startDate`, `endDate`, `limit`, `offset`), the
//!   iteration count `ic` (which only schedulers have: BullMQ tells the
//!   kinds apart by it), and the template (`name`, `data`, `opts`);
//! - **legacy repeatables** (`queue.add(name, data, {repeat})`): member
//!   `<md5>` of the same set with a hash holding only `name`, `tz`,
//!   `pattern`, `endDate` and `every`. Their template, iteration count and
//!   limit live in the current iteration's job. Keys made by BullMQ 3 and
//!   older (`name:id:endDate:tz:pattern`, no hash) are read from the key.
//!
//! Each has at most one pending iteration, the job `repeat:<key>:<next>`:
//! delayed until its time, then taken by a worker, which makes the next
//! iteration when it starts the job.

use serde::Serialize;

use super::{BullMq, MAX_JOB_ID, MAX_PAGE, now_ms, parse_ms};
use crate::error::{CoordError, Result};
use crate::queue::{CUT_MARK, Clipped};

/// Longest template data (or options) a listing carries, in bytes of JSON,
/// like a native listing's default cap: a megabyte template costs a
/// listing 4 KiB a row; the scheduler's page can read it whole.
pub const MAX_TEMPLATE_BYTES: usize = 4096;

/// Which of BullMQ's two APIs made an entry: they are removed alike but
/// keep their template and counts in different places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BullSchedulerKind {
    /// `upsertJobScheduler` (BullMQ 5).
    Scheduler,
    /// `queue.add(…, {repeat})`, deprecated since BullMQ 5.
    Repeatable,
}

/// What every run of an entry enqueues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BullTemplate {
    /// The job data, raw JSON; longer than [`MAX_TEMPLATE_BYTES`] it is
    /// cut there and ends in [`CUT_MARK`] (no longer JSON), and `clipped`
    /// says so.
    pub data: String,
    /// The job options, raw JSON as BullMQ stores them (abbreviated keys);
    /// for a legacy repeatable those of its current iteration, with its
    /// `repeat` bookkeeping. Cut like `data`.
    pub opts: String,
    /// The values cut, with their whole length.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clipped: Vec<Clipped>,
}

/// One job scheduler or legacy repeatable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BullScheduler {
    /// The scheduler id, or the repeatable's key: what removal and run now
    /// take.
    pub key: String,
    /// Which API made it.
    pub kind: BullSchedulerKind,
    /// The name of the jobs it makes.
    pub name: String,
    /// Cron pattern, when it repeats by one.
    pub pattern: Option<String>,
    /// Interval in ms, when it repeats by one.
    pub every: Option<u64>,
    /// Time zone of the pattern.
    pub tz: Option<String>,
    /// No run before (ms).
    pub start_date: Option<i64>,
    /// No run after (ms).
    pub end_date: Option<i64>,
    /// Most runs it makes.
    pub limit: Option<u64>,
    /// Runs made so far, where BullMQ keeps the count (a scheduler's `ic`,
    /// a repeatable's current iteration's `repeat.count`).
    pub iteration_count: Option<u64>,
    /// When its next iteration is due (ms).
    pub next_run: i64,
    /// Its template; `None` for a legacy repeatable whose current
    /// iteration's job is gone (removed when it finished, before the next
    /// was made).
    pub template: Option<BullTemplate>,
}

/// One page of a queue's entries, soonest next run first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BullSchedulerPage {
    /// The entries of the page.
    pub items: Vec<BullScheduler>,
    /// Entries in the queue in all (both kinds).
    pub total: u64,
}

/// A row of `schedulers.lua`: key, next run, kind, hash fields less the
/// template, then data and opts (cut) with their whole lengths.
type Row = (
    Vec<u8>,
    String,
    String,
    Vec<Vec<u8>>,
    Option<Vec<u8>>,
    u64,
    Option<Vec<u8>>,
    u64,
);

/// Refuses keys that cannot name an entry: BullMQ lets scheduler ids hold
/// anything, so only what would break keys or pages is refused.
fn check_key(key: &str) -> Result<()> {
    let reason = if key.is_empty() {
        Some("must not be empty")
    } else if key.len() > MAX_JOB_ID {
        Some("must be at most 512 bytes")
    } else if key.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CoordError::InvalidJobId {
            id: key.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A stored value as text, cut at a character boundary within `whole`'s
/// first [`MAX_TEMPLATE_BYTES`] bytes (the script sends no more) and
/// noted in `clipped` when it was longer.
fn cut(field: &str, value: Vec<u8>, whole: u64, clipped: &mut Vec<Clipped>) -> String {
    if whole as usize <= value.len() {
        return String::from_utf8_lossy(&value).into_owned();
    }
    let keep = MAX_TEMPLATE_BYTES
        .saturating_sub(CUT_MARK.len())
        .min(value.len());
    // A multi-byte character the cut splits goes whole.
    let valid = match std::str::from_utf8(&value[..keep]) {
        Ok(text) => text.len(),
        Err(e) => e.valid_up_to(),
    };
    let mut text = String::from_utf8_lossy(&value[..valid]).into_owned();
    text.push_str(CUT_MARK);
    clipped.push(Clipped {
        field: field.to_owned(),
        bytes: whole,
    });
    text
}

/// The `repeat` options of a legacy repeatable's iteration, where BullMQ
/// keeps its count, limit and start.
fn repeat_opts(opts: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(opts)
        .ok()?
        .get("repeat")
        .cloned()
}

/// An entry from its script row.
fn parse_row(row: Row) -> BullScheduler {
    let (key, next, kind, flat, data, data_bytes, opts, opts_bytes) = row;
    let key = String::from_utf8_lossy(&key).into_owned();
    let fields: std::collections::HashMap<String, String> = flat
        .chunks_exact(2)
        .map(|pair| {
            (
                String::from_utf8_lossy(&pair[0]).into_owned(),
                String::from_utf8_lossy(&pair[1]).into_owned(),
            )
        })
        .collect();
    let text = |field: &str| fields.get(field).filter(|v| !v.is_empty()).cloned();
    let number = |field: &str| text(field).as_deref().and_then(parse_ms);
    let count = |field: &str| number(field).and_then(|n| u64::try_from(n).ok());
    let kind = if kind == "scheduler" {
        BullSchedulerKind::Scheduler
    } else {
        BullSchedulerKind::Repeatable
    };
    let template = match (data, opts) {
        (Some(data), Some(opts)) => {
            let mut clipped = Vec::new();
            let data = cut("data", data, data_bytes, &mut clipped);
            let opts = cut("opts", opts, opts_bytes, &mut clipped);
            Some(BullTemplate {
                data,
                opts,
                clipped,
            })
        }
        _ => None,
    };
    let mut entry = BullScheduler {
        name: text("name").unwrap_or_default(),
        pattern: text("pattern"),
        every: count("every"),
        tz: text("tz"),
        start_date: number("startDate"),
        end_date: number("endDate"),
        limit: count("limit"),
        iteration_count: count("ic"),
        next_run: parse_ms(&next).unwrap_or(0),
        key,
        kind,
        template,
    };
    if kind == BullSchedulerKind::Repeatable {
        if fields.is_empty() {
            from_legacy_key(&mut entry);
        }
        // Uncut options only: a cut one is no JSON.
        let repeat = entry
            .template
            .as_ref()
            .filter(|t| !t.clipped.iter().any(|c| c.field == "opts"))
            .and_then(|t| repeat_opts(&t.opts));
        if let Some(repeat) = repeat {
            let int = |field: &str| repeat.get(field).and_then(serde_json::Value::as_i64);
            entry.iteration_count = int("count").and_then(|n| u64::try_from(n).ok());
            entry.limit = int("limit").and_then(|n| u64::try_from(n).ok());
            entry.start_date = entry.start_date.or_else(|| int("startDate"));
            if entry.pattern.is_none() && entry.every.is_none() {
                entry.pattern = repeat
                    .get("pattern")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned);
                entry.every = int("every").and_then(|n| u64::try_from(n).ok());
            }
        }
    }
    entry
}

/// BullMQ 3 and older kept a repeatable's schedule in its key only
/// (`name:id:endDate:tz:pattern`, the pattern possibly holding `:`), as
/// BullMQ's own `keyToData` reads it.
fn from_legacy_key(entry: &mut BullScheduler) {
    let parts: Vec<&str> = entry.key.split(':').collect();
    if parts.len() < 5 {
        return;
    }
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    entry.name = parts[0].to_owned();
    entry.end_date = parse_ms(parts[2]);
    entry.tz = some(parts[3]);
    entry.pattern = some(&parts[4..].join(":"));
}

impl BullMq {
    /// One page of the queue's job schedulers and legacy repeatables,
    /// soonest next run first, with the exact total; `limit` is capped at
    /// [`MAX_PAGE`]. One script call reads the page, its hashes and (for
    /// legacy repeatables) their current iterations, sending at most
    /// [`MAX_TEMPLATE_BYTES`] of each template's data and options.
    pub async fn schedulers(
        &self,
        queue: &str,
        offset: u64,
        limit: u64,
    ) -> Result<BullSchedulerPage> {
        self.check(queue)?;
        let limit = limit.min(MAX_PAGE);
        let offset = i64::try_from(offset)
            .map_err(|_| CoordError::InvalidOptions("offset too large".into()))?;
        let mut inv = super::SCHEDULERS.prepare_invoke();
        inv.key(self.key(queue, "repeat"))
            .arg(self.base(queue))
            .arg(offset)
            .arg(limit)
            .arg(MAX_TEMPLATE_BYTES);
        let (total, rows): (u64, Vec<Row>) = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        Ok(BullSchedulerPage {
            items: rows.into_iter().map(parse_row).collect(),
            total,
        })
    }

    /// Removes a job scheduler or legacy repeatable with its iteration
    /// waiting in `delayed`, as BullMQ's `removeJobScheduler` does (a
    /// `removed` event for that job); an iteration already ready or
    /// running finishes and makes no next one. An unknown key is
    /// [`CoordError::BullSchedulerNotFound`].
    ///
    /// Not undone for keys made by BullMQ 3 and older: their iteration's
    /// id hashes the key with MD5, which the script cannot compute, so
    /// that last delayed iteration still runs once.
    pub async fn remove_scheduler(&self, queue: &str, key: &str) -> Result<()> {
        self.check(queue)?;
        check_key(key)?;
        let mut inv = super::REMOVE_SCHEDULER.prepare_invoke();
        inv.key(self.key(queue, "repeat"))
            .key(self.key(queue, "delayed"))
            .key(self.key(queue, "events"))
            .key(self.key(queue, "meta"))
            .arg(self.base(queue))
            .arg(key);
        let removed: i64 = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        if removed == 1 {
            Ok(())
        } else {
            Err(Self::scheduler_not_found(queue, key))
        }
    }

    /// Enqueues one job from the entry's template, ready now, and returns
    /// its id; the schedule itself (next run, pending iteration, iteration
    /// count, limit) is left as it was, so the next iteration still runs on
    /// time.
    ///
    /// The id is the next of the queue's counter, as `queue.add` without a
    /// `jobId` gives: it can never be the `repeat:<key>:<ms>` id of an
    /// iteration, which BullMQ checks for (a collision would make BullMQ
    /// skip or refuse the iteration of that time), and two runs asked
    /// within the same millisecond still make two jobs. The job does not
    /// name its scheduler (`rjk`) nor carry `repeat` options, since a
    /// worker would then schedule an iteration from it; its name is the
    /// template's. The template's deduplication id is dropped too.
    ///
    /// An unknown key is [`CoordError::BullSchedulerNotFound`]; a legacy
    /// repeatable whose iteration job (its only template) is gone is
    /// [`CoordError::BullTemplateNotFound`].
    pub async fn run_scheduler_now(&self, queue: &str, key: &str) -> Result<String> {
        self.check(queue)?;
        check_key(key)?;
        let mut inv = super::RUN_SCHEDULER.prepare_invoke();
        for ready in self.ready_keys(queue) {
            inv.key(ready);
        }
        inv.key(self.key(queue, "repeat"))
            .key(self.key(queue, "id"))
            .arg(self.base(queue))
            .arg(key)
            .arg(now_ms());
        let (code, id): (i64, String) = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        match code {
            1 => Ok(id),
            -2 => Err(CoordError::BullTemplateNotFound {
                queue: queue.to_owned(),
                key: key.to_owned(),
            }),
            _ => Err(Self::scheduler_not_found(queue, key)),
        }
    }

    fn scheduler_not_found(queue: &str, key: &str) -> CoordError {
        CoordError::BullSchedulerNotFound {
            queue: queue.to_owned(),
            key: key.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, fields: &[(&str, &str)], data: &str, opts: &str) -> Row {
        (
            b"k".to_vec(),
            "1700000000000".into(),
            kind.into(),
            fields
                .iter()
                .flat_map(|(k, v)| [k.as_bytes().to_vec(), v.as_bytes().to_vec()])
                .collect(),
            Some(data.as_bytes().to_vec()),
            data.len() as u64,
            Some(opts.as_bytes().to_vec()),
            opts.len() as u64,
        )
    }

    #[test]
    fn a_scheduler_row_reads_its_hash() {
        let entry = parse_row(row(
            "scheduler",
            &[
                ("name", "report"),
                ("pattern", "0 * * * *"),
                ("tz", "Europe/Paris"),
                ("limit", "5"),
                ("ic", "2"),
                ("endDate", "1800000000000"),
            ],
            "{\"a\":1}",
            "{}",
        ));
        assert_eq!(entry.kind, BullSchedulerKind::Scheduler);
        assert_eq!(entry.name, "report");
        assert_eq!(entry.pattern.as_deref(), Some("0 * * * *"));
        assert_eq!(entry.tz.as_deref(), Some("Europe/Paris"));
        assert_eq!((entry.limit, entry.iteration_count), (Some(5), Some(2)));
        assert_eq!(entry.end_date, Some(1_800_000_000_000));
        assert_eq!(entry.next_run, 1_700_000_000_000);
        let template = entry.template.expect("template");
        assert_eq!(template.data, "{\"a\":1}");
        assert!(template.clipped.is_empty());
    }

    #[test]
    fn a_repeatable_takes_count_and_limit_from_its_iteration() {
        let entry = parse_row(row(
            "repeatable",
            &[("name", "tick"), ("every", "1000")],
            "{}",
            "{\"repeat\":{\"every\":1000,\"count\":3,\"limit\":9},\"attempts\":2}",
        ));
        assert_eq!(entry.kind, BullSchedulerKind::Repeatable);
        assert_eq!(entry.every, Some(1000));
        assert_eq!((entry.limit, entry.iteration_count), (Some(9), Some(3)));
    }

    #[test]
    fn keys_of_bullmq_3_are_read_from_the_key() {
        let mut r = row("repeatable", &[], "{}", "{}");
        r.0 = b"send::1800000000000:UTC:*/5 * * * *".to_vec();
        let entry = parse_row(r);
        assert_eq!(entry.name, "send");
        assert_eq!(entry.end_date, Some(1_800_000_000_000));
        assert_eq!(entry.tz.as_deref(), Some("UTC"));
        assert_eq!(entry.pattern.as_deref(), Some("*/5 * * * *"));
    }

    #[test]
    fn long_data_is_cut_on_a_character_with_a_mark() {
        let whole = "é".repeat(MAX_TEMPLATE_BYTES);
        let sent = whole.as_bytes()[..MAX_TEMPLATE_BYTES].to_vec();
        let mut clipped = Vec::new();
        let text = cut("data", sent, whole.len() as u64, &mut clipped);
        assert!(text.ends_with(CUT_MARK));
        assert!(text.len() <= MAX_TEMPLATE_BYTES);
        assert_eq!(
            clipped,
            vec![Clipped {
                field: "data".into(),
                bytes: whole.len() as u64
            }]
        );
        let mut none = Vec::new();
        assert_eq!(cut("data", b"{}".to_vec(), 2, &mut none), "{}");
        assert!(none.is_empty());
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("every-5s").is_ok());
        assert!(check_key("a:b:c").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("a\nb").is_err());
        assert!(check_key(&"x".repeat(513)).is_err());
    }
}
