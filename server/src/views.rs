//! Maps `coord` domain types to the `app` crate's view models.
//!
//! This is the only place that knows both sides, which keeps `app` free of
//! any backend dependency and keeps presentation choices (how much of a
//! job's data to preview) out of `coord`.

use app::{AttemptVm, ConfigEntry, ConfigVm, JobPageVm, JobRow, StateCounts};
use coord::queue::{Job, QueueCounts};
use serde_json::Value;

use crate::configuration::Settings;

/// Characters of a job's JSON shown in a table cell; the full data is on
/// the job's page and in the JSON API.
const PREVIEW_CHARS: usize = 160;

/// A queue's per-state counts.
pub fn state_counts(counts: &QueueCounts) -> StateCounts {
    StateCounts {
        waiting: counts.waiting,
        active: counts.active,
        delayed: counts.delayed,
        completed: counts.completed,
        failed: counts.failed,
    }
}

/// One job's row in a table.
pub fn job_row(job: &Job) -> JobRow {
    JobRow {
        id: job.id.to_string(),
        name: job.name.clone(),
        data_preview: data_preview(&job.data),
        attempts_made: job.attempts_made,
        attempts: job.options.attempts,
        priority: job.options.priority,
        created_at: job.created_at,
        finished_at: job.finished_at,
        failed_reason: job.failed_reason.clone(),
    }
}

/// Everything a job's page shows. The lease token is left out: only the
/// worker holding the job has any use for it.
pub fn job_page(job: &Job) -> JobPageVm {
    JobPageVm {
        queue: job.queue.to_string(),
        id: job.id.to_string(),
        name: job.name.clone(),
        state: job.state.as_str().to_string(),
        data_pretty: pretty(&job.data),
        options_pretty: serde_json::to_value(&job.options)
            .map(|v| pretty(&v))
            .unwrap_or_default(),
        return_value_pretty: job.return_value.as_ref().map(pretty),
        attempts_made: job.attempts_made,
        attempts: job.options.attempts,
        stalled_count: job.stalled_count,
        failed_reason: job.failed_reason.clone(),
        stacktrace: job.stacktrace.clone(),
        history: job
            .history
            .iter()
            .map(|a| AttemptVm {
                attempt: a.attempt,
                started_at: a.started_at,
                finished_at: a.finished_at,
                error: a.error.clone(),
                chain: a.chain.clone(),
            })
            .collect(),
        created_at: job.created_at,
        processed_at: job.processed_at,
        finished_at: job.finished_at,
        run_at: job.run_at,
        logs: Vec::new(),
        notice: None,
    }
}

/// Indented JSON for reading; falls back to compact JSON (which cannot
/// fail for a `Value`) rather than showing nothing.
fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The configuration page: every setting with its flag, the effective
/// value (URLs through their redacting `Display`) and what it does.
pub fn config_page(settings: &Settings) -> ConfigVm {
    let entry = |flag: &str, value: String, help: &str| ConfigEntry {
        flag: flag.to_string(),
        value,
        help: help.to_string(),
    };
    let deployment = match settings.deployment() {
        crate::configuration::Deployment::Embedded => "embedded",
        crate::configuration::Deployment::Redis => "redis",
    };
    ConfigVm {
        version: env!("CARGO_PKG_VERSION").to_string(),
        deployment: deployment.to_string(),
        entries: vec![
            entry(
                "--listen",
                settings.listen.clone(),
                "Address the dashboard listens on.",
            ),
            entry(
                "--redis",
                settings
                    .redis_url
                    .as_ref()
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "(not set: embedded deployment)".into()),
                "Redis for the scale-out deployment.",
            ),
            entry(
                "--redis-prefix",
                settings.redis_prefix.clone(),
                "Prefix of every Redis key of this deployment.",
            ),
            entry(
                "--database-url",
                settings.database_url.to_string(),
                "SQL database: the embedded queue store, or the server's tables next to Redis.",
            ),
            entry("--log", settings.log.clone(), "Log filter."),
            entry(
                "--busy-active",
                settings.busy_active.to_string(),
                "Active jobs above which a queue shows Busy.",
            ),
            entry(
                "--warning-failure-rate",
                format!("{}%", settings.warning_failure_rate),
                "Failure rate over 5 minutes above which a queue shows Warning.",
            ),
            entry(
                "--rate-limit-pages",
                settings.rate_limits.pages.to_string(),
                "Requests per client address to pages, live streams and assets.",
            ),
            entry(
                "--rate-limit-actions",
                settings.rate_limits.actions.to_string(),
                "Button presses (form posts) per client address.",
            ),
            entry(
                "--rate-limit-api",
                settings.rate_limits.api.to_string(),
                "JSON API requests per client address.",
            ),
            entry(
                "--rate-limit-fallback",
                settings.rate_limits.fallback.to_string(),
                "While Redis is unreachable: per-instance limits (local), allow all (open) or refuse all (closed).",
            ),
            entry(
                "--metrics-retention",
                format!("{} days", settings.metrics_retention.as_secs() / 86_400),
                "Per-minute metrics history kept in the SQL database.",
            ),
            entry(
                "--alert-interval",
                format!("{} s", settings.alerts.interval.as_secs()),
                "How often alert rules are evaluated.",
            ),
            entry(
                "--alert-webhook, --alert-chat-webhook",
                if settings.alerts.webhooks.is_empty() {
                    "(none)".to_owned()
                } else {
                    settings
                        .alerts
                        .webhooks
                        .iter()
                        .map(|w| format!("{} ({})", w.url, w.format.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                "Where firing and resolved alerts are posted.",
            ),
            entry(
                "--external-url",
                settings.alerts.external_url.clone(),
                "The dashboard's address in alert messages; https makes the session cookie Secure.",
            ),
            entry(
                "--session-ttl",
                crate::ratelimits::format_window(
                    i64::try_from(settings.auth.session_ttl.as_millis()).unwrap_or(i64::MAX),
                ),
                "How long a sign-in lasts.",
            ),
            entry(
                "--auth-outage-grace",
                crate::ratelimits::format_window(
                    i64::try_from(settings.auth.outage_grace.as_millis()).unwrap_or(i64::MAX),
                ),
                "How long a verified session or API token works while the user database is down.",
            ),
            entry(
                "--rate-limit-login",
                settings.rate_limits.login.to_string(),
                "Sign-in attempts per client address.",
            ),
            entry(
                "--auth-proxy-header, --auth-proxy-trusted",
                settings.auth.proxy.as_ref().map_or_else(
                    || "off".to_owned(),
                    |p| {
                        let from: Vec<String> = p.trusted.iter().map(ToString::to_string).collect();
                        format!("{} from {}", p.header, from.join(", "))
                    },
                ),
                "A header naming the signed-in user, believed from these proxies only.",
            ),
            entry(
                "--api-tokens",
                if settings.auth.api_tokens {
                    "on"
                } else {
                    "off"
                }
                .to_owned(),
                "Whether the JSON API accepts Authorization: Bearer tokens.",
            ),
        ],
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
