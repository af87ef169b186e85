//! The Configuration page's view model: the effective settings, secrets
//! hidden.

use app::{ConfigEntry, ConfigVm};

use crate::alerts::webhook::WebhookFormat;
use crate::config::Settings;
use crate::config::cli::global_flags;

/// The configuration page: every setting with its flag, the effective
/// value (URLs through their redacting `Display`) and the flag's own help.
pub fn config_page(settings: &Settings) -> ConfigVm {
    let helps = global_flags();
    let entry = |flag: &str, value: String| ConfigEntry {
        help: helps
            .iter()
            .find(|(long, _)| long == flag)
            .map(|(_, help)| help.clone())
            .unwrap_or_default(),
        flag: flag.to_string(),
        value,
    };
    let deployment = match settings.deployment() {
        crate::config::Deployment::Embedded => "embedded",
        crate::config::Deployment::Redis => "redis",
    };
    let webhooks = |format: WebhookFormat| {
        let urls: Vec<String> = settings
            .alerts
            .webhooks
            .iter()
            .filter(|w| w.format == format)
            .map(|w| w.url.to_string())
            .collect();
        if urls.is_empty() {
            "(none)".to_owned()
        } else {
            urls.join(", ")
        }
    };
    let window = |duration: std::time::Duration| {
        crate::ratelimits::format_window(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
    };
    let bull_off = || "(not used: BullMQ is off)".to_owned();
    let proxy = settings.auth.proxy.as_ref();
    ConfigVm {
        version: env!("CARGO_PKG_VERSION").to_string(),
        deployment: deployment.to_string(),
        entries: vec![
            entry("--listen", settings.listen.clone()),
            entry(
                "--redis",
                settings
                    .redis_url
                    .as_ref()
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "(not set: embedded deployment)".into()),
            ),
            entry("--redis-prefix", settings.redis_prefix.clone()),
            entry("--database-url", settings.database_url.to_string()),
            entry("--log", settings.log.clone()),
            entry("--busy-active", settings.busy_active.to_string()),
            entry(
                "--warning-failure-rate",
                format!("{}%", settings.warning_failure_rate),
            ),
            entry("--rate-limit-pages", settings.rate_limits.pages.to_string()),
            entry(
                "--rate-limit-actions",
                settings.rate_limits.actions.to_string(),
            ),
            entry("--rate-limit-api", settings.rate_limits.api.to_string()),
            entry(
                "--rate-limit-fallback",
                settings.rate_limits.fallback.to_string(),
            ),
            entry(
                "--metrics-retention",
                format!("{} days", settings.metrics_retention.as_secs() / 86_400),
            ),
            entry(
                "--alert-interval",
                format!("{} s", settings.alerts.interval.as_secs()),
            ),
            entry("--alert-webhook", webhooks(WebhookFormat::Alertmanager)),
            entry("--alert-chat-webhook", webhooks(WebhookFormat::Chat)),
            entry("--external-url", settings.alerts.external_url.clone()),
            entry("--session-ttl", window(settings.auth.session_ttl)),
            entry("--auth-outage-grace", window(settings.auth.outage_grace)),
            entry("--rate-limit-login", settings.rate_limits.login.to_string()),
            entry(
                "--auth-proxy-header",
                proxy.map_or_else(|| "off".to_owned(), |p| p.header.to_string()),
            ),
            entry(
                "--auth-proxy-trusted",
                proxy.map_or_else(
                    || "(none)".to_owned(),
                    |p| {
                        let from: Vec<String> = p.trusted.iter().map(ToString::to_string).collect();
                        from.join(", ")
                    },
                ),
            ),
            entry(
                "--api-tokens",
                if settings.auth.api_tokens {
                    "on"
                } else {
                    "off"
                }
                .to_owned(),
            ),
            entry(
                "--bullmq",
                settings
                    .bullmq
                    .as_ref()
                    .map_or_else(|| "off".to_owned(), |b| b.url.to_string()),
            ),
            entry(
                "--bullmq-prefix",
                settings
                    .bullmq
                    .as_ref()
                    .map_or_else(bull_off, |b| b.prefix.clone()),
            ),
            entry(
                "--bullmq-queues",
                settings.bullmq.as_ref().map_or_else(bull_off, |b| {
                    if b.queues.is_empty() {
                        format!("(every {}:*:meta found)", b.prefix)
                    } else {
                        b.queues.join(", ")
                    }
                }),
            ),
            entry(
                "--metrics-token",
                if settings.metrics_token.is_some() {
                    "set (required on /metrics)"
                } else {
                    "off: /metrics is open"
                }
                .to_owned(),
            ),
            entry(
                "--metrics-queues",
                format!("{} busiest", settings.metrics_queues),
            ),
            entry(
                "--listing-value-bytes",
                format!(
                    "{} bytes",
                    app::format_count(u64::from(settings.listing_value_bytes))
                ),
            ),
            entry(
                "--scheduler",
                if settings.scheduler {
                    "true: fires due schedules"
                } else {
                    "false: leaves schedules to the services"
                }
                .to_owned(),
            ),
            entry(
                "--header-read-timeout",
                window(settings.connections.header_read_timeout),
            ),
            entry(
                "--max-connections-per-address",
                match settings.connections.per_address {
                    0 => "no cap".to_owned(),
                    n => n.to_string(),
                },
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Global flags the page does not list: the file they came from and the
    /// first admin, which only matter on the start that used them.
    const NOT_SHOWN: [&str; 3] = ["--config", "--admin-user", "--admin-password"];

    /// A flag added to the command line shows up on the page, or the page
    /// says on purpose that it does not; each row carries the flag's help.
    #[test]
    fn the_page_lists_every_setting_with_its_help() {
        let page = config_page(&Settings::default());
        let shown: Vec<&str> = page.entries.iter().map(|e| e.flag.as_str()).collect();
        let flags: Vec<String> = global_flags()
            .into_iter()
            .map(|(flag, _)| flag)
            .filter(|flag| !NOT_SHOWN.contains(&flag.as_str()))
            .collect();
        assert_eq!(shown, flags, "the page's rows in the order of --help");
        for entry in &page.entries {
            assert!(!entry.help.is_empty(), "{} has no help", entry.flag);
            assert!(!entry.value.is_empty(), "{} has no value", entry.flag);
        }
        let help = |flag: &str| {
            page.entries
                .iter()
                .find(|e| e.flag == flag)
                .map(|e| e.help.clone())
                .unwrap_or_default()
        };
        assert!(
            help("--listen").starts_with("Address the dashboard listens on"),
            "{}",
            help("--listen")
        );
    }
}
