//! Invalidation from outside the services: what an operator's "drop this
//! key" on a dashboard does, without knowing the namespace's value type.

use std::sync::Arc;

use super::{CacheError, Invalidation, Namespace, SharedTier, check_key};
use crate::channels::{ChangeType, Channel, ChannelBus, source};
use crate::instance::InstanceId;

/// Drops keys or whole namespaces in the shared tier and tells every
/// instance over the namespace's channel, exactly as a [`super::Cache`]
/// write does, so the services' local tiers follow. Holds no values and
/// opens no subscription.
#[derive(Clone)]
pub struct CacheAdmin {
    shared: Arc<dyn SharedTier>,
    bus: Option<Arc<dyn ChannelBus>>,
    instance: InstanceId,
}

impl std::fmt::Debug for CacheAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheAdmin")
            .field("shared", &self.shared)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl CacheAdmin {
    /// An admin over the services' shared tier and bus, publishing as
    /// `instance` (the dashboard's own id, so no service skips it).
    pub fn new(
        shared: Arc<dyn SharedTier>,
        bus: Option<Arc<dyn ChannelBus>>,
        instance: InstanceId,
    ) -> Self {
        Self {
            shared,
            bus,
            instance,
        }
    }

    /// The shared tier's kind (`local`, `redis`).
    pub fn backend(&self) -> &'static str {
        self.shared.backend()
    }

    /// Drops `key` of `namespace` from the shared tier and from every
    /// instance's local tier.
    pub async fn invalidate(&self, namespace: &str, key: &str) -> Result<(), CacheError> {
        let ns = Namespace::new(namespace)?;
        check_key(key)?;
        self.shared
            .delete(&ns, key)
            .await
            .map_err(|e| CacheError::Shared(Arc::new(e)))?;
        self.publish(&ns, vec![key.to_owned()], false).await
    }

    /// Drops every entry of `namespace`, everywhere; returns how many the
    /// shared tier held.
    pub async fn invalidate_all(&self, namespace: &str) -> Result<u64, CacheError> {
        let ns = Namespace::new(namespace)?;
        let removed = self
            .shared
            .clear(&ns)
            .await
            .map_err(|e| CacheError::Shared(Arc::new(e)))?;
        self.publish(&ns, Vec::new(), true).await?;
        Ok(removed)
    }

    async fn publish(
        &self,
        ns: &Namespace,
        keys: Vec<String>,
        all: bool,
    ) -> Result<(), CacheError> {
        let Some(bus) = &self.bus else {
            return Ok(());
        };
        let channel: Channel<Invalidation> =
            Channel::new(bus.clone(), ns.channel(), self.instance.clone());
        let message = Invalidation {
            namespace: ns.to_string(),
            all,
        };
        channel
            .publish(ChangeType::Deleted, keys, source::API, &message)
            .await
            .map_err(|e| CacheError::Publish(Arc::new(e)))
    }
}
