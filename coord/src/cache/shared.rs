//! The shared tier: what every instance of a service reads before loading.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::Namespace;
use crate::error::Result;

/// One stored entry as the shared tier returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The encoded entry (see [`super::Cache`]): exactly the text that was
    /// written, so every instance hashes the same bytes.
    pub text: String,
    /// How long the entry still lives there; the local tier keeps it no
    /// longer, so an instance never serves what the shared tier expired.
    pub ttl_left: Duration,
}

/// The tier the instances share, one implementation per deployment.
///
/// Kept to plain text operations so that a backend knows nothing of the
/// values' types, and the failover, stampede and hashing logic is written
/// once in [`super::Cache`] above it.
#[async_trait]
pub trait SharedTier: Send + Sync + fmt::Debug {
    /// A short name for reports (`"local"`, `"redis"`).
    fn backend(&self) -> &'static str;

    /// The entry, unless absent or expired.
    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Stored>>;

    /// Stores `text` for `ttl`, replacing what was there.
    async fn set(&self, ns: &Namespace, key: &str, text: &str, ttl: Duration) -> Result<()>;

    /// Stores `text` for `ttl` unless a live entry is there (what a load
    /// writes: a concurrent write wins). Returns whether it stored.
    async fn add(&self, ns: &Namespace, key: &str, text: &str, ttl: Duration) -> Result<bool>;

    /// Removes one entry (absent is fine).
    async fn delete(&self, ns: &Namespace, key: &str) -> Result<()>;

    /// Removes every entry of the namespace; returns how many.
    async fn clear(&self, ns: &Namespace) -> Result<u64>;

    /// Takes the load lock of `key` for `ttl` if nobody holds it, so that
    /// one instance loads while the others wait for its result. The lock
    /// expires by itself, so a crashed loader blocks nobody for long.
    async fn try_lock(&self, ns: &Namespace, key: &str, token: &str, ttl: Duration)
    -> Result<bool>;

    /// Releases the lock if `token` still holds it (an expired lock taken
    /// over by another loader is left alone).
    async fn unlock(&self, ns: &Namespace, key: &str, token: &str) -> Result<()>;

    /// Whether the tier answers; the failover probe's question.
    async fn ping(&self) -> Result<()>;
}
