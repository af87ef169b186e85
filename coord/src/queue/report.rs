//! What a running job tells the people watching it: log lines and a
//! progress value, written by its handler ([`Job::log`], [`Job::progress`])
//! and shown on its page while it runs.
//!
//! Both are bounded per job, so a chatty handler cannot grow a job without
//! limit: at most [`MAX_LOG_LINES`] lines and [`MAX_LOG_BYTES`] bytes are
//! kept, the oldest dropped first and counted; a line longer than
//! [`MAX_LINE_BYTES`] is cut with a marker; a progress value is at most
//! [`MAX_PROGRESS_BYTES`] of JSON. Logs stay through retries (an attempt's
//! lines explain the next one's) and go with the job.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::backend::QueueBackend;
use super::types::Job;
use crate::error::{CoordError, Result};

/// Most log lines kept per job.
pub const MAX_LOG_LINES: u32 = 1_000;
/// Most log bytes kept per job.
pub const MAX_LOG_BYTES: u32 = 64 * 1024;
/// Longest log line kept whole; longer ones end in [`CUT_MARK`].
pub const MAX_LINE_BYTES: usize = 4 * 1024;
/// Largest progress value, as JSON text.
pub const MAX_PROGRESS_BYTES: usize = 1024;
/// Newest log lines a job's page shows, a native job's or a BullMQ job's
/// alike (the job API gives every kept line).
pub const SHOWN_LOG_LINES: u32 = 200;
/// What a cut line ends with.
pub const CUT_MARK: &str = " …[cut]";

/// A job's log and progress as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    /// The last value the handler reported, if any.
    pub progress: Option<Value>,
    /// The newest kept log lines asked for, oldest first.
    pub logs: Vec<String>,
    /// Lines kept in all (`logs` may be the newest of them).
    pub logs_kept: u64,
    /// Lines dropped, oldest first, to stay within the caps.
    pub logs_dropped: u64,
}

/// The backend a running job's handler writes through; empty for a job
/// read from a listing, which has no handler to report.
#[derive(Clone, Default)]
pub struct Reporter(Option<Arc<dyn QueueBackend>>);

impl Reporter {
    pub(crate) fn new(backend: Arc<dyn QueueBackend>) -> Self {
        Self(Some(backend))
    }
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Reporter(running)"
        } else {
            "Reporter(none)"
        })
    }
}

/// Two jobs are the same whatever handle they carry.
impl PartialEq for Reporter {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A line as kept: control characters other than tab become spaces (one
/// entry stays one line) and a long line is cut at a character boundary.
pub fn keep_line(line: &str) -> String {
    let mut out: String = line
        .chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect();
    if out.len() > MAX_LINE_BYTES {
        let mut end = MAX_LINE_BYTES - CUT_MARK.len();
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str(CUT_MARK);
    }
    out
}

/// A progress value as stored: its JSON, refused when too long.
pub fn progress_text(value: &Value) -> Result<String> {
    let text = value.to_string();
    if text.len() > MAX_PROGRESS_BYTES {
        return Err(CoordError::InvalidOptions(format!(
            "a progress value is at most {MAX_PROGRESS_BYTES} bytes of JSON (got {})",
            text.len()
        )));
    }
    Ok(text)
}

impl Job {
    /// Appends a line to this job's log, for its page and API. Only the
    /// handler running the job can write (it holds the lease); a job whose
    /// lease expired gets [`CoordError::LeaseLost`] and writes nothing.
    pub async fn log(&self, line: impl AsRef<str>) -> Result<()> {
        let (backend, token) = self.reporting()?;
        let lines = [keep_line(line.as_ref())];
        if backend
            .append_logs(&self.queue, &self.id, token, &lines)
            .await?
        {
            Ok(())
        } else {
            Err(self.lease_lost())
        }
    }

    /// Sets this job's progress: any JSON value up to
    /// [`MAX_PROGRESS_BYTES`] — a percentage, or an object such as
    /// `{"done": 40, "of": 120}`. The last one written is kept.
    pub async fn progress(&self, value: impl Into<Value>) -> Result<()> {
        let (backend, token) = self.reporting()?;
        let text = progress_text(&value.into())?;
        if backend
            .set_progress(&self.queue, &self.id, token, &text)
            .await?
        {
            Ok(())
        } else {
            Err(self.lease_lost())
        }
    }

    fn reporting(&self) -> Result<(&Arc<dyn QueueBackend>, &str)> {
        match (&self.reporter.0, &self.lease_token) {
            (Some(backend), Some(token)) => Ok((backend, token)),
            _ => Err(CoordError::NotRunning {
                queue: self.queue.clone(),
                job: self.id.clone(),
            }),
        }
    }

    fn lease_lost(&self) -> CoordError {
        CoordError::LeaseLost {
            queue: self.queue.clone(),
            job: self.id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_line_is_one_line_and_cut_at_a_character_boundary() {
        assert_eq!(keep_line("a\nb\r\tc\u{7}"), "a b \tc ");
        let long = "é".repeat(MAX_LINE_BYTES);
        let kept = keep_line(&long);
        assert!(kept.len() <= MAX_LINE_BYTES, "{}", kept.len());
        assert!(kept.ends_with(CUT_MARK));
        assert!(kept.starts_with("éé"));
        let exact = "x".repeat(MAX_LINE_BYTES);
        assert_eq!(keep_line(&exact), exact);
    }

    #[test]
    fn a_progress_value_has_a_size_limit() {
        assert_eq!(progress_text(&Value::from(40)).ok(), Some("40".to_owned()));
        let big = Value::String("x".repeat(MAX_PROGRESS_BYTES));
        assert!(matches!(
            progress_text(&big),
            Err(CoordError::InvalidOptions(_))
        ));
    }
}
