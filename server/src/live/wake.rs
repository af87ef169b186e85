//! The handle the hub is woken with: made before the hub so the parts it
//! reads can hold one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Asks the hub for a snapshot soon because something outside the queues
/// changed. Made before the hub so the parts it reads can hold one (the
/// channel observer pokes it per message); coalesced like queue events.
#[derive(Clone, Default)]
pub struct Wake {
    inner: Arc<WakeInner>,
}

#[derive(Default)]
struct WakeInner {
    other: AtomicBool,
    notify: Notify,
}

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wake").finish_non_exhaustive()
    }
}

impl Wake {
    /// Marks "something else changed" and wakes the hub.
    pub fn poke(&self) {
        self.inner.other.store(true, Ordering::Release);
        self.inner.notify.notify_one();
    }

    /// Wakes the hub without marking anything (queue changes are marked
    /// in the hub's own pending set).
    pub(crate) fn notify(&self) {
        self.inner.notify.notify_one();
    }

    pub(crate) fn take_other(&self) -> bool {
        self.inner.other.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn has_other(&self) -> bool {
        self.inner.other.load(Ordering::Acquire)
    }
}

impl Wake {
    /// Resolves on the next poke or notify.
    pub(crate) async fn notified(&self) {
        self.inner.notify.notified().await;
    }
}
