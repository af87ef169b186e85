//! The overview (`/`): the one page that shows every capability at once.
//! The queues' part (totals, the trouble list, the charts) is the queues
//! capability's; each other capability turns its own figures into its
//! card (`<capability>::vm::glance`), and this module only puts them side
//! by side. Everything comes from figures already held (the hub's snapshot
//! and the BullMQ monitor's), so the page reads no backend.

use crate::bullmq::BullSnapshot;
use crate::live::Snapshot;

/// The overview as of `snapshot` and, when BullMQ is watched, the
/// monitor's latest counts.
pub fn overview(snapshot: &Snapshot, bull: Option<&BullSnapshot>) -> app::OverviewVm {
    app::OverviewVm {
        glance: glance(snapshot, bull),
        ..crate::queues::vm::overview(snapshot)
    }
}

/// A card per capability the server runs.
pub fn glance(snapshot: &Snapshot, bull: Option<&BullSnapshot>) -> app::GlanceVm {
    app::GlanceVm {
        bullmq: bull.map(crate::bullmq::vm::glance),
        instances: snapshot
            .instances
            .as_ref()
            .map(crate::instances::vm::glance),
        channels: snapshot.channels.as_ref().map(crate::channels::vm::glance),
        ratelimits: snapshot
            .ratelimits
            .as_ref()
            .map(crate::ratelimits::vm::glance),
        alerts: snapshot
            .alerts
            .as_ref()
            .map(|view| crate::alerts::vm::glance(view, snapshot.taken_at)),
    }
}
