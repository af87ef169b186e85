//! The `switchyard` command line.
//!
//! Every global flag has an environment fallback (`SWITCHYARD_*`) so the
//! same binary can be configured by a container platform or by hand; clap
//! resolves flag-over-env, and [`crate::config`] puts both over the
//! optional TOML file and the defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use coord::ratelimit::FallbackMode;

use std::time::Duration;

use crate::config::secret::{SecretText, SecretUrl};
use crate::ratelimits::LimitSpec;

/// Switchyard: a live dashboard for job queues, with an embedded
/// coordination backend (SQLite by default, Redis for scale-out).
#[derive(Debug, Parser)]
#[command(name = "switchyard", version)]
pub struct Cli {
    /// Settings every command shares.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do; without a command, `demo` runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings shared by every command. Each is optional here so that an
/// absent flag and absent variable fall through to the config file, then
/// to the default named in its help.
#[derive(Debug, Default, Clone, Args)]
pub struct GlobalArgs {
    /// Address the dashboard listens on (port 0 picks a free one)
    /// [default: 127.0.0.1:3000]
    #[arg(long, global = true, env = "SWITCHYARD_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Redis URL for the scale-out deployment (`rediss://` for TLS); when
    /// absent, queues live in the embedded SQLite database
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

    /// TOML file with any of: listen, redis_url, redis_prefix, database_url,
    /// log, busy_active, warning_failure_rate, rate_limit_pages, rate_limit_actions,
    /// rate_limit_api, rate_limit_fallback, metrics_retention, alert_interval, alert_webhooks,
    /// external_url, session_ttl, auth_outage_grace, rate_limit_login, auth_proxy_header,
    /// auth_proxy_trusted, api_tokens, bullmq_url, bullmq_prefix,
    /// bullmq_queues and
    /// [[alert_rules]] (flags and environment variables override it)
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG", value_name = "FILE")]
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
    pub alert_webhooks: Vec<SecretUrl>,

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
    pub alert_chat_webhooks: Vec<SecretUrl>,

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
    pub admin_password: Option<SecretText>,

    /// How long a sign-in lasts before the user must sign in again
    /// (`30m`, `12h`, `7d`) [default: 12h]
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_SESSION_TTL",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub session_ttl: Option<std::time::Duration>,

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
    pub auth_outage_grace: Option<std::time::Duration>,

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
    pub auth_proxy_trusted: Vec<crate::auth::net::IpRange>,

    /// Accept `Authorization: Bearer <token>` on the JSON API, with tokens
    /// made by `switchyard token add` [default: off]
    #[arg(long, global = true, env = "SWITCHYARD_API_TOKENS")]
    pub api_tokens: bool,

    /// Redis holding BullMQ (Node) queues to show and operate, or `off`
    /// [default: the --redis URL when given, else off]
    #[arg(
        long = "bullmq",
        global = true,
        env = "SWITCHYARD_BULLMQ_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub bullmq_url: Option<SecretUrl>,

    /// Key prefix of the BullMQ queues (their `prefix` option)
    /// [default: bull]
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
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the dashboard and the JSON API on the configured backend.
    Serve,
    /// Serve the dashboard with synthetic producers and workers in process,
    /// so there is live data at once (the default command). On a database
    /// with no users it creates `admin` with a random password and prints
    /// it once.
    Demo,
    /// Enqueue one job on the configured backend and print its id.
    Enqueue(EnqueueArgs),
    /// Manage the operators' accounts in the configured database
    /// (the first admin can also come from SWITCHYARD_ADMIN_PASSWORD).
    User(UserArgs),
    /// Manage bearer tokens for the JSON API in the configured database
    /// (each acts as its user, with that user's role).
    Token(TokenArgs),
}

/// `switchyard user …`.
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    /// What to do to the accounts.
    #[command(subcommand)]
    pub command: UserCommand,
}

/// The account commands. Passwords are read from stdin (one line), never
/// from arguments, which other users of the machine can see.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from stdin
    /// (`echo "$PW" | switchyard user add ada --role operator`)
    Add {
        /// 1 to 64 characters of A-Z, a-z, 0-9 and _ . @ -
        name: String,
        /// viewer (looks), operator (also acts on queues, jobs, alerts) or
        /// admin (also manages users)
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// Generate a 20-character password and print it once instead of
        /// reading one from stdin
        #[arg(long)]
        generate: bool,
    },
    /// List users: name, role, and whether disabled.
    List,
    /// Set a user's password, read from stdin; ends the user's sessions.
    Passwd {
        /// The user
        name: String,
    },
    /// Stop a user from signing in and end their sessions (the account
    /// stays, so the audit log keeps its author).
    Disable {
        /// The user
        name: String,
    },
}

/// `switchyard token …`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// What to do to the API tokens.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// The API token commands. A token is printed once, by `add`; the database
/// keeps only its hash, so `list` shows ids, never secrets.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Make a token acting as a user and print it once
    /// (`switchyard token add ci-bot --label "deploy pipeline"`)
    Add {
        /// The user the token acts as
        user: String,
        /// What the token is for: 1 to 64 characters, no tabs or line
        /// breaks
        #[arg(long, value_name = "TEXT", default_value = "cli")]
        label: String,
    },
    /// List tokens: id, user, label, when made and last used (never the
    /// secret).
    List,
    /// Delete a token so it stops working at once.
    Revoke {
        /// The token's id, as `list` shows it
        id: String,
    },
}

/// One job to enqueue from the shell.
#[derive(Debug, Clone, Args)]
pub struct EnqueueArgs {
    /// Queue to add the job to
    pub queue: String,
    /// Kind of work, shown in the dashboard
    pub name: String,
    /// The job's data, as JSON text (e.g. '{"to":"a@example.com"}')
    pub data: String,
    /// Milliseconds before the job may run (at most 10 years)
    #[arg(long, allow_negative_numbers = true, value_name = "MS")]
    pub delay_ms: Option<i64>,
    /// Lower runs first (0..=4095)
    #[arg(long, value_name = "N")]
    pub priority: Option<u32>,
    /// Attempts before the job fails for good
    #[arg(long, value_name = "N")]
    pub attempts: Option<u32>,
    /// Id for idempotent enqueue: a second enqueue with it keeps the first job
    #[arg(long, value_name = "ID")]
    pub job_id: Option<String>,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_demo() {
        let cli = Cli::try_parse_from(["switchyard"]).expect("parses");
        assert!(cli.command.is_none());
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "switchyard",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--redis",
            "redis://127.0.0.1:6379",
        ])
        .expect("parses");
        assert_eq!(cli.global.listen.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(
            cli.global.redis_url.map(|u| u.expose().to_string()),
            Some("redis://127.0.0.1:6379".to_string())
        );
    }

    #[test]
    fn enqueue_takes_a_negative_delay_for_validation_to_reject() {
        let cli =
            Cli::try_parse_from(["switchyard", "enqueue", "q", "n", "{}", "--delay-ms", "-5"])
                .expect("parses");
        match cli.command {
            Some(Command::Enqueue(args)) => assert_eq!(args.delay_ms, Some(-5)),
            other => panic!("unexpected {other:?}"),
        }
    }
}
