//! Redis backend: limits shared by every instance of a service.
//!
//! Each decision is one call of `redis/check.lua`, so it is one atomic round
//! trip: no two instances can both take the last slot.
//!
//! # Keys
//!
//! The keys of a policy are spread over [`SHARDS`] shards by a hash of the
//! rate key, and every key of one shard shares the hash tag
//! `{<policy>|<shard>}`, hence one cluster slot: a decision touches a single
//! slot, while one busy policy still spreads over a cluster. Policy names
//! cannot hold `{`, `}` or `|`, and the tag comes before the rate key, so
//! any rate key text is safe. With `T` = `<p>:rl:{<policy>|<shard>}`:
//!
//! - `T:log:<key>` sorted set of the key's admitted requests (score =
//!   server time in ms, member = a sequence number so equal times stay
//!   distinct), expiring one window after the last admission;
//! - `T:rej:<key>` sorted set of recent rejections, for auto-block,
//!   expiring one block period after the last rejection;
//! - `T:st:<key>` hash: `seq` (member counter) and `blocked_until` (ms),
//!   expiring no earlier than either of the above or the block's end;
//! - `T:active`, `T:used`, `T:blocked`, `T:minutes`: the shard's usage
//!   index, written by the same script — key → end of its window, key →
//!   requests at its last admission, key → end of its block, and allowed /
//!   rejected counts per minute for an hour. A dashboard reads the index
//!   (`redis/usage.lua`, one call per shard), never the keyspace;
//! - `<p>:rl:policies` hash: policy name → definition (JSON), written by
//!   [`RateLimitBackend::register`].
//!
//! Times come from the Redis server (`TIME`), not from the instances, so
//! instances whose clocks disagree still share one window.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{
    Decision, KeyUsage, LimiterStatus, MAX_LISTED_BLOCKED, Policy, PolicyUsage, RateKey,
    RateLimitBackend, minute_series, ms,
};
use crate::error::{CoordError, Result};
use crate::redis::{self as conn, Conn, Reconnect};

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
static USAGE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("redis/usage.lua")));

/// Shards of one policy's keys (see the module docs). A usage read costs
/// one script call per shard, so this stays small.
pub const SHARDS: u32 = 16;

/// The shard of a rate key: FNV-1a of its bytes, stable across processes
/// and versions (it is part of the key names).
fn shard(key: &RateKey) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % SHARDS
}

/// Rate limiting shared through Redis. Cheap to clone: clones share one
/// multiplexed, auto-reconnecting connection.
#[derive(Clone)]
pub struct RedisLimiter {
    conn: Conn,
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
        Ok(Self {
            conn: conn::connect_tagged(url, prefix, RECONNECT).await?,
            prefix: prefix.to_owned(),
        })
    }

    /// The hash-tagged base of one shard of a policy.
    fn tag(&self, policy: &Policy, shard: u32) -> String {
        format!("{}:rl:{{{}|{shard}}}", self.prefix, policy.name())
    }

    /// The seven keys `check.lua` takes for one pair, in its order.
    fn keys(&self, policy: &Policy, key: &RateKey) -> [String; 7] {
        let tag = self.tag(policy, shard(key));
        let key = key.as_str();
        [
            format!("{tag}:log:{key}"),
            format!("{tag}:rej:{key}"),
            format!("{tag}:st:{key}"),
            format!("{tag}:active"),
            format!("{tag}:used"),
            format!("{tag}:blocked"),
            format!("{tag}:minutes"),
        ]
    }

    fn policies_key(&self) -> String {
        format!("{}:rl:policies", self.prefix)
    }

    /// Reads one shard's index; see `redis/usage.lua`.
    async fn shard_usage(&self, policy: &Policy, shard: u32, top: usize) -> Result<ShardUsage> {
        let tag = self.tag(policy, shard);
        let mut inv = USAGE.prepare_invoke();
        for suffix in ["active", "used", "blocked", "minutes"] {
            inv.key(format!("{tag}:{suffix}"));
        }
        inv.arg(top).arg(MAX_LISTED_BLOCKED);
        let (now, active, blocked_count, top, blocked, minutes): ShardReply = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        // Counts at the last admission are upper bounds of the counts now:
        // ask each candidate's log for its count inside the window.
        let mut exact = redis::pipe();
        let from = format!("({}", now - policy.window_ms());
        for (key, _) in &top {
            exact.zcount(format!("{tag}:log:{key}"), &from, "+inf");
        }
        let counts: Vec<u32> = if top.is_empty() {
            Vec::new()
        } else {
            exact
                .query_async(&mut self.conn.clone())
                .await
                .map_err(CoordError::from)?
        };
        let blocked_map: std::collections::HashMap<&str, i64> = blocked
            .iter()
            .map(|(k, until)| (k.as_str(), *until))
            .collect();
        let top = top
            .iter()
            .zip(counts)
            .filter(|(_, count)| *count > 0)
            .filter_map(|((key, _), count)| {
                Some(KeyUsage {
                    key: RateKey::new(key.clone()).ok()?,
                    count,
                    blocked_until: blocked_map.get(key.as_str()).copied(),
                })
            })
            .collect();
        let blocked = blocked
            .into_iter()
            .filter_map(|(key, until)| Some((RateKey::new(key).ok()?, until)))
            .collect();
        Ok(ShardUsage {
            now,
            active,
            blocked_count,
            top,
            blocked,
            minutes,
        })
    }
}

/// What `usage.lua` answers for one shard.
type ShardReply = (
    i64,
    u64,
    u64,
    Vec<(String, f64)>,
    Vec<(String, i64)>,
    Vec<(String, u64)>,
);

/// One shard's index, with exact counts for its candidates.
struct ShardUsage {
    now: i64,
    active: u64,
    blocked_count: u64,
    top: Vec<KeyUsage>,
    blocked: Vec<(RateKey, i64)>,
    minutes: Vec<(String, u64)>,
}

#[async_trait]
impl RateLimitBackend for RedisLimiter {
    async fn check(&self, policy: &Policy, key: &RateKey) -> Result<Decision> {
        let (after, period, block_for) = policy.block().map_or((0, 0, 0), |b| {
            (
                b.after,
                b.period.as_millis() as i64,
                b.block_for.as_millis() as i64,
            )
        });
        let mut inv = CHECK.prepare_invoke();
        for k in self.keys(policy, key) {
            inv.key(k);
        }
        inv.arg(policy.window_ms())
            .arg(policy.capacity())
            .arg(after)
            .arg(period)
            .arg(block_for)
            .arg(key.as_str());
        let reply: Vec<i64> = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        let [
            allowed,
            remaining,
            reset_after,
            retry_after,
            blocked_until,
            now,
        ] = reply[..]
        else {
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
            decided_at: now,
        })
    }

    async fn unblock(&self, policy: &Policy, key: &RateKey) -> Result<()> {
        let [_, rej, st, _, _, blocked, _] = self.keys(policy, key);
        // All keys share a slot, so one transaction does it; `seq` must
        // survive while the log lives, so only the field goes.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&rej)
            .ignore()
            .hdel(&st, "blocked_until")
            .ignore()
            .zrem(&blocked, key.as_str())
            .ignore();
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)
    }

    async fn reset(&self, policy: &Policy, key: &RateKey) -> Result<()> {
        let [log, rej, st, active, used, blocked, _] = self.keys(policy, key);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&[log, rej, st]).ignore();
        for index in [active, used, blocked] {
            pipe.zrem(index, key.as_str()).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)
    }

    async fn usage(&self, policy: &Policy, top: usize) -> Result<PolicyUsage> {
        // Twice the candidates per shard: counts at last admission only
        // bound the counts now, so a little slack finds the real top.
        let candidates = top.saturating_mul(2);
        let shards = futures_util::future::try_join_all(
            (0..SHARDS).map(|s| self.shard_usage(policy, s, candidates)),
        )
        .await?;
        let now = shards.iter().map(|s| s.now).max().unwrap_or(0);
        let mut usage = PolicyUsage {
            now,
            ..PolicyUsage::default()
        };
        let mut minutes: std::collections::HashMap<i64, (u64, u64)> = Default::default();
        for shard in shards {
            usage.active_keys += shard.active;
            usage.blocked_keys += shard.blocked_count;
            usage.top.extend(shard.top);
            usage.blocked.extend(shard.blocked);
            for (field, count) in shard.minutes {
                let Some((kind, minute)) = field.split_once(':') else {
                    continue;
                };
                let Ok(minute) = minute.parse::<i64>() else {
                    continue;
                };
                let slot = minutes.entry(minute).or_default();
                match kind {
                    "a" => slot.0 += count,
                    "r" => slot.1 += count,
                    _ => {}
                }
            }
        }
        usage.rank(top);
        usage.minutes = minute_series(now, |m| minutes.get(&m).copied().unwrap_or_default());
        Ok(usage)
    }

    async fn register(&self, policies: &[Policy]) -> Result<()> {
        if policies.is_empty() {
            return Ok(());
        }
        let fields: Vec<(&str, String)> =
            policies.iter().map(|p| (p.name(), p.to_json())).collect();
        redis::cmd("HSET")
            .arg(self.policies_key())
            .arg(fields)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)
    }

    async fn registered(&self) -> Result<Vec<Policy>> {
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(self.policies_key())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        let mut policies = Vec::with_capacity(all.len());
        for (name, json) in all {
            // One bad entry (another version, a hand edit) must not hide the
            // others from a dashboard.
            match Policy::from_json(&name, &json) {
                Ok(policy) => policies.push(policy),
                Err(e) => tracing::warn!("skipping registered rate-limit policy: {e}"),
            }
        }
        policies.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(policies)
    }

    /// The capability probe: besides `PING`, a read of the policies key
    /// where it lives, so a cluster node reached with a plain URL, or a
    /// cluster that lost slots, does not pass for healthy.
    async fn ping(&self) -> Result<()> {
        conn::probe_capability(&mut self.conn.clone(), &self.policies_key())
            .await
            .map(drop)
    }

    fn status(&self) -> LimiterStatus {
        LimiterStatus::healthy("redis")
    }
}
