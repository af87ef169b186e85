//! View models of the fleet pages: notification channels and instances.
//!
//! Like the queue view models, plain data filled by the server from
//! `coord::channels`, `coord::instances` and `coord::sync`, so the pages can
//! be rendered and tested without Redis or a database.

/// One message seen on a channel, for the "last messages" list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageRow {
    /// When the dashboard saw it (ms since the epoch).
    pub at: i64,
    /// The sending instance, when the message is a coord envelope.
    pub instance: Option<String>,
    /// The envelope's change type (`created`, `updated`, …), if any.
    pub change_type: Option<String>,
    /// The raw payload, truncated (any text: must be escaped).
    pub preview: String,
    /// True when the message was not a valid envelope.
    pub malformed: bool,
}

/// One notification channel's traffic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelRow {
    /// The channel's name (under the bus prefix; any text from foreign
    /// services: must be escaped).
    pub name: String,
    /// Messages per second over the last 10 seconds.
    pub per_second: f64,
    /// Messages seen since the dashboard started.
    pub total: u64,
    /// Messages that were not valid envelopes.
    pub malformed: u64,
    /// Current subscribers (Redis `PUBSUB NUMSUB`); `None` on the
    /// in-process bus, where it is not known.
    pub subscribers: Option<u64>,
    /// Messages by sending instance, most first.
    pub by_instance: Vec<(String, u64)>,
    /// Messages per minute over the last hour, oldest first (60 points).
    pub per_minute: Vec<(i64, u64)>,
    /// The newest messages, newest first.
    pub last_messages: Vec<MessageRow>,
}

/// Everything the channels page (`/channels`) shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelsVm {
    /// Which bus is observed (`in-process`, `redis`).
    pub bus: String,
    /// Whether the observer is currently connected to the bus.
    pub connected: bool,
    /// Every channel seen, by name.
    pub channels: Vec<ChannelRow>,
}

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
