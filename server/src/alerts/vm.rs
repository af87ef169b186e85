//! Alerting's figures as the pages' view models.

use app::vm::alerts::{AlertBannerVm, AlertRow, AlertsVm, DeliveryRow, RuleRow};

use super::model::{Alert, AlertStatus, Rule, RuleKind};
use super::runner::HISTORY_PAGE;
use super::store::Delivery;
use super::view::AlertsView;
use crate::live::Snapshot;

/// Words for a kind, for the rules table and the new-rule form.
pub fn kind_label(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::QueueBacklog => "Queue backlog",
        RuleKind::FailureRate => "Failure rate",
        RuleKind::NoActiveWorker => "No active worker",
        RuleKind::JobLatency => "Job latency",
        RuleKind::WaitP95 => "Wait p95",
        RuleKind::RunP95 => "Run p95",
        RuleKind::InstanceStale => "Instance stale",
        RuleKind::InstanceDrifted => "Instance drifted",
        RuleKind::BackendUnreachable => "Backend unreachable",
        RuleKind::BackendSlow => "Backend slow",
        RuleKind::RateLimitRejections => "Rate-limit rejections",
        RuleKind::ChannelSilent => "Channel silent",
        RuleKind::RedisMemory => "Redis memory use of maxmemory",
        RuleKind::RedisEvictions => "Redis evictions",
        RuleKind::RedisReplicationLag => "Redis replication lag",
        RuleKind::RedisBlockedClients => "Redis blocked clients",
        RuleKind::RedisNoReplica => "Redis master without replica",
        RuleKind::CacheHitRatio => "Cache hit ratio below",
        RuleKind::CacheDrift => "Cache instances drifted",
    }
}

/// One alert as a row.
pub fn alert_row(a: &Alert) -> AlertRow {
    AlertRow {
        fingerprint: a.fingerprint.clone(),
        rule: a.rule.clone(),
        kind: a.kind.as_str().to_owned(),
        subject_label: a.kind.subject().to_owned(),
        subject: a.subject.clone(),
        status: a.status.as_str().to_owned(),
        severity: a.severity.as_str().to_owned(),
        value: a.value,
        unit: a.kind.unit().to_owned(),
        summary: a.summary.clone(),
        pending_since: a.pending_since,
        firing_since: a.firing_since,
        resolved_at: a.resolved_at,
        acknowledged_by: a.acknowledged.as_ref().map(|(by, _)| by.clone()),
        acknowledged_at: a.acknowledged.as_ref().map(|(_, at)| *at),
        silenced_until: a.silenced_until,
    }
}

fn rule_row(r: &Rule) -> RuleRow {
    RuleRow {
        name: r.name.clone(),
        kind: r.kind.as_str().to_owned(),
        kind_label: kind_label(r.kind).to_owned(),
        subject_label: r.kind.subject().to_owned(),
        target: r.target.clone(),
        threshold: r.threshold,
        unit: r.kind.unit().to_owned(),
        window_secs: r.window_secs,
        for_secs: r.for_secs,
        severity: r.severity.as_str().to_owned(),
        enabled: r.enabled,
        uses_window: matches!(
            r.kind,
            RuleKind::FailureRate | RuleKind::ChannelSilent | RuleKind::CacheHitRatio
        ),
        uses_threshold: !r.kind.unit().is_empty(),
    }
}

fn delivery_row(d: &Delivery) -> DeliveryRow {
    DeliveryRow {
        id: d.id,
        fingerprint: d.fingerprint.clone(),
        rule: d.rule.clone(),
        event: d.event.clone(),
        receiver: d.receiver.clone(),
        status: d.status.clone(),
        attempts: u32::try_from(d.attempts).unwrap_or(u32::MAX),
        last_error: d.last_error.clone(),
        next_attempt_at: d.next_attempt_at,
        created_at: d.created_at,
        sent_at: d.sent_at,
    }
}

/// The banner: firing alerts only (pending ones page nobody).
pub fn banner(view: &AlertsView, now: i64) -> AlertBannerVm {
    AlertBannerVm {
        firing: view
            .active
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .map(alert_row)
            .collect(),
        now,
    }
}

/// The Alerts page, with one page of history.
pub fn alerts_page(
    view: &AlertsView,
    history: &[Alert],
    history_offset: u64,
    history_limit: u64,
    history_total: u64,
    now: i64,
) -> AlertsVm {
    AlertsVm {
        active: view.active.iter().map(alert_row).collect(),
        rules: view.rules.iter().map(rule_row).collect(),
        history: history.iter().map(alert_row).collect(),
        history_offset,
        history_total,
        history_limit,
        deliveries: view.deliveries.iter().map(delivery_row).collect(),
        receivers: view.receivers.clone(),
        evaluator: view.evaluator.clone(),
        now,
        kinds: RuleKind::ALL
            .iter()
            .map(|k| {
                (
                    k.as_str().to_owned(),
                    kind_label(*k).to_owned(),
                    k.unit().to_owned(),
                )
            })
            .collect(),
    }
}

/// The banner as of a snapshot (empty when alerting does not run).
pub fn banner_of(snapshot: &Snapshot) -> AlertBannerVm {
    match &snapshot.alerts {
        Some(view) => banner(view, snapshot.taken_at),
        None => AlertBannerVm {
            now: snapshot.taken_at,
            ..AlertBannerVm::default()
        },
    }
}

/// The Alerts page with the first page of history, as of a snapshot.
pub fn first_page(snapshot: &Snapshot) -> AlertsVm {
    match &snapshot.alerts {
        Some(view) => alerts_page(
            view,
            &view.history,
            0,
            HISTORY_PAGE,
            view.history_total,
            snapshot.taken_at,
        ),
        None => AlertsVm {
            history_limit: HISTORY_PAGE,
            now: snapshot.taken_at,
            ..AlertsVm::default()
        },
    }
}

/// The overview's alerts card: firing (loud and silenced) and pending.
pub fn glance(view: &AlertsView, now: i64) -> app::AlertsGlance {
    let mut glance = app::AlertsGlance::default();
    for alert in &view.active {
        match alert.status {
            AlertStatus::Pending => glance.pending += 1,
            AlertStatus::Firing if alert.is_silenced(now) => glance.silenced += 1,
            AlertStatus::Firing => glance.firing += 1,
            _ => {}
        }
    }
    glance
}
