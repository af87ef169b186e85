//! Synced state: a versioned key/value registry shared by instances.
//!
//! The SQL database is the source of truth. Every change takes the next
//! number of one registry-wide counter, so an instance that remembers the
//! last version it applied catches up with a single range query
//! ([`StateStore::changes_since`]), whether it was woken by a notification
//! or is polling because the bus is down. Deletes are tombstones with a
//! version of their own, so they travel the same way.
//!
//! [`state_hash`] lets an instance and the database (or two instances)
//! compare what they hold without shipping the state around.
//!
//! [`Replica`] is one instance's copy: it writes through the store, then
//! announces the change on a channel, and follows the other instances'
//! announcements (debounced, with polling while the bus is down).

mod hash;
mod replica;
mod store;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CoordError, Result};

pub use hash::{StateHash, state_hash};
pub use replica::{Replica, ReplicaConfig, ReplicaStatus, StateChanged};
pub use store::StateStore;

/// Longest key accepted, in characters: long enough for URIs of search
/// parameters and the like, short enough to index and to show.
pub const MAX_KEY_CHARS: usize = 200;
/// Longest status accepted, in characters: statuses are short words
/// ("enabled", "pending"), not payloads.
pub const MAX_STATUS_CHARS: usize = 64;
/// Longest instance name accepted as the author of a change, so a stray
/// value cannot bloat every row.
pub const MAX_AUTHOR_CHARS: usize = 200;

/// A key of the synced-state registry, validated once at the edge so that
/// the store, notifications and dashboards can use it without checks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StateKey(String);

impl StateKey {
    /// Checks a key (1–200 characters, no control characters) so that bad
    /// input is refused before anything reaches the database or the bus.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let reason = if key.is_empty() {
            Some("must not be empty".to_string())
        } else if key.chars().count() > MAX_KEY_CHARS {
            Some(format!("must be at most {MAX_KEY_CHARS} characters"))
        } else if key.chars().any(char::is_control) {
            Some("must not contain control characters".to_string())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CoordError::InvalidStateKey { key, reason }),
            None => Ok(Self(key)),
        }
    }

    /// The key as stored and published.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StateKey {
    type Error = CoordError;

    fn try_from(key: String) -> Result<Self> {
        Self::new(key)
    }
}

impl From<StateKey> for String {
    fn from(key: StateKey) -> Self {
        key.0
    }
}

impl AsRef<str> for StateKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Checks a status (1–64 characters, no control characters) for `key`.
/// Reported with the key it was meant for, so the caller sees which write
/// was refused.
pub(crate) fn check_status(key: &StateKey, status: &str) -> Result<()> {
    let reason = if status.is_empty() {
        Some("status must not be empty".to_string())
    } else if status.chars().count() > MAX_STATUS_CHARS {
        Some(format!(
            "status must be at most {MAX_STATUS_CHARS} characters"
        ))
    } else if status.chars().any(char::is_control) {
        Some("status must not contain control characters".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CoordError::InvalidStateStatus {
            key: key.as_str().to_string(),
            status: status.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks the name of the instance that makes a change, so every row
/// names a real author that a dashboard can show.
pub(crate) fn check_author(by: &str) -> Result<()> {
    let reason = if by.is_empty() {
        Some("must not be empty")
    } else if by.chars().count() > MAX_AUTHOR_CHARS {
        Some("must be at most 200 characters")
    } else if by.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CoordError::InvalidInstance {
            name: by.to_string(),
            reason: reason.to_string(),
        }),
        None => Ok(()),
    }
}

/// One entry of the registry as of its last change: what an instance
/// applies, and (with `deleted`) what it must forget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Which setting this is.
    pub key: StateKey,
    /// The setting itself; any JSON, so services choose their own shape.
    /// A tombstone keeps the last value, for audit and dashboards.
    pub value: Value,
    /// A short word services branch on ("enabled", "disabled", "pending"),
    /// kept apart from the value so a status flip is a small change.
    pub status: String,
    /// The registry-wide change number of this entry's last change; an
    /// instance that applied it needs only changes with larger numbers.
    pub version: i64,
    /// When the last change was made (ms since the Unix epoch), for lag
    /// and "last updated" displays.
    pub updated_at: i64,
    /// Which instance made the last change, to trace who changed what.
    pub updated_by: String,
    /// True for a tombstone: the key was deleted at `version`, and
    /// instances that still hold it must drop it.
    pub deleted: bool,
}
