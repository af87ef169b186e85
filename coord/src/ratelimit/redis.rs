//! Redis backend: limits shared by every instance of a service.
//!
//! Each decision is one call of `redis/check.lua`, so it is one atomic round
//! trip: no two instances can both take the last slot. The keys of one
//! `(policy, key)` share the hash tag `{<policy>|<key>}` (policy names
//! cannot hold `|`, so the first `|` separates them and two pairs never
//! share keys), hence one cluster slot:
//!
//! - `<p>:rl:{<policy>|<key>}:log` sorted set of admitted requests (score =
//!   server time in ms, member = a sequence number so equal times stay
//!   distinct), expiring one window after the last admission;
//! - `<p>:rl:{…}:rej` sorted set of recent rejections, for auto-block,
//!   expiring one block period after the last rejection;
//! - `<p>:rl:{…}:st` hash: `seq` (member counter) and `blocked_until` (ms),
//!   expiring no earlier than either of the above or the block's end.
//!
//! Times come from the Redis server (`TIME`), not from the instances, so
//! instances whose clocks disagree still share one window.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{RedisError, Script};

use super::{Decision, Policy, RateKey, RateLimitBackend, ms};
use crate::error::{CoordError, Result};
use crate::redis_conn::{self, Reconnect};

/// One decision may take 2 s (short, since a request waits on it), and a
/// failing decision waits for one reconnection attempt before reporting
/// the outage, so a request learns of it quickly (and a fallback can kick
/// in).
const RECONNECT: Reconnect = Reconnect {
    connect_timeout: Duration::from_secs(2),
    response_timeout: Duration::from_secs(2),
    retries: 1,
    max_delay: Duration::from_secs(1),
};

static CHECK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("redis/check.lua")));

/// Rate limiting shared through Redis. Cheap to clone: clones share one
/// multiplexed, auto-reconnecting connection.
#[derive(Clone)]
pub struct RedisLimiter {
    conn: ConnectionManager,
    prefix: String,
}

/// Shows the prefix only: the URL (and any password in it) is not kept.
impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// Connects (`redis://` or `rediss://`) and checks with `PING` within
    /// 5 s, so a misconfigured URL fails at start-up rather than on the
    /// first request. Keys live under `<prefix>:rl:`, so a limiter can share
    /// a Redis (and a prefix) with the queues.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        redis_conn::check_prefix(prefix, &['{', '}'], "braces or whitespace")?;
        // The URL may hold a password: never echo it.
        let (_, conn) = redis_conn::connect(url, RECONNECT).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// The `log`, `rej` and `st` keys of one pair.
    fn keys(&self, policy: &Policy, key: &RateKey) -> [String; 3] {
        let base = format!("{}:rl:{{{}|{}}}", self.prefix, policy.name(), key.as_str());
        [
            format!("{base}:log"),
            format!("{base}:rej"),
            format!("{base}:st"),
        ]
    }
}

#[async_trait]
impl RateLimitBackend for RedisLimiter {
    async fn check(&self, policy: &Policy, key: &RateKey) -> Result<Decision> {
        let [log, rej, st] = self.keys(policy, key);
        let (after, period, block_for) = policy.block().map_or((0, 0, 0), |b| {
            (
                b.after,
                b.period.as_millis() as i64,
                b.block_for.as_millis() as i64,
            )
        });
        let mut inv = CHECK.prepare_invoke();
        inv.key(log).key(rej).key(st);
        inv.arg(policy.window_ms())
            .arg(policy.capacity())
            .arg(after)
            .arg(period)
            .arg(block_for);
        let reply: Vec<i64> = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        let [allowed, remaining, reset_after, retry_after, blocked_until] = reply[..] else {
            return Err(CoordError::Corrupt(format!(
                "rate-limit script answered {reply:?}"
            )));
        };
        Ok(Decision {
            allowed: allowed == 1,
            limit: policy.capacity(),
            remaining: remaining.clamp(0, i64::from(u32::MAX)) as u32,
            reset_after: ms(reset_after),
            retry_after: (retry_after >= 0).then(|| ms(retry_after)),
            blocked_until: (blocked_until >= 0).then_some(blocked_until),
        })
    }

    async fn unblock(&self, policy: &Policy, key: &RateKey) -> Result<()> {
        let [_, rej, st] = self.keys(policy, key);
        // Both keys share a slot, so one command (atomic) does it; `seq`
        // must survive while the log lives, so only the field goes.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&rej)
            .ignore()
            .hdel(&st, "blocked_until")
            .ignore();
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn reset(&self, policy: &Policy, key: &RateKey) -> Result<()> {
        let keys = self.keys(policy, key);
        redis::cmd("DEL")
            .arg(&keys[..])
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }
}

/// Connection trouble becomes [`CoordError::Unavailable`], so callers (and
/// the coming fallback mode) tell an outage from a script bug.
fn map_err(e: RedisError) -> CoordError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        CoordError::Unavailable(format!("Redis: {e}"))
    } else {
        CoordError::Redis(e)
    }
}
