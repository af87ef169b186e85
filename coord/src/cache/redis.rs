//! The shared tier on Redis (one server or a cluster).
//!
//! # Keys
//!
//! - `<p>:cache:{<namespace>}:<key>`: the entry's text, with a `PX` time
//!   to live;
//! - `<p>:cache-lock:{<namespace>}:<key>`: the load lock (`SET NX PX`, a
//!   random token as value).
//!
//! The namespace is the hash tag, so on a cluster a namespace lives in one
//! slot: an entry, its lock and a whole-namespace clear each touch one
//! node. A namespace is therefore not spread over the cluster; services
//! with one huge namespace should split it.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::Namespace;
use super::shared::{SharedTier, Stored};
use crate::error::Result;
use crate::redis::{self as conn, Conn, Reconnect};

/// A read waits at most 1 s and one reconnection attempt before it is an
/// outage: a cache that waits longer than the load it saves is no cache.
const RECONNECT: Reconnect = Reconnect {
    connect_timeout: Duration::from_secs(1),
    response_timeout: Duration::from_secs(1),
    retries: 1,
    max_delay: Duration::from_secs(1),
};

/// Keys a whole-namespace clear looks at, at most (one `SCAN` pass over
/// the namespace's node, bounded so a huge keyspace costs a bounded time).
pub const MAX_CLEAR_SCAN: usize = 1_000_000;

/// The value and its remaining time in one round trip.
static GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new("return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}")
});

/// Deletes the lock only if it is still ours.
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});

/// The shared tier on Redis. Cheap to clone: clones share one multiplexed,
/// auto-reconnecting connection.
#[derive(Clone)]
pub struct RedisShared {
    conn: Conn,
    prefix: String,
}

/// Shows the prefix only: the URL (and any password in it) is not kept.
impl std::fmt::Debug for RedisShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisShared")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisShared {
    /// Connects (`redis://`, `rediss://` or a `+cluster` URL) and checks
    /// with `PING` within 5 s, so a wrong URL fails at start-up. Keys live
    /// under `<prefix>:cache:`, so the cache can share a Redis and a prefix
    /// with the other capabilities.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        Ok(Self {
            conn: conn::connect_tagged(url, prefix, RECONNECT).await?,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, ns: &Namespace, key: &str) -> String {
        format!("{}:cache:{{{}}}:{key}", self.prefix, ns.as_str())
    }

    fn lock_key(&self, ns: &Namespace, key: &str) -> String {
        format!("{}:cache-lock:{{{}}}:{key}", self.prefix, ns.as_str())
    }

    /// `SET NX PX`: whether `value` was stored.
    async fn set_nx(&self, key: String, value: &str, ttl: Duration) -> Result<bool> {
        let stored: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ms(ttl))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(stored.is_some())
    }
}

#[async_trait]
impl SharedTier for RedisShared {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Stored>> {
        let (text, pttl): (Option<String>, i64) = GET
            .key(self.key(ns, key))
            .invoke_async(&mut self.conn.clone())
            .await?;
        // PTTL is -1 for a key without expiry (never written so by us) and
        // -2 when it expired between the two calls.
        Ok(match (text, pttl) {
            (Some(text), pttl) if pttl != -2 => Some(Stored {
                text,
                ttl_left: Duration::from_millis(u64::try_from(pttl).unwrap_or(0).max(1)),
            }),
            _ => None,
        })
    }

    async fn set(&self, ns: &Namespace, key: &str, text: &str, ttl: Duration) -> Result<()> {
        redis::cmd("SET")
            .arg(self.key(ns, key))
            .arg(text)
            .arg("PX")
            .arg(ms(ttl))
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn add(&self, ns: &Namespace, key: &str, text: &str, ttl: Duration) -> Result<bool> {
        self.set_nx(self.key(ns, key), text, ttl).await
    }

    async fn delete(&self, ns: &Namespace, key: &str) -> Result<()> {
        redis::cmd("DEL")
            .arg(self.key(ns, key))
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn clear(&self, ns: &Namespace) -> Result<u64> {
        let pattern = format!(
            "{}*",
            conn::glob_escape(&format!("{}:cache:{{{}}}:", self.prefix, ns.as_str()))
        );
        let mut conn = self.conn.clone();
        let keys = conn.scan_match(&pattern, MAX_CLEAR_SCAN).await?;
        let mut removed = 0;
        // One slot (the namespace's tag), so a multi-key DEL is fine on a
        // cluster too.
        for batch in keys.chunks(500) {
            removed += redis::cmd("DEL")
                .arg(batch)
                .query_async::<u64>(&mut conn)
                .await?;
        }
        Ok(removed)
    }

    async fn try_lock(
        &self,
        ns: &Namespace,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        self.set_nx(self.lock_key(ns, key), token, ttl).await
    }

    async fn unlock(&self, ns: &Namespace, key: &str, token: &str) -> Result<()> {
        UNLOCK
            .key(self.lock_key(ns, key))
            .arg(token)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
