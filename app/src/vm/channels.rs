//! View model of the channels page (`/channels`): the notification bus as
//! the dashboard observes it.
//!
//! Plain data filled by the server from `coord::channels`, so the page can
//! be rendered and tested without Redis.

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
