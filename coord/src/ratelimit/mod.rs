//! Distributed sliding-window rate limiting.
//!
//! A [`Policy`] says how many requests one key (a client id, a user, an IP)
//! may make in any window of a given length; a [`RateLimiter`] holds the
//! policies by name (one per role or route, e.g. a higher limit for one role
//! is simply another policy) and asks a [`RateLimitBackend`] for a
//! [`Decision`]. Two backends behave the same way: [`local::LocalLimiter`]
//! (in process, the embedded default) and [`redis::RedisLimiter`] (shared by
//! every instance of a service, one atomic Lua round trip per decision).
//!
//! # Algorithm: exact sliding log
//!
//! Each `(policy, key)` keeps the timestamps (ms) of the requests it let
//! through. A decision at time `now` first forgets the timestamps `t` with
//! `t <= now - window`, then admits the request (and records `now`) only if
//! fewer than `limit + burst` remain. A request admitted at `t` therefore
//! occupies its slot during `[t, t + window)`, and at no instant are more
//! than `limit + burst` timestamps inside the half-open window ending at that
//! instant: **no window of length `window` ever holds more than
//! `limit + burst` admitted requests**, whatever its alignment (this is not
//! a fixed window, which lets twice the limit through across a boundary).
//!
//! The error bound is zero in both directions at millisecond resolution: the
//! log is exact, so there are no wrong admissions and no wrong rejections
//! relative to an exact sliding-window log on the same clock. The price is
//! memory: `O(limit + burst)` timestamps per active key, which is why
//! [`Policy`] caps `limit + burst` at [`MAX_CAPACITY`]. Rejected requests are
//! not recorded in the log (a client hammering a full window does not push
//! its own reset further away), only in the auto-block counter.
//!
//! # Usage, registry and fallback
//!
//! Every decision also updates a usage index (active keys with their
//! counts, blocked keys, allowed and rejected requests per minute), so
//! [`RateLimiter::usage`] answers without scanning keys. Services publish
//! their policies with [`RateLimiter::register`], so a dashboard sharing the
//! backend lists them ([`RateLimiter::known_policies`]) and can unblock
//! their keys. [`fallback::Failover`] keeps deciding while Redis is down —
//! per instance, open or closed, see [`FallbackMode`] — and says so in its
//! [`LimiterStatus`]. With the `tower` feature, `layer` applies policies to
//! HTTP routes, answering 429 with `Retry-After` and `RateLimit-*` headers.
//!
//! # Auto-block
//!
//! With [`Policy::with_block`], a key rejected `block_after` times within
//! `block_period` is refused outright for `block_for`, without touching its
//! log; an operator can lift it early with [`RateLimiter::unblock`].

pub mod fallback;
#[cfg(feature = "tower")]
pub mod layer;
pub mod local;
pub mod redis;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{CoordError, Result};

/// Upper bound on `limit + burst`: the sliding log keeps one timestamp per
/// admitted request, so this bounds the memory of one key (about 1.6 MB on
/// Redis at the cap). Larger budgets want a counter-based algorithm instead.
pub const MAX_CAPACITY: u32 = 100_000;
/// Longest window (and block period / block time) accepted: one day. Longer
/// windows keep keys alive for that long and are almost certainly a unit
/// mistake.
pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// Shortest window accepted. Shorter windows are dominated by clock
/// resolution and network latency rather than by the policy.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);
/// Longest accepted policy name, so it stays readable in keys and on the
/// dashboard.
pub const MAX_POLICY_NAME: usize = 64;
/// Longest accepted rate key in characters, so one client cannot make
/// Redis keys (or map entries) arbitrarily large.
pub const MAX_RATE_KEY: usize = 200;

/// Auto-block settings of a policy: `after` rejections within `period`
/// block the key for `block_for`. Kept apart from the window so that a
/// burst of rejections is judged over its own, usually longer, period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRule {
    /// Rejections (within `period`) that trigger the block; at least 1.
    pub after: u32,
    /// Sliding period over which rejections are counted.
    pub period: Duration,
    /// How long the key stays blocked once triggered.
    pub block_for: Duration,
}

/// A validated rate-limit policy. Construction checks everything, so a
/// backend never sees a zero limit or a name that would break its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    name: String,
    limit: u32,
    window: Duration,
    burst: u32,
    block: Option<BlockRule>,
}

impl Policy {
    /// A policy allowing `limit` requests per key in any `window`.
    ///
    /// The name (1–64 of `[A-Za-z0-9_.:-]`) is what routes and the
    /// dashboard refer to; `limit` must be at least 1 and `window` between
    /// 1 s and one day, in whole milliseconds.
    pub fn new(name: impl Into<String>, limit: u32, window: Duration) -> Result<Self> {
        let name = name.into();
        let bad = |reason: String| CoordError::InvalidPolicy {
            name: name.clone(),
            reason,
        };
        if name.is_empty() || name.len() > MAX_POLICY_NAME {
            return Err(bad(format!("must be 1 to {MAX_POLICY_NAME} characters")));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
        {
            return Err(bad("may only contain A-Z a-z 0-9 _ . : -".into()));
        }
        if limit == 0 {
            return Err(bad("the limit must be at least 1".into()));
        }
        if limit > MAX_CAPACITY {
            return Err(bad(format!("the limit must be at most {MAX_CAPACITY}")));
        }
        check_duration("window", window).map_err(bad)?;
        Ok(Self {
            name,
            limit,
            window,
            burst: 0,
            block: None,
        })
    }

    /// Allows `burst` requests on top of the limit in any window.
    ///
    /// Meaning: the hard cap of any window becomes `limit + burst`. The
    /// limit is the rate operators plan with (the dashboard's percentages
    /// are of it); the burst is slack so that a client that is briefly
    /// bursty but within its rate on average is not rejected. Since the log
    /// is exact, the burst is simply extra capacity in the same window, and
    /// the HTTP layer's `RateLimit-Limit` advertises the whole cap so that
    /// `RateLimit-Remaining` counts down from it.
    pub fn with_burst(mut self, burst: u32) -> Result<Self> {
        if u64::from(self.limit) + u64::from(burst) > u64::from(MAX_CAPACITY) {
            return Err(CoordError::InvalidPolicy {
                name: self.name,
                reason: format!("limit + burst must be at most {MAX_CAPACITY}"),
            });
        }
        self.burst = burst;
        Ok(self)
    }

    /// Blocks a key for `block_for` once it has been rejected `after` times
    /// within `period`, so that abusive clients stop costing a decision per
    /// request. Both durations: 1 s to one day; `after` at least 1.
    pub fn with_block(mut self, after: u32, period: Duration, block_for: Duration) -> Result<Self> {
        let bad = |reason: String| CoordError::InvalidPolicy {
            name: self.name.clone(),
            reason,
        };
        if after == 0 {
            return Err(bad("block_after must be at least 1".into()));
        }
        if after > MAX_CAPACITY {
            return Err(bad(format!("block_after must be at most {MAX_CAPACITY}")));
        }
        check_duration("block period", period).map_err(bad)?;
        check_duration("block time", block_for).map_err(bad)?;
        self.block = Some(BlockRule {
            after,
            period,
            block_for,
        });
        Ok(self)
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Requests per window advertised to clients (without the burst).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Extra requests allowed on top of the limit in any window.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The hard cap of any window: `limit + burst`.
    pub fn capacity(&self) -> u32 {
        self.limit + self.burst
    }

    /// The length of the sliding window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The auto-block rule, if any.
    pub fn block(&self) -> Option<BlockRule> {
        self.block
    }

    /// The definition as JSON, for [`RateLimitBackend::register`]: what a
    /// dashboard in another process needs to show and judge usage.
    pub(crate) fn to_json(&self) -> String {
        serde_json::json!({
            "limit": self.limit,
            "windowMs": self.window_ms(),
            "burst": self.burst,
            "block": self.block.map(|b| serde_json::json!({
                "after": b.after,
                "periodMs": b.period.as_millis() as u64,
                "blockForMs": b.block_for.as_millis() as u64,
            })),
        })
        .to_string()
    }

    /// Reads a definition written by [`Policy::to_json`], validating it
    /// again: it comes from a shared store any process can write to.
    pub(crate) fn from_json(name: &str, json: &str) -> Result<Self> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Block {
            after: u32,
            period_ms: u64,
            block_for_ms: u64,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Def {
            limit: u32,
            window_ms: u64,
            #[serde(default)]
            burst: u32,
            block: Option<Block>,
        }
        let def: Def = serde_json::from_str(json).map_err(|e| CoordError::InvalidPolicy {
            name: name.to_owned(),
            reason: format!("unreadable definition: {e}"),
        })?;
        let mut policy = Policy::new(name, def.limit, Duration::from_millis(def.window_ms))?
            .with_burst(def.burst)?;
        if let Some(b) = def.block {
            policy = policy.with_block(
                b.after,
                Duration::from_millis(b.period_ms),
                Duration::from_millis(b.block_for_ms),
            )?;
        }
        Ok(policy)
    }

    /// The window in milliseconds, the unit both backends compute in.
    pub(crate) fn window_ms(&self) -> i64 {
        self.window.as_millis() as i64
    }
}

fn check_duration(what: &str, d: Duration) -> std::result::Result<(), String> {
    if d < MIN_WINDOW || d > MAX_WINDOW {
        return Err(format!("the {what} must be between 1 s and 24 h"));
    }
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(format!("the {what} must be a whole number of milliseconds"));
    }
    Ok(())
}

/// Who a limit applies to: a client id, user name or IP address. Validated
/// (1–200 characters, no control characters) so that it is safe in keys and
/// logs and cannot grow storage without bound.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RateKey(String);

impl RateKey {
    /// Validates a key.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let count = key.chars().count();
        let reason = if count == 0 || count > MAX_RATE_KEY {
            Some(format!("must be 1 to {MAX_RATE_KEY} characters"))
        } else if key.chars().any(char::is_control) {
            Some("must not contain control characters".to_owned())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CoordError::InvalidRateKey { key, reason }),
            None => Ok(Self(key)),
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The answer to one request: whether it may proceed, and what to tell the
/// client (the HTTP layer, `layer` with the `tower` feature, maps these
/// onto `RateLimit-*` and `Retry-After` headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed (it has been recorded if so).
    pub allowed: bool,
    /// The hard cap of the window, `limit + burst`, so that `remaining`
    /// counts down from it.
    pub limit: u32,
    /// Requests still allowed right now, after this one.
    pub remaining: u32,
    /// Time until the oldest recorded request leaves the window, i.e. until
    /// `remaining` next grows; zero when nothing is recorded.
    pub reset_after: Duration,
    /// When rejected: how long until a retry can succeed (the next free
    /// slot, or the end of a block). `None` when allowed.
    pub retry_after: Option<Duration>,
    /// When the key is blocked: the end of the block, in ms since the Unix
    /// epoch on the deciding clock (the Redis server's for Redis).
    pub blocked_until: Option<i64>,
    /// When the decision was made, in ms since the Unix epoch on the
    /// deciding clock (the Redis server's for Redis): the instant the
    /// sliding window ended at, so a decision can be checked against an
    /// exact log afterwards.
    pub decided_at: i64,
}

/// Where the sliding logs live. Object safe, so a [`RateLimiter`] can be
/// configured with either backend at run time.
#[async_trait]
pub trait RateLimitBackend: Send + Sync + fmt::Debug {
    /// Decides one request of `key` under `policy`, recording it if allowed
    /// (and counting the rejection towards auto-block if not), atomically.
    async fn check(&self, policy: &Policy, key: &RateKey) -> Result<Decision>;
    /// Lifts a block on `key` (and forgets its recent rejections), leaving
    /// its log alone: the key still has to fit in the window.
    async fn unblock(&self, policy: &Policy, key: &RateKey) -> Result<()>;
    /// Forgets everything about `key` under `policy`: full quota, no block.
    async fn reset(&self, policy: &Policy, key: &RateKey) -> Result<()>;
    /// What `policy` is doing right now, from an index the decisions keep
    /// up to date (never a scan of every key): active and blocked keys, the
    /// `top` keys by requests in their window, per-minute counts.
    async fn usage(&self, policy: &Policy, top: usize) -> Result<PolicyUsage>;
    /// Publishes policy definitions where other processes (a dashboard)
    /// can read them; the same name is overwritten.
    async fn register(&self, policies: &[Policy]) -> Result<()>;
    /// Every policy published with [`RateLimitBackend::register`], by name.
    async fn registered(&self) -> Result<Vec<Policy>>;
    /// Whether the backend answers, for a fallback to probe recovery
    /// without spending a real decision on it.
    async fn ping(&self) -> Result<()>;
    /// Where decisions are made (`in-process`, `redis`) and whether they
    /// currently are made there; see [`LimiterStatus`].
    fn status(&self) -> LimiterStatus;
}

/// How a limiter is doing, for a dashboard banner and health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterStatus {
    /// Where decisions are made normally: `in-process` or `redis`.
    pub backend: &'static str,
    /// What happens while that backend is unreachable, if a fallback is
    /// configured.
    pub fallback: Option<FallbackMode>,
    /// Since when (ms since the epoch) decisions are made by the fallback;
    /// `None` while the backend answers.
    pub degraded_since: Option<i64>,
    /// The backend's error that caused the fallback.
    pub reason: Option<String>,
    /// Decisions made by the fallback since the limiter was built.
    pub fallback_decisions: u64,
}

impl LimiterStatus {
    /// The status of a backend that has no fallback and cannot degrade.
    pub fn healthy(backend: &'static str) -> Self {
        Self {
            backend,
            fallback: None,
            degraded_since: None,
            reason: None,
            fallback_decisions: 0,
        }
    }

    /// True while decisions are not made by the shared backend.
    pub fn degraded(&self) -> bool {
        self.degraded_since.is_some()
    }
}

/// What a limiter does while its shared backend (Redis) is unreachable.
/// Which one is right depends on what the limit protects: `Local` keeps
/// every instance limited on its own (the total can reach instances ×
/// limit), `Open` keeps serving as if there were no limit, `Closed`
/// refuses everything (for limits that guard something costly or unsafe).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum FallbackMode {
    /// Per-instance in-memory limits with the same policies.
    #[default]
    Local,
    /// Allow every request.
    Open,
    /// Refuse every request.
    Closed,
}

impl FallbackMode {
    /// The name used in configuration and on the dashboard.
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackMode::Local => "local",
            FallbackMode::Open => "open",
            FallbackMode::Closed => "closed",
        }
    }
}

impl fmt::Display for FallbackMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FallbackMode {
    type Err = CoordError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "local" => Ok(FallbackMode::Local),
            "open" => Ok(FallbackMode::Open),
            "closed" => Ok(FallbackMode::Closed),
            other => Err(CoordError::InvalidOptions(format!(
                "unknown rate-limit fallback {other:?}: expected local, open or closed"
            ))),
        }
    }
}

/// One key's current usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    /// The key.
    pub key: RateKey,
    /// Requests admitted inside its window right now.
    pub count: u32,
    /// End of a block on the key, if blocked (ms since the epoch).
    pub blocked_until: Option<i64>,
}

/// Decisions of one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteCount {
    /// Start of the minute, ms since the epoch.
    pub minute: i64,
    /// Requests allowed.
    pub allowed: u64,
    /// Requests rejected, refusals of blocked keys included.
    pub rejected: u64,
}

/// What one policy is doing, as [`RateLimitBackend::usage`] reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyUsage {
    /// When it was read, ms since the epoch on the deciding clock.
    pub now: i64,
    /// Keys with at least one admitted request inside their window.
    pub active_keys: u64,
    /// Keys blocked right now.
    pub blocked_keys: u64,
    /// The most used keys, most requests first, at most the `top` asked for.
    pub top: Vec<KeyUsage>,
    /// Blocked keys, soonest-ending first, at most [`MAX_LISTED_BLOCKED`].
    pub blocked: Vec<(RateKey, i64)>,
    /// The last [`USAGE_MINUTES`] minutes, oldest first, the current minute
    /// last (zero-filled).
    pub minutes: Vec<MinuteCount>,
}

impl PolicyUsage {
    /// Orders the collected keys (most used first, blocks soonest-ending
    /// first) and keeps the `top` and [`MAX_LISTED_BLOCKED`] first: the
    /// last step of every backend's [`RateLimitBackend::usage`].
    pub(crate) fn rank(&mut self, top: usize) {
        self.top
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        self.top.truncate(top);
        self.blocked
            .sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        self.blocked.truncate(MAX_LISTED_BLOCKED);
    }
}

/// How many minutes of per-minute counts usage reports (one hour).
pub const USAGE_MINUTES: usize = 60;
/// How many blocked keys usage lists (the count is always exact), so an
/// attack from many addresses does not make the dashboard's read unbounded.
pub const MAX_LISTED_BLOCKED: usize = 200;

/// The minute-start timestamps of the last [`USAGE_MINUTES`] minutes up to
/// `now`, oldest first, each with the counts `lookup` gives (zero if none).
pub(crate) fn minute_series(now: i64, lookup: impl Fn(i64) -> (u64, u64)) -> Vec<MinuteCount> {
    let current = now.div_euclid(60_000);
    (0..USAGE_MINUTES as i64)
        .rev()
        .map(|back| {
            let m = current - back;
            let (allowed, rejected) = lookup(m);
            MinuteCount {
                minute: m * 60_000,
                allowed,
                rejected,
            }
        })
        .collect()
}

/// The entry point services use: policies by name plus a backend. Cheap to
/// clone; clones share the backend.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    policies: Arc<HashMap<String, Policy>>,
    backend: Arc<dyn RateLimitBackend>,
}

impl RateLimiter {
    /// A limiter with the given policies. Two policies with one name are
    /// refused, since one of them would silently never apply.
    pub fn new(
        backend: Arc<dyn RateLimitBackend>,
        policies: impl IntoIterator<Item = Policy>,
    ) -> Result<Self> {
        let mut map = HashMap::new();
        for policy in policies {
            if map.contains_key(policy.name()) {
                return Err(CoordError::InvalidPolicy {
                    name: policy.name,
                    reason: "defined twice".into(),
                });
            }
            map.insert(policy.name.clone(), policy);
        }
        Ok(Self {
            policies: Arc::new(map),
            backend,
        })
    }

    /// The policy with this name, if configured.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name)
    }

    /// All configured policies (for a dashboard's list).
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    /// Decides one request of `key` under the named policy.
    pub async fn check(&self, policy: &str, key: &str) -> Result<Decision> {
        let (policy, key) = self.resolve(policy, key)?;
        self.backend.check(policy, &key).await
    }

    /// Lifts a block (operator action). The policy may also be one another
    /// process registered, so a dashboard can unblock its services' keys.
    pub async fn unblock(&self, policy: &str, key: &str) -> Result<()> {
        let key = RateKey::new(key)?;
        let policy = self.resolve_any(policy).await?;
        self.backend.unblock(&policy, &key).await
    }

    /// Gives `key` its full quota back and lifts any block (also for
    /// registered policies).
    pub async fn reset(&self, policy: &str, key: &str) -> Result<()> {
        let key = RateKey::new(key)?;
        let policy = self.resolve_any(policy).await?;
        self.backend.reset(&policy, &key).await
    }

    /// Publishes this limiter's policies on its backend, so that a
    /// dashboard sharing the backend lists them. Services call it once at
    /// start-up.
    pub async fn register(&self) -> Result<()> {
        let mut policies: Vec<Policy> = self.policies.values().cloned().collect();
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        self.backend.register(&policies).await
    }

    /// Every policy known here: this limiter's own and those registered on
    /// the backend by other processes (own definitions win), by name.
    pub async fn known_policies(&self) -> Result<Vec<Policy>> {
        let mut all: HashMap<String, Policy> = self
            .backend
            .registered()
            .await?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        for policy in self.policies.values() {
            all.insert(policy.name.clone(), policy.clone());
        }
        let mut all: Vec<Policy> = all.into_values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// The usage of one policy (own or registered); see
    /// [`RateLimitBackend::usage`].
    pub async fn usage(&self, policy: &str, top: usize) -> Result<PolicyUsage> {
        let policy = self.resolve_any(policy).await?;
        self.backend.usage(&policy, top).await
    }

    /// The backend's readiness probe (for Redis: `PING`, the cluster's
    /// state and a read of one of its keys), for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        self.backend.ping().await
    }

    /// The backend's status (degraded or not).
    pub fn status(&self) -> LimiterStatus {
        self.backend.status()
    }

    fn resolve(&self, policy: &str, key: &str) -> Result<(&Policy, RateKey)> {
        let policy = self
            .policies
            .get(policy)
            .ok_or_else(|| CoordError::UnknownPolicy(policy.to_owned()))?;
        Ok((policy, RateKey::new(key)?))
    }

    async fn resolve_any(&self, name: &str) -> Result<Policy> {
        if let Some(policy) = self.policies.get(name) {
            return Ok(policy.clone());
        }
        self.backend
            .registered()
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| CoordError::UnknownPolicy(name.to_owned()))
    }
}

/// Converts a non-negative millisecond count into a [`Duration`].
pub(crate) fn ms(value: i64) -> Duration {
    Duration::from_millis(value.max(0) as u64)
}
