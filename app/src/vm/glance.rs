//! The overview's one-pane summary of every capability besides the native
//! queues (which have the totals and the trouble list): BullMQ, instances,
//! channels, rate limits and alerts, a card each. Each card is a handful
//! of numbers the server sums from figures it already holds, so the
//! overview costs the same at 3 instances or 300, 10 channels or 10,000.

/// One card per capability the server runs; `None` where it does not
/// (BullMQ off, no instance registry), so the card is left out rather
/// than showing zeros that read as "all quiet".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GlanceVm {
    /// BullMQ queues' totals.
    pub bullmq: Option<BullGlance>,
    /// Instances in sync, drifted, behind, stale.
    pub instances: Option<InstancesGlance>,
    /// Channel traffic.
    pub channels: Option<ChannelsGlance>,
    /// The services' rate limiting (the dashboard's own policies apart).
    pub ratelimits: Option<RateLimitsGlance>,
    /// Alerts pending and firing.
    pub alerts: Option<AlertsGlance>,
}

/// BullMQ queues summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullGlance {
    /// Queues found.
    pub queues: u64,
    /// Jobs waiting (wait and prioritized).
    pub waiting: u64,
    /// Jobs active.
    pub active: u64,
    /// Jobs failed.
    pub failed: u64,
    /// Why BullMQ's Redis could not be read, while it cannot.
    pub error: Option<String>,
}

/// Instances by sync status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstancesGlance {
    /// Live instances whose state hash matches the database's.
    pub in_sync: u64,
    /// Instances that heartbeat (live or stale): the "of" in "3/3 in sync".
    pub present: u64,
    /// Live, at the latest version, with a different hash.
    pub drifted: u64,
    /// Live but behind the latest version.
    pub behind: u64,
    /// Missing heartbeats.
    pub stale: u64,
}

/// Channel traffic summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelsGlance {
    /// Channels seen.
    pub channels: u64,
    /// Messages per second over all of them.
    pub per_second: f64,
    /// Channels with no message in the last [`SILENT_MINUTES`] minutes.
    pub silent: u64,
    /// Whether the observer is connected to the bus.
    pub connected: bool,
}

/// Minutes without a message after which a channel counts as silent.
pub const SILENT_MINUTES: usize = 5;

/// The services' rate limiting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitsGlance {
    /// Requests rejected in the last full minute.
    pub rejected_per_min: u64,
    /// Keys blocked right now.
    pub blocked_keys: u64,
    /// Services' policies.
    pub policies: u64,
    /// The limiter runs on a fallback (per instance, open or closed).
    pub degraded: bool,
}

/// Alerts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertsGlance {
    /// Firing and not silenced.
    pub firing: u64,
    /// Pending (condition holds, not for long enough yet).
    pub pending: u64,
    /// Firing but silenced.
    pub silenced: u64,
}
