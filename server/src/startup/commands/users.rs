//! `switchyard user …`: managing accounts from the shell, which is how the
//! first admin of a deployment without a sign-in page comes to exist; and
//! `switchyard token …`: the JSON API's bearer tokens of those accounts.
//!
//! Passwords come from stdin (one line) so they stay out of the process
//! list and shell history; `--generate` makes one and prints it once. Every
//! input is checked before the database is opened, so a typo fails at once
//! and never leaves an empty database file behind.

use std::io::BufRead;

use crate::config::Settings;
use crate::config::cli::{TokenArgs, TokenCommand, UserArgs, UserCommand};
use crate::startup::{StartupError, connect_database};

use crate::auth::tokens::{ApiToken, check_label, is_token_id};
use crate::auth::users::{Password, Role, UserError, UserName, UserStore};

/// Why a `user` or `token` command failed; each is reported as one line.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The account operation was refused or failed.
    #[error(transparent)]
    User(#[from] UserError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// Stdin could not be read or held no password.
    #[error("cannot read the password from stdin: {0}")]
    Stdin(String),
}

/// Runs one `user` command, reading a password from `stdin` when it needs
/// one, and returns what to print on stdout (a generated password, the
/// list; nothing for a silent success).
pub async fn run(
    settings: &Settings,
    args: &UserArgs,
    stdin: impl BufRead,
) -> Result<String, CommandError> {
    match &args.command {
        UserCommand::Add {
            name,
            role,
            generate,
        } => {
            let name = UserName::new(name.as_str())?;
            let role = role.parse::<Role>()?;
            let password = if *generate {
                Password::generate()
            } else {
                read_password(stdin)?
            };
            store(settings).await?.add(&name, &password, role).await?;
            Ok(if *generate {
                format!("{}\n", password.expose())
            } else {
                String::new()
            })
        }
        UserCommand::List => {
            let users = store(settings).await?.list().await?;
            Ok(list_text(&users))
        }
        UserCommand::Passwd { name } => {
            let name = UserName::new(name.as_str())?;
            let password = read_password(stdin)?;
            store(settings)
                .await?
                .set_password(&name, &password)
                .await?;
            Ok(String::new())
        }
        UserCommand::Disable { name } => {
            let name = UserName::new(name.as_str())?;
            store(settings).await?.disable(&name).await?;
            Ok(String::new())
        }
    }
}

/// What a `token` command prints: `stdout` is only the result (the token
/// itself for `add`, so `TOKEN=$(switchyard token add …)` works), and
/// `stderr` the remarks for the person at the terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenOutput {
    /// The result: the new token, or the list.
    pub stdout: String,
    /// The remark that a new token is shown only this once.
    pub stderr: String,
}

/// Runs one `token` command. Every input is checked before the database is
/// opened, as for `user`.
pub async fn run_token(settings: &Settings, args: &TokenArgs) -> Result<TokenOutput, CommandError> {
    match &args.command {
        TokenCommand::Add { user, label } => {
            let user = UserName::new(user.as_str())?;
            check_label(label)?;
            let (api_token, token) = store(settings).await?.add_token(&user, label).await?;
            Ok(TokenOutput {
                stdout: format!("{token}\n"),
                stderr: format!(
                    "API token {} for {} ({:?}) made; it will not be shown again: \
                     store it now (the database keeps only its hash)\n",
                    api_token.id, api_token.user, api_token.label
                ),
            })
        }
        TokenCommand::List => {
            let tokens = store(settings).await?.tokens().await?;
            Ok(TokenOutput {
                stdout: token_list_text(&tokens),
                stderr: String::new(),
            })
        }
        TokenCommand::Revoke { id } => {
            if !is_token_id(id) {
                return Err(UserError::TokenNotFound(id.clone()).into());
            }
            store(settings).await?.revoke_token(id).await?;
            Ok(TokenOutput::default())
        }
    }
}

/// One line per token, in aligned columns: id, user, when made and last
/// used (UTC), and the label last, since it is free text with spaces.
fn token_list_text(tokens: &[ApiToken]) -> String {
    let width = tokens
        .iter()
        .map(|t| t.user.as_str().len())
        .max()
        .unwrap_or(0)
        .max("USER".len());
    let time = |ms: i64| app::format::iso_timestamp(ms);
    let mut out = format!(
        "{:8}  {:width$}  {:20}  {:20}  LABEL\n",
        "ID", "USER", "CREATED", "LAST_USED"
    );
    for token in tokens {
        out.push_str(&format!(
            "{:8}  {:width$}  {:20}  {:20}  {}\n",
            token.id,
            token.user.as_str(),
            time(token.created_at),
            token.last_used_at.map_or_else(|| "never".into(), time),
            token.label
        ));
    }
    out
}

/// The accounts, with the server's session store, so that a password set
/// or an account disabled here ends its sessions wherever they are kept.
async fn store(settings: &Settings) -> Result<UserStore, StartupError> {
    crate::startup::user_store(settings, connect_database(settings).await?).await
}

/// The first line of stdin without its line ending, checked: what
/// `echo "$PW" | switchyard user add …` sends.
fn read_password(mut stdin: impl BufRead) -> Result<Password, CommandError> {
    let mut line = String::new();
    let read = stdin
        .read_line(&mut line)
        .map_err(|e| CommandError::Stdin(e.to_string()))?;
    if read == 0 {
        return Err(CommandError::Stdin(
            "it is empty (pipe one line in, or use --generate)".into(),
        ));
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(Password::new(password)?)
}

/// One line per user, in aligned columns: name, role, and `disabled` for
/// those who cannot sign in.
fn list_text(users: &[crate::auth::users::User]) -> String {
    let width = users
        .iter()
        .map(|u| u.name.as_str().len())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    let mut out = format!("{:width$}  {:8}  DISABLED\n", "NAME", "ROLE");
    for user in users {
        out.push_str(&format!(
            "{:width$}  {:8}  {}\n",
            user.name.as_str(),
            user.role.as_str(),
            if user.disabled { "yes" } else { "no" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_list_never_needs_the_secret_and_aligns() {
        let token = |id: &str, user: &str, label: &str, last: Option<i64>| ApiToken {
            id: id.into(),
            user: UserName::new(user).unwrap(),
            label: label.into(),
            created_at: 0,
            last_used_at: last,
        };
        let text = token_list_text(&[
            token("abcd1234", "ada", "deploy bot", None),
            token("zz99yy88", "bob.b@example.com", "ci", Some(86_400_000)),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID        USER  "), "{text}");
        assert!(
            lines[1].ends_with("1970-01-01T00:00:00Z  never                 deploy bot"),
            "{text}"
        );
        assert!(lines[2].contains("1970-01-02T00:00:00Z  ci"), "{text}");
        assert_eq!(lines[0].find("CREATED"), lines[1].find("1970"), "{text}");
    }

    #[test]
    fn the_password_is_the_first_line_without_its_ending() {
        let pw = read_password("correct horse battery\r\nmore\n".as_bytes()).unwrap();
        assert_eq!(pw.expose(), "correct horse battery");
        let pw = read_password("no newline at all".as_bytes()).unwrap();
        assert_eq!(pw.expose(), "no newline at all");
        assert!(matches!(
            read_password("".as_bytes()),
            Err(CommandError::Stdin(_))
        ));
        assert!(matches!(
            read_password("short\n".as_bytes()),
            Err(CommandError::User(UserError::PasswordTooShort))
        ));
    }
}
