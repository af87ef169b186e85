//! The Redis bus of the scale-out deployment: PUBLISH/SUBSCRIBE on
//! `<prefix>:notifications:<channel>`.
//!
//! Each subscription (and each observer) owns one pub/sub connection and a
//! task that reads it. A service has a handful of channels, so the extra
//! connections cost little, and in exchange every subscription reconnects,
//! resubscribes and reports its own `connected` state independently.
//! Publishing goes through one shared multiplexed connection that
//! reconnects by itself.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::RedisError;
use tokio::sync::{broadcast, watch};

use super::{ChannelBus, ChannelName, RawMessage, RawSubscription, SUBSCRIBER_BUFFER};
use crate::error::{CoordError, Result};
use crate::redis::{
    self as conn, Conn, Endpoint, PubSubEvent, Reconnect, Target, listen_pubsub, open_pubsub,
};

/// Reconnection settings of the publishing connection: few retries so a
/// publisher learns of an outage within about a second; a PUBLISH may take
/// 5 s.
const RECONNECT: Reconnect = Reconnect {
    connect_timeout: Duration::from_secs(3),
    response_timeout: Duration::from_secs(5),
    retries: 2,
    max_delay: Duration::from_secs(1),
};

/// Notification channels in Redis, shared by every process that connects
/// with the same prefix. Cheap to clone: clones share the publishing
/// connection.
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    conn: Conn,
    prefix: String,
    /// `<prefix>:notifications:`, what every channel of this bus starts with.
    base: String,
}

/// Shows the prefix, never the URL (it may hold a password).
impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// Connects (`redis://` or `rediss://` URL) and checks with `PING`
    /// within 5 s, so a misconfigured URL fails at start-up rather than at
    /// the first change. Channels live under `prefix`, so several
    /// deployments (or tests) can share one Redis.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        validate_prefix(prefix)?;
        let (endpoint, conn) = conn::connect(url, RECONNECT).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                conn,
                prefix: prefix.to_owned(),
                base: format!("{prefix}:notifications:"),
            }),
        })
    }

    /// The Redis channel a channel name maps to.
    pub fn redis_channel(&self, channel: &ChannelName) -> String {
        format!("{}{}", self.inner.base, channel.as_str())
    }

    /// Receives every message on Redis channels matching a glob `pattern`
    /// (PSUBSCRIBE), with full Redis channel names, for a dashboard that
    /// watches more than this bus's prefix.
    pub async fn observe_pattern(&self, pattern: &str) -> Result<RawSubscription> {
        self.start(Target::Pattern(pattern.to_owned()), String::new())
            .await
    }

    /// How many connections (of any process) subscribe to `channel` right
    /// now (`PUBSUB NUMSUB`), for the dashboard; pattern observers are not
    /// included. On a cluster each node counts the connections it holds,
    /// so the answer is the sum over every node.
    pub async fn subscriber_count(&self, channel: &ChannelName) -> Result<u64> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB").arg(self.redis_channel(channel));
        let answers = self
            .inner
            .conn
            .clone()
            .on_all_nodes(&cmd)
            .await
            .map_err(CoordError::from)?;
        let mut total = 0;
        for (_, answer) in answers {
            let (_, count): (String, u64) = redis::from_redis_value(answer)
                .map_err(|e| CoordError::from(RedisError::from(e)))?;
            total += count;
        }
        Ok(total)
    }

    /// Subscribes once (so the caller knows messages published from now on
    /// arrive), then hands the connection to a listener task.
    async fn start(&self, target: Target, strip: String) -> Result<RawSubscription> {
        let first = open_pubsub(&self.inner.endpoint, &target)
            .await
            .map_err(CoordError::from)?;
        let (tx, rx) = broadcast::channel(SUBSCRIBER_BUFFER);
        let (connected_tx, connected) = watch::channel(true);
        let task = tokio::spawn(listen_pubsub(
            self.inner.endpoint.clone(),
            target,
            "notification",
            first,
            forwarder(strip, tx, connected_tx),
        ));
        Ok(RawSubscription {
            rx,
            filter: None,
            connected,
            _connected_tx: None,
            task: Some(task.abort_handle()),
        })
    }
}

#[async_trait]
impl ChannelBus for RedisBus {
    async fn publish(&self, channel: &ChannelName, message: &str) -> Result<()> {
        redis::cmd("PUBLISH")
            .arg(self.redis_channel(channel))
            .arg(message)
            .query_async::<()>(&mut self.inner.conn.clone())
            .await
            .map_err(CoordError::from)
    }

    async fn subscribe(&self, channel: &ChannelName) -> Result<RawSubscription> {
        let name = self.redis_channel(channel);
        self.start(Target::Channel(name), self.inner.base.clone())
            .await
    }

    async fn observe(&self) -> Result<RawSubscription> {
        let pattern = format!("{}*", self.inner.base);
        self.start(Target::Pattern(pattern), self.inner.base.clone())
            .await
    }
}

/// Forwards every message of `target` to the subscription (without the
/// `strip` prefix) and keeps `connected` up to date; messages published
/// while Redis is away are lost, which is why `connected` exists: a caller
/// polls while it is `false` and catches up after.
fn forwarder(
    strip: String,
    sender: broadcast::Sender<RawMessage>,
    connected: watch::Sender<bool>,
) -> impl FnMut(PubSubEvent<'_>) {
    move |event| match event {
        PubSubEvent::Message(msg) => {
            let name = msg.get_channel_name();
            let channel = name.strip_prefix(strip.as_str()).unwrap_or(name);
            let payload = String::from_utf8_lossy(msg.get_payload_bytes());
            // No receiver only means the subscription is being dropped.
            let _ = sender.send(RawMessage {
                channel: channel.into(),
                payload: payload.into(),
            });
        }
        // Notify only on a real change, so a watcher's `changed()` means
        // "the connection went down or came back", never a no-op.
        PubSubEvent::Up { .. } => {
            connected.send_if_modified(|up| !std::mem::replace(up, true));
        }
        PubSubEvent::Down => {
            connected.send_if_modified(|up| std::mem::replace(up, false));
        }
    }
}

/// Rejects prefixes that would break the channel layout or the observer's
/// pattern: glob characters would match other deployments' channels,
/// whitespace is unreadable in `redis-cli`.
fn validate_prefix(prefix: &str) -> Result<()> {
    conn::check_prefix(
        prefix,
        &['{', '}', '*', '?', '[', ']', '\\'],
        "braces, glob characters or whitespace",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        assert!(validate_prefix("switchyard").is_ok());
        assert!(validate_prefix("a:b-c").is_ok());
        for bad in ["", "a*", "a?", "a[b]", "a b", "a{b"] {
            assert!(matches!(
                validate_prefix(bad),
                Err(CoordError::InvalidOptions(_))
            ));
        }
    }
}
