//! Maps `coord` domain types to the `app` crate's view models.
//!
//! This is the only place that knows both sides, which keeps `app` free of
//! any backend dependency and keeps presentation choices (how much of a
//! job's data to preview) out of `coord`.

use app::{JobRow, QueueRow};
use coord::queue::{Job, QueueCounts, QueueName};
use serde_json::Value;

/// Characters of a job's JSON shown in a table cell; the full data is in
/// the JSON API.
const PREVIEW_CHARS: usize = 160;

/// One queue's overview row.
pub fn queue_row(name: &QueueName, counts: &QueueCounts) -> QueueRow {
    QueueRow {
        name: name.to_string(),
        waiting: counts.waiting,
        active: counts.active,
        delayed: counts.delayed,
        completed: counts.completed,
        failed: counts.failed,
        paused: counts.paused,
    }
}

/// One job's row, with its age relative to `now_ms`.
pub fn job_row(job: &Job, now_ms: i64) -> JobRow {
    JobRow {
        id: job.id.to_string(),
        name: job.name.clone(),
        data_preview: data_preview(&job.data),
        attempts_made: job.attempts_made,
        attempts: job.options.attempts,
        priority: job.options.priority,
        age_ms: now_ms.saturating_sub(job.created_at),
        failed_reason: job.failed_reason.clone(),
    }
}

/// Compact JSON cut to [`PREVIEW_CHARS`] characters (on a character
/// boundary) with an ellipsis when cut.
pub fn data_preview(data: &Value) -> String {
    let text = data.to_string();
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn short_data_is_shown_whole() {
        assert_eq!(data_preview(&json!({"a": 1})), r#"{"a":1}"#);
    }

    #[test]
    fn long_data_is_cut_on_a_char_boundary() {
        let preview = data_preview(&json!("é".repeat(400)));
        assert!(preview.ends_with('…'));
        assert_eq!(preview.chars().count(), PREVIEW_CHARS + 1);
    }
}
