//! The in-process bus of the embedded deployment.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{broadcast, watch};

use super::{ChannelBus, ChannelName, RawMessage, RawSubscription, SUBSCRIBER_BUFFER};
use crate::error::Result;

/// A bus inside one process, for the embedded default where every
/// "instance" (a simulated one in the demo, or the single real one) shares
/// the process. Cheap to clone: clones are the same bus.
///
/// One broadcast carries all channels; subscriptions filter by name. That
/// keeps the bus a single value with no registry to clean up, at the cost
/// of each subscriber glancing at other channels' messages, which is
/// negligible at notification rates.
#[derive(Clone, Debug)]
pub struct LocalBus {
    tx: broadcast::Sender<RawMessage>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBus {
    /// A new, empty bus.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self { tx }
    }

    fn raw(&self, filter: Option<Arc<str>>) -> RawSubscription {
        let (connected_tx, connected) = watch::channel(true);
        RawSubscription {
            rx: self.tx.subscribe(),
            filter,
            connected,
            _connected_tx: Some(connected_tx),
            task: None,
        }
    }
}

#[async_trait]
impl ChannelBus for LocalBus {
    async fn publish(&self, channel: &ChannelName, message: &str) -> Result<()> {
        // An error only means that nobody subscribes right now.
        let _ = self.tx.send(RawMessage {
            channel: channel.as_str().into(),
            payload: message.into(),
        });
        Ok(())
    }

    async fn subscribe(&self, channel: &ChannelName) -> Result<RawSubscription> {
        Ok(self.raw(Some(channel.as_str().into())))
    }

    async fn observe(&self) -> Result<RawSubscription> {
        Ok(self.raw(None))
    }
}
