//! Sign-in sessions shared by every instance of a service.
//!
//! A service behind a load balancer must accept a session on whichever
//! instance the next request lands, and an operator must be able to end a
//! user's sessions everywhere at once (a stolen laptop, a changed
//! password). [`SessionStore`] is that small contract: create, read, touch
//! (sliding expiry), revoke one, revoke all of a user's, list a user's
//! active sessions. [`LocalSessions`] keeps them in process (one instance,
//! tests); [`RedisSessions`] keeps them in Redis or a Redis Cluster for a
//! fleet. A service with its own database may implement the trait there
//! (the dashboard does, for its SQL deployment), reusing [`new_id`],
//! [`key_of`] and [`handle_of`] so ids mean the same everywhere.
//!
//! # Ids, keys and handles
//!
//! The id handed to the client (the cookie) is `<hex user>.<64 hex>`: 256
//! random bits, prefixed with the user so a store can find the user's
//! shard (cluster slot) without a second lookup. Stores keep only its
//! SHA-256 (the *key*), so a leaked store cannot be replayed as cookies.
//! The first 16 hex digits of the key are the session's *handle*: a
//! non-secret name for pages and URLs (revoke this one), useless to sign in
//! with.
//!
//! # Cost bounds
//!
//! A user has at most `max_per_user` sessions (default
//! [`DEFAULT_MAX_PER_USER`]); creating one more ends the least recently
//! used. A listing returns at most [`MAX_LISTED`] sessions with a `more`
//! marker. Session data is at most [`MAX_DATA_BYTES`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

mod local;
mod redis;

pub use local::LocalSessions;
pub use redis::RedisSessions;

/// Sessions a user may hold at once by default: a person uses a few
/// browsers; a script that signs in on every run must not grow a user's
/// index without bound.
pub const DEFAULT_MAX_PER_USER: usize = 50;
/// Most sessions one listing returns.
pub const MAX_LISTED: usize = 100;
/// Largest opaque data a session carries (a CSRF token and a summary of the
/// browser): enough for that, too little to turn the store into a cache.
pub const MAX_DATA_BYTES: usize = 1024;
/// Longest user name, in characters.
pub const MAX_USER_CHARS: usize = 128;
/// Hex digits of a key that make its handle (64 bits: unique among one
/// user's few sessions, and not enough to sign in with).
pub const HANDLE_LEN: usize = 16;

/// Why a session operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The user name is empty, too long, or has characters the key layout
    /// cannot take (braces, whitespace, control characters).
    #[error("invalid session user {user:?}: {reason}")]
    InvalidUser { user: String, reason: &'static str },
    /// A handle that is not [`HANDLE_LEN`] lowercase hex digits.
    #[error("invalid session handle {0:?}: expected 16 hex digits")]
    InvalidHandle(String),
    /// The session data is larger than [`MAX_DATA_BYTES`].
    #[error("session data of {len} bytes is larger than the {max} allowed")]
    DataTooLarge { len: usize, max: usize },
    /// A time to live of zero, or too long to count in milliseconds.
    #[error("invalid session time to live: {0}")]
    InvalidTtl(String),
    /// The store knows no such user (a store that also keeps users refuses
    /// sessions for one deleted meanwhile).
    #[error("no user named {0}")]
    UnknownUser(String),
    /// The store did not answer (Redis or the database is down or slow):
    /// a caller may keep a recent answer for a while rather than sign
    /// everybody out during an outage.
    #[error("the session store did not answer: {0}")]
    Unavailable(String),
    /// The store answered with something this version cannot read.
    #[error("corrupt session record: {0}")]
    Corrupt(String),
    /// Any other failure of the store (a misconfigured URL or prefix…).
    #[error(transparent)]
    Store(#[from] crate::CoordError),
}

impl SessionError {
    /// True when the store did not answer, as opposed to refusing the
    /// request.
    pub fn is_outage(&self) -> bool {
        match self {
            SessionError::Unavailable(_) => true,
            SessionError::Store(err) => err.is_unavailable(),
            _ => false,
        }
    }
}

/// Result of a session operation.
pub type Result<T> = std::result::Result<T, SessionError>;

/// One session as stores keep it. Times are ms since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Whose it is.
    pub user: String,
    /// Its non-secret name (see the module docs).
    pub handle: String,
    /// When it was created.
    pub created_at: i64,
    /// When it was last touched (created, or [`SessionStore::touch`]).
    pub last_seen_at: i64,
    /// When it ends unless touched again.
    pub expires_at: i64,
    /// The caller's data, opaque to the store.
    pub data: String,
}

/// A session just created.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The secret id for the client (a cookie); stores keep only its hash.
    pub id: String,
    /// The session as stored.
    pub session: Session,
    /// Older sessions of the user ended to stay within the per-user cap.
    pub evicted: u64,
}

/// Shows the session, never the id (it signs in).
impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("session", &self.session)
            .field("evicted", &self.evicted)
            .finish_non_exhaustive()
    }
}

/// A user's active sessions, most recently used first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionList {
    /// At most the limit asked for (and at most [`MAX_LISTED`]).
    pub sessions: Vec<Session>,
    /// True when the user has more active sessions than were listed.
    pub more: bool,
}

/// Where sessions live. Implementations agree on every behaviour the
/// conformance suite (`coord/tests/sessions.rs`) checks; `id` is always the
/// secret id [`NewSession::id`], which stores hash before use.
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug {
    /// Starts a session of `user` lasting `ttl` (unless touched), carrying
    /// `data`; ends the user's least recently used sessions beyond the
    /// per-user cap.
    async fn create(&self, user: &str, ttl: Duration, data: &str) -> Result<NewSession>;

    /// The live session `id` names, if any; reading does not extend it.
    async fn get(&self, id: &str) -> Result<Option<Session>>;

    /// Records a use of session `id` now and moves its end to `ttl` from
    /// now (sliding expiry); `None` when it has ended already.
    async fn touch(&self, id: &str, ttl: Duration) -> Result<Option<Session>>;

    /// Ends session `id`; false when there was none (ending twice is not
    /// an error).
    async fn revoke(&self, id: &str) -> Result<bool>;

    /// Ends the session of `user` whose handle is `handle`; false when the
    /// user has none by that handle.
    async fn revoke_handle(&self, user: &str, handle: &str) -> Result<bool>;

    /// Ends every session of `user`; returns how many there were.
    async fn revoke_all(&self, user: &str) -> Result<u64>;

    /// The active sessions of `user`, most recently used first, at most
    /// `limit` (itself at most [`MAX_LISTED`]).
    async fn list(&self, user: &str, limit: usize) -> Result<SessionList>;

    /// Forgets sessions ended by `now` (ms since the epoch) that a store
    /// does not expire by itself; returns how many. Lookups ignore them
    /// anyway; stores with their own expiry (Redis) have nothing to do.
    async fn sweep(&self, now: i64) -> Result<u64> {
        let _ = now;
        Ok(0)
    }
}

/// Checks a user name against the key layout's rules.
pub fn check_user(user: &str) -> Result<()> {
    let reason = if user.is_empty() {
        Some("it is empty")
    } else if user.chars().count() > MAX_USER_CHARS {
        Some("it is longer than 128 characters")
    } else if user
        .chars()
        .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control())
    {
        Some("it contains braces, whitespace or control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(SessionError::InvalidUser {
            user: user.chars().take(MAX_USER_CHARS).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks data against [`MAX_DATA_BYTES`].
pub(crate) fn check_data(data: &str) -> Result<()> {
    if data.len() > MAX_DATA_BYTES {
        return Err(SessionError::DataTooLarge {
            len: data.len(),
            max: MAX_DATA_BYTES,
        });
    }
    Ok(())
}

/// A time to live in ms, refusing zero.
pub fn ttl_ms(ttl: Duration) -> Result<i64> {
    let ms = i64::try_from(ttl.as_millis())
        .map_err(|_| SessionError::InvalidTtl(format!("{ttl:?} is too long")))?;
    if ms <= 0 {
        return Err(SessionError::InvalidTtl("it must be at least 1 ms".into()));
    }
    Ok(ms)
}

/// Checks a handle: [`HANDLE_LEN`] lowercase hex digits.
pub fn check_handle(handle: &str) -> Result<()> {
    if handle.len() == HANDLE_LEN
        && handle
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(SessionError::InvalidHandle(
            handle.chars().take(HANDLE_LEN * 2).collect(),
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A fresh secret id for a session of `user` (see the module docs).
pub fn new_id(user: &str) -> Result<String> {
    check_user(user)?;
    let secret: [u8; 32] = rand::random();
    Ok(format!("{}.{}", hex(user.as_bytes()), hex(&secret)))
}

/// The user an id was made for, if `id` is well formed. Not proof of
/// anything: the store must still find the id's key under that user.
pub fn user_of(id: &str) -> Option<String> {
    let (user, secret) = id.split_once('.')?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let user = String::from_utf8(unhex(user)?).ok()?;
    check_user(&user).ok()?;
    Some(user)
}

/// What stores keep of an id: its SHA-256 in lowercase hex.
pub fn key_of(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

/// The non-secret handle of a stored key.
pub fn handle_of(key: &str) -> String {
    key.chars().take(HANDLE_LEN).collect()
}

/// Clamps a listing limit to `1..=MAX_LISTED`.
pub(crate) fn clamp_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_LISTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_user_and_hash_to_keys_and_handles() {
        let id = new_id("ada@example.com").unwrap();
        assert_eq!(user_of(&id).as_deref(), Some("ada@example.com"));
        assert_ne!(new_id("ada@example.com").unwrap(), id);
        let key = key_of(&id);
        assert_eq!(key.len(), 64);
        assert!(!key.contains(&id));
        assert_eq!(handle_of(&key).len(), HANDLE_LEN);
        check_handle(&handle_of(&key)).unwrap();
        assert!(check_handle("ABCDEF0123456789").is_err());
        assert!(check_handle("abc").is_err());
        for bad in [
            "",
            "x",
            "61.abc",
            "zz.0000",
            "61",
            &format!("7b7d.{}", "0".repeat(64)),
        ] {
            assert_eq!(user_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn users_data_and_ttls_are_checked() {
        for bad in ["", "a b", "{x}", "a\n", &"n".repeat(129)] {
            assert!(
                matches!(check_user(bad), Err(SessionError::InvalidUser { .. })),
                "{bad}"
            );
        }
        check_user("ops_1-x.y@z:w").unwrap();
        assert!(check_data(&"x".repeat(MAX_DATA_BYTES)).is_ok());
        assert!(matches!(
            check_data(&"x".repeat(MAX_DATA_BYTES + 1)),
            Err(SessionError::DataTooLarge { .. })
        ));
        assert!(ttl_ms(Duration::ZERO).is_err());
        assert_eq!(ttl_ms(Duration::from_millis(300)).unwrap(), 300);
        assert_eq!(clamp_limit(0), 1);
        assert_eq!(clamp_limit(1000), MAX_LISTED);
    }
}
