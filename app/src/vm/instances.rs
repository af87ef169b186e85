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
}

impl InstanceRow {
    /// Stale, gone, or drifted: worth an operator's attention (and, later,
    /// an alert).
    pub fn needs_attention(&self) -> bool {
        self.state != InstanceState::Live || self.hash_matches == Some(false)
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
