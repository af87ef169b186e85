//! The caches one instance reports in its heartbeat.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cache, CacheStats, Inner};

/// Something whose figures a heartbeat can take: one open cache, whatever
/// its value type.
pub(super) trait Reports: Send + Sync {
    fn report(&self) -> Pin<Box<dyn Future<Output = CacheStats> + Send + '_>>;
}

impl<T> Reports for Inner<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn report(&self) -> Pin<Box<dyn Future<Output = CacheStats> + Send + '_>> {
        Box::pin(self.stats())
    }
}

/// The caches of one instance, for its heartbeat
/// ([`crate::instances::Heartbeat::start_with_caches`]). It holds them
/// weakly: a cache dropped by the service stops being reported instead of
/// being kept alive by its reporting. Cheap to clone: clones are one set.
#[derive(Clone, Default)]
pub struct CacheSet {
    members: Arc<Mutex<Vec<Weak<dyn Reports>>>>,
}

impl std::fmt::Debug for CacheSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheSet")
            .field("members", &self.len())
            .finish()
    }
}

impl CacheSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports `cache` from now on, until it is dropped (adding it again,
    /// or a clone of it, changes nothing).
    pub fn add<T>(&self, cache: &Cache<T>)
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let weak: Weak<dyn Reports> = Arc::downgrade(&cache.inner) as Weak<dyn Reports>;
        let mut members = self.lock();
        // Without a heartbeat reading it, the set is pruned here, so a
        // service opening short-lived caches does not grow it.
        members.retain(|w| w.strong_count() > 0);
        // Clones of a cache are the same cache.
        if !members.iter().any(|m| Weak::ptr_eq(m, &weak)) {
            members.push(weak);
        }
    }

    /// Caches still open.
    pub fn len(&self) -> usize {
        self.lock().iter().filter(|w| w.strong_count() > 0).count()
    }

    /// True when no cache is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The figures of the first `max` caches still open, by namespace (a
    /// namespace opened twice is reported once); forgets dropped ones.
    pub async fn stats(&self, max: usize) -> Vec<CacheStats> {
        let live: Vec<Arc<dyn Reports>> = {
            let mut members = self.lock();
            members.retain(|w| w.strong_count() > 0);
            members.iter().filter_map(Weak::upgrade).collect()
        };
        let mut out: Vec<CacheStats> = Vec::with_capacity(live.len().min(max));
        for cache in live {
            let stats = cache.report().await;
            if !out.iter().any(|s| s.namespace == stats.namespace) {
                out.push(stats);
            }
            if out.len() == max {
                break;
            }
        }
        out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<dyn Reports>>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }
}
