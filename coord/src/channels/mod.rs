//! Typed notification channels between service instances.
//!
//! When one instance changes shared state, the others must learn of it to
//! reload their caches. This module carries those notifications in two
//! layers:
//!
//! * a [`ChannelBus`] moves raw JSON text on named channels, either in
//!   process ([`LocalBus`], the embedded default, where all "instances" live
//!   in one process) or through Redis PUBLISH/SUBSCRIBE ([`RedisBus`], with
//!   reconnect and resubscribe). Keeping it untyped lets the dashboard
//!   observe channels of services that do not use `coord`;
//! * a [`Channel<T>`] wraps the payload in an [`Envelope`] stamped with this
//!   instance's id, and its [`Subscription<T>`] hands the caller only
//!   decoded messages from *other* instances, counting what it skipped.
//!
//! # Loop prevention
//!
//! Receiving never publishes anything: [`Subscription::recv`] only returns
//! the envelope. Code that applies a remote change must apply it with a
//! "remote" flag and not republish it; the envelope's `source`
//! ([`source::SYNC`] for changes that came out of a sync path) lets a
//! receiver see where a change came from. Together with self-skip this
//! means a change travels exactly one hop.

mod envelope;
mod local;
mod redis;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

pub use envelope::{ChangeType, ChannelName, Envelope, MAX_CHANNEL_NAME_LEN, source};
pub use local::LocalBus;
pub use redis::RedisBus;

use crate::error::{CoordError, Result};
use crate::instance::InstanceId;
use crate::time::now_ms;

/// Messages a subscriber may fall behind by before it misses some (and
/// sees [`RawEvent::Lagged`]); enough for a burst of a thousand changes.
pub const SUBSCRIBER_BUFFER: usize = 4096;

/// One message as the bus carries it: which channel, and the text.
///
/// Shared (`Arc`) because one published message is handed to every
/// subscriber of the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    /// The channel name without the bus prefix (for a pattern observer on
    /// Redis: whatever follows `<prefix>:notifications:`, which for
    /// foreign services need not be a valid [`ChannelName`]).
    pub channel: Arc<str>,
    /// The message text, normally an [`Envelope`] as JSON. Bytes that are
    /// not UTF-8 arrive replaced by U+FFFD, and then fail to decode.
    pub payload: Arc<str>,
}

/// What a raw subscription yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawEvent {
    /// A message.
    Message(RawMessage),
    /// The subscriber fell behind and this many messages were dropped for
    /// it; a state-syncing caller should re-read the source of truth.
    Lagged(u64),
}

/// Moves raw JSON text between instances on named channels.
///
/// Object safe so that a service picks the implementation at start-up from
/// configuration and the rest of the code holds an `Arc<dyn ChannelBus>`.
#[async_trait]
pub trait ChannelBus: Send + Sync + fmt::Debug {
    /// Sends `message` to every current subscriber of `channel`, in every
    /// instance (including the sender's own; typed subscriptions skip it).
    /// Nobody listening is not an error. Fails with `Unavailable` when the
    /// transport is down, so a caller knows the others were not told.
    async fn publish(&self, channel: &ChannelName, message: &str) -> Result<()>;

    /// Starts receiving `channel`. Messages published after this returns
    /// are delivered; earlier ones are not (there is no history).
    async fn subscribe(&self, channel: &ChannelName) -> Result<RawSubscription>;

    /// Receives every message on every channel of this bus (for Redis:
    /// every channel under the prefix, also of services not using
    /// `coord`), for the dashboard's traffic view.
    async fn observe(&self) -> Result<RawSubscription>;
}

/// A stream of raw messages from a bus, and whether it is currently
/// connected. Dropping it stops the subscription (and, on Redis, closes its
/// connection).
pub struct RawSubscription {
    rx: broadcast::Receiver<RawMessage>,
    /// Only messages of this channel are yielded (the local bus shares one
    /// broadcast among all channels).
    filter: Option<Arc<str>>,
    connected: watch::Receiver<bool>,
    /// Keeps the `connected` channel open when nothing else does.
    _connected_tx: Option<watch::Sender<bool>>,
    task: Option<AbortHandle>,
}

impl fmt::Debug for RawSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSubscription")
            .field("filter", &self.filter)
            .field("connected", &*self.connected.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for RawSubscription {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl RawSubscription {
    /// The next message, or a note that some were missed; `None` once the
    /// bus is gone and nothing more can arrive.
    pub async fn recv(&mut self) -> Option<RawEvent> {
        loop {
            match self.rx.recv().await {
                Ok(msg) => {
                    if let Some(filter) = &self.filter
                        && *filter != msg.channel
                    {
                        continue;
                    }
                    return Some(RawEvent::Message(msg));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => return Some(RawEvent::Lagged(n)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Whether messages can currently arrive: `false` while a Redis
    /// subscription is reconnecting, so a caller can fall back to polling
    /// and catch up when it turns `true` again. Always `true` in process.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }
}

/// A point-in-time copy of a subscription's counters, plain data for
/// reports and heartbeats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelCounters {
    /// Messages that arrived on the channel, whatever became of them.
    pub received: u64,
    /// Messages skipped because this instance published them.
    pub skipped_self: u64,
    /// Messages skipped because they were not a valid envelope or their
    /// payload did not decode.
    pub malformed: u64,
    /// Messages handed to the caller.
    pub delivered: u64,
    /// Messages lost because the subscriber fell behind.
    pub lagged: u64,
}

/// Live counters of one subscription, shareable with a reporter task while
/// the subscription itself is busy in `recv`.
#[derive(Clone, Debug, Default)]
pub struct ChannelStats {
    cells: Arc<Cells>,
}

#[derive(Debug, Default)]
struct Cells {
    received: AtomicU64,
    skipped_self: AtomicU64,
    malformed: AtomicU64,
    delivered: AtomicU64,
    lagged: AtomicU64,
}

impl ChannelStats {
    /// The counters right now.
    pub fn snapshot(&self) -> ChannelCounters {
        let c = &self.cells;
        ChannelCounters {
            received: c.received.load(Ordering::Relaxed),
            skipped_self: c.skipped_self.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            lagged: c.lagged.load(Ordering::Relaxed),
        }
    }
}

fn bump(cell: &AtomicU64, by: u64) {
    cell.fetch_add(by, Ordering::Relaxed);
}

/// A typed channel as seen by one instance: publishes envelopes stamped
/// with its id and subscribes to the other instances' envelopes.
pub struct Channel<T> {
    bus: Arc<dyn ChannelBus>,
    name: ChannelName,
    instance: InstanceId,
    _payload: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Self {
            bus: self.bus.clone(),
            name: self.name.clone(),
            instance: self.instance.clone(),
            _payload: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("instance", &self.instance)
            .field("bus", &self.bus)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> Channel<T> {
    /// A channel on `bus` for the instance `instance`. Cheap: nothing is
    /// sent or subscribed until asked.
    pub fn new(bus: Arc<dyn ChannelBus>, name: ChannelName, instance: InstanceId) -> Self {
        Self {
            bus,
            name,
            instance,
            _payload: PhantomData,
        }
    }

    /// The channel's name.
    pub fn name(&self) -> &ChannelName {
        &self.name
    }

    /// The instance this handle publishes as and skips.
    pub fn instance(&self) -> &InstanceId {
        &self.instance
    }

    /// Tells the other instances about a change. Call it only after the
    /// change is durable (so a receiver that reloads sees it), and never
    /// for a change that was itself applied from a notification.
    pub async fn publish(
        &self,
        change_type: ChangeType,
        keys: Vec<String>,
        source: &str,
        payload: &T,
    ) -> Result<()> {
        let envelope = Envelope {
            instance_id: self.instance.clone(),
            timestamp: now_ms(),
            change_type,
            keys,
            source: source.to_owned(),
            payload,
        };
        let text = serde_json::to_string(&envelope).map_err(|e| CoordError::MalformedMessage {
            channel: self.name.to_string(),
            reason: format!("payload cannot be serialized: {e}"),
        })?;
        self.bus.publish(&self.name, &text).await
    }

    /// Starts receiving the other instances' messages.
    pub async fn subscribe(&self) -> Result<Subscription<T>> {
        let raw = self.bus.subscribe(&self.name).await?;
        Ok(Subscription {
            raw,
            name: self.name.clone(),
            instance: self.instance.clone(),
            stats: ChannelStats::default(),
            _payload: PhantomData,
        })
    }
}

/// Decoded messages of one channel from other instances.
pub struct Subscription<T> {
    raw: RawSubscription,
    name: ChannelName,
    instance: InstanceId,
    stats: ChannelStats,
    _payload: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.name)
            .field("instance", &self.instance)
            .field("counters", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> Subscription<T> {
    /// The next envelope from another instance. Own messages, malformed
    /// messages and payloads of the wrong shape are counted and skipped
    /// (with a warning for the malformed ones), never returned as errors:
    /// one bad publisher must not stop a subscriber. `None` once the bus is
    /// gone.
    pub async fn recv(&mut self) -> Option<Envelope<T>> {
        loop {
            let msg = match self.raw.recv().await? {
                RawEvent::Message(msg) => msg,
                RawEvent::Lagged(n) => {
                    bump(&self.stats.cells.lagged, n);
                    tracing::warn!(channel = %self.name, missed = n, "notification subscriber fell behind");
                    continue;
                }
            };
            let cells = &self.stats.cells;
            bump(&cells.received, 1);
            match decode::<T>(&msg.payload, &self.instance) {
                Decoded::Own => bump(&cells.skipped_self, 1),
                Decoded::Malformed(reason) => {
                    bump(&cells.malformed, 1);
                    let err = CoordError::MalformedMessage {
                        channel: self.name.to_string(),
                        reason,
                    };
                    tracing::warn!(error = %err, "skipping a malformed notification");
                }
                Decoded::Other(envelope) => {
                    bump(&cells.delivered, 1);
                    return Some(envelope);
                }
            }
        }
    }
}

impl<T> Subscription<T> {
    /// Live counters, to hand to a reporter before looping on `recv`.
    pub fn stats(&self) -> ChannelStats {
        self.stats.clone()
    }

    /// Whether messages can currently arrive (see
    /// [`RawSubscription::connected`]).
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.raw.connected()
    }

    /// The channel's name.
    pub fn name(&self) -> &ChannelName {
        &self.name
    }
}

enum Decoded<T> {
    Own,
    Malformed(String),
    Other(Envelope<T>),
}

/// Reads the envelope first and checks the sender before the payload, so
/// an own message is skipped as such even if this build cannot read its
/// payload (during a rolling upgrade, for instance).
fn decode<T: DeserializeOwned>(text: &str, me: &InstanceId) -> Decoded<T> {
    let envelope: Envelope<serde_json::Value> = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) => return Decoded::Malformed(format!("not an envelope: {e}")),
    };
    if envelope.instance_id == *me {
        return Decoded::Own;
    }
    match serde_json::from_value::<T>(envelope.payload) {
        Ok(payload) => Decoded::Other(Envelope {
            instance_id: envelope.instance_id,
            timestamp: envelope.timestamp,
            change_type: envelope.change_type,
            keys: envelope.keys,
            source: envelope.source,
            payload,
        }),
        Err(e) => Decoded::Malformed(format!(
            "payload from {} does not decode: {e}",
            envelope.instance_id
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> InstanceId {
        InstanceId::new("me").unwrap()
    }

    fn text(instance: &str, payload: serde_json::Value) -> String {
        serde_json::json!({
            "instanceId": instance, "timestamp": 1, "changeType": "created",
            "keys": ["k"], "source": "sync", "payload": payload
        })
        .to_string()
    }

    #[test]
    fn own_messages_are_recognised_before_the_payload() {
        assert!(matches!(
            decode::<u32>(&text("me", serde_json::json!("not a number")), &me()),
            Decoded::Own
        ));
        assert!(matches!(
            decode::<u32>(&text("other", serde_json::json!("not a number")), &me()),
            Decoded::Malformed(_)
        ));
        match decode::<u32>(&text("other", serde_json::json!(4)), &me()) {
            Decoded::Other(env) => {
                assert_eq!(env.payload, 4);
                assert_eq!(env.source, source::SYNC);
                assert_eq!(env.change_type, ChangeType::Created);
            }
            _ => panic!("not delivered"),
        }
        for bad in ["", "null", "{}", "{\"instanceId\":\"other\"}"] {
            assert!(matches!(decode::<u32>(bad, &me()), Decoded::Malformed(_)));
        }
    }
}
