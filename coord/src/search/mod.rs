//! Finding jobs across queues and states: by id ([`crate::queue::Queues::find_job`])
//! and by text with qualifiers ([`crate::queue::Queues::search`]).
//!
//! A query is words and qualifiers, as an operator types it:
//! `welcome name:send-welcome state:failed error:"421" data.to:a@example.com`.
//! Words match a job's name or data; `name:` its name, `queue:` and
//! `state:` restrict where to look, `error:` matches its last error and
//! `data.<path>:<value>` a value in its data (dotted path into objects).
//!
//! Each backend uses the index it has — SQLite an FTS5 index over names
//! and the start of the data, filled behind the writers; Redis its error
//! groups and a bounded scan of the newest jobs — and every result says
//! what was searched and whether it was complete, so a partial search is
//! never shown as if it were the whole truth.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CoordError, Result};
use crate::queue::{Job, JobId, JobState, QueueName};

/// Longest query text.
pub const MAX_QUERY_BYTES: usize = 256;
/// Most terms (words and qualifiers) in one query.
pub const MAX_TERMS: usize = 10;
/// Most hits one search returns.
pub const MAX_HITS: usize = 200;
/// Bytes of a job's data the text index reads (and the Redis scan
/// matches words in): a megabyte payload costs what 4 KiB does.
pub const DATA_INDEX_BYTES: usize = 4096;
/// Longest error text a hit carries.
pub const HIT_ERROR_BYTES: usize = 300;

/// A parsed query. Empty vectors mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SearchQuery {
    /// Words to find in the name or the data.
    pub words: Vec<String>,
    /// `name:` text to find in the name.
    pub names: Vec<String>,
    /// `queue:` queues to look in.
    pub queues: Vec<QueueName>,
    /// `state:` states to look in.
    pub states: Vec<JobState>,
    /// `error:` text to find in the last error.
    pub errors: Vec<String>,
    /// `data.<path>:<value>`: a value at a dotted path in the data.
    pub data: Vec<(Vec<String>, String)>,
}

impl SearchQuery {
    /// Parses what an operator typed; a clear error for what cannot be a
    /// query (too long, an unknown qualifier, an unknown state).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: String| CoordError::InvalidSearch {
            query: text.chars().take(80).collect(),
            reason,
        };
        if text.len() > MAX_QUERY_BYTES {
            return Err(bad(format!(
                "a search is at most {MAX_QUERY_BYTES} bytes (got {})",
                text.len()
            )));
        }
        let terms = split_terms(text).map_err(bad)?;
        if terms.len() > MAX_TERMS {
            return Err(bad(format!(
                "a search has at most {MAX_TERMS} terms (got {})",
                terms.len()
            )));
        }
        let mut query = SearchQuery::default();
        for (key, value) in terms {
            let Some(key) = key else {
                query.words.push(value);
                continue;
            };
            if value.is_empty() {
                return Err(bad(format!("{key}: needs a value")));
            }
            match key.as_str() {
                "name" => query.names.push(value),
                "queue" => query
                    .queues
                    .push(QueueName::new(value.as_str()).map_err(|e| bad(e.to_string()))?),
                "state" => query.states.push(value.parse().map_err(|_| {
                    bad(format!(
                        "unknown state {value:?}: waiting, active, delayed, completed or failed"
                    ))
                })?),
                "error" => query.errors.push(value),
                other => match other.strip_prefix("data.") {
                    Some(path) if !path.is_empty() && path.split('.').all(|p| !p.is_empty()) => {
                        query
                            .data
                            .push((path.split('.').map(str::to_owned).collect(), value))
                    }
                    _ => {
                        return Err(bad(format!(
                            "unknown qualifier {other:?}: name:, queue:, state:, error: or data.<key>:"
                        )));
                    }
                },
            }
        }
        Ok(query)
    }

    /// Whether the query asks for nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether it has text to look for (not only where to look).
    pub fn has_text(&self) -> bool {
        !(self.words.is_empty() && self.names.is_empty() && self.data.is_empty())
    }

    /// A bare single word that could be a job id: what the header box
    /// looks up across queues as well.
    pub fn as_job_id(&self) -> Option<JobId> {
        match (self.words.as_slice(), self.has_qualifiers()) {
            ([word], false) => JobId::new(word.as_str()).ok(),
            _ => None,
        }
    }

    fn has_qualifiers(&self) -> bool {
        !(self.names.is_empty()
            && self.queues.is_empty()
            && self.states.is_empty()
            && self.errors.is_empty()
            && self.data.is_empty())
    }

    /// Whether where to look admits this queue and state.
    pub fn admits(&self, queue: &QueueName, state: JobState) -> bool {
        (self.queues.is_empty() || self.queues.contains(queue))
            && (self.states.is_empty() || self.states.contains(&state))
    }

    /// Whether a job matches every term (case-insensitive). Words are
    /// looked for in the name and the first [`DATA_INDEX_BYTES`] of the
    /// data's JSON, as the index sees them.
    pub fn matches(&self, job: &Job) -> bool {
        if !self.admits(&job.queue, job.state) {
            return false;
        }
        let name = job.name.to_lowercase();
        let data_text = job.data.to_string();
        let data_text = cut(&data_text, DATA_INDEX_BYTES).to_lowercase();
        let error = job
            .failed_reason
            .as_deref()
            .unwrap_or_default()
            .to_lowercase();
        self.words.iter().all(|w| {
            let w = w.to_lowercase();
            name.contains(&w) || data_text.contains(&w)
        }) && self.names.iter().all(|n| name.contains(&n.to_lowercase()))
            && self
                .errors
                .iter()
                .all(|e| error.contains(&e.to_lowercase()))
            && self
                .data
                .iter()
                .all(|(path, value)| data_value_matches(&job.data, path, value))
    }
}

/// Whether the value at `path` in `data` reads as `value`: a string
/// equal to it ignoring case, or a number or boolean written as it.
pub fn data_value_matches(data: &Value, path: &[String], value: &str) -> bool {
    let mut at = data;
    for key in path {
        match at.get(key.as_str()) {
            Some(next) => at = next,
            None => return false,
        }
    }
    match at {
        Value::String(s) => s.to_lowercase() == value.to_lowercase(),
        Value::Number(n) => n.to_string() == value,
        Value::Bool(b) => b.to_string() == value,
        _ => false,
    }
}

/// A count with thousands separators, for what a search says it did.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The longest prefix of `text` of at most `max` bytes, at a character
/// boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Splits a query into (qualifier, value) terms; a double-quoted value
/// keeps its spaces (`error:"connection refused"`, `"two words"`).
fn split_terms(text: &str) -> std::result::Result<Vec<(Option<String>, String)>, String> {
    let mut terms = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(terms);
        }
        let mut key = None;
        let mut value = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() && !quoted {
                break;
            }
            chars.next();
            match c {
                '"' => quoted = !quoted,
                // The qualifier's name is read without case; a data path
                // keeps its case, as JSON keys have one (`data.userId`).
                ':' if key.is_none() && !quoted && !value.is_empty() => {
                    key = Some(match value.get(..5) {
                        Some(prefix) if prefix.eq_ignore_ascii_case("data.") => {
                            format!("data.{}", &value[5..])
                        }
                        _ => value.to_lowercase(),
                    });
                    value = String::new();
                }
                c if c.is_control() => {}
                c => value.push(c),
            }
        }
        if quoted {
            return Err("a quote is not closed".into());
        }
        if key.is_none() && value.is_empty() {
            continue;
        }
        terms.push((key, value));
    }
}

/// One job a search found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub queue: QueueName,
    pub id: JobId,
    pub name: String,
    pub state: JobState,
    pub created_at: i64,
    /// The start of its last error, if any.
    pub failed_reason: Option<String>,
}

impl SearchHit {
    /// The hit of a job read whole or clipped.
    pub fn of(job: &Job) -> Self {
        Self {
            queue: job.queue.clone(),
            id: job.id.clone(),
            name: job.name.clone(),
            state: job.state,
            created_at: job.created_at,
            failed_reason: job
                .failed_reason
                .as_deref()
                .map(|r| cut(r, HIT_ERROR_BYTES).to_owned()),
        }
    }
}

/// What a search found and how far it looked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    /// Matches, newest first, at most the limit asked for.
    pub hits: Vec<SearchHit>,
    /// False when the search stopped before looking at everything it
    /// could match (a scan budget, an index lagging behind).
    pub complete: bool,
    /// What was searched, for the page to say ("the text index of every
    /// queue", "the newest 2,000 jobs of 3 queues").
    pub searched: String,
    /// Jobs not in the text index yet (the embedded backend indexes
    /// behind the writers); 0 where there is no such index, or when the
    /// search read the jobs themselves.
    pub unindexed: u64,
}

/// Where a job id was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundJob {
    pub queue: QueueName,
    pub state: JobState,
}

/// How far the text index has come (embedded backend).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexProgress {
    /// Jobs indexed by this call.
    pub indexed: u64,
    /// Jobs still waiting to be indexed.
    pub pending: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_parse_words_qualifiers_and_quotes() {
        let q = SearchQuery::parse(
            r#"welcome  name:send queue:emails state:failed error:"connection refused" data.user.id:42"#,
        )
        .expect("parse");
        assert_eq!(q.words, ["welcome"]);
        assert_eq!(q.names, ["send"]);
        assert_eq!(q.queues[0].as_str(), "emails");
        assert_eq!(q.states, [JobState::Failed]);
        assert_eq!(q.errors, ["connection refused"]);
        assert_eq!(
            q.data,
            [(vec!["user".to_owned(), "id".to_owned()], "42".to_owned())]
        );
        assert!(q.has_text());
        assert_eq!(q.as_job_id(), None);
        // Qualifiers read without case, data paths with theirs.
        let q = SearchQuery::parse("NAME:x Data.userId:7").expect("parse");
        assert_eq!(q.names, ["x"]);
        assert_eq!(q.data, [(vec!["userId".to_owned()], "7".to_owned())]);
        // A value may hold colons (a URL, a time) after its qualifier.
        let q = SearchQuery::parse("error:http://x:80").expect("parse");
        assert_eq!(q.errors, ["http://x:80"]);
        assert_eq!(
            SearchQuery::parse("1234")
                .expect("id")
                .as_job_id()
                .map(|i| i.to_string()),
            Some("1234".into())
        );
        assert!(SearchQuery::parse("  ").expect("empty").is_empty());
    }

    #[test]
    fn bad_queries_say_why() {
        for (text, why) in [
            ("colour:red", "unknown qualifier"),
            ("state:sleeping", "unknown state"),
            ("error:\"open", "quote is not closed"),
            ("name:", "needs a value"),
            ("data.:x", "unknown qualifier"),
        ] {
            let err = SearchQuery::parse(text).expect_err(text).to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
        let long = "x ".repeat(200);
        assert!(SearchQuery::parse(&long).is_err());
        let many = "a b c d e f g h i j k";
        assert!(
            SearchQuery::parse(many)
                .expect_err("terms")
                .to_string()
                .contains("at most 10")
        );
    }

    #[test]
    fn data_values_match_strings_numbers_and_booleans() {
        let data = json!({ "user": { "id": 42, "email": "A@Example.com", "vip": true } });
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert!(data_value_matches(&data, &path("user.id"), "42"));
        assert!(data_value_matches(
            &data,
            &path("user.email"),
            "a@example.com"
        ));
        assert!(data_value_matches(&data, &path("user.vip"), "true"));
        assert!(!data_value_matches(&data, &path("user.id"), "4"));
        assert!(!data_value_matches(&data, &path("user.missing"), "x"));
    }
}
