//! Bearer tokens for the JSON API, kept next to the accounts they act for.
//!
//! A token reads `sy_<id>_<secret>`: the `sy_` prefix lets secret scanners
//! and people recognise it, the 8-character id is public (it is what
//! `switchyard token list` shows and `revoke` takes), and the secret is 32
//! random bytes. Only the SHA-256 of the whole token is stored, as for
//! session ids, so a leaked `api_tokens` table cannot be replayed; the
//! token itself is shown once, when it is made.
//!
//! A token acts as its user, with the user's current role: disabling the
//! user makes its tokens unusable at once, and removing the user deletes
//! them (the foreign key cascades). Enforcing tokens on requests is the
//! router's business; this is the storage and what the CLI needs.

use coord::time::now_ms;
use rand::RngExt;
use sqlx::FromRow;

use crate::auth::users::{
    LAST_SEEN_GRANULARITY_MS, User, UserError, UserName, UserRecord, UserStore, random_token,
    session_key, unless_user_gone,
};
use crate::on_pool;

/// What every token starts with, so it is recognisable in a config file,
/// a log or a secret scanner's rules.
pub const TOKEN_PREFIX: &str = "sy_";
/// Length of a token's public id.
pub const TOKEN_ID_CHARS: usize = 8;
/// Longest label: it is shown in one column of `token list`.
pub const MAX_LABEL_CHARS: usize = 64;
/// Length of the secret part: 32 bytes as unpadded base64url.
const SECRET_CHARS: usize = 43;
/// Symbols of a token id: lowercase, so an id read aloud or typed from a
/// list cannot be mistaken in case.
const ID_SYMBOLS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// How often to draw a new id when a random one is taken already (36^8
/// ids make even a second draw unlikely).
const ID_ATTEMPTS: usize = 4;

/// An API token as the store keeps it: everything but the secret, which
/// is never stored and so can never be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The public id (8 lowercase letters and digits), for listing and
    /// revoking; also the middle part of the token itself.
    pub id: String,
    /// Whom the token acts as.
    pub user: UserName,
    /// What the token is for, as its creator described it.
    pub label: String,
    /// When it was made (ms since the epoch).
    pub created_at: i64,
    /// When it last authenticated a request (ms since the epoch, written
    /// at most once a minute); `None` if never.
    pub last_used_at: Option<i64>,
}

#[derive(FromRow)]
struct TokenRecord {
    id: String,
    user_name: String,
    label: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl TokenRecord {
    fn into_token(self) -> Result<ApiToken, UserError> {
        let user = UserName::new(self.user_name)
            .map_err(|e| crate::db::DbError::Corrupt(format!("API token {:?}: {e}", self.id)))?;
        Ok(ApiToken {
            id: self.id,
            user,
            label: self.label,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        })
    }
}

#[derive(FromRow)]
struct TokenUserRecord {
    id: String,
    name: String,
    role: String,
    created_at: i64,
    disabled: bool,
    last_used_at: Option<i64>,
}

/// Checks a label: 1 to [`MAX_LABEL_CHARS`] characters, none of them
/// control characters, and not only spaces, so `token list` stays one
/// aligned line per token and every label says something.
pub fn check_label(label: &str) -> Result<(), UserError> {
    let chars = label.chars().count();
    if label.trim().is_empty() {
        Err(UserError::InvalidLabel("it is empty".into()))
    } else if chars > MAX_LABEL_CHARS {
        Err(UserError::InvalidLabel(format!(
            "use at most {MAX_LABEL_CHARS} characters (it has {chars})"
        )))
    } else if label.chars().any(char::is_control) {
        Err(UserError::InvalidLabel(
            "it has control characters (tabs or line breaks)".into(),
        ))
    } else {
        Ok(())
    }
}

/// Whether `id` has the form of a token id, so a malformed one can be
/// refused without a query.
pub fn is_token_id(id: &str) -> bool {
    id.len() == TOKEN_ID_CHARS && id.bytes().all(|b| ID_SYMBOLS.contains(&b))
}

/// A fresh random token id.
fn random_id() -> String {
    let mut rng = rand::rng();
    (0..TOKEN_ID_CHARS)
        .map(|_| char::from(ID_SYMBOLS[rng.random_range(0..ID_SYMBOLS.len())]))
        .collect()
}

/// The id inside a well-formed token, or `None` for text that cannot be
/// one (so it is refused without a query).
fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_at_checked(TOKEN_ID_CHARS)?;
    let secret = secret.strip_prefix('_')?;
    let well_formed = is_token_id(id)
        && secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(id)
}

impl UserStore {
    /// Makes a token for `user` and returns it with the token text, which
    /// is not stored and cannot be shown again. [`UserError::InvalidLabel`]
    /// for a bad label, [`UserError::NotFound`] for an unknown user. A
    /// disabled user may be given one; it works once the user is enabled.
    pub async fn add_token(
        &self,
        user: &UserName,
        label: &str,
    ) -> Result<(ApiToken, String), UserError> {
        check_label(label)?;
        let created_at = now_ms();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id = random_id();
            let token = format!("{TOKEN_PREFIX}{id}_{}", random_token());
            let inserted = on_pool!(&self.db, pool => {
                sqlx::query(
                    "INSERT INTO api_tokens (id, token_hash, user_name, label, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&id)
                .bind(session_key(&token))
                .bind(user.as_str())
                .bind(label)
                .bind(created_at)
                .execute(pool)
                .await
                .map_err(unless_user_gone(user))?
                .rows_affected()
            });
            if inserted == 1 {
                let api_token = ApiToken {
                    id,
                    user: user.clone(),
                    label: label.to_owned(),
                    created_at,
                    last_used_at: None,
                };
                return Ok((api_token, token));
            }
            if attempt >= ID_ATTEMPTS {
                return Err(crate::db::DbError::Corrupt(format!(
                    "no free API token id after {ID_ATTEMPTS} random draws"
                ))
                .into());
            }
        }
    }

    /// Every token (never a secret), by user, then oldest first.
    pub async fn tokens(&self) -> Result<Vec<ApiToken>, UserError> {
        let records: Vec<TokenRecord> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, user_name, label, created_at, last_used_at FROM api_tokens \
                 ORDER BY user_name, created_at, id",
            )
            .fetch_all(pool)
            .await?
        });
        records.into_iter().map(TokenRecord::into_token).collect()
    }

    /// Deletes a token, so it stops working at once;
    /// [`UserError::TokenNotFound`] if no token has that id (revoking twice
    /// says so, since a typo in the id would otherwise go unnoticed).
    pub async fn revoke_token(&self, id: &str) -> Result<(), UserError> {
        if !is_token_id(id) {
            return Err(UserError::TokenNotFound(id.to_owned()));
        }
        let done = on_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM api_tokens WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        self.remembered_tokens()
            .retain(|_, (_, _, token_id)| token_id != id);
        if done == 0 {
            return Err(UserError::TokenNotFound(id.to_owned()));
        }
        Ok(())
    }

    /// The user `token` acts as, if it is a live token of an enabled user;
    /// `None` for malformed, unknown and revoked tokens and disabled users
    /// alike, so a caller cannot tell which. Records the use at most once
    /// a minute, so API traffic does not turn every request into a write.
    ///
    /// When the database fails, a token verified within the outage grace
    /// (see [`crate::auth::users::OUTAGE_GRACE`]) keeps working, as sessions do, so that
    /// programs (enqueue through the API) ride out a database outage;
    /// whenever the database answers, its answer counts, so a revocation
    /// applies as soon as it can be read.
    pub async fn token_user(&self, token: &str) -> Result<Option<User>, UserError> {
        let Some(id) = token_id(token) else {
            return Ok(None);
        };
        let key = session_key(token);
        match self.read_token(id, &key).await {
            Ok(Some(user)) => {
                self.remember_token(&key, &user, id);
                Ok(Some(user))
            }
            Ok(None) => {
                self.remembered_tokens().remove(&key);
                Ok(None)
            }
            Err(UserError::Db(err)) if err.is_outage() => {
                let memo = self.remembered_tokens().get(&key).cloned();
                match memo {
                    Some((user, at, _)) if at.elapsed() < self.outage_grace() => {
                        tracing::warn!(error = %err, "the user database did not answer; using the API token as last verified");
                        Ok(Some(user))
                    }
                    _ => Err(UserError::Db(err)),
                }
            }
            Err(err) => Err(err),
        }
    }

    async fn read_token(&self, id: &str, key: &str) -> Result<Option<User>, UserError> {
        let record: Option<TokenUserRecord> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT t.id, u.name, u.role, u.created_at, u.disabled, t.last_used_at \
                 FROM api_tokens t JOIN users u ON u.name = t.user_name \
                 WHERE t.token_hash = $1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await?
        });
        // The id is part of the hashed text, so a match has it; checking
        // anyway keeps a hand-edited row from answering for another id.
        let Some(record) = record.filter(|r| r.id == id) else {
            return Ok(None);
        };
        if record.disabled {
            return Ok(None);
        }
        let now = now_ms();
        let stale = record
            .last_used_at
            .is_none_or(|at| now - at >= LAST_SEEN_GRANULARITY_MS);
        if stale {
            // Only a figure for the token list: a database that reads but
            // cannot write (disk full) must not lock programs out.
            if let Err(err) = self
                .touch(
                    "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1",
                    key,
                    now,
                )
                .await
            {
                tracing::warn!(error = %err, "cannot record an API token's use");
            }
        }
        let user =
            UserRecord::from_parts(record.name, record.role, record.created_at, record.disabled)
                .into_user()?;
        Ok(Some(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        format!("{TOKEN_PREFIX}{}_{}", random_id(), random_token())
    }

    #[test]
    fn tokens_have_the_documented_form() {
        let token = sample();
        let id = token_id(&token).expect("well formed");
        assert!(is_token_id(id), "{id}");
        assert_eq!(token.len(), 3 + 8 + 1 + 43);
        assert_ne!(random_id(), random_id());
    }

    #[test]
    fn malformed_tokens_are_refused_without_a_query() {
        let good = sample();
        let id = &good[3..11];
        let secret = &good[12..];
        for bad in [
            String::new(),
            "sy_".into(),
            format!("xy_{id}_{secret}"),
            format!("sy_{id}{secret}"),
            format!("sy_{}_{secret}", id.to_uppercase()),
            format!("sy_{}_{secret}", &id[..7]),
            format!("sy_{id}_{}", &secret[1..]),
            format!("sy_{id}_{secret}x"),
            format!("sy_{id}_{}!", &secret[1..]),
            format!("sy_{id}_{secret} "),
            format!("sy_é{}_{secret}", &id[2..]),
        ] {
            assert_eq!(token_id(&bad), None, "{bad}");
        }
    }

    #[test]
    fn labels_are_checked() {
        for good in ["ci", "deploy bot (prod)", "é", &"x".repeat(64)] {
            assert!(check_label(good).is_ok(), "{good}");
        }
        for bad in ["", "   ", "a\tb", "a\nb", &"x".repeat(65)] {
            let err = check_label(bad).expect_err(bad);
            assert!(matches!(err, UserError::InvalidLabel(_)));
            assert_eq!(err.status().as_u16(), 400);
            assert!(!err.to_string().contains('\n'));
        }
    }
}
