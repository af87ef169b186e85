//! The Instances page's view model from the instance figures.

use app::vm::instances::{InstanceRow, InstanceState, InstancesVm};
use coord::instances::InstanceStatus;

use super::{InstanceFacts, InstanceFigures};

/// The badge of a status.
pub fn state(status: InstanceStatus) -> InstanceState {
    match status {
        InstanceStatus::Live => InstanceState::Live,
        InstanceStatus::Stale => InstanceState::Stale,
        InstanceStatus::Gone => InstanceState::Gone,
    }
}

fn row(facts: &InstanceFacts) -> InstanceRow {
    let report = &facts.view.report;
    let sync = &report.sync;
    InstanceRow {
        id: report.id.to_string(),
        role: report.role.clone(),
        version: report.version.clone(),
        state: state(facts.view.status),
        heartbeat_age_ms: facts.view.heartbeat_age_ms,
        uptime_ms: facts.uptime_ms,
        applied_version: sync.applied_version,
        lag_changes: facts.lag_changes,
        lag_ms: facts.lag_ms,
        hash_matches: facts.hash_matches,
        state_hash: sync.state_hash.clone(),
        received: sync.notifications_received,
        skipped_self: sync.skipped_self,
        processed: sync.processed,
        malformed: sync.malformed,
        batches: sync.debounce_batches,
        last_reload_ms: sync.processing_latency_ms,
        last_error: sync.last_error.clone(),
        bus_connected: sync.bus_connected,
        polling: sync.polling,
    }
}

/// The page; an empty one when instances are not watched.
pub fn page(figures: Option<&InstanceFigures>) -> InstancesVm {
    let Some(figures) = figures else {
        return InstancesVm::default();
    };
    InstancesVm {
        latest_version: figures.latest_version,
        latest_hash: figures.latest_hash.clone(),
        stale_after_ms: figures.stale_after_ms,
        instances: figures.instances.iter().map(row).collect(),
    }
}

/// The overview's instances card: how many of the instances that heartbeat
/// are in sync ("3/3 in sync"), and how many drifted, are behind or stale.
pub fn glance(figures: &InstanceFigures) -> app::InstancesGlance {
    let mut glance = app::InstancesGlance::default();
    for facts in &figures.instances {
        match facts.view.status {
            InstanceStatus::Gone => continue,
            InstanceStatus::Stale => glance.stale += 1,
            InstanceStatus::Live => match facts.hash_matches {
                Some(true) => glance.in_sync += 1,
                Some(false) => glance.drifted += 1,
                None => glance.behind += 1,
            },
        }
        glance.present += 1;
    }
    glance
}
