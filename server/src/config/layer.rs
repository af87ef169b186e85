//! The settings every command shares, declared once for the command line
//! and the config file, and the one rule that layers them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use coord::ratelimit::FallbackMode;
use serde::{Deserialize, Deserializer};

use crate::auth::net::IpRange;
use crate::config::secret::{SecretText, SecretUrl};
use crate::ratelimits::LimitSpec;

/// How a layer's value for one setting stands over a lower layer's.
pub trait Over {
    /// `self` where this layer gives the setting, else `lower`.
    fn over(self, lower: Self) -> Self;
}

impl<T> Over for Option<T> {
    fn over(self, lower: Self) -> Self {
        self.or(lower)
    }
}

/// A list given in a layer replaces the lower layer's list; an empty one
/// is no list at all (a repeatable flag that was not repeated).
impl<T> Over for Vec<T> {
    fn over(self, lower: Self) -> Self {
        if self.is_empty() { lower } else { self }
    }
}

/// A switch is on when any layer turns it on.
impl Over for bool {
    fn over(self, lower: Self) -> Self {
        self || lower
    }
}

/// Declares the layer struct as written and derives its `over` from the
/// fields, so adding a setting is adding one field.
macro_rules! layer {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $name {
            /// This layer over `lower`: each setting this layer gives wins,
            /// the others come from `lower`.
            #[must_use]
            pub fn over(self, lower: Self) -> Self {
                Self { $( $field: Over::over(self.$field, lower.$field), )* }
            }
        }
    };
}

layer! {
    /// One layer of settings: the command line (each flag with its
    /// `SWITCHYARD_*` environment fallback) or the config file (the field
    /// names are its keys). Every setting is declared here once, with its
    /// flag, variable, file key and help; [`crate::config::Settings`]
    /// puts the command line over the file over the defaults and validates
    /// the result. Everything is optional so that an absent flag falls
    /// through to the file, then to the default named in its help.
    #[derive(Debug, Default, Clone, Args, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct Layer {
        /// Address the dashboard listens on (port 0 picks a free one)
        /// [default: 127.0.0.1:3000]
        #[arg(long, global = true, env = "SWITCHYARD_LISTEN", value_name = "ADDR")]
        pub listen: Option<String>,

        /// Redis URL for the scale-out deployment (`rediss://` for TLS,
        /// `redis+cluster://host:port,host:port` or `rediss+cluster://…` for
        /// a Redis Cluster, naming seed nodes); when absent, queues live in
        /// the embedded SQLite database
        #[arg(
            long = "redis",
            global = true,
            env = "SWITCHYARD_REDIS_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        pub redis_url: Option<SecretUrl>,

        /// Prefix of every Redis key, so several deployments can share one
        /// Redis [default: switchyard]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_REDIS_PREFIX",
            value_name = "PREFIX"
        )]
        pub redis_prefix: Option<String>,

        /// SQL database: the queue store of the embedded deployment (SQLite
        /// only), or the server's own tables next to Redis (SQLite or
        /// `postgres://…`) [default: sqlite://switchyard.db?mode=rwc]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_DATABASE_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        pub database_url: Option<SecretUrl>,

        /// TOML file with any of the keys listen, redis_url, redis_prefix,
        /// database_url, log, busy_active, warning_failure_rate,
        /// rate_limit_pages, rate_limit_actions, rate_limit_api,
        /// rate_limit_fallback, metrics_retention, alert_interval,
        /// external_url, session_ttl, auth_outage_grace, rate_limit_login,
        /// auth_proxy_header, auth_proxy_trusted, api_tokens, bullmq_url,
        /// bullmq_prefix, bullmq_queues, metrics_token, metrics_queues,
        /// listing_value_bytes, scheduler,
        /// header_read_timeout, max_connections_per_address, alert_webhooks (`[{ url = "…",
        /// format = "chat" }]`) and [[alert_rules]]; flags and environment
        /// variables override it
        #[arg(long, global = true, env = "SWITCHYARD_CONFIG", value_name = "FILE")]
        #[serde(skip)]
        pub config: Option<PathBuf>,

        /// Log filter, in `RUST_LOG` syntax (e.g. `info`, `server=debug,warn`)
        /// [default: info]
        #[arg(long, global = true, env = "SWITCHYARD_LOG", value_name = "FILTER")]
        pub log: Option<String>,

        /// A queue with more active jobs than this shows the Busy badge: its
        /// workers are saturated [default: 100]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_BUSY_ACTIVE",
            value_name = "JOBS"
        )]
        pub busy_active: Option<u64>,

        /// A queue where more than this percentage of finished jobs failed over
        /// the last 5 minutes shows the Warning badge [default: 5]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_WARNING_FAILURE_RATE",
            value_name = "PERCENT"
        )]
        pub warning_failure_rate: Option<f64>,

        /// Requests per client address to pages, live streams and assets, as
        /// `<requests>/<window>` (`600/1m`, `20/10s`) or `off`; over it,
        /// requests get 429 with Retry-After [default: 600/1m]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_RATE_LIMIT_PAGES",
            value_name = "LIMIT"
        )]
        pub rate_limit_pages: Option<LimitSpec>,

        /// Button presses (form posts) per client address, as for
        /// --rate-limit-pages [default: 120/1m]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_RATE_LIMIT_ACTIONS",
            value_name = "LIMIT"
        )]
        pub rate_limit_actions: Option<LimitSpec>,

        /// JSON API requests per client address, as for --rate-limit-pages
        /// [default: 6000/1m]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_RATE_LIMIT_API",
            value_name = "LIMIT"
        )]
        pub rate_limit_api: Option<LimitSpec>,

        /// While Redis is unreachable, limit each dashboard instance on its own
        /// (`local`), allow everything (`open`) or refuse everything (`closed`)
        /// [default: local]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_RATE_LIMIT_FALLBACK",
            value_name = "MODE",
            value_parser = crate::ratelimits::parse_fallback
        )]
        #[serde(deserialize_with = "fallback")]
        pub rate_limit_fallback: Option<FallbackMode>,

        /// Days of per-minute metrics history kept in the SQL database for the
        /// charts [default: 7]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_METRICS_RETENTION",
            value_name = "DAYS"
        )]
        pub metrics_retention: Option<u64>,

        /// How often alert rules are evaluated, in seconds [default: 15]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_ALERT_INTERVAL",
            value_name = "SECONDS"
        )]
        pub alert_interval: Option<u64>,

        /// Post firing and resolved alerts to this URL in Alertmanager's
        /// webhook format (version 4); repeat for several (the environment
        /// variable takes a comma-separated list)
        #[arg(
            long = "alert-webhook",
            global = true,
            env = "SWITCHYARD_ALERT_WEBHOOKS",
            hide_env_values = true,
            value_name = "URL",
            value_delimiter = ','
        )]
        #[serde(skip)]
        pub alertmanager_webhooks: Vec<SecretUrl>,

        /// Post firing and resolved alerts to this URL as chat text
        /// (`{"text": …}`, for Slack-style incoming webhooks); repeatable
        #[arg(
            long = "alert-chat-webhook",
            global = true,
            env = "SWITCHYARD_ALERT_CHAT_WEBHOOKS",
            hide_env_values = true,
            value_name = "URL",
            value_delimiter = ','
        )]
        #[serde(skip)]
        pub chat_webhooks: Vec<SecretUrl>,

        /// The dashboard's address as people reach it, for the links in alert
        /// messages [default: http://<listen address>]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_EXTERNAL_URL",
            value_name = "URL"
        )]
        pub external_url: Option<String>,

        /// Name of the first admin that SWITCHYARD_ADMIN_PASSWORD creates
        /// [default: admin]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_ADMIN_USER",
            value_name = "NAME"
        )]
        #[serde(skip)]
        pub admin_user: Option<String>,

        /// On a start that finds no users, create the first admin with this
        /// password (12+ characters); ignored once any user exists. Prefer the
        /// environment variable: a flag is visible to others in `ps`
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_ADMIN_PASSWORD",
            hide_env_values = true,
            value_name = "PASSWORD"
        )]
        #[serde(skip)]
        pub admin_password: Option<SecretText>,

        /// How long a sign-in lasts after its last use before the user
        /// must sign in again (`30m`, `12h`, `7d`) [default: 12h]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_SESSION_TTL",
            value_name = "DURATION",
            value_parser = parse_duration
        )]
        #[serde(deserialize_with = "duration")]
        pub session_ttl: Option<Duration>,

        /// While the user database does not answer, a session or API token
        /// verified within this long keeps working (`0s` turns it off); a
        /// revocation applies as soon as the database answers [default: 5m]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_AUTH_OUTAGE_GRACE",
            value_name = "DURATION",
            value_parser = parse_duration
        )]
        #[serde(deserialize_with = "duration")]
        pub auth_outage_grace: Option<Duration>,

        /// Sign-in attempts per client address, as for --rate-limit-pages
        /// (brute-force protection) [default: 10/1m]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_RATE_LIMIT_LOGIN",
            value_name = "LIMIT"
        )]
        pub rate_limit_login: Option<LimitSpec>,

        /// Trust this request header (e.g. X-Forwarded-User) to name the
        /// signed-in user, when the request comes from --auth-proxy-trusted;
        /// the user needs an account here [default: off]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_AUTH_PROXY_HEADER",
            value_name = "HEADER"
        )]
        pub auth_proxy_header: Option<String>,

        /// Addresses or CIDR ranges of the reverse proxies allowed to set
        /// --auth-proxy-header, comma-separated (e.g. 10.0.0.5,10.1.0.0/16)
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_AUTH_PROXY_TRUSTED",
            value_name = "ADDRS",
            value_delimiter = ','
        )]
        #[serde(deserialize_with = "ip_ranges")]
        pub auth_proxy_trusted: Vec<IpRange>,

        /// Accept `Authorization: Bearer <token>` on the JSON API, with tokens
        /// made by `switchyard token add` [default: off]
        #[arg(long, global = true, env = "SWITCHYARD_API_TOKENS")]
        pub api_tokens: bool,

        /// Redis holding BullMQ (Node) queues to show and operate (also
        /// `redis+cluster://…`), or `off` [default: the --redis URL when
        /// given, else off]
        #[arg(
            long = "bullmq",
            global = true,
            env = "SWITCHYARD_BULLMQ_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        pub bullmq_url: Option<SecretUrl>,

        /// Key prefix of the BullMQ queues (their `prefix` option); on Redis
        /// Cluster BullMQ needs a hash tag in it (`{bull}`) or in every queue
        /// name (`{emails}`) [default: bull]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_BULLMQ_PREFIX",
            value_name = "PREFIX"
        )]
        pub bullmq_prefix: Option<String>,

        /// Only these BullMQ queues, comma-separated, instead of discovering
        /// every `<prefix>:*:meta` [default: discover]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_BULLMQ_QUEUES",
            value_name = "NAMES",
            value_delimiter = ','
        )]
        pub bullmq_queues: Vec<String>,

        /// Require this token (`Authorization: Bearer <token>`) on
        /// `/metrics`; without it the scrape endpoint is open, like
        /// `/health` [default: off]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_METRICS_TOKEN",
            hide_env_values = true,
            value_name = "TOKEN"
        )]
        pub metrics_token: Option<SecretText>,

        /// Per-queue series on `/metrics` and in the metrics history for
        /// at most this many queues, the busiest (most jobs waiting,
        /// active, delayed or failed; the history also keeps the
        /// overview's charted queues); totals over every queue are always
        /// there [default: 100]
        #[arg(long, global = true, env = "SWITCHYARD_METRICS_QUEUES", value_name = "N")]
        pub metrics_queues: Option<usize>,

        /// Longest value (job data, result, error, stack trace, history)
        /// a job listing carries, page or API, in bytes: longer ones are
        /// left out where they are stored (only their size is read) and
        /// marked "truncated" with their size and a link to the whole job
        /// (256 to 1048576) [default: 4096]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_LISTING_VALUE_BYTES",
            value_name = "BYTES"
        )]
        pub listing_value_bytes: Option<u32>,

        /// Fire the queue backend's due schedules from this dashboard
        /// (`true`), or leave them to the services' schedulers (`false`).
        /// Any number of dashboards and services may fire them at once:
        /// each tick is fired once [default: true]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_SCHEDULER",
            value_name = "BOOL"
        )]
        pub scheduler: Option<bool>,

        /// How long a client may take to send a request's line and
        /// headers before its connection is closed (slow-header clients)
        /// [default: 10s]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_HEADER_READ_TIMEOUT",
            value_name = "DURATION",
            value_parser = parse_duration
        )]
        #[serde(deserialize_with = "duration")]
        pub header_read_timeout: Option<Duration>,

        /// Open connections one client address may hold; more are closed
        /// at once (`0`: no cap). A browser holds about 6 plus one per
        /// open tab's live stream [default: 64]
        #[arg(
            long,
            global = true,
            env = "SWITCHYARD_MAX_CONNECTIONS_PER_ADDRESS",
            value_name = "N"
        )]
        pub max_connections_per_address: Option<usize>,

        /// Config file only: webhooks, each `{ url = "…", format =
        /// "alertmanager" | "chat" }`, added to those of the flags.
        #[arg(skip)]
        pub alert_webhooks: Vec<FileWebhook>,

        /// Config file only: alert rules (`[[alert_rules]]`), written over the
        /// stored rules of the same name at every start.
        #[arg(skip)]
        pub alert_rules: Vec<FileRule>,
    }
}

/// A webhook in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWebhook {
    /// Where to post.
    pub url: SecretUrl,
    /// `alertmanager` (the default) or `chat`.
    pub format: Option<String>,
}

/// An alert rule in the config file; see `crate::alerts::model::Rule`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    /// Unique name.
    pub name: String,
    /// What it watches (`failure_rate`, `queue_backlog`, …).
    pub kind: String,
    /// A queue, instance, policy or channel name, or `*` (the default).
    pub target: Option<String>,
    /// The limit, in the kind's unit.
    pub threshold: Option<f64>,
    /// Measurement window in seconds (failure rate, channel silence).
    pub window_secs: Option<u64>,
    /// How long the condition must hold before firing, in seconds.
    pub for_secs: Option<u64>,
    /// `warning` (the default) or `critical`.
    pub severity: Option<String>,
    /// Defaults to true.
    pub enabled: Option<bool>,
}

/// Parses a duration as `--session-ttl` takes it: a number and a unit,
/// `s`, `m`, `h` or `d` (`90m`, `12h`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a duration (expected e.g. 30m, 12h or 7d)");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (amount, unit) = text.split_at(split);
    let amount: u64 = amount.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => amount,
        "m" => amount.saturating_mul(60),
        "h" => amount.saturating_mul(3600),
        "d" => amount.saturating_mul(24 * 3600),
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(secs))
}

// The file's text goes through the flag's own parser, so both accept the
// same values and refuse others with the same reason.

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn fallback<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FallbackMode>, D::Error> {
    let text = String::deserialize(d)?;
    crate::ratelimits::parse_fallback(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn ip_ranges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpRange>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| text.parse().map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::config::cli::Cli;

    /// The keys `--config`'s help names are the keys the file accepts.
    #[test]
    fn the_config_help_names_every_file_key() {
        let command = Cli::command();
        let help = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some("config"))
            .and_then(|arg| arg.get_help())
            .map(ToString::to_string)
            .expect("--config has help");
        let listed =
            &help[help.find("keys").expect("lists keys")..help.find("; flags").expect("ends")];
        let mut named: Vec<&str> = listed
            .split(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .filter(|word| word.contains('_') || ["listen", "log", "scheduler"].contains(word))
            .collect();
        named.sort_unstable();
        named.dedup();
        // serde lists the keys it knows when it meets one it does not.
        let reason = crate::config::Layer::parse("not_a_key = 1")
            .expect_err("unknown key")
            .reason;
        let mut accepted: Vec<&str> = reason.split('`').skip(3).step_by(2).collect();
        accepted.sort_unstable();
        assert_eq!(named, accepted, "{help}\n{reason}");
    }

    #[test]
    fn a_layer_gives_what_it_sets_and_takes_the_rest_from_below() {
        let flags = Cli::try_parse_from(["switchyard", "--log", "debug", "--bullmq-queues", "a,b"])
            .expect("parses")
            .global;
        let file = crate::config::Layer::parse(
            "log = \"warn\"\nlisten = \"0.0.0.0:1\"\nbullmq_queues = [\"c\"]\napi_tokens = true\nauth_proxy_trusted = [\"10.0.0.1\"]",
        )
        .expect("parses");
        let given = flags.over(file);
        assert_eq!(given.log.as_deref(), Some("debug"), "the flag wins");
        assert_eq!(
            given.listen.as_deref(),
            Some("0.0.0.0:1"),
            "the file fills in"
        );
        assert_eq!(
            given.bullmq_queues,
            ["a", "b"],
            "a list replaces, not merges"
        );
        assert!(given.api_tokens, "a switch is on when any layer sets it");
        assert_eq!(
            given.auth_proxy_trusted.len(),
            1,
            "an empty list is no list"
        );
        assert_eq!(given.redis_url, None, "neither gave it");
    }
}
