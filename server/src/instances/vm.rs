//! The Instances page's view model from the instance figures.

use app::vm::instances::{
    CACHES_PER_INSTANCE, CacheAgreement, InstanceCacheRow, InstanceRow, InstanceState, InstancesVm,
};
use coord::instances::InstanceStatus;

use super::{InstanceFacts, InstanceFigures};
use crate::cache::{CacheFigures, NamespaceFigures};

/// The badge of a status.
pub fn state(status: InstanceStatus) -> InstanceState {
    match status {
        InstanceStatus::Live => InstanceState::Live,
        InstanceStatus::Stale => InstanceState::Stale,
        InstanceStatus::Gone => InstanceState::Gone,
    }
}

/// Whether `instance`'s copy of `ns` agrees with the others', as the
/// hub's tracker judged it: drifted, matching (it was compared: another
/// live instance holds the same keys), or neither, so an instance holding
/// keys nobody else holds is never said to match.
fn cache_agreement(ns: Option<&NamespaceFigures>, instance: &str) -> CacheAgreement {
    // The tracker keeps a namespace's instances by id.
    let me = ns.and_then(|ns| {
        ns.instances
            .binary_search_by(|i| i.instance.as_str().cmp(instance))
            .ok()
            .map(|i| &ns.instances[i])
    });
    match me {
        Some(me) if me.drifted => CacheAgreement::Drifted,
        Some(me) if me.compared => CacheAgreement::Matches,
        _ => CacheAgreement::NotComparable,
    }
}

fn cache_rows(
    facts: &InstanceFacts,
    caches: Option<&CacheFigures>,
) -> (Vec<InstanceCacheRow>, usize) {
    let id = facts.view.report.id.to_string();
    let mut names: Vec<&str> = facts
        .view
        .report
        .caches
        .iter()
        .map(|c| c.namespace.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let more = names.len().saturating_sub(CACHES_PER_INSTANCE);
    let rows = names
        .into_iter()
        .take(CACHES_PER_INSTANCE)
        .map(|name| InstanceCacheRow {
            namespace: name.to_owned(),
            href: format!("/cache?ns={}", app::encode_query(name)),
            agreement: cache_agreement(caches.and_then(|c| c.namespace(name)), &id),
        })
        .collect();
    (rows, more)
}

fn row(facts: &InstanceFacts, caches: Option<&CacheFigures>) -> InstanceRow {
    let (cache_rows, more_caches) = cache_rows(facts, caches);
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
        caches: cache_rows,
        more_caches,
    }
}

/// The page; an empty one when instances are not watched. `caches`: the
/// hub's cache figures, which say whether each instance's copy of a
/// namespace agrees with the others'.
pub fn page(figures: Option<&InstanceFigures>, caches: Option<&CacheFigures>) -> InstancesVm {
    let Some(figures) = figures else {
        return InstancesVm::default();
    };
    InstancesVm {
        latest_version: figures.latest_version,
        latest_hash: figures.latest_hash.clone(),
        stale_after_ms: figures.stale_after_ms,
        instances: figures
            .instances
            .iter()
            .map(|facts| row(facts, caches))
            .collect(),
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
