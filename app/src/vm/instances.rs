//! View model of the instances page (`/instances`): every instance's
//! heartbeat and synced state against the database's.
//!
//! Plain data filled by the server from `coord::instances` and
//! `coord::sync`, so the page can be rendered and tested without Redis or
//! a database.

/// Whether an instance is heartbeating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstanceState {
    /// Heartbeat recent.
    #[default]
    Live,
    /// Heartbeat older than the threshold: stuck or partitioned.
    Stale,
    /// Heartbeat expired or the instance left.
    Gone,
}

impl InstanceState {
    /// Label shown in the badge.
    pub fn label(self) -> &'static str {
        match self {
            InstanceState::Live => "Live",
            InstanceState::Stale => "Stale",
            InstanceState::Gone => "Gone",
        }
    }

    /// CSS class of the badge.
    pub fn class(self) -> &'static str {
        match self {
            InstanceState::Live => "live",
            InstanceState::Stale => "stale",
            InstanceState::Gone => "gone",
        }
    }
}

/// One instance's row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceRow {
    /// The instance id (validated, but shown escaped anyway).
    pub id: String,
    /// Its role (`api`, `worker`, …).
    pub role: String,
    /// Its software version.
    pub version: String,
    /// Live, stale or gone.
    pub state: InstanceState,
    /// Age of its last heartbeat.
    pub heartbeat_age_ms: i64,
    /// How long it has been running (ms).
    pub uptime_ms: i64,
    /// The synced-state version it has applied.
    pub applied_version: i64,
    /// Changes it is behind the database (latest − applied), when known.
    pub lag_changes: Option<i64>,
    /// How long ago it last synced, when it is behind (ms).
    pub lag_ms: Option<i64>,
    /// Hash of its applied state (hex).
    pub state_hash: String,
    /// Whether that hash equals the database's; `None` when the instance
    /// is behind (a different hash is then expected, not drift).
    pub hash_matches: Option<bool>,
    /// Notifications received / skipped as its own / processed / malformed.
    pub received: u64,
    /// See `received`.
    pub skipped_self: u64,
    /// See `received`.
    pub processed: u64,
    /// See `received`.
    pub malformed: u64,
    /// Reloads that covered several notifications.
    pub batches: u64,
    /// Duration of its last reload.
    pub last_reload_ms: Option<f64>,
    /// Its last error.
    pub last_error: Option<String>,
    /// Whether its notification bus is connected.
    pub bus_connected: bool,
    /// Whether it is polling the database instead.
    pub polling: bool,
    /// The first [`CACHES_PER_INSTANCE`] cache namespaces it reports, by
    /// name.
    pub caches: Vec<InstanceCacheRow>,
    /// Namespaces it reports past those shown.
    pub more_caches: usize,
}

/// Cache namespaces shown per instance: a service opening dozens would
/// otherwise make its row the page; the Cache page lists them all.
pub const CACHES_PER_INSTANCE: usize = 5;

/// Whether an instance's copy of a cache namespace agrees with the others'
/// (the FHIR design's consistency check), as the hub compares them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheAgreement {
    /// It holds the same keys as another live instance, with the same
    /// values.
    Matches,
    /// It holds the same keys as others, with other values: it missed an
    /// invalidation.
    Drifted,
    /// No other live instance holds the same keys, so there is nothing to
    /// compare its hash with (or the hub has no figures yet).
    #[default]
    NotComparable,
}

impl CacheAgreement {
    /// The badge's text.
    pub fn label(self) -> &'static str {
        match self {
            CacheAgreement::Matches => "matches",
            CacheAgreement::Drifted => "drifted",
            CacheAgreement::NotComparable => "not comparable",
        }
    }

    /// The badge's CSS class (the state-hash badge's colours).
    pub fn class(self) -> &'static str {
        match self {
            CacheAgreement::Matches => "badge matches",
            CacheAgreement::Drifted => "badge drifted",
            CacheAgreement::NotComparable => "badge unknown",
        }
    }
}

/// One cache namespace an instance reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceCacheRow {
    /// The namespace (shown escaped).
    pub namespace: String,
    /// Its Cache page (`/cache?ns=…`, query-encoded).
    pub href: String,
    /// Whether this instance's copy agrees with the others'.
    pub agreement: CacheAgreement,
}

impl InstanceRow {
    /// Stale, gone, or drifted: worth an operator's attention (and, later,
    /// an alert).
    pub fn needs_attention(&self) -> bool {
        self.state != InstanceState::Live
            || self.hash_matches == Some(false)
            || self
                .caches
                .iter()
                .any(|c| c.agreement == CacheAgreement::Drifted)
    }
}

/// Everything the instances page (`/instances`) shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstancesVm {
    /// The database's latest synced-state version, when it answered.
    pub latest_version: Option<i64>,
    /// The database's state hash (hex), when it answered.
    pub latest_hash: Option<String>,
    /// Heartbeat age after which an instance is stale (ms), for the legend.
    pub stale_after_ms: i64,
    /// Every known instance, by id.
    pub instances: Vec<InstanceRow>,
}
