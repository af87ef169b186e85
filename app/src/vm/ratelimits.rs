//! View model of the rate limits page (`/ratelimits`).
//!
//! Plain data filled by the server from `coord::ratelimit` (policies, their
//! usage index and the limiter's status), so the page can be rendered and
//! tested without Redis.

/// The limiter's health as the page's banner shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimiterStatusVm {
    /// Where decisions are made normally: `in-process` or `redis`.
    pub backend: String,
    /// What happens while the shared backend is unreachable: `local`
    /// (per-instance in-memory limits), `open` (allow everything) or
    /// `closed` (refuse everything).
    pub fallback: String,
    /// True while decisions are made by the fallback instead of the shared
    /// backend: the banner is shown.
    pub degraded: bool,
    /// Since when (ms since the epoch) the limiter is degraded.
    pub degraded_since: Option<i64>,
    /// Why (the backend's last error), when degraded.
    pub reason: Option<String>,
    /// Decisions made by the fallback since the dashboard started.
    pub fallback_decisions: u64,
}

/// One policy and its current usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyRow {
    /// The policy's name (from any service sharing the backend: must be
    /// escaped).
    pub name: String,
    /// Requests per window advertised to clients.
    pub limit: u32,
    /// Extra requests allowed on top of the limit.
    pub burst: u32,
    /// Window length in ms.
    pub window_ms: i64,
    /// Auto-block rule in words (`"10 rejections in 1 min → blocked 5 min"`),
    /// when the policy has one.
    pub block: Option<String>,
    /// Keys with at least one request inside their window.
    pub active_keys: u64,
    /// Keys currently blocked.
    pub blocked_keys: u64,
    /// Requests allowed in the current minute.
    pub allowed_this_minute: u64,
    /// Requests rejected in the current minute.
    pub rejected_this_minute: u64,
    /// One of the dashboard's own policies (`dashboard.*`).
    pub own: bool,
}

/// One key's usage, for the "top keys" table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyUsageRow {
    /// The policy the key is limited by.
    pub policy: String,
    /// The key: a client id, user or IP (any text: must be escaped).
    pub key: String,
    /// Requests inside the window right now.
    pub count: u32,
    /// The policy's limit: the one denominator usage is told against.
    pub limit: u32,
    /// The window's hard cap (`limit + burst`).
    pub capacity: u32,
    /// `count / limit` in percent (can exceed 100 with a burst).
    pub percent: f64,
    /// End of a block on this key (ms since the epoch), if blocked.
    pub blocked_until: Option<i64>,
}

/// One blocked key, with what the Unblock button needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockedRow {
    /// The policy the block belongs to.
    pub policy: String,
    /// The blocked key (any text: must be escaped).
    pub key: String,
    /// When the block ends on its own (ms since the epoch).
    pub until: i64,
}

/// Requests decided in one minute, across all policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateMinute {
    /// Start of the minute (ms since the epoch).
    pub minute: i64,
    /// Requests allowed in it.
    pub allowed: u64,
    /// Requests rejected in it (including refusals of blocked keys).
    pub rejected: u64,
}

/// Everything the rate limits page shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimitsVm {
    /// The banner's data.
    pub status: LimiterStatusVm,
    /// Every policy known to the backend, by name.
    pub policies: Vec<PolicyRow>,
    /// The most used keys of the services' policies, highest percentage
    /// first.
    pub top_keys: Vec<KeyUsageRow>,
    /// The most used keys of the dashboard's own policies (`dashboard.*`:
    /// its pages, buttons, API and sign-in), apart so they never crowd out
    /// or mix with the services'.
    pub own_keys: Vec<KeyUsageRow>,
    /// Every blocked key, soonest-ending first.
    pub blocked: Vec<BlockedRow>,
    /// Allowed and rejected requests per minute over the last hour, oldest
    /// first (60 points, the last one the current minute).
    pub per_minute: Vec<RateMinute>,
    /// When the figures were read (ms since the epoch); ages and block ends
    /// are shown relative to it.
    pub now: i64,
}
