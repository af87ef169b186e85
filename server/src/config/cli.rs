//! The `switchyard` command line.
//!
//! The global flags are declared in [`crate::config::layer`], once for the
//! command line and the config file; this file adds the commands.

use clap::{Args, Parser, Subcommand};

use crate::config::layer::Layer;

/// Switchyard: a live dashboard for job queues, with an embedded
/// coordination backend (SQLite by default, Redis for scale-out).
#[derive(Debug, Parser)]
#[command(name = "switchyard", version)]
pub struct Cli {
    /// Settings every command shares.
    #[command(flatten)]
    pub global: Layer,
    /// What to do; without a command, `demo` runs.
    #[command(subcommand)]
    pub command: Option<Command>,
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

/// Each global flag (`--listen`) with the first paragraph of its help,
/// in declaration order: the Configuration page explains a setting in the
/// words `--help` uses, so the two cannot disagree.
pub fn global_flags() -> Vec<(String, String)> {
    use clap::CommandFactory;
    Cli::command()
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            Some((format!("--{long}"), help))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The README's table documents every global flag, so a new setting
    /// cannot ship undocumented.
    #[test]
    fn the_readme_documents_every_flag() {
        let readme = include_str!("../../../README.md");
        for (flag, _) in global_flags() {
            assert!(
                readme.contains(&format!("| `{flag} "))
                    || readme.contains(&format!("| `{flag}` |")),
                "README.md's configuration table has no row for {flag}"
            );
        }
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
