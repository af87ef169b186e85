//! Connection URLs that may carry a password.
//!
//! Redis and database URLs end up in settings structs that get logged,
//! debug-printed and shown in error messages. Wrapping them in
//! [`SecretUrl`] makes the safe thing the default: every `Debug` and
//! `Display` hides the password, and only [`SecretUrl::expose`] hands out
//! the real text, at the one place that connects.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// What a hidden password is replaced with.
const MASK: &str = "***";

/// A URL whose password never reaches logs or error messages.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL as given by the operator.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for the driver that connects and nothing
    /// else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The scheme in lower case (`redis`, `rediss`, `sqlite`, `postgres`…),
    /// used to pick a driver; empty when the text has none.
    pub fn scheme(&self) -> String {
        self.0
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// The URL with the password in the user-info part and any
    /// `password=`-like query parameter replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({:?})", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl From<String> for SecretUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl FromStr for SecretUrl {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

/// Secret text with no structure to redact in part (a password given by
/// flag or environment): `Debug` hides all of it, there is no `Display`,
/// and parsing never fails, so a parser's error message cannot quote it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub struct SecretText(String);

impl From<String> for SecretText {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl SecretText {
    /// Wraps secret text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretText({MASK:?})")
    }
}

impl FromStr for SecretText {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

fn redact(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = redact_userinfo(head);
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                    format!("{key}={MASK}")
                }
                _ => param.to_string(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// Masks the password in `scheme://user:password@host/...`.
fn redact_userinfo(head: &str) -> String {
    let Some(start) = head.find("://").map(|i| i + 3) else {
        return head.to_string();
    };
    let rest = &head[start..];
    let authority_end = rest.find(['/', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return head.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return head.to_string();
    };
    format!(
        "{}{}:{MASK}{}",
        &head[..start],
        &userinfo[..colon],
        &head[start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_the_password_in_userinfo() {
        let url = SecretUrl::new("rediss://default:s3cr@t@cache.example.com:6380/0");
        assert_eq!(
            url.to_string(),
            "rediss://default:***@cache.example.com:6380/0"
        );
        assert_eq!(
            format!("{url:?}"),
            r#"SecretUrl("rediss://default:***@cache.example.com:6380/0")"#
        );
        assert!(url.expose().contains("s3cr@t"));
    }

    #[test]
    fn hides_a_password_only_url() {
        let url = SecretUrl::new("redis://:hunter2@127.0.0.1:6379");
        assert_eq!(url.redacted(), "redis://:***@127.0.0.1:6379");
    }

    #[test]
    fn hides_password_query_parameters() {
        let url = SecretUrl::new("postgres://app@db/prod?sslmode=require&password=hunter2");
        assert_eq!(
            url.redacted(),
            "postgres://app@db/prod?sslmode=require&password=***"
        );
    }

    #[test]
    fn leaves_urls_without_secrets_alone() {
        for plain in [
            "sqlite://switchyard.db?mode=rwc",
            "redis://127.0.0.1:6379",
            "postgres://postgres@127.0.0.1:5432/test",
            "not a url",
        ] {
            assert_eq!(SecretUrl::new(plain).redacted(), plain);
        }
    }

    #[test]
    fn secret_text_never_shows() {
        let text: SecretText = "hunter2hunter2".parse().unwrap();
        assert_eq!(format!("{text:?}"), r#"SecretText("***")"#);
        assert_eq!(text.expose(), "hunter2hunter2");
    }

    #[test]
    fn knows_its_scheme() {
        assert_eq!(SecretUrl::new("PostgreSQL://x").scheme(), "postgresql");
        assert_eq!(SecretUrl::new("sqlite::memory:").scheme(), "sqlite");
        assert_eq!(SecretUrl::new("nothing").scheme(), "");
    }
}
