//! `switchyard user …`: managing accounts from the shell, which is how the
//! first admin of a deployment without a sign-in page comes to exist.
//!
//! Passwords come from stdin (one line) so they stay out of the process
//! list and shell history; `--generate` makes one and prints it once. Every
//! input is checked before the database is opened, so a typo fails at once
//! and never leaves an empty database file behind.

use std::io::BufRead;

use crate::cli::{UserArgs, UserCommand};
use crate::configuration::Settings;
use crate::startup::{StartupError, connect_database};

use super::{Password, Role, UserError, UserName, UserStore};

/// Why a `user` command failed; each is reported as one line.
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

async fn store(settings: &Settings) -> Result<UserStore, StartupError> {
    Ok(UserStore::new(connect_database(settings).await?))
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
fn list_text(users: &[super::User]) -> String {
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
