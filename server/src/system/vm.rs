//! The Configuration page's view model: the effective settings, secrets
//! hidden.

use app::{ConfigEntry, ConfigVm};

use crate::config::Settings;

/// The configuration page: every setting with its flag, the effective
/// value (URLs through their redacting `Display`) and what it does.
pub fn config_page(settings: &Settings) -> ConfigVm {
    let entry = |flag: &str, value: String, help: &str| ConfigEntry {
        flag: flag.to_string(),
        value,
        help: help.to_string(),
    };
    let deployment = match settings.deployment() {
        crate::config::Deployment::Embedded => "embedded",
        crate::config::Deployment::Redis => "redis",
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
