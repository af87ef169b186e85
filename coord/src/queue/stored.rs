//! A job as either backend stores it, before its JSON is decoded. Both
//! backends read their rows (SQLite columns, Redis hash fields) into a
//! [`StoredJob`] and share this one decoder, so a job reads back the same
//! whichever backend kept it.

use serde_json::Value;

use super::types::{AttemptRecord, Clipped, Job, JobId, JobOptions, QueueName};
use crate::error::{CoordError, Result};

/// Failure reasons of a job stalled to death, the same on both backends
/// (so one error group; the Redis script is handed them).
pub(super) const STALLED_TOO_OFTEN: &str = "job stalled more than the allowed limit";
pub(super) const STALLED_NO_ATTEMPTS: &str = "job stalled and has no attempts left";

/// A job's stored fields: JSON as text, numbers as numbers, absent as
/// `None` (a backend that stores "none" as an empty string maps it first).
#[derive(Debug, Default)]
pub(super) struct StoredJob {
    pub id: String,
    pub name: Option<String>,
    pub data: Option<String>,
    pub options: Option<String>,
    pub state: Option<String>,
    pub attempts_made: Option<i64>,
    pub stalled_count: Option<i64>,
    pub failed_reason: Option<String>,
    pub stacktrace: Option<String>,
    pub history: Option<String>,
    pub return_value: Option<String>,
    pub created_at: Option<i64>,
    pub processed_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub run_at: Option<i64>,
    pub lease_token: Option<String>,
    /// Which values a clipped listing left out and their whole lengths:
    /// `data=1048576;history=20480` (stored names), absent when none.
    pub clipped: Option<String>,
}

/// The previous job's options text and value: jobs of one batch mostly
/// share their options, and decoding them (an internally tagged enum)
/// costs more than all the rest of a job.
pub(super) type OptionsCache = Option<(String, JobOptions)>;

impl StoredJob {
    /// Decodes the stored text; `Corrupt` names the job and the field at
    /// fault, and leaves the record as it is.
    pub fn decode(self, queue: &QueueName, cache: &mut OptionsCache) -> Result<Job> {
        let id = stored_id(self.id)?;
        let corrupt = |field: &str, why: String| {
            CoordError::Corrupt(format!("job {id} in queue {queue}: {field}: {why}"))
        };
        let required =
            |field: &str, v: Option<String>| v.ok_or_else(|| corrupt(field, "missing".into()));
        let count = |field: &str, v: Option<i64>| -> Result<u32> {
            let v = v.unwrap_or(0);
            u32::try_from(v).map_err(|_| corrupt(field, format!("not a count: {v}")))
        };
        let clipped =
            parse_clipped(self.clipped.as_deref()).map_err(|why| corrupt("clipped", why))?;
        let cut = |field: &str| clipped.iter().any(|c| c.field == field);
        let data: Value = if cut("data") {
            Value::Null
        } else {
            serde_json::from_str(&required("data", self.data)?)
                .map_err(|e| corrupt("data", e.to_string()))?
        };
        let text = required("options", self.options)?;
        let options = match cache {
            Some((cached, options)) if *cached == text => options.clone(),
            _ => {
                let options: JobOptions =
                    serde_json::from_str(&text).map_err(|e| corrupt("options", e.to_string()))?;
                *cache = Some((text, options.clone()));
                options
            }
        };
        let stacktrace: Vec<String> = match self
            .stacktrace
            .filter(|s| !s.is_empty() && !cut("stacktrace"))
        {
            None => Vec::new(),
            Some(s) => {
                serde_json::from_str(&s).map_err(|e| corrupt("stacktrace", e.to_string()))?
            }
        };
        let history: Vec<AttemptRecord> = match self
            .history
            .filter(|s| !s.is_empty() && !cut("history"))
        {
            None => Vec::new(),
            Some(s) => serde_json::from_str(&s).map_err(|e| corrupt("history", e.to_string()))?,
        };
        let return_value: Option<Value> = match self.return_value {
            None => None,
            Some(_) if cut("returnValue") => None,
            Some(s) => {
                Some(serde_json::from_str(&s).map_err(|e| corrupt("return_value", e.to_string()))?)
            }
        };
        Ok(Job {
            queue: queue.clone(),
            name: required("name", self.name)?,
            data,
            options,
            state: required("state", self.state)?.parse()?,
            attempts_made: count("attempts_made", self.attempts_made)?,
            stalled_count: count("stalled_count", self.stalled_count)?,
            failed_reason: self.failed_reason.filter(|_| !cut("failedReason")),
            stacktrace,
            history,
            return_value,
            created_at: self.created_at.unwrap_or(0),
            processed_at: self.processed_at,
            finished_at: self.finished_at,
            run_at: self.run_at,
            lease_token: self.lease_token,
            clipped,
            id,
            reporter: Default::default(),
        })
    }
}

/// The jobs of a listing that decoded: one corrupt record is logged and
/// left out rather than hiding the whole page.
pub(super) fn listed_jobs(
    queue: &QueueName,
    decoded: impl IntoIterator<Item = Result<Job>>,
) -> Vec<Job> {
    decoded
        .into_iter()
        .filter_map(|decoded| match decoded {
            Ok(job) => Some(job),
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "skipping an undecodable job in a listing");
                None
            }
        })
        .collect()
}

/// An id read back from storage; only ids that passed validation are
/// stored, so a bad one is a corrupt record.
pub(super) fn stored_id(id: String) -> Result<JobId> {
    JobId::new(id).map_err(|e| CoordError::Corrupt(e.to_string()))
}

/// Reads a backend's list of clipped values (`data=1048576;history=20480`,
/// stored field names) as the names jobs show them.
fn parse_clipped(text: Option<&str>) -> std::result::Result<Vec<Clipped>, String> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    text.split(';')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (field, bytes) = part
                .split_once('=')
                .ok_or_else(|| format!("not field=bytes: {part:?}"))?;
            let field = match field {
                "data" => "data",
                "failed_reason" => "failedReason",
                "stacktrace" => "stacktrace",
                "history" => "history",
                "return_value" => "returnValue",
                other => return Err(format!("not a clippable field: {other:?}")),
            };
            let bytes = bytes
                .parse()
                .map_err(|_| format!("not a length: {bytes:?}"))?;
            Ok(Clipped {
                field: field.to_owned(),
                bytes,
            })
        })
        .collect()
}
