//! Settings, layered: defaults < optional TOML file < `SWITCHYARD_*`
//! environment variables < command-line flags.
//!
//! Each setting is declared once, in [`layer::Layer`], which is both the
//! command line (clap resolves a flag over its environment variable) and
//! the file; [`Settings::layer`] puts the one over the other, fills in the
//! defaults, and validates the result once, so a
//! deployment mistake (a Postgres URL without Redis, a prefix that would
//! break Redis Cluster hash tags) stops the process at start with a reason
//! instead of surfacing later as a confusing runtime error.

pub mod cli;
pub mod layer;
pub mod secret;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::alerts::defaults::validate;
use crate::alerts::model::{ANY_SUBJECT, Rule};
use crate::alerts::settings::{AlertSettings, WebhookTarget};
use crate::alerts::webhook::WebhookFormat;
use crate::auth::settings::{AuthSettings, DEFAULT_SESSION_TTL, ProxyAuth};
use crate::auth::users::{DEFAULT_ADMIN, FirstAdmin, Password, UserError, UserName};
use crate::bullmq::settings::BullSettings;
use crate::config::layer::{FileRule, Layer};
use crate::config::secret::{SecretText, SecretUrl};
use crate::http::serve::ConnectionLimits;
use crate::ratelimits::settings::DashboardLimits;

/// Where the dashboard listens unless told otherwise: loopback only, so a
/// first run never exposes the API to the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Prefix of Redis keys unless told otherwise.
pub const DEFAULT_REDIS_PREFIX: &str = "switchyard";
/// The embedded database unless told otherwise: a file in the working
/// directory, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://switchyard.db?mode=rwc";
/// Log filter unless told otherwise.
pub const DEFAULT_LOG: &str = "info";
/// Active jobs above which a queue is Busy unless told otherwise.
pub const DEFAULT_BUSY_ACTIVE: u64 = 100;
/// Failure rate (percent) above which a queue is in Warning unless told
/// otherwise: the rate alerting tools commonly page on.
pub const DEFAULT_WARNING_FAILURE_RATE: f64 = 5.0;
/// Default for `--alert-interval`, in seconds.
pub const DEFAULT_ALERT_INTERVAL_SECS: u64 = 15;
/// Default for `--header-read-timeout`: a person's browser sends its
/// request head at once; ten seconds covers a very slow network.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for `--max-connections-per-address`: ten browsers behind one
/// NAT, each with a few tabs open, stay under it.
pub const DEFAULT_CONNECTIONS_PER_ADDRESS: usize = 64;

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file named by `--config`.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The config file is not valid TOML, has unknown keys or a value of
    /// the wrong type.
    #[error("invalid config file {path}{}", after_path(.error))]
    Parse {
        /// The file named by `--config`.
        path: PathBuf,
        /// Where in the file, and why.
        error: FileError,
    },
    /// A value is out of range or inconsistent with another.
    #[error("{0}")]
    Invalid(String),
}

/// Why config text was refused: the parser's reason, with the line and the
/// key it is about when known (`line 3: busy_active: invalid type: string
/// "lots", expected u64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// 1-based line of the offending text.
    pub line: Option<usize>,
    /// Dotted path of the offending key (`busy_active`,
    /// `alert_rules[0].threshold`), when the value (not the syntax) is wrong.
    pub key: Option<String>,
    /// The parser's reason, on one line.
    pub reason: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// `, line 3: key: reason` after the file name, or `: reason` without a
/// line.
fn after_path(error: &FileError) -> String {
    match error.line {
        Some(_) => format!(", {error}"),
        None => format!(": {error}"),
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted path of the key an error is about (`alert_rules[0].kind`),
/// without a last key the reason already quotes (`unknown field
/// \`lissten\``); `None` at the top level.
fn key_path(path: &serde_path_to_error::Path, reason: &str) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut segments: Vec<&Segment> = path.iter().collect();
    if let Some(Segment::Map { key }) = segments.last()
        && reason.contains(&format!("`{key}`"))
    {
        segments.pop();
    }
    let mut shown = String::new();
    for segment in segments {
        if !shown.is_empty() && !matches!(segment, Segment::Seq { .. }) {
            shown.push('.');
        }
        shown.push_str(&segment.to_string());
    }
    (!shown.is_empty()).then_some(shown)
}

impl FileRule {
    fn to_rule(&self) -> Result<Rule, ConfigError> {
        let bad = |reason: String| {
            ConfigError::Invalid(format!(
                "alert rule {:?} in the config file: {reason}",
                self.name
            ))
        };
        let rule = Rule {
            kind: self.kind.parse().map_err(bad)?,
            severity: self
                .severity
                .as_deref()
                .unwrap_or("warning")
                .parse()
                .map_err(bad)?,
            target: self
                .target
                .clone()
                .unwrap_or_else(|| ANY_SUBJECT.to_owned()),
            threshold: self.threshold.unwrap_or(0.0),
            window_secs: self.window_secs.unwrap_or(300),
            for_secs: self.for_secs.unwrap_or(0),
            enabled: self.enabled.unwrap_or(true),
            name: self.name.clone(),
        };
        validate(&rule).map_err(bad)?;
        Ok(rule)
    }
}

impl Layer {
    /// Reads and parses a config file into a layer.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            error,
        })
    }

    /// Parses config text; the error names the line and, for a value of
    /// the wrong type, the key.
    pub fn parse(text: &str) -> Result<Self, FileError> {
        let located = |err: &toml::de::Error, key: Option<String>| FileError {
            line: err.span().map(|span| line_of(text, span.start)),
            key,
            reason: err.message().replace('\n', " "),
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| located(&e, None))?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = key_path(e.path(), e.inner().message());
            located(e.inner(), key)
        })
    }
}

/// The settings the server runs with, after layering and validation.
#[derive(Clone, PartialEq)]
pub struct Settings {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// Redis for the scale-out deployment; `None` runs embedded.
    pub redis_url: Option<SecretUrl>,
    /// Prefix of every Redis key of this deployment.
    pub redis_prefix: String,
    /// The SQL database (the queue store when embedded).
    pub database_url: SecretUrl,
    /// Log filter in `RUST_LOG` syntax.
    pub log: String,
    /// Active jobs above which a queue is Busy.
    pub busy_active: u64,
    /// Failure rate (percent, 0–100) above which a queue is in Warning.
    pub warning_failure_rate: f64,
    /// The limits on the dashboard's own routes, and the fallback while
    /// Redis is down.
    pub rate_limits: DashboardLimits,
    /// Evaluation interval, webhooks, the external URL and the config
    /// file's alert rules.
    pub alerts: AlertSettings,
    /// How long per-minute metrics history is kept.
    pub metrics_retention: Duration,
    /// The admin to create on a start that finds no users, from
    /// `--admin-user` / `--admin-password` (or their environment variables).
    pub first_admin: Option<FirstAdmin>,
    /// Sessions, the trusted proxy header and API tokens.
    pub auth: AuthSettings,
    /// The BullMQ queues shown next to the native ones, if any.
    pub bullmq: Option<BullSettings>,
    /// The token `/metrics` requires, if any.
    pub metrics_token: Option<SecretText>,
    /// Queues with series of their own on `/metrics`, at most.
    pub metrics_queues: usize,
    /// Longest value a job listing carries (bytes).
    pub listing_value_bytes: u32,
    /// Whether this server fires due schedules.
    pub scheduler: bool,
    /// The header-read timeout and the per-address connection cap.
    pub connections: ConnectionLimits,
}

impl fmt::Debug for Settings {
    // Written out so that URLs always go through their redacting Display,
    // whatever formatting a log line uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field(
                "redis_url",
                &self.redis_url.as_ref().map(SecretUrl::redacted),
            )
            .field("redis_prefix", &self.redis_prefix)
            .field("database_url", &self.database_url.redacted())
            .field("log", &self.log)
            .field("busy_active", &self.busy_active)
            .field("warning_failure_rate", &self.warning_failure_rate)
            .field("rate_limits", &self.rate_limits)
            .field("metrics_retention", &self.metrics_retention)
            .field(
                "first_admin",
                &self.first_admin.as_ref().map(|a| a.name.as_str()),
            )
            .field("auth", &self.auth)
            .field(
                "bullmq",
                &self
                    .bullmq
                    .as_ref()
                    .map(|b| (b.url.redacted(), b.prefix.clone(), b.queues.clone())),
            )
            .field("metrics_token", &self.metrics_token.is_some())
            .field("metrics_queues", &self.metrics_queues)
            .field("listing_value_bytes", &self.listing_value_bytes)
            .field("scheduler", &self.scheduler)
            .field("connections", &self.connections)
            .field(
                "alert_webhooks",
                &self
                    .alerts
                    .webhooks
                    .iter()
                    .map(|w| w.url.redacted())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.into(),
            redis_url: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.into(),
            database_url: SecretUrl::new(DEFAULT_DATABASE_URL),
            log: DEFAULT_LOG.into(),
            busy_active: DEFAULT_BUSY_ACTIVE,
            warning_failure_rate: DEFAULT_WARNING_FAILURE_RATE,
            rate_limits: DashboardLimits::default(),
            alerts: AlertSettings {
                interval: Duration::from_secs(DEFAULT_ALERT_INTERVAL_SECS),
                webhooks: Vec::new(),
                external_url: format!("http://{DEFAULT_LISTEN}"),
                rules: Vec::new(),
            },
            metrics_retention: crate::metrics::DEFAULT_RETENTION,
            first_admin: None,
            auth: AuthSettings::default(),
            bullmq: None,
            metrics_token: None,
            metrics_queues: crate::metrics::prometheus::DEFAULT_QUEUE_SERIES,
            listing_value_bytes: crate::queues::vm::DEFAULT_LISTING_VALUE_BYTES,
            scheduler: true,
            connections: ConnectionLimits {
                header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
                per_address: DEFAULT_CONNECTIONS_PER_ADDRESS,
                uncapped: Vec::new(),
            },
        }
    }
}

/// The first admin the arguments ask for, checked now so a bad name or a
/// short password stops startup rather than surfacing later. The message
/// never quotes the password.
fn first_admin(args: &Layer) -> Result<Option<FirstAdmin>, ConfigError> {
    let Some(password) = &args.admin_password else {
        return Ok(None);
    };
    let invalid = |err: UserError| ConfigError::Invalid(format!("first admin: {err}"));
    let name =
        UserName::new(args.admin_user.as_deref().unwrap_or(DEFAULT_ADMIN)).map_err(invalid)?;
    let password = Password::configured(password.expose()).map_err(invalid)?;
    Ok(Some(FirstAdmin { name, password }))
}

/// The BullMQ settings: `--bullmq` (or the file), else the `--redis` URL;
/// `off` turns it off. Queue names and the prefix are checked here so a
/// typo stops the start rather than showing an empty page.
fn bull_settings(
    given: &Layer,
    redis: Option<&SecretUrl>,
) -> Result<Option<BullSettings>, ConfigError> {
    let url = match given.bullmq_url.clone() {
        Some(url) if url.expose().eq_ignore_ascii_case("off") => return Ok(None),
        Some(url) => url,
        None => match redis {
            Some(url) => url.clone(),
            None => return Ok(None),
        },
    };
    if !matches!(
        url.scheme().as_str(),
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster"
    ) {
        return Err(ConfigError::Invalid(format!(
            "--bullmq {url} is not a redis://, rediss:// or redis+cluster:// URL (or off)"
        )));
    }
    check_redis_url("--bullmq", &url)?;
    let prefix = given
        .bullmq_prefix
        .clone()
        .unwrap_or_else(|| crate::bullmq::DEFAULT_PREFIX.to_owned());
    if prefix.is_empty() || prefix.contains(|c: char| c.is_whitespace() || c == ':') {
        return Err(ConfigError::Invalid(format!(
            "--bullmq-prefix {prefix:?} must be non-empty, without spaces or ':'"
        )));
    }
    let queues: Vec<String> = given
        .bullmq_queues
        .iter()
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty())
        .collect();
    if let Some(bad) = queues.iter().find(|q| q.contains(':') || q.len() > 200) {
        return Err(ConfigError::Invalid(format!(
            "--bullmq-queues: {bad:?} is not a BullMQ queue name (no ':', at most 200 bytes)"
        )));
    }
    Ok(Some(BullSettings {
        url,
        prefix,
        queues,
        discover_every: crate::bullmq::DISCOVER_EVERY,
    }))
}

/// Longest `--session-ttl`, and the longest a sign-in lasts however often
/// it is used (sessions slide): a sign-in that outlives a month is a
/// standing credential, which is what API tokens are for.
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest outage grace: a revoked token or session works that long while
/// the user database is down, so it stays short.
const MAX_OUTAGE_GRACE: Duration = Duration::from_secs(3600);

/// Sign-in settings from the flags over the file; `external_url` says
/// whether browsers reach the dashboard over https (then the session
/// cookie is `Secure`).
fn auth_settings(given: &Layer, external_url: &str) -> Result<AuthSettings, ConfigError> {
    let session_ttl = given.session_ttl.unwrap_or(DEFAULT_SESSION_TTL);
    if session_ttl < Duration::from_secs(60) || session_ttl > MAX_SESSION_TTL {
        return Err(ConfigError::Invalid(format!(
            "--session-ttl must be between 1m and 30d (got {} s)",
            session_ttl.as_secs()
        )));
    }
    let outage_grace = given
        .auth_outage_grace
        .unwrap_or(crate::auth::users::OUTAGE_GRACE);
    if outage_grace > MAX_OUTAGE_GRACE {
        return Err(ConfigError::Invalid(format!(
            "--auth-outage-grace must be at most 1h (got {} s): a revoked token or session works that long while the database is down",
            outage_grace.as_secs()
        )));
    }
    let trusted = given.auth_proxy_trusted.clone();
    let proxy = match (given.auth_proxy_header.clone(), trusted.is_empty()) {
        (None, true) => None,
        (Some(_), true) => {
            return Err(ConfigError::Invalid(
                "--auth-proxy-header needs --auth-proxy-trusted: the header is only believed \
                 from the proxies listed there"
                    .into(),
            ));
        }
        (None, false) => {
            return Err(ConfigError::Invalid(
                "--auth-proxy-trusted needs --auth-proxy-header (the header naming the user)"
                    .into(),
            ));
        }
        (Some(name), false) => Some(ProxyAuth {
            header: axum::http::HeaderName::try_from(name.trim()).map_err(|_| {
                ConfigError::Invalid(format!(
                    "--auth-proxy-header {name:?} is not a valid header name"
                ))
            })?,
            trusted,
        }),
    };
    Ok(AuthSettings {
        session_ttl,
        outage_grace,
        secure_cookies: external_url.starts_with("https://"),
        proxy,
        api_tokens: given.api_tokens,
        stream_recheck: crate::auth::settings::STREAM_RECHECK,
    })
}

/// The deployment the settings describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// Queues in the SQLite database, no Redis.
    Embedded,
    /// Queues in Redis; the SQL database holds only the server's tables.
    Redis,
}

/// What a command connects to, which decides the settings it accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope {
    /// The queue backend and the SQL database: `serve`, `demo`, `enqueue`.
    #[default]
    Everything,
    /// Only the SQL database: the `user` and `token` commands, which may
    /// manage the accounts of a PostgreSQL database without `--redis`.
    SqlOnly,
}

impl Settings {
    /// Layers the command line (and environment) over the config file it
    /// names, if any, over the defaults, and validates the result for a
    /// command that connects everything.
    pub fn load(args: &Layer) -> Result<Self, ConfigError> {
        Self::load_for(args, Scope::Everything)
    }

    /// As [`Settings::load`], validated for what the command connects to.
    pub fn load_for(args: &Layer, scope: Scope) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => Layer::read(path)?,
            None => Layer::default(),
        };
        Self::layer_for(args, file, scope)
    }

    /// The layering itself, separate from file reading so it can be tested.
    pub fn layer(args: &Layer, file: Layer) -> Result<Self, ConfigError> {
        Self::layer_for(args, file, Scope::Everything)
    }

    /// As [`Settings::layer`], validated for what the command connects to.
    pub fn layer_for(args: &Layer, file: Layer, scope: Scope) -> Result<Self, ConfigError> {
        let given = args.clone().over(file);
        let defaults = Settings::default();
        let limits = defaults.rate_limits;
        let mut settings = Settings {
            listen: given.listen.clone().unwrap_or(defaults.listen),
            redis_url: given.redis_url.clone(),
            redis_prefix: given.redis_prefix.clone().unwrap_or(defaults.redis_prefix),
            database_url: given.database_url.clone().unwrap_or(defaults.database_url),
            log: given.log.clone().unwrap_or(defaults.log),
            busy_active: given.busy_active.unwrap_or(defaults.busy_active),
            warning_failure_rate: given
                .warning_failure_rate
                .unwrap_or(defaults.warning_failure_rate),
            rate_limits: DashboardLimits {
                pages: given.rate_limit_pages.unwrap_or(limits.pages),
                actions: given.rate_limit_actions.unwrap_or(limits.actions),
                api: given.rate_limit_api.unwrap_or(limits.api),
                fallback: given.rate_limit_fallback.unwrap_or(limits.fallback),
                login: given.rate_limit_login.unwrap_or(limits.login),
            },
            alerts: defaults.alerts,
            metrics_retention: match given.metrics_retention {
                None => defaults.metrics_retention,
                Some(days @ 1..=MAX_RETENTION_DAYS) => Duration::from_secs(days * 24 * 3600),
                Some(days) => {
                    return Err(ConfigError::Invalid(format!(
                        "--metrics-retention must be between 1 and {MAX_RETENTION_DAYS} days (got {days})"
                    )));
                }
            },
            first_admin: None,
            auth: AuthSettings::default(),
            bullmq: None,
            metrics_token: match given.metrics_token.clone() {
                Some(token) if token.expose().trim().len() < 16 => {
                    return Err(ConfigError::Invalid(
                        "--metrics-token must be at least 16 characters".into(),
                    ));
                }
                token => token,
            },
            metrics_queues: given.metrics_queues.unwrap_or(defaults.metrics_queues),
            listing_value_bytes: match given.listing_value_bytes {
                None => defaults.listing_value_bytes,
                Some(n) if (256..=1_048_576).contains(&n) => n,
                Some(n) => {
                    return Err(ConfigError::Invalid(format!(
                        "--listing-value-bytes must be from 256 to 1048576, not {n}"
                    )));
                }
            },
            scheduler: given.scheduler.unwrap_or(defaults.scheduler),
            connections: ConnectionLimits {
                header_read_timeout: match given.header_read_timeout {
                    None => defaults.connections.header_read_timeout,
                    Some(t) if (Duration::from_secs(1)..=Duration::from_secs(300)).contains(&t) => {
                        t
                    }
                    Some(t) => {
                        return Err(ConfigError::Invalid(format!(
                            "--header-read-timeout must be between 1s and 5m (got {} s)",
                            t.as_secs()
                        )));
                    }
                },
                per_address: given
                    .max_connections_per_address
                    .unwrap_or(defaults.connections.per_address),
                uncapped: Vec::new(),
            },
        };
        settings.validate_for(scope)?;
        settings.first_admin = first_admin(&given)?;
        settings.alerts = alert_settings(&given, &settings.listen)?;
        settings.auth = auth_settings(&given, &settings.alerts.external_url)?;
        if let Some(proxy) = &settings.auth.proxy {
            settings.connections.uncapped = proxy.trusted.clone();
        }
        settings.bullmq = bull_settings(&given, settings.redis_url.as_ref())?;
        Ok(settings)
    }

    /// Which deployment these settings run.
    pub fn deployment(&self) -> Deployment {
        if self.redis_url.is_some() {
            Deployment::Redis
        } else {
            Deployment::Embedded
        }
    }

    /// Rejects settings that could only fail later, with the reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_for(Scope::Everything)
    }

    /// As [`Settings::validate`], for what the command connects to: only
    /// a command that runs queues needs Redis next to PostgreSQL.
    pub fn validate_for(&self, scope: Scope) -> Result<(), ConfigError> {
        if self.listen.trim().is_empty() {
            return Err(ConfigError::Invalid("--listen must not be empty".into()));
        }
        let db_scheme = self.database_url.scheme();
        match db_scheme.as_str() {
            "sqlite" => {}
            "postgres" | "postgresql" => {
                if self.redis_url.is_none() && scope == Scope::Everything {
                    return Err(ConfigError::Invalid(format!(
                        "--database-url {} needs --redis: the embedded queue stores its jobs in \
                         SQLite, so PostgreSQL can only hold the server's tables next to Redis",
                        self.database_url
                    )));
                }
            }
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "--database-url {} is not supported (expected sqlite://… or postgres://…)",
                    self.database_url
                )));
            }
        }
        if let Some(redis) = &self.redis_url {
            let scheme = redis.scheme();
            if !matches!(
                scheme.as_str(),
                "redis" | "rediss" | "redis+unix" | "unix" | "redis+cluster" | "rediss+cluster"
            ) {
                return Err(ConfigError::Invalid(format!(
                    "--redis {redis} is not a Redis URL (expected redis://…, rediss://… or \
                     redis+cluster://host:port,host:port)"
                )));
            }
            check_redis_url("--redis", redis)?;
        }
        validate_prefix(&self.redis_prefix)?;
        if self.log.trim().is_empty() {
            return Err(ConfigError::Invalid("--log must not be empty".into()));
        }
        if !(0.0..=100.0).contains(&self.warning_failure_rate) {
            return Err(ConfigError::Invalid(format!(
                "--warning-failure-rate must be a percentage between 0 and 100 (got {})",
                self.warning_failure_rate
            )));
        }
        Ok(())
    }
}

/// Longest accepted metrics retention, in days (a year of per-minute
/// samples is already millions of rows per queue).
const MAX_RETENTION_DAYS: u64 = 366;

/// Longest accepted evaluation interval: an hour (longer would make every
/// rule's `for` meaningless).
const MAX_ALERT_INTERVAL_SECS: u64 = 3600;

/// Layers the alert settings: flags over the file over the defaults; the
/// webhooks of both add up. The external URL defaults to the listen
/// address.
fn alert_settings(given: &Layer, listen: &str) -> Result<AlertSettings, ConfigError> {
    let interval = given.alert_interval.unwrap_or(DEFAULT_ALERT_INTERVAL_SECS);
    if interval == 0 || interval > MAX_ALERT_INTERVAL_SECS {
        return Err(ConfigError::Invalid(format!(
            "--alert-interval must be between 1 and {MAX_ALERT_INTERVAL_SECS} seconds (got {interval})"
        )));
    }
    let mut webhooks = Vec::new();
    let mut add = |url: SecretUrl, format: WebhookFormat| -> Result<(), ConfigError> {
        if !matches!(url.scheme().as_str(), "http" | "https") {
            return Err(ConfigError::Invalid(format!(
                "alert webhook {url} is not an http:// or https:// URL"
            )));
        }
        webhooks.push(WebhookTarget { url, format });
        Ok(())
    };
    for url in &given.alertmanager_webhooks {
        add(url.clone(), WebhookFormat::Alertmanager)?;
    }
    for url in &given.chat_webhooks {
        add(url.clone(), WebhookFormat::Chat)?;
    }
    for hook in &given.alert_webhooks {
        let format = match hook.format.as_deref() {
            None => WebhookFormat::Alertmanager,
            Some(f) => f.parse().map_err(|e: String| {
                ConfigError::Invalid(format!("alert webhook {}: {e}", hook.url))
            })?,
        };
        add(hook.url.clone(), format)?;
    }
    let external_url = given
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}"));
    if !(external_url.starts_with("http://") || external_url.starts_with("https://")) {
        return Err(ConfigError::Invalid(format!(
            "--external-url {external_url:?} must start with http:// or https://"
        )));
    }
    let mut rules = Vec::new();
    for rule in &given.alert_rules {
        let rule = rule.to_rule()?;
        if rules.iter().any(|r: &Rule| r.name == rule.name) {
            return Err(ConfigError::Invalid(format!(
                "alert rule {:?} is defined twice in the config file",
                rule.name
            )));
        }
        rules.push(rule);
    }
    Ok(AlertSettings {
        interval: Duration::from_secs(interval),
        webhooks,
        external_url,
        rules,
    })
}

/// Parses `url` as the Redis driver will, so that a malformed URL (a port
/// out of range, a bad database number) stops the start with the setting
/// named (`flag`) rather than surfacing as a connection error later.
fn check_redis_url(flag: &str, url: &SecretUrl) -> Result<(), ConfigError> {
    // A cluster URL is checked seed by seed, each as the plain URL the
    // driver will open; the message shows the whole URL, redacted.
    let seeds = match coord::redis::split_cluster(url.expose()) {
        Ok(Some(seeds)) => seeds,
        Ok(None) => vec![url.expose().to_owned()],
        Err(coord::CoordError::InvalidOptions(reason)) => {
            let reason = reason
                .strip_prefix("invalid Redis URL: ")
                .unwrap_or(&reason);
            return Err(ConfigError::Invalid(format!(
                "{flag}: invalid Redis URL {} ({reason})",
                shown_malformed(url)
            )));
        }
        Err(other) => return Err(ConfigError::Invalid(format!("{flag}: {other}"))),
    };
    for seed in seeds {
        if let Some((malformed, reason)) = redis_url_problem(&seed) {
            let shown = if malformed {
                shown_malformed(url)
            } else {
                url.redacted()
            };
            return Err(ConfigError::Invalid(format!(
                "{flag}: invalid Redis URL {shown} ({reason})"
            )));
        }
    }
    Ok(())
}

/// Why the driver would refuse one plain Redis URL, and whether it is
/// malformed as a URL (then more of it is hidden when shown), or `None`.
fn redis_url_problem(text: &str) -> Option<(bool, String)> {
    use redis::IntoConnectionInfo;
    match redis::parse_redis_url(text) {
        None => Some((true, malformed_url_reason(text))),
        Some(parsed) => match parsed.into_connection_info() {
            Ok(_) => None,
            Err(err) => Some((false, driver_reason(&err))),
        },
    }
}

/// Why URL syntax refused `text`, as far as can be told without quoting
/// any of it (a stray character in a password is the common cause).
fn malformed_url_reason(text: &str) -> String {
    let Some((_, rest)) = text.split_once("://") else {
        return "not a URL".into();
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if rest.contains('@') && !authority.contains('@') {
        // The user or password holds a `/`, `?` or `#`, which ends the
        // host part early.
        return "a `/`, `?` or `#` in the user or password must be percent-encoded".into();
    }
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let port = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, port)| port),
        None => host_port.rsplit_once(':').map(|(_, port)| port),
    };
    match port {
        Some(port) if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) => {
            "the port is not a number".into()
        }
        Some(port) if port.parse::<u16>().is_err() && !port.is_empty() => {
            "port out of range: at most 65535".into()
        }
        _ if host_port.is_empty() || host_port.starts_with(':') => "no host".into(),
        _ => "malformed URL; special characters in a password must be percent-encoded".into(),
    }
}

/// The driver's reason in lower case, without its error kind
/// (`Invalid database number - InvalidClientConfig`).
fn driver_reason(err: &redis::RedisError) -> String {
    let text = err.to_string();
    let mut reason = text.split(" - ").next().unwrap_or_default().to_owned();
    if let Some(first) = reason.get(..1) {
        reason.replace_range(..1, &first.to_ascii_lowercase());
    }
    if let Some(detail) = err.detail() {
        reason.push_str(": ");
        reason.push_str(detail);
    }
    reason
}

/// A URL for an error message: as [`SecretUrl`] shows it, and with
/// everything before the last `@` hidden, since a URL that does not parse
/// may hold a password the usual redaction cannot find (`redis://:p#w@h`).
fn shown_malformed(url: &SecretUrl) -> String {
    match url.expose().split_once("://") {
        Some((scheme, rest)) if rest.contains('@') => {
            let host = &rest[rest.rfind('@').map_or(0, |at| at + 1)..];
            SecretUrl::new(format!("{scheme}://***@{host}")).redacted()
        }
        _ => url.redacted(),
    }
}

/// A prefix becomes the start of every key; braces would move the Redis
/// Cluster hash tag off the queue name, and spaces or control characters
/// make keys painful to inspect.
fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "--redis-prefix {prefix:?} must be 1 to 64 characters of letters, digits, '_', '-', \
             '.' and ':'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coord::ratelimit::FallbackMode;

    use crate::config::layer::parse_duration;
    use crate::ratelimits::settings::LimitSpec;

    fn args() -> Layer {
        Layer::default()
    }

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let s = Settings::layer(&args(), Layer::default()).expect("valid");
        assert_eq!(s, Settings::default());
        assert_eq!(s.deployment(), Deployment::Embedded);
        assert_eq!(s.listen, "127.0.0.1:3000");
        assert_eq!(s.database_url.expose(), "sqlite://switchyard.db?mode=rwc");
    }

    #[test]
    fn the_file_overrides_defaults_and_flags_override_the_file() {
        let file = Layer::parse(
            r#"
            listen = "0.0.0.0:8080"
            redis_url = "redis://:pw@127.0.0.1:6379"
            redis_prefix = "from-file"
            log = "debug"
            busy_active = 7
            warning_failure_rate = 12.5
            rate_limit_pages = "20/10s"
            rate_limit_api = "off"
            rate_limit_fallback = "closed"
            "#,
        )
        .expect("parses");
        let mut a = args();
        a.redis_prefix = Some("from-flag".into());
        let s = Settings::layer(&a, file).expect("valid");
        assert_eq!(s.listen, "0.0.0.0:8080");
        assert_eq!(s.redis_prefix, "from-flag");
        assert_eq!(s.log, "debug");
        assert_eq!(s.busy_active, 7);
        assert_eq!(s.warning_failure_rate, 12.5);
        assert_eq!(s.rate_limits.pages, LimitSpec::per(20, 10));
        assert_eq!(s.rate_limits.actions, crate::ratelimits::DEFAULT_ACTIONS);
        assert_eq!(s.rate_limits.api, LimitSpec::Off);
        assert_eq!(s.rate_limits.fallback, FallbackMode::Closed);
        assert_eq!(s.deployment(), Deployment::Redis);
    }

    #[test]
    fn sign_in_settings_come_from_the_file_and_flags() {
        let file = Layer::parse(
            r#"
            session_ttl = "30m"
            rate_limit_login = "5/1m"
            auth_proxy_header = "X-Forwarded-User"
            auth_proxy_trusted = ["10.0.0.5", "10.1.0.0/16"]
            api_tokens = true
            external_url = "https://ops.example/switchyard"
            "#,
        )
        .expect("parses");
        let s = Settings::layer(&args(), file).expect("valid");
        assert_eq!(s.auth.session_ttl, Duration::from_secs(1800));
        assert_eq!(s.rate_limits.login, LimitSpec::per(5, 60));
        assert!(s.auth.api_tokens);
        assert!(s.auth.secure_cookies, "https external URL");
        let proxy = s.auth.proxy.expect("proxy auth on");
        assert_eq!(proxy.header.as_str(), "x-forwarded-user");
        assert!(proxy.trusted[1].contains("10.1.2.3".parse().unwrap()));
        assert!(!proxy.trusted[0].contains("10.0.0.6".parse().unwrap()));

        let mut flags = args();
        flags.session_ttl = Some(Duration::from_secs(7 * 24 * 3600));
        let s =
            Settings::layer(&flags, Layer::parse(r#"session_ttl = "1h""#).unwrap()).expect("valid");
        assert_eq!(s.auth.session_ttl, Duration::from_secs(7 * 24 * 3600));
        assert!(!s.auth.secure_cookies);
        assert!(s.auth.proxy.is_none(), "off by default");
        assert!(!s.auth.api_tokens, "off by default");
    }

    #[test]
    fn bullmq_follows_redis_unless_told_otherwise() {
        let layer = |text: &str| Settings::layer(&args(), Layer::parse(text).unwrap());
        assert_eq!(layer("").expect("valid").bullmq, None, "embedded: off");
        let s = layer(r#"redis_url = "redis://:pw@cache:6379""#).expect("valid");
        let bull = s.bullmq.expect("on with Redis");
        assert_eq!(bull.url.expose(), "redis://:pw@cache:6379");
        assert_eq!(bull.prefix, "bull");
        assert!(bull.queues.is_empty(), "discovered");
        let s = layer("redis_url = \"redis://cache:6379\"\nbullmq_url = \"off\"").expect("valid");
        assert_eq!(s.bullmq, None);
        let s = layer(
            "bullmq_url = \"rediss://jobs:6380\"\nbullmq_prefix = \"acme\"\nbullmq_queues = [\"mail\", \" pdf \"]",
        )
        .expect("valid");
        let bull = s.bullmq.expect("on");
        assert_eq!(bull.prefix, "acme");
        assert_eq!(bull.queues, vec!["mail".to_owned(), "pdf".to_owned()]);
        let mut flags = args();
        flags.bullmq_prefix = Some("flagged".into());
        let s = Settings::layer(
            &flags,
            Layer::parse(r#"bullmq_url = "redis://jobs:6379""#).unwrap(),
        )
        .expect("valid");
        assert_eq!(s.bullmq.expect("on").prefix, "flagged");
        for (text, why) in [
            (r#"bullmq_url = "http://jobs""#, "redis://"),
            (
                "bullmq_url = \"redis://j\"\nbullmq_prefix = \"a b\"",
                "--bullmq-prefix",
            ),
            (
                "bullmq_url = \"redis://j\"\nbullmq_queues = [\"a:b\"]",
                "--bullmq-queues",
            ),
        ] {
            let err = layer(text).expect_err(text);
            assert!(err.to_string().contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn bad_sign_in_settings_are_refused_with_a_reason() {
        // A value its flag's parser refuses is refused while reading the
        // file, with the line and key; the rest while layering.
        let layer = |text: &str| {
            let file = Layer::parse(text).map_err(|e| e.to_string())?;
            Settings::layer(&args(), file).map_err(|e| e.to_string())
        };
        let err = layer(r#"auth_proxy_header = "X-User""#).expect_err("no trusted proxies");
        assert!(err.to_string().contains("--auth-proxy-trusted"), "{err}");
        let err = layer(r#"auth_proxy_trusted = ["10.0.0.1"]"#).expect_err("no header");
        assert!(err.to_string().contains("--auth-proxy-header"), "{err}");
        let err = layer("auth_proxy_header = \"X User\"\nauth_proxy_trusted = [\"10.0.0.1\"]")
            .expect_err("bad header name");
        assert!(err.to_string().contains("not a valid header name"), "{err}");
        let err = layer("auth_proxy_header = \"X-User\"\nauth_proxy_trusted = [\"10.0.0.0/40\"]")
            .expect_err("bad range");
        assert!(
            err.starts_with("line 2: auth_proxy_trusted: ") && err.contains("CIDR"),
            "{err}"
        );
        let err = layer(r#"session_ttl = "10s""#).expect_err("too short");
        assert!(err.to_string().contains("between 1m and 30d"), "{err}");
        let err = layer(r#"session_ttl = "forever""#).expect_err("unreadable");
        assert!(
            err.starts_with("line 1: session_ttl: ") && err.contains("not a duration"),
            "{err}"
        );
        let err = layer(r#"auth_outage_grace = "2h""#).expect_err("too long");
        assert!(err.to_string().contains("at most 1h"), "{err}");
        let err = layer(r#"auth_outage_grace = "soon""#).expect_err("unreadable");
        assert!(err.starts_with("line 1: auth_outage_grace: "), "{err}");
        let grace = |text: &str| layer(text).map(|s| s.auth.outage_grace).ok();
        assert_eq!(grace(""), Some(crate::auth::users::OUTAGE_GRACE));
        assert_eq!(grace(r#"auth_outage_grace = "0s""#), Some(Duration::ZERO));
        assert_eq!(
            grace(r#"auth_outage_grace = "90s""#),
            Some(Duration::from_secs(90))
        );
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("12").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let err = Layer::parse("log = \"info\"\nlissten = \"x\"").expect_err("typo");
        assert_eq!(err.line, Some(2), "{err}");
        assert_eq!(err.key, None, "the reason names it: {err}");
        assert!(
            err.to_string()
                .starts_with("line 2: unknown field `lissten`"),
            "{err}"
        );
    }

    #[test]
    fn file_errors_name_the_line_and_the_key() {
        let err = Layer::parse("listen = \"127.0.0.1:0\"\n\nbusy_active = \"lots\"\n")
            .expect_err("wrong type");
        assert_eq!(
            err.to_string(),
            r#"line 3: busy_active: invalid type: string "lots", expected u64"#
        );

        let err = Layer::parse(
            "log = \"info\"\n[[alert_rules]]\nname = \"a\"\nkind = \"failure_rate\"\nthreshold = \"ten\"\n",
        )
        .expect_err("wrong type in a table");
        assert_eq!(err.line, Some(5), "{err}");
        assert_eq!(
            err.key.as_deref(),
            Some("alert_rules[0].threshold"),
            "{err}"
        );

        let err = Layer::parse("alert_webhooks = [{ url = \"http://x\", format = 3 }]")
            .expect_err("wrong type in an inline table");
        assert_eq!(
            err.key.as_deref(),
            Some("alert_webhooks[0].format"),
            "{err}"
        );

        let err = Layer::parse("log = \"info\"\nlisten = \"a\n").expect_err("syntax");
        assert_eq!((err.line, err.key.as_deref()), (Some(2), None), "{err}");
        assert!(err.to_string().starts_with("line 2: "), "{err}");
        assert!(!err.reason.contains('\n'), "one line: {err:?}");
    }

    #[test]
    fn a_config_file_error_names_the_file_and_the_line() {
        let path = std::env::temp_dir().join(format!(
            "switchyard-config-{}-{:016x}.toml",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::write(&path, "log = \"info\"\n\nbusy_active = \"lots\"\n").expect("write");
        let err = Layer::read(&path).expect_err("wrong type").to_string();
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            err,
            format!(
                r#"invalid config file {}, line 3: busy_active: invalid type: string "lots", expected u64"#,
                path.display()
            )
        );
    }

    #[test]
    fn malformed_redis_urls_are_refused_with_a_reason() {
        let refused = |redis: &str, bullmq: Option<&str>| {
            let mut a = args();
            a.redis_url = Some(SecretUrl::new(redis));
            a.bullmq_url = bullmq.map(SecretUrl::new);
            Settings::layer(&a, Layer::default())
                .expect_err(redis)
                .to_string()
        };
        assert_eq!(
            refused("redis://127.0.0.1:99999", None),
            "--redis: invalid Redis URL redis://127.0.0.1:99999 (port out of range: at most 65535)"
        );
        let err = refused("redis://:topsecret@127.0.0.1:99999", None);
        assert!(
            err.contains("invalid Redis URL redis://***@127.0.0.1:99999 (port out of range"),
            "{err}"
        );
        assert!(!err.contains("topsecret"), "{err}");
        // A stray `#` ends the authority early: nothing of the password shows.
        let err = refused("redis://:top#secret@cache:6379", None);
        assert!(err.contains("redis://***@cache:6379"), "{err}");
        assert!(err.contains("must be percent-encoded"), "{err}");
        assert!(!err.contains("top") && !err.contains("secret"), "{err}");
        let err = refused("redis://:pw@cache:6379/zero", None);
        assert_eq!(
            err,
            "--redis: invalid Redis URL redis://:***@cache:6379/zero (invalid database number)"
        );
        let err = refused("redis+cluster://:topsecret@h1:7000,h2:99999", None);
        assert_eq!(
            err,
            "--redis: invalid Redis URL redis+cluster://***@h1:7000,h2:99999 \
             (port out of range: at most 65535)"
        );
        assert!(!err.contains("topsecret"), "{err}");
        let err = refused("redis+cluster://h1:7000,,h2:7000", None);
        assert!(err.contains("one of them is empty"), "{err}");
        let err = refused("redis://cache:6379", Some("redis://cache:70000"));
        assert!(
            err.starts_with("--bullmq: invalid Redis URL redis://cache:70000 (port out of range"),
            "{err}"
        );
        for fine in [
            "redis://127.0.0.1:6379",
            "rediss://default:s3cr@t@cache.example.com:6380/0",
            "redis://[::1]:6379/2",
            "redis+unix:///run/redis.sock",
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7000",
            "rediss+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000/#insecure",
        ] {
            let mut a = args();
            a.redis_url = Some(SecretUrl::new(fine));
            // BullMQ would follow a socket URL and refuse it.
            a.bullmq_url = Some(SecretUrl::new("off"));
            Settings::layer(&a, Layer::default()).expect(fine);
        }
    }

    #[test]
    fn a_cluster_url_in_the_config_file_serves_the_queues_and_bullmq() {
        let layer = |text: &str| Settings::layer(&args(), Layer::parse(text).unwrap());
        let s = layer(
            "redis_url = \"redis+cluster://:pw@c1:7000,c2:7000\"\nbullmq_prefix = \"{bull}\"",
        )
        .expect("valid");
        assert_eq!(
            s.redis_url.as_ref().map(SecretUrl::expose),
            Some("redis+cluster://:pw@c1:7000,c2:7000")
        );
        let bull = s.bullmq.expect("BullMQ follows --redis");
        assert_eq!(bull.url.expose(), "redis+cluster://:pw@c1:7000,c2:7000");
        assert_eq!(bull.prefix, "{bull}");
    }

    #[test]
    fn the_user_and_token_commands_take_postgres_without_redis() {
        let mut a = args();
        a.database_url = Some(SecretUrl::new("postgres://app:secret@db/prod"));
        let s = Settings::layer_for(&a, Layer::default(), Scope::SqlOnly)
            .expect("only the SQL database is used");
        assert_eq!(s.database_url.expose(), "postgres://app:secret@db/prod");
        assert_eq!(s.redis_url, None);
        let err = Settings::layer_for(&a, Layer::default(), Scope::Everything)
            .expect_err("the queues need Redis");
        assert!(err.to_string().contains("needs --redis"), "{err}");
    }

    #[test]
    fn postgres_without_redis_is_refused() {
        let mut a = args();
        a.database_url = Some(SecretUrl::new("postgres://app:secret@db/prod"));
        let err = Settings::layer(&a, Layer::default())
            .expect_err("postgres alone")
            .to_string();
        assert!(err.contains("needs --redis"), "{err}");
        assert!(!err.contains("secret"), "password leaked: {err}");
        a.redis_url = Some(SecretUrl::new("redis://127.0.0.1:6379"));
        Settings::layer(&a, Layer::default()).expect("postgres next to redis");
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let mut a = args();
        a.redis_prefix = Some("has{brace}".into());
        let err = Settings::layer(&a, Layer::default()).expect_err("brace");
        assert!(err.to_string().contains("--redis-prefix"), "{err}");

        let mut a = args();
        a.redis_url = Some(SecretUrl::new("http://127.0.0.1:6379"));
        let err = Settings::layer(&a, Layer::default()).expect_err("http");
        assert!(err.to_string().contains("not a Redis URL"), "{err}");

        let mut a = args();
        a.database_url = Some(SecretUrl::new("mysql://x"));
        let err = Settings::layer(&a, Layer::default()).expect_err("mysql");
        assert!(err.to_string().contains("not supported"), "{err}");

        for bad in [-1.0, 100.5, f64::NAN] {
            let mut a = args();
            a.warning_failure_rate = Some(bad);
            let err = Settings::layer(&a, Layer::default()).expect_err("rate");
            assert!(err.to_string().contains("--warning-failure-rate"), "{err}");
        }
    }

    #[test]
    fn bad_rate_limits_in_the_file_are_refused_with_a_reason() {
        let err = Layer::parse("rate_limit_pages = \"600 per minute\"").expect_err("bad");
        assert!(err.to_string().contains("expected e.g. 600/1m"), "{err}");
        assert_eq!(err.key.as_deref(), Some("rate_limit_pages"), "{err}");
        let err = Layer::parse("rate_limit_fallback = \"sometimes\"").expect_err("bad");
        assert!(err.to_string().contains("local, open or closed"), "{err}");
        assert_eq!(err.key.as_deref(), Some("rate_limit_fallback"), "{err}");
    }

    #[test]
    fn alert_settings_come_from_the_file_and_flags() {
        let file = Layer::parse(
            r#"
            alert_interval = 5
            metrics_retention = 30
            external_url = "https://ops.example/switchyard"
            alert_webhooks = [{ url = "https://chat.example/hook/T0K3N", format = "chat" }]

            [[alert_rules]]
            name = "emails-failing"
            kind = "failure_rate"
            target = "emails"
            threshold = 10
            window_secs = 600
            for_secs = 120
            severity = "critical"
            "#,
        )
        .expect("parses");
        let mut a = args();
        a.alertmanager_webhooks = vec![SecretUrl::new("http://am.example:9093/api/v2/alerts")];
        let s = Settings::layer(&a, file).expect("valid");
        assert_eq!(s.alerts.interval, Duration::from_secs(5));
        assert_eq!(s.metrics_retention, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(s.alerts.external_url, "https://ops.example/switchyard");
        let formats: Vec<WebhookFormat> = s.alerts.webhooks.iter().map(|w| w.format).collect();
        assert_eq!(
            formats,
            vec![WebhookFormat::Alertmanager, WebhookFormat::Chat]
        );
        assert_eq!(s.alerts.rules.len(), 1);
        let rule = &s.alerts.rules[0];
        assert_eq!(
            (
                rule.name.as_str(),
                rule.kind,
                rule.target.as_str(),
                rule.threshold
            ),
            (
                "emails-failing",
                crate::alerts::model::RuleKind::FailureRate,
                "emails",
                10.0
            )
        );
        assert_eq!((rule.window_secs, rule.for_secs), (600, 120));
        let defaults = Settings::layer(&args(), Layer::default()).expect("valid");
        assert_eq!(defaults.alerts.external_url, "http://127.0.0.1:3000");
        assert_eq!(defaults.alerts.interval, Duration::from_secs(15));
    }

    #[test]
    fn bad_alert_settings_are_refused_with_a_reason() {
        let refused = |toml: &str| {
            let file = Layer::parse(toml).expect("parses");
            Settings::layer(&args(), file).expect_err(toml).to_string()
        };
        let err = refused("[[alert_rules]]\nname = \"x\"\nkind = \"vibes\"");
        assert!(
            err.contains("\"x\"") && err.contains("queue_backlog"),
            "{err}"
        );
        let err = refused(
            "[[alert_rules]]\nname = \"a\"\nkind = \"no_active_worker\"\n\
             [[alert_rules]]\nname = \"a\"\nkind = \"no_active_worker\"",
        );
        assert!(err.contains("defined twice"), "{err}");
        let err = refused("alert_webhooks = [{ url = \"ftp://x\" }]");
        assert!(err.contains("http:// or https://"), "{err}");
        let err = refused("alert_webhooks = [{ url = \"http://x\", format = \"pager\" }]");
        assert!(err.contains("pager"), "{err}");
        assert!(refused("alert_interval = 0").contains("--alert-interval"));
        assert!(refused("metrics_retention = 0").contains("--metrics-retention"));
        assert!(refused("external_url = \"ops.example\"").contains("--external-url"));
    }

    #[test]
    fn debug_output_hides_passwords() {
        let s = Settings {
            redis_url: Some(SecretUrl::new("rediss://u:topsecret@cache:6380")),
            database_url: SecretUrl::new("postgres://app:alsosecret@db/prod"),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("alsosecret"),
            "{shown}"
        );
        assert!(shown.contains("rediss://u:***@cache:6380"), "{shown}");
    }
}
