//! The alert evaluator: rules × one observation × the alerts active so far
//! → the alerts active now and what changed. Pure and clocked by its
//! caller (`now`), so the runner owns time, storage and delivery, and tests
//! can walk an alert through its whole life without sleeping.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{
    ANY_SUBJECT, Alert, AlertStatus, ChannelObservation, InstanceHealth, Observation,
    RedisNodeObservation, Rule, RuleKind, fingerprint,
};
use crate::workers::latency::RECENT_MINUTES;

/// One step in an alert's life, so the runner knows what to store and whom
/// to tell: only `Firing` and `Resolved` concern receivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The condition started holding; the alert waits out the rule's `for`
    /// before anyone is told.
    Pending(Alert),
    /// The condition held for the rule's `for` (or the rule has none).
    Firing(Alert),
    /// A firing alert's condition stopped (or its rule or subject went
    /// away): the alert, with `resolved_at` set, becomes history.
    Resolved(Alert),
    /// A pending alert's condition stopped before it fired: it is dropped,
    /// not kept as history, since nobody was ever told about it. The alert
    /// is passed as it was (still `Pending`).
    Cleared(Alert),
}

impl Change {
    /// The alert the change is about, for code that handles every change
    /// alike (logging, tests).
    pub fn alert(&self) -> &Alert {
        match self {
            Change::Pending(a) | Change::Firing(a) | Change::Resolved(a) | Change::Cleared(a) => a,
        }
    }
}

/// The outcome of one evaluation: what to store as active and what to act
/// on, kept apart so storing and telling can fail independently.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Pending and firing alerts after this evaluation, firing first, then
    /// by rule and subject, so pages and stores see a stable order.
    pub active: Vec<Alert>,
    /// What changed, in rule order then observation order, then alerts
    /// whose rule or subject went away (by rule and subject).
    pub changes: Vec<Change>,
}

/// Evaluates `rules` against `obs` at `now` (ms since the epoch), carrying
/// on from `active` (the previous evaluation's active alerts; resolved ones
/// in it are ignored). Acknowledgements and silences are kept from the
/// input alert, since people set them, not the evaluator.
pub fn evaluate(rules: &[Rule], obs: &Observation, active: &[Alert], now: i64) -> Evaluation {
    let mut previous: BTreeMap<&str, &Alert> = active
        .iter()
        .filter(|a| a.is_active())
        .map(|a| (a.fingerprint.as_str(), a))
        .collect();
    let mut seen = BTreeSet::new();
    let mut next = Vec::new();
    let mut changes = Vec::new();

    for rule in rules.iter().filter(|r| r.enabled) {
        let mut found = readings(rule, obs, now);
        if rule.target == ANY_SUBJECT && aggregates(rule.kind) {
            found = aggregate(rule.kind, found);
        }
        for reading in found {
            let fp = fingerprint(&rule.name, &reading.subject);
            if !seen.insert(fp.clone()) {
                // The same subject twice (or two rules of one name): the
                // first reading wins, so an alert is never doubled.
                continue;
            }
            match previous.remove(fp.as_str()) {
                None => {
                    let fires_now = rule.for_secs == 0;
                    let alert = Alert {
                        fingerprint: fp,
                        rule: rule.name.clone(),
                        kind: rule.kind,
                        subject: reading.subject,
                        status: if fires_now {
                            AlertStatus::Firing
                        } else {
                            AlertStatus::Pending
                        },
                        severity: rule.severity,
                        value: reading.value,
                        summary: reading.summary,
                        pending_since: now,
                        firing_since: fires_now.then_some(now),
                        resolved_at: None,
                        acknowledged: None,
                        silenced_until: None,
                    };
                    changes.push(if fires_now {
                        Change::Firing(alert.clone())
                    } else {
                        Change::Pending(alert.clone())
                    });
                    next.push(alert);
                }
                Some(prev) => {
                    let mut alert = prev.clone();
                    alert.kind = rule.kind;
                    alert.severity = rule.severity;
                    alert.value = reading.value;
                    alert.summary = reading.summary;
                    if alert.status == AlertStatus::Pending
                        && now.saturating_sub(alert.pending_since) >= secs_to_ms(rule.for_secs)
                    {
                        alert.status = AlertStatus::Firing;
                        alert.firing_since = Some(now);
                        changes.push(Change::Firing(alert.clone()));
                    }
                    next.push(alert);
                }
            }
        }
    }

    // What is left no longer holds, lost its subject, or lost its rule.
    let mut gone: Vec<&Alert> = previous.into_values().collect();
    gone.sort_by(|a, b| (&a.rule, &a.subject).cmp(&(&b.rule, &b.subject)));
    for prev in gone {
        match prev.status {
            AlertStatus::Pending => changes.push(Change::Cleared(prev.clone())),
            AlertStatus::Firing | AlertStatus::Resolved => {
                let mut alert = prev.clone();
                alert.status = AlertStatus::Resolved;
                alert.resolved_at = Some(now);
                changes.push(Change::Resolved(alert));
            }
        }
    }

    next.sort_by(|a, b| {
        let rank = |s: AlertStatus| u8::from(s != AlertStatus::Firing);
        (rank(a.status), &a.rule, &a.subject).cmp(&(rank(b.status), &b.rule, &b.subject))
    });
    Evaluation {
        active: next,
        changes,
    }
}

/// Subjects an aggregated alert names (the worst ones); the others are
/// counted. The cap on what one rule can put in front of people: a rule on
/// every queue of 10,000 raises one alert that names five.
pub const AGGREGATE_NAMED: usize = 5;

/// Whether a rule on every subject of its kind raises one alert: kinds
/// whose subjects are many (queues, instances, policies, Redis nodes). The
/// backend is
/// one subject, and a channel rule names its channel.
fn aggregates(kind: RuleKind) -> bool {
    !matches!(
        kind,
        RuleKind::BackendUnreachable | RuleKind::BackendSlow | RuleKind::ChannelSilent
    )
}

/// What a kind's subjects are called in an aggregated alert.
fn nouns(kind: RuleKind) -> (&'static str, &'static str) {
    match kind {
        RuleKind::InstanceStale | RuleKind::InstanceDrifted => ("instance", "instances"),
        RuleKind::RateLimitRejections => ("policy", "policies"),
        RuleKind::ChannelSilent => ("channel", "channels"),
        RuleKind::BackendUnreachable | RuleKind::BackendSlow => ("backend", "backends"),
        RuleKind::RedisMemory
        | RuleKind::RedisEvictions
        | RuleKind::RedisBlockedClients
        | RuleKind::RedisNoReplica => ("Redis node", "Redis nodes"),
        RuleKind::RedisReplicationLag => ("Redis replica", "Redis replicas"),
        RuleKind::CacheHitRatio | RuleKind::CacheDrift => ("cache namespace", "cache namespaces"),
        RuleKind::QueueBacklog
        | RuleKind::FailureRate
        | RuleKind::NoActiveWorker
        | RuleKind::JobLatency
        | RuleKind::WaitP95
        | RuleKind::RunP95 => ("queue", "queues"),
    }
}

/// A reading's figure with its unit, for the list in an aggregated alert
/// (none where the figure is only "it holds").
fn figure(kind: RuleKind, value: f64) -> Option<String> {
    match kind {
        RuleKind::FailureRate => Some(format!("{}%", number(value))),
        RuleKind::JobLatency => Some(duration(value as u64)),
        RuleKind::WaitP95 | RuleKind::RunP95 => Some(span_ms(value * 1000.0)),
        RuleKind::QueueBacklog | RuleKind::NoActiveWorker => {
            Some(format!("{} waiting", number(value)))
        }
        RuleKind::InstanceDrifted if value > 0.0 => Some(format!("{} behind", number(value))),
        RuleKind::InstanceDrifted => Some("state differs".to_owned()),
        RuleKind::RateLimitRejections => Some(format!("{} rejected", number(value))),
        RuleKind::BackendSlow => Some(format!("{} ms", number(value))),
        RuleKind::RedisMemory => Some(format!("{}% of maxmemory", number(value))),
        RuleKind::RedisEvictions => Some(format!("{} evicted per min", number(value))),
        RuleKind::RedisReplicationLag => Some(format!("{} behind", duration(value as u64))),
        RuleKind::RedisBlockedClients => Some(format!("{} blocked", number(value))),
        RuleKind::CacheHitRatio => Some(format!("{}% hits", number(value))),
        RuleKind::CacheDrift => Some(format!("{} drifted", number(value))),
        RuleKind::InstanceStale
        | RuleKind::BackendUnreachable
        | RuleKind::ChannelSilent
        | RuleKind::RedisNoReplica => None,
    }
}

/// The readings of a rule on every subject (`*`) as one: subject `*`,
/// the worst value, and a summary counting the subjects and naming the
/// worst [`AGGREGATE_NAMED`], so the number of alerts follows the number
/// of rules, never the number of queues. One alert per rule also keeps
/// its life (pending, firing, resolved) about the rule's condition rather
/// than about which queues happen to match this minute.
fn aggregate(kind: RuleKind, mut found: Vec<Reading>) -> Vec<Reading> {
    if found.len() <= 1 {
        // One subject: its own sentence says it all.
        return found
            .into_iter()
            .map(|r| Reading {
                subject: ANY_SUBJECT.to_owned(),
                ..r
            })
            .collect();
    }
    // A subject read twice counts once: the first reading wins, as for
    // alerts of named subjects.
    let mut seen = BTreeSet::new();
    found.retain(|r| seen.insert(r.subject.clone()));
    // The worst first: the highest figure, but the lowest hit ratio.
    if kind == RuleKind::CacheHitRatio {
        found.sort_by(|a, b| a.value.total_cmp(&b.value).then(a.subject.cmp(&b.subject)));
    } else {
        found.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.subject.cmp(&b.subject)));
    }
    let n = found.len();
    let (_, many) = nouns(kind);
    let worst = &found[0];
    let others: Vec<String> = found[1..n.min(AGGREGATE_NAMED)]
        .iter()
        .map(|r| match figure(kind, r.value) {
            Some(figure) => format!("{} ({figure})", r.subject),
            None => r.subject.clone(),
        })
        .collect();
    let more = n.saturating_sub(AGGREGATE_NAMED);
    let mut summary = format!(
        "{} {many} affected; worst: {}; then {}",
        count(n as u64),
        worst.summary,
        others.join(", ")
    );
    if more > 0 {
        summary.push_str(&format!(
            ", and {} more (only the worst {AGGREGATE_NAMED} are named)",
            count(more as u64)
        ));
    }
    vec![Reading {
        subject: ANY_SUBJECT.to_owned(),
        value: worst.value,
        summary,
    }]
}

/// One subject for which a rule's condition holds, with the figure and the
/// sentence that go into its alert.
struct Reading {
    subject: String,
    value: f64,
    summary: String,
}

/// Whether `name` is a subject `rule` watches.
fn targets(rule: &Rule, name: &str) -> bool {
    rule.target == ANY_SUBJECT || rule.target == name
}

/// Seconds (as rules hold them) in ms (as clocks do), saturating so an
/// absurd stored value means "never" rather than wrapping around.
fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)
}

/// The subjects for which `rule` holds at `now`; those it watches but for
/// which it does not hold are simply absent (their alerts then end).
fn readings(rule: &Rule, obs: &Observation, now: i64) -> Vec<Reading> {
    let threshold = rule.threshold;
    let mut out = Vec::new();
    let mut push = |subject: &str, value: f64, summary: String| {
        out.push(Reading {
            subject: subject.to_owned(),
            value,
            summary,
        });
    };
    match rule.kind {
        RuleKind::QueueBacklog => {
            for q in obs.queues.iter().filter(|q| targets(rule, &q.name)) {
                let waiting = q.waiting as f64;
                if !q.paused && waiting > threshold {
                    push(
                        &q.name,
                        waiting,
                        format!(
                            "Queue {}: {} jobs waiting (threshold {})",
                            q.name,
                            count(q.waiting),
                            number(threshold)
                        ),
                    );
                }
            }
        }
        RuleKind::FailureRate => {
            let since = now.saturating_sub(secs_to_ms(rule.window_secs));
            for q in obs.queues.iter().filter(|q| targets(rule, &q.name)) {
                let (completed, failed) = q
                    .minutes
                    .iter()
                    .filter(|m| m.minute > since)
                    .fold((0u64, 0u64), |(c, f), m| {
                        (c.saturating_add(m.completed), f.saturating_add(m.failed))
                    });
                let finished = completed.saturating_add(failed);
                if finished == 0 {
                    continue;
                }
                let rate = failed as f64 / finished as f64 * 100.0;
                if rate > threshold {
                    push(
                        &q.name,
                        rate,
                        format!(
                            "Queue {}: {}% of finished jobs failed over the last {} (threshold {}%)",
                            q.name,
                            number(rate),
                            duration(rule.window_secs),
                            number(threshold)
                        ),
                    );
                }
            }
        }
        RuleKind::NoActiveWorker => {
            for q in obs.queues.iter().filter(|q| targets(rule, &q.name)) {
                // The registry says who takes jobs. Live workers that are
                // all quiet take none, however many jobs are still active.
                // With no live worker registered, active jobs mean someone
                // unregistered (an older coord) is working: no alert.
                let (nobody, why) = match q.workers {
                    Some(w) if w.live > 0 && w.taking() == 0 => {
                        (true, format!(" ({} quiet)", count(w.live as u64)))
                    }
                    Some(w) => (w.taking() == 0 && q.active == 0, String::new()),
                    None => (q.active == 0, String::new()),
                };
                if !q.paused && q.waiting > 0 && nobody {
                    push(
                        &q.name,
                        q.waiting as f64,
                        format!(
                            "Queue {}: {} jobs waiting and no worker is taking them{why}",
                            q.name,
                            count(q.waiting)
                        ),
                    );
                }
            }
        }
        RuleKind::JobLatency => {
            for q in obs.queues.iter().filter(|q| targets(rule, &q.name)) {
                let Some(oldest_ms) = q.oldest_waiting_ms else {
                    continue;
                };
                let secs = oldest_ms as f64 / 1000.0;
                if !q.paused && secs > threshold {
                    push(
                        &q.name,
                        secs,
                        format!(
                            "Queue {}: the oldest waiting job has waited {} (threshold {} s)",
                            q.name,
                            duration(u64::try_from(oldest_ms / 1000).unwrap_or(0)),
                            number(threshold)
                        ),
                    );
                }
            }
        }
        RuleKind::WaitP95 | RuleKind::RunP95 => {
            let what = if rule.kind == RuleKind::WaitP95 {
                "wait"
            } else {
                "run"
            };
            let window = duration(RECENT_MINUTES as u64 * 60);
            // Not exempt when paused: like a failure rate, the figure is
            // about attempts that finished, and a paused queue has none
            // for long.
            for q in obs.queues.iter().filter(|q| targets(rule, &q.name)) {
                let p95 = if rule.kind == RuleKind::WaitP95 {
                    q.wait_p95_ms
                } else {
                    q.run_p95_ms
                };
                let Some(ms) = p95 else {
                    continue;
                };
                let secs = ms as f64 / 1000.0;
                if secs > threshold {
                    push(
                        &q.name,
                        secs,
                        format!(
                            "Queue {}: p95 {what} {} over the last {window} (threshold {})",
                            q.name,
                            span_ms(ms as f64),
                            span_ms(threshold * 1000.0)
                        ),
                    );
                }
            }
        }
        RuleKind::InstanceStale => {
            for i in obs.instances.iter().filter(|i| targets(rule, &i.id)) {
                if i.health == InstanceHealth::Stale {
                    push(
                        &i.id,
                        1.0,
                        format!("Instance {} has missed its heartbeats", i.id),
                    );
                }
            }
        }
        RuleKind::InstanceDrifted => {
            // A gone instance no longer syncs: its lag is not drift.
            for i in obs
                .instances
                .iter()
                .filter(|i| i.health != InstanceHealth::Gone && targets(rule, &i.id))
            {
                let lag = i.lag.unwrap_or(0);
                let lagging = lag as f64 > threshold;
                if lagging {
                    push(
                        &i.id,
                        lag as f64,
                        format!(
                            "Instance {} is {} {} behind the database (threshold {})",
                            i.id,
                            count(lag),
                            if lag == 1 { "version" } else { "versions" },
                            number(threshold)
                        ),
                    );
                } else if i.drifted {
                    push(
                        &i.id,
                        lag as f64,
                        format!(
                            "Instance {}: its state differs from the database's at the same version",
                            i.id
                        ),
                    );
                }
            }
        }
        RuleKind::BackendUnreachable => {
            if targets(rule, "backend") && !obs.backend.reachable {
                let problem = obs
                    .backend
                    .problem
                    .as_deref()
                    .map(one_line)
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "no answer".to_owned());
                push("backend", 1.0, format!("Backend unreachable: {problem}"));
            }
        }
        RuleKind::BackendSlow => {
            if let (true, true, Some(latency)) = (
                targets(rule, "backend"),
                obs.backend.reachable,
                obs.backend.latency_ms,
            ) && latency > threshold
            {
                push(
                    "backend",
                    latency,
                    format!(
                        "Backend answered in {} ms (threshold {} ms)",
                        number(latency),
                        number(threshold)
                    ),
                );
            }
        }
        RuleKind::RateLimitRejections => {
            for p in obs.policies.iter().filter(|p| targets(rule, &p.name)) {
                let rejected = p.rejected_last_minute as f64;
                if rejected > threshold {
                    push(
                        &p.name,
                        rejected,
                        format!(
                            "Policy {} rejected {} requests in the last minute (threshold {})",
                            p.name,
                            count(p.rejected_last_minute),
                            number(threshold)
                        ),
                    );
                }
            }
        }
        RuleKind::ChannelSilent => {
            // Only a named channel is expected to carry traffic; one never
            // seen has been silent since observing started.
            if rule.target != ANY_SUBJECT {
                let last = obs
                    .channels
                    .iter()
                    .find(|c| c.name == rule.target)
                    .and_then(|c: &ChannelObservation| c.last_message_at)
                    .unwrap_or(obs.observing_since);
                if last <= now.saturating_sub(secs_to_ms(rule.window_secs)) {
                    let silent_secs = now.saturating_sub(last) / 1000;
                    push(
                        &rule.target,
                        silent_secs as f64,
                        format!(
                            "Channel {} carried no message for {} (window {})",
                            rule.target,
                            duration(u64::try_from(silent_secs).unwrap_or(0)),
                            duration(rule.window_secs)
                        ),
                    );
                }
            }
        }
        RuleKind::RedisMemory => {
            for n in redis_nodes(rule, obs) {
                let (Some(used), Some(max)) = (n.used_memory, n.maxmemory) else {
                    continue;
                };
                let share = used as f64 / max as f64 * 100.0;
                if share > threshold {
                    push(
                        &n.address,
                        share,
                        format!(
                            "Redis node {}: memory at {}% of maxmemory ({} of {}; threshold {}%)",
                            n.address,
                            number(share),
                            bytes(used),
                            bytes(max),
                            number(threshold)
                        ),
                    );
                }
            }
        }
        RuleKind::RedisEvictions => {
            for n in redis_nodes(rule, obs) {
                let Some(per_min) = n.evicted_per_min else {
                    continue;
                };
                if per_min > threshold {
                    push(
                        &n.address,
                        per_min,
                        format!(
                            "Redis node {}: {} keys evicted per minute (threshold {})",
                            n.address,
                            number(per_min),
                            number(threshold)
                        ),
                    );
                }
            }
        }
        RuleKind::RedisReplicationLag => {
            for n in redis_nodes(rule, obs).filter(|n| n.replica) {
                let Some(lag) = n.lag_secs else {
                    continue;
                };
                if lag as f64 > threshold {
                    let master = n
                        .master
                        .as_deref()
                        .map_or_else(|| "its master".to_owned(), |m| format!("its master {m}"));
                    let what = if n.link_down {
                        format!("link to {master} down for {}", duration(lag))
                    } else {
                        format!("{} behind {master}", duration(lag))
                    };
                    push(
                        &n.address,
                        lag as f64,
                        format!(
                            "Redis replica {}: {what} (threshold {})",
                            n.address,
                            span_ms(threshold * 1000.0)
                        ),
                    );
                }
            }
        }
        RuleKind::RedisBlockedClients => {
            for n in redis_nodes(rule, obs) {
                let Some(blocked) = n.blocked_clients else {
                    continue;
                };
                if blocked as f64 > threshold {
                    push(
                        &n.address,
                        blocked as f64,
                        format!(
                            "Redis node {}: {} {} waiting in a blocking command (threshold {})",
                            n.address,
                            count(blocked),
                            if blocked == 1 { "client" } else { "clients" },
                            number(threshold)
                        ),
                    );
                }
            }
        }
        RuleKind::CacheHitRatio => {
            // The window is whole minutes (validated), counted as the page
            // counts its last minute.
            let minutes = i64::try_from(rule.window_secs / 60).unwrap_or(i64::MAX);
            for ns in obs.caches.iter().filter(|c| targets(rule, &c.namespace)) {
                let Some((ratio, reads)) =
                    crate::cache::closed_hit_ratio(&ns.minutes, now, minutes)
                else {
                    continue;
                };
                let ratio = ratio * 100.0;
                if ratio < threshold {
                    push(
                        &ns.namespace,
                        ratio,
                        format!(
                            "Cache namespace {}: {}% of {} reads were hits over the last {} (threshold {}%)",
                            ns.namespace,
                            number(ratio),
                            count(reads),
                            duration(rule.window_secs),
                            number(threshold)
                        ),
                    );
                }
            }
        }
        RuleKind::CacheDrift => {
            for ns in obs.caches.iter().filter(|c| targets(rule, &c.namespace)) {
                if ns.drifted.is_empty() {
                    continue;
                }
                let n = ns.drifted.len();
                let named: Vec<&str> = ns
                    .drifted
                    .iter()
                    .take(AGGREGATE_NAMED)
                    .map(String::as_str)
                    .collect();
                let more = n.saturating_sub(AGGREGATE_NAMED);
                push(
                    &ns.namespace,
                    n as f64,
                    format!(
                        "Cache namespace {}: {}{} {} the same keys as other instances with other values (an invalidation was missed)",
                        ns.namespace,
                        named.join(", "),
                        if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        },
                        if n == 1 { "holds" } else { "hold" },
                    ),
                );
            }
        }
        RuleKind::RedisNoReplica => {
            for n in redis_nodes(rule, obs).filter(|n| n.cluster && !n.replica) {
                if n.connected_replicas == Some(0) {
                    push(
                        &n.address,
                        1.0,
                        format!(
                            "Redis master {}: no connected replica (its slots have no copy)",
                            n.address
                        ),
                    );
                }
            }
        }
    }
    out
}

/// The Redis nodes `rule` watches that answered the hub's last read: an
/// unreachable node's figures are unknown, and it is not for these rules
/// to say it is down.
fn redis_nodes<'a>(
    rule: &'a Rule,
    obs: &'a Observation,
) -> impl Iterator<Item = &'a RedisNodeObservation> + 'a {
    obs.redis
        .iter()
        .filter(move |n| n.reachable && targets(rule, &n.address))
}

/// A size for a sentence in the binary unit that reads best ("1.5 MiB"),
/// as Redis' own `used_memory_human` does.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", number(value), UNITS[unit])
}

/// A count with thousands separators, as people read them ("1,204").
fn count(n: u64) -> String {
    group(&n.to_string())
}

/// A figure for a sentence: whole numbers grouped ("1,000"), others with
/// one decimal ("7.5").
fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let text = format!("{x:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    let (sign, text) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    match text.split_once('.') {
        Some((int, frac)) => format!("{sign}{}.{frac}", group(int)),
        None => format!("{sign}{}", group(text)),
    }
}

/// Inserts a comma every three digits from the right of a digit string.
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A span for a sentence, rounded down to the unit people think in:
/// seconds under a minute, whole hours from two hours, minutes otherwise.
fn duration(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else if secs >= 7200 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else {
        format!("{} min", secs / 60)
    }
}

/// A time in ms for a sentence, in the unit that reads best: ms under a
/// second (a 50 ms threshold is not "0 s"), seconds with one decimal under
/// a minute, then as [`duration`] does.
fn span_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return format!("{} s", number(ms / 1000.0));
    }
    if ms < 1000.0 {
        format!("{} ms", number(ms))
    } else if ms < 60_000.0 {
        format!("{} s", number(ms / 1000.0))
    } else {
        duration((ms / 1000.0) as u64)
    }
}

/// Collapses whitespace (newlines included) so a backend's error fits the
/// one-line summary.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::model::{
        BackendObservation, CacheObservation, InstanceObservation, MinuteCounts, PolicyObservation,
        QueueObservation, Severity,
    };

    const T0: i64 = 1_800_000_000_000;
    const MIN: i64 = 60_000;

    fn rule(name: &str, kind: RuleKind, target: &str, threshold: f64, for_secs: u64) -> Rule {
        Rule {
            name: name.to_owned(),
            kind,
            target: target.to_owned(),
            threshold,
            window_secs: 300,
            for_secs,
            severity: Severity::Warning,
            enabled: true,
        }
    }

    fn queue(name: &str, waiting: u64, active: u64) -> QueueObservation {
        QueueObservation {
            name: name.to_owned(),
            waiting,
            active,
            ..QueueObservation::default()
        }
    }

    fn healthy() -> Observation {
        Observation {
            at: T0,
            backend: BackendObservation {
                reachable: true,
                latency_ms: Some(3.0),
                problem: None,
            },
            observing_since: T0 - 60 * MIN,
            ..Observation::default()
        }
    }

    fn with_queues(queues: Vec<QueueObservation>) -> Observation {
        Observation {
            queues,
            ..healthy()
        }
    }

    /// (subject, value, summary) of every active alert, for exact asserts.
    fn firing(eval: &Evaluation) -> Vec<(String, f64, String)> {
        eval.active
            .iter()
            .map(|a| (a.subject.clone(), a.value, a.summary.clone()))
            .collect()
    }

    fn one(eval: &Evaluation) -> (String, f64, String) {
        let all = firing(eval);
        assert_eq!(all.len(), 1, "{:?}", eval.active);
        all.into_iter().next().unwrap()
    }

    fn fires_at_once(rules: &[Rule], obs: &Observation) -> Evaluation {
        evaluate(rules, obs, &[], T0)
    }

    #[test]
    fn queue_backlog_matches_above_threshold_only() {
        let r = [rule("backlog", RuleKind::QueueBacklog, "*", 1000.0, 0)];
        let obs = with_queues(vec![queue("imports", 1204, 3), queue("emails", 1000, 0)]);
        let eval = fires_at_once(&r, &obs);
        assert_eq!(
            one(&eval),
            (
                "*".to_owned(),
                1204.0,
                "Queue imports: 1,204 jobs waiting (threshold 1,000)".to_owned()
            )
        );
        assert_eq!(eval.active[0].status, AlertStatus::Firing);
        assert_eq!(eval.active[0].firing_since, Some(T0));
        assert_eq!(eval.active[0].fingerprint, fingerprint("backlog", "*"));
    }

    #[test]
    fn failure_rate_over_window() {
        let mut q = queue("emails", 0, 0);
        q.minutes = vec![
            // Starts exactly at now - window: outside (`minute > now - window`).
            MinuteCounts {
                minute: T0 - 5 * MIN,
                completed: 0,
                failed: 1000,
            },
            MinuteCounts {
                minute: T0 - 5 * MIN + 1,
                completed: 100,
                failed: 5,
            },
            MinuteCounts {
                minute: T0 - MIN,
                completed: 85,
                failed: 10,
            },
        ];
        let r = [rule("failures", RuleKind::FailureRate, "*", 5.0, 0)];
        let eval = fires_at_once(&r, &with_queues(vec![q.clone()]));
        assert_eq!(
            one(&eval),
            (
                "*".to_owned(),
                7.5,
                "Queue emails: 7.5% of finished jobs failed over the last 5 min (threshold 5%)"
                    .to_owned()
            )
        );
        // At 7.5 % with a 7.5 threshold it does not match (strictly above).
        let r = [rule("failures", RuleKind::FailureRate, "*", 7.5, 0)];
        assert!(fires_at_once(&r, &with_queues(vec![q])).active.is_empty());
    }

    #[test]
    fn failure_rate_ignores_minutes_outside_window_and_quiet_queues() {
        let mut q = queue("emails", 0, 0);
        q.minutes = vec![MinuteCounts {
            minute: T0 - 5 * MIN,
            completed: 0,
            failed: 50,
        }];
        let r = [rule("failures", RuleKind::FailureRate, "*", 5.0, 0)];
        assert!(
            fires_at_once(&r, &with_queues(vec![q.clone()]))
                .active
                .is_empty()
        );
        // One ms later the same minute is inside the window.
        let eval = evaluate(&r, &with_queues(vec![q]), &[], T0 - 1);
        assert_eq!(one(&eval).1, 100.0);
        // Nothing finished at all: quiet, not 0 % and not NaN.
        let quiet = queue("idle", 0, 0);
        let r = [rule("failures", RuleKind::FailureRate, "*", 0.0, 0)];
        assert!(
            fires_at_once(&r, &with_queues(vec![quiet]))
                .active
                .is_empty()
        );
    }

    #[test]
    fn no_active_worker() {
        let r = [rule("workers", RuleKind::NoActiveWorker, "*", 0.0, 0)];
        let obs = with_queues(vec![
            queue("stuck", 12, 0),
            queue("busy", 12, 1),
            queue("empty", 0, 0),
        ]);
        assert_eq!(
            one(&fires_at_once(&r, &obs)),
            (
                "*".to_owned(),
                12.0,
                "Queue stuck: 12 jobs waiting and no worker is taking them".to_owned()
            )
        );
    }

    #[test]
    fn no_active_worker_reads_the_registry() {
        use crate::workers::QueueWorkers;
        let r = [rule("workers", RuleKind::NoActiveWorker, "*", 0.0, 0)];
        let with = |name: &str, active: u64, live: usize, quiet: usize| {
            let mut q = queue(name, 7, active);
            q.workers = Some(QueueWorkers {
                live,
                quiet,
                ..QueueWorkers::default()
            });
            q
        };
        // Two quiet workers still finishing a job take no new ones.
        let eval = fires_at_once(&r, &with_queues(vec![with("quiet", 1, 2, 2)]));
        assert_eq!(
            one(&eval).2,
            "Queue quiet: 7 jobs waiting and no worker is taking them (2 quiet)"
        );
        // One of two quiet: someone takes jobs, even while none is active.
        assert!(
            fires_at_once(&r, &with_queues(vec![with("half", 0, 2, 1)]))
                .active
                .is_empty()
        );
        // Nobody registered and nothing active: stuck.
        let eval = fires_at_once(&r, &with_queues(vec![with("none", 0, 0, 0)]));
        assert_eq!(one(&eval).1, 7.0);
        // Nobody registered but jobs active: an unregistered worker runs.
        assert!(
            fires_at_once(&r, &with_queues(vec![with("older", 2, 0, 0)]))
                .active
                .is_empty()
        );
    }

    #[test]
    fn job_latency() {
        let r = [rule("latency", RuleKind::JobLatency, "*", 600.0, 0)];
        let mut old = queue("old", 3, 1);
        old.oldest_waiting_ms = Some(720_500);
        let mut young = queue("young", 3, 1);
        young.oldest_waiting_ms = Some(600_000);
        let unknown = queue("unknown", 3, 1);
        let eval = fires_at_once(&r, &with_queues(vec![old, young, unknown]));
        assert_eq!(
            one(&eval),
            (
                "*".to_owned(),
                720.5,
                "Queue old: the oldest waiting job has waited 12 min (threshold 600 s)".to_owned()
            )
        );
    }

    /// A queue whose workers reported p95 wait and run (ms).
    fn timed(name: &str, wait_p95_ms: Option<u64>, run_p95_ms: Option<u64>) -> QueueObservation {
        QueueObservation {
            wait_p95_ms,
            run_p95_ms,
            ..queue(name, 0, 1)
        }
    }

    #[test]
    fn wait_p95_matches_above_threshold_and_only_queues_with_figures() {
        let r = [rule("slow-start", RuleKind::WaitP95, "*", 10.0, 0)];
        let obs = with_queues(vec![
            timed("emails", Some(12_000), Some(1)),
            timed("exact", Some(10_000), Some(1)),
            timed("unknown", None, Some(60_000)),
        ]);
        let eval = fires_at_once(&r, &obs);
        assert_eq!(
            one(&eval),
            (
                "*".to_owned(),
                12.0,
                "Queue emails: p95 wait 12 s over the last 5 min (threshold 10 s)".to_owned()
            )
        );
        assert_eq!(eval.active[0].kind, RuleKind::WaitP95);
        // No figure is not a fast queue: even a threshold of 0 skips it.
        let zero = [rule("any-wait", RuleKind::WaitP95, "unknown", 0.0, 0)];
        assert!(fires_at_once(&zero, &obs).active.is_empty());
        // A named queue alone, under its own name.
        let named = [rule("emails-wait", RuleKind::WaitP95, "emails", 0.5, 0)];
        assert_eq!(
            one(&fires_at_once(&named, &obs)),
            (
                "emails".to_owned(),
                12.0,
                "Queue emails: p95 wait 12 s over the last 5 min (threshold 500 ms)".to_owned()
            )
        );
    }

    #[test]
    fn run_p95_on_every_queue_raises_one_alert_naming_the_worst() {
        let r = [rule("slow-run", RuleKind::RunP95, "*", 0.25, 0)];
        let obs = with_queues(vec![
            timed("a", Some(1), Some(1_500)),
            timed("b", Some(1), Some(800)),
            timed("c", Some(1), Some(90_000)),
            timed("d", Some(99_000), Some(250)),
        ]);
        assert_eq!(
            one(&fires_at_once(&r, &obs)),
            (
                "*".to_owned(),
                90.0,
                "3 queues affected; worst: Queue c: p95 run 1 min over the last 5 min (threshold 250 ms); then a (1.5 s), b (800 ms)"
                    .to_owned()
            )
        );
        // Wait is not run: the same queues under a wait rule hold for d only.
        let w = [rule("slow-wait", RuleKind::WaitP95, "*", 0.25, 0)];
        assert_eq!(
            one(&fires_at_once(&w, &obs)).2,
            "Queue d: p95 wait 1 min over the last 5 min (threshold 250 ms)"
        );
    }

    #[test]
    fn paused_queues_are_exempt_except_from_failure_rate() {
        let mut q = queue("paused", 5000, 0);
        q.paused = true;
        q.oldest_waiting_ms = Some(10_000_000);
        q.minutes = vec![MinuteCounts {
            minute: T0 - MIN,
            completed: 1,
            failed: 9,
        }];
        let rules = [
            rule("backlog", RuleKind::QueueBacklog, "*", 10.0, 0),
            rule("workers", RuleKind::NoActiveWorker, "*", 0.0, 0),
            rule("latency", RuleKind::JobLatency, "*", 60.0, 0),
            rule("failures", RuleKind::FailureRate, "*", 5.0, 0),
        ];
        let eval = fires_at_once(&rules, &with_queues(vec![q.clone()]));
        let names: Vec<&str> = eval.active.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(names, ["failures"]);
        q.paused = false;
        let eval = fires_at_once(&rules, &with_queues(vec![q]));
        let names: Vec<&str> = eval.active.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(names, ["backlog", "failures", "latency", "workers"]);
    }

    fn instance(
        id: &str,
        health: InstanceHealth,
        lag: Option<u64>,
        drifted: bool,
    ) -> InstanceObservation {
        InstanceObservation {
            id: id.to_owned(),
            health,
            lag,
            drifted,
        }
    }

    #[test]
    fn instance_stale_but_not_gone() {
        let r = [rule("stale", RuleKind::InstanceStale, "*", 0.0, 0)];
        let obs = Observation {
            instances: vec![
                instance("api-1", InstanceHealth::Live, None, false),
                instance("api-2", InstanceHealth::Stale, None, false),
                instance("api-3", InstanceHealth::Gone, None, false),
            ],
            ..healthy()
        };
        assert_eq!(
            one(&fires_at_once(&r, &obs)),
            (
                "*".to_owned(),
                1.0,
                "Instance api-2 has missed its heartbeats".to_owned()
            )
        );
    }

    #[test]
    fn instance_drifted_by_hash_or_lag() {
        let r = [rule("drift", RuleKind::InstanceDrifted, "*", 2.0, 0)];
        let obs = Observation {
            instances: vec![
                instance("a", InstanceHealth::Live, Some(2), false),
                instance("b", InstanceHealth::Live, Some(3), false),
                instance("c", InstanceHealth::Live, Some(0), true),
                instance("d", InstanceHealth::Live, None, false),
                instance("e", InstanceHealth::Gone, Some(50), true),
            ],
            ..healthy()
        };
        assert_eq!(
            firing(&fires_at_once(&r, &obs)),
            [(
                "*".to_owned(),
                3.0,
                "2 instances affected; worst: Instance b is 3 versions behind the database (threshold 2); then c (state differs)"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn backend_unreachable_and_slow() {
        let rules = [
            rule("down", RuleKind::BackendUnreachable, "*", 0.0, 0),
            rule("slow", RuleKind::BackendSlow, "*", 500.0, 0),
        ];
        assert!(fires_at_once(&rules, &healthy()).active.is_empty());

        let mut obs = healthy();
        obs.backend = BackendObservation {
            reachable: false,
            latency_ms: None,
            problem: Some("connection refused\n(os error 111)".to_owned()),
        };
        assert_eq!(
            one(&fires_at_once(&rules, &obs)),
            (
                "backend".to_owned(),
                1.0,
                "Backend unreachable: connection refused (os error 111)".to_owned()
            )
        );
        obs.backend.problem = None;
        assert_eq!(
            one(&fires_at_once(&rules, &obs)).2,
            "Backend unreachable: no answer"
        );

        obs.backend = BackendObservation {
            reachable: true,
            latency_ms: Some(812.4),
            problem: None,
        };
        assert_eq!(
            one(&fires_at_once(&rules, &obs)),
            (
                "backend".to_owned(),
                812.4,
                "Backend answered in 812.4 ms (threshold 500 ms)".to_owned()
            )
        );
        obs.backend.latency_ms = Some(500.0);
        assert!(fires_at_once(&rules, &obs).active.is_empty());
        // Unreachable with a stale latency is not "slow".
        obs.backend = BackendObservation {
            reachable: false,
            latency_ms: Some(9000.0),
            problem: None,
        };
        let eval = fires_at_once(&rules, &obs);
        assert_eq!(eval.active.len(), 1);
        assert_eq!(eval.active[0].rule, "down");
    }

    #[test]
    fn ratelimit_rejections() {
        let r = [rule(
            "rejects",
            RuleKind::RateLimitRejections,
            "*",
            100.0,
            0,
        )];
        let obs = Observation {
            policies: vec![
                PolicyObservation {
                    name: "api.free".to_owned(),
                    rejected_last_minute: 130,
                },
                PolicyObservation {
                    name: "api.paid".to_owned(),
                    rejected_last_minute: 100,
                },
            ],
            ..healthy()
        };
        assert_eq!(
            one(&fires_at_once(&r, &obs)),
            (
                "*".to_owned(),
                130.0,
                "Policy api.free rejected 130 requests in the last minute (threshold 100)"
                    .to_owned()
            )
        );
    }

    fn channel(name: &str, last: Option<i64>) -> ChannelObservation {
        ChannelObservation {
            name: name.to_owned(),
            last_message_at: last,
        }
    }

    #[test]
    fn channel_silent_named_only() {
        let mut r = rule("quiet", RuleKind::ChannelSilent, "settings", 0.0, 0);
        r.window_secs = 600;
        let mut obs = Observation {
            channels: vec![channel("settings", Some(T0 - 12 * MIN))],
            ..healthy()
        };
        assert_eq!(
            one(&fires_at_once(std::slice::from_ref(&r), &obs)),
            (
                "settings".to_owned(),
                720.0,
                "Channel settings carried no message for 12 min (window 10 min)".to_owned()
            )
        );
        // Exactly the window ago is silent; one ms later is not.
        obs.channels = vec![channel("settings", Some(T0 - 10 * MIN))];
        assert_eq!(
            fires_at_once(std::slice::from_ref(&r), &obs).active.len(),
            1
        );
        obs.channels = vec![channel("settings", Some(T0 - 10 * MIN + 1))];
        assert!(
            fires_at_once(std::slice::from_ref(&r), &obs)
                .active
                .is_empty()
        );
        // "*" matches nothing, however silent.
        let any = rule("quiet-any", RuleKind::ChannelSilent, "*", 0.0, 0);
        obs.channels = vec![channel("settings", None), channel("other", Some(0))];
        assert!(fires_at_once(&[any], &obs).active.is_empty());
    }

    #[test]
    fn channel_never_seen_is_silent_since_observing_started() {
        let mut r = rule("quiet", RuleKind::ChannelSilent, "settings", 0.0, 0);
        r.window_secs = 600;
        let mut obs = healthy();
        obs.observing_since = T0 - 5 * MIN;
        // Not listed at all, and listed without a message: both use
        // observing_since, which is within the window.
        assert!(
            fires_at_once(std::slice::from_ref(&r), &obs)
                .active
                .is_empty()
        );
        obs.channels = vec![channel("settings", None)];
        assert!(
            fires_at_once(std::slice::from_ref(&r), &obs)
                .active
                .is_empty()
        );
        obs.observing_since = T0 - 15 * MIN;
        assert_eq!(
            one(&fires_at_once(std::slice::from_ref(&r), &obs)),
            (
                "settings".to_owned(),
                900.0,
                "Channel settings carried no message for 15 min (window 10 min)".to_owned()
            )
        );
        obs.channels = vec![];
        assert_eq!(one(&fires_at_once(&[r], &obs)).1, 900.0);
    }

    #[test]
    fn named_target_vs_any() {
        let obs = with_queues(vec![queue("a", 50, 1), queue("b", 60, 1)]);
        let any = [rule("backlog", RuleKind::QueueBacklog, "*", 10.0, 0)];
        let subjects: Vec<String> = firing(&fires_at_once(&any, &obs))
            .into_iter()
            .map(|f| f.0)
            .collect();
        // One alert for the rule, naming both, worst first.
        assert_eq!(subjects, ["*"]);
        assert_eq!(
            one(&fires_at_once(&any, &obs)).2,
            "2 queues affected; worst: Queue b: 60 jobs waiting (threshold 10); then a (50 waiting)"
        );
        let named = [rule("backlog", RuleKind::QueueBacklog, "b", 10.0, 0)];
        assert_eq!(one(&fires_at_once(&named, &obs)).0, "b");
        let missing = [rule("backlog", RuleKind::QueueBacklog, "c", 10.0, 0)];
        assert!(fires_at_once(&missing, &obs).active.is_empty());
        // The backend's only subject is "backend".
        let mut down = healthy();
        down.backend.reachable = false;
        let named = [rule(
            "down",
            RuleKind::BackendUnreachable,
            "backend",
            0.0,
            0,
        )];
        assert_eq!(fires_at_once(&named, &down).active.len(), 1);
        let other = [rule("down", RuleKind::BackendUnreachable, "redis", 0.0, 0)];
        assert!(fires_at_once(&other, &down).active.is_empty());
    }

    #[test]
    fn lifecycle_pending_firing_resolved() {
        let mut r = rule("backlog", RuleKind::QueueBacklog, "q", 10.0, 120);
        r.severity = Severity::Critical;
        let rules = [r];
        let bad = with_queues(vec![queue("q", 11, 1)]);
        let worse = with_queues(vec![queue("q", 40, 1)]);
        let good = with_queues(vec![queue("q", 10, 1)]);

        let e1 = evaluate(&rules, &bad, &[], T0);
        assert_eq!(e1.active.len(), 1);
        let pending = e1.active[0].clone();
        assert_eq!(
            pending,
            Alert {
                fingerprint: fingerprint("backlog", "q"),
                rule: "backlog".to_owned(),
                kind: RuleKind::QueueBacklog,
                subject: "q".to_owned(),
                status: AlertStatus::Pending,
                severity: Severity::Critical,
                value: 11.0,
                summary: "Queue q: 11 jobs waiting (threshold 10)".to_owned(),
                pending_since: T0,
                firing_since: None,
                resolved_at: None,
                acknowledged: None,
                silenced_until: None,
            }
        );
        assert_eq!(e1.changes, [Change::Pending(pending.clone())]);

        // One ms before `for`: still pending, figures updated, no change.
        let e2 = evaluate(&rules, &worse, &e1.active, T0 + 120_000 - 1);
        assert!(e2.changes.is_empty());
        assert_eq!(e2.active[0].status, AlertStatus::Pending);
        assert_eq!(e2.active[0].value, 40.0);
        assert_eq!(
            e2.active[0].summary,
            "Queue q: 40 jobs waiting (threshold 10)"
        );
        assert_eq!(e2.active[0].pending_since, T0);

        // At `for`: fires.
        let t3 = T0 + 120_000;
        let e3 = evaluate(&rules, &bad, &e2.active, t3);
        let mut expected = pending.clone();
        expected.status = AlertStatus::Firing;
        expected.firing_since = Some(t3);
        assert_eq!(e3.active, [expected.clone()]);
        assert_eq!(e3.changes, [Change::Firing(expected.clone())]);

        // Still holding: no change, firing_since kept.
        let e4 = evaluate(&rules, &worse, &e3.active, t3 + 60_000);
        assert!(e4.changes.is_empty());
        assert_eq!(e4.active[0].firing_since, Some(t3));
        assert_eq!(e4.active[0].value, 40.0);

        // Stops holding: resolved, dropped from active.
        let t5 = t3 + 120_000;
        let e5 = evaluate(&rules, &good, &e4.active, t5);
        assert!(e5.active.is_empty());
        let mut resolved = e4.active[0].clone();
        resolved.status = AlertStatus::Resolved;
        resolved.resolved_at = Some(t5);
        assert_eq!(e5.changes, [Change::Resolved(resolved)]);

        // And stays gone.
        let e6 = evaluate(&rules, &good, &e5.active, t5 + 60_000);
        assert_eq!(e6, Evaluation::default());
    }

    #[test]
    fn pending_that_stops_before_for_is_cleared() {
        let rules = [rule("backlog", RuleKind::QueueBacklog, "*", 10.0, 120)];
        let e1 = evaluate(&rules, &with_queues(vec![queue("q", 11, 1)]), &[], T0);
        let e2 = evaluate(
            &rules,
            &with_queues(vec![queue("q", 1, 1)]),
            &e1.active,
            T0 + 60_000,
        );
        assert!(e2.active.is_empty());
        assert_eq!(e2.changes, [Change::Cleared(e1.active[0].clone())]);
    }

    #[test]
    fn for_zero_fires_at_once_with_a_single_change() {
        let rules = [rule("backlog", RuleKind::QueueBacklog, "*", 10.0, 0)];
        let e = evaluate(&rules, &with_queues(vec![queue("q", 11, 1)]), &[], T0);
        assert_eq!(e.active.len(), 1);
        assert_eq!(e.active[0].status, AlertStatus::Firing);
        assert_eq!(e.active[0].pending_since, T0);
        assert_eq!(e.active[0].firing_since, Some(T0));
        assert_eq!(e.changes, [Change::Firing(e.active[0].clone())]);
    }

    #[test]
    fn ack_and_silence_survive_evaluation_and_resolution() {
        let rules = [rule("backlog", RuleKind::QueueBacklog, "*", 10.0, 0)];
        let bad = with_queues(vec![queue("q", 11, 1)]);
        let mut prev = evaluate(&rules, &bad, &[], T0).active;
        prev[0].acknowledged = Some(("ana".to_owned(), T0 + 5));
        prev[0].silenced_until = Some(T0 + 3_600_000);
        let e = evaluate(&rules, &bad, &prev, T0 + 60_000);
        assert_eq!(e.active[0].acknowledged, Some(("ana".to_owned(), T0 + 5)));
        assert_eq!(e.active[0].silenced_until, Some(T0 + 3_600_000));
        let e = evaluate(&rules, &with_queues(vec![]), &e.active, T0 + 120_000);
        let Change::Resolved(a) = &e.changes[0] else {
            panic!("{:?}", e.changes)
        };
        assert_eq!(a.acknowledged, Some(("ana".to_owned(), T0 + 5)));
        assert_eq!(a.silenced_until, Some(T0 + 3_600_000));
    }

    #[test]
    fn disabled_or_removed_rule_resolves_its_alerts() {
        let mut r = rule("backlog", RuleKind::QueueBacklog, "*", 10.0, 0);
        let bad = with_queues(vec![queue("q", 11, 1)]);
        let firing_now = evaluate(std::slice::from_ref(&r), &bad, &[], T0).active;
        r.enabled = false;
        let e = evaluate(std::slice::from_ref(&r), &bad, &firing_now, T0 + MIN);
        assert!(e.active.is_empty());
        assert_eq!(e.changes.len(), 1);
        assert!(matches!(&e.changes[0], Change::Resolved(a) if a.resolved_at == Some(T0 + MIN)));
        let e = evaluate(&[], &bad, &firing_now, T0 + MIN);
        assert!(e.active.is_empty());
        assert!(matches!(&e.changes[0], Change::Resolved(a) if a.rule == "backlog"));
    }

    #[test]
    fn disappearing_subject_resolves() {
        let rules = [rule("stale", RuleKind::InstanceStale, "api-2", 0.0, 0)];
        let obs = Observation {
            instances: vec![instance("api-2", InstanceHealth::Stale, None, false)],
            ..healthy()
        };
        let prev = evaluate(&rules, &obs, &[], T0).active;
        // It left: Gone does not alert, and its firing alert resolves.
        let gone = Observation {
            instances: vec![instance("api-2", InstanceHealth::Gone, None, false)],
            ..healthy()
        };
        let e = evaluate(&rules, &gone, &prev, T0 + MIN);
        assert!(e.active.is_empty());
        assert!(matches!(&e.changes[..], [Change::Resolved(a)] if a.subject == "api-2"));
        let e = evaluate(&rules, &healthy(), &prev, T0 + MIN);
        assert!(matches!(&e.changes[..], [Change::Resolved(a)] if a.subject == "api-2"));
    }

    #[test]
    fn rule_changes_apply_to_existing_alerts() {
        let mut r = rule("backlog", RuleKind::QueueBacklog, "*", 10.0, 300);
        let bad = with_queues(vec![queue("q", 11, 1)]);
        let prev = evaluate(std::slice::from_ref(&r), &bad, &[], T0).active;
        // Shortening `for` fires a pending alert that has waited long enough.
        r.for_secs = 60;
        r.severity = Severity::Critical;
        let e = evaluate(std::slice::from_ref(&r), &bad, &prev, T0 + MIN);
        assert_eq!(e.active[0].status, AlertStatus::Firing);
        assert_eq!(e.active[0].severity, Severity::Critical);
    }

    #[test]
    fn output_is_sorted_and_deterministic() {
        let rules = [
            rule("z-backlog", RuleKind::QueueBacklog, "*", 10.0, 0),
            rule("a-backlog", RuleKind::QueueBacklog, "*", 10.0, 60),
        ];
        let obs = with_queues(vec![
            queue("b", 11, 1),
            queue("a", 11, 1),
            queue("a", 99, 1),
        ]);
        let e = evaluate(&rules, &obs, &[], T0);
        let order: Vec<(&str, &str, AlertStatus)> = e
            .active
            .iter()
            .map(|a| (a.rule.as_str(), a.subject.as_str(), a.status))
            .collect();
        assert_eq!(
            order,
            [
                ("z-backlog", "*", AlertStatus::Firing),
                ("a-backlog", "*", AlertStatus::Pending),
            ]
        );
        // The duplicate queue "a" is read once: the first reading wins.
        assert_eq!(e.active[0].value, 11.0);
        let changes: Vec<(&str, &str)> = e
            .changes
            .iter()
            .map(|c| (c.alert().rule.as_str(), c.alert().subject.as_str()))
            .collect();
        assert_eq!(changes, [("z-backlog", "*"), ("a-backlog", "*")]);
        assert!(
            e.active[0].summary.starts_with("2 queues affected"),
            "{}",
            e.active[0].summary
        );
        // Leftovers end by rule and subject, whatever the input order.
        let reversed: Vec<Alert> = e.active.iter().rev().cloned().collect();
        let e2 = evaluate(&[], &obs, &reversed, T0 + MIN);
        let ends: Vec<(&str, &str)> = e2
            .changes
            .iter()
            .map(|c| (c.alert().rule.as_str(), c.alert().subject.as_str()))
            .collect();
        assert_eq!(ends, [("a-backlog", "*"), ("z-backlog", "*")]);
        assert!(matches!(e2.changes[0], Change::Cleared(_)));
        assert!(matches!(e2.changes[1], Change::Resolved(_)));
    }

    fn redis_node(address: &str) -> RedisNodeObservation {
        RedisNodeObservation {
            address: address.to_owned(),
            reachable: true,
            ..RedisNodeObservation::default()
        }
    }

    fn with_redis(redis: Vec<RedisNodeObservation>) -> Observation {
        Observation { redis, ..healthy() }
    }

    #[test]
    fn redis_memory_matches_above_a_share_of_maxmemory_only() {
        let limited = |address: &str, used: u64, max: Option<u64>| RedisNodeObservation {
            used_memory: Some(used),
            maxmemory: max,
            ..redis_node(address)
        };
        let mut down = limited("127.0.0.1:7009", 99, Some(100));
        down.reachable = false;
        let obs = with_redis(vec![
            limited("127.0.0.1:7001", 1_900_000, Some(2_000_000)),
            // No limit: nothing is evicted or refused, whatever it uses.
            limited("127.0.0.1:7002", 50_000_000_000, None),
            // At the threshold, not above it.
            limited("127.0.0.1:7003", 900, Some(1000)),
            down,
        ]);
        let r = [rule("memory", RuleKind::RedisMemory, "*", 90.0, 0)];
        assert_eq!(
            one(&fires_at_once(&r, &obs)),
            (
                "*".to_owned(),
                95.0,
                "Redis node 127.0.0.1:7001: memory at 95% of maxmemory (1.8 MiB of 1.9 MiB; threshold 90%)"
                    .to_owned()
            )
        );
        let named = [rule(
            "memory",
            RuleKind::RedisMemory,
            "127.0.0.1:7003",
            89.5,
            0,
        )];
        assert_eq!(one(&fires_at_once(&named, &obs)).0, "127.0.0.1:7003");
        assert!(fires_at_once(&r, &healthy()).active.is_empty());
    }

    #[test]
    fn redis_evictions_per_minute() {
        let evicting = |address: &str, per_min: Option<f64>| RedisNodeObservation {
            evicted_per_min: per_min,
            ..redis_node(address)
        };
        let obs = with_redis(vec![
            evicting("127.0.0.1:7001", Some(1200.0)),
            evicting("127.0.0.1:7002", Some(100.0)),
            // One read so far: no rate yet.
            evicting("127.0.0.1:7003", None),
        ]);
        let r = [rule("evictions", RuleKind::RedisEvictions, "*", 100.0, 0)];
        assert_eq!(
            one(&fires_at_once(&r, &obs)),
            (
                "*".to_owned(),
                1200.0,
                "Redis node 127.0.0.1:7001: 1,200 keys evicted per minute (threshold 100)"
                    .to_owned()
            )
        );
        let r = [rule("evictions", RuleKind::RedisEvictions, "*", 0.0, 0)];
        assert_eq!(
            one(&fires_at_once(&r, &obs)).2,
            "2 Redis nodes affected; worst: Redis node 127.0.0.1:7001: 1,200 keys evicted per \
             minute (threshold 0); then 127.0.0.1:7002 (100 evicted per min)"
        );
    }

    #[test]
    fn redis_replication_lag_on_replicas_with_a_figure() {
        let replica =
            |address: &str, master: &str, lag: Option<u64>, link_down: bool| RedisNodeObservation {
                replica: true,
                master: Some(master.to_owned()),
                lag_secs: lag,
                link_down,
                ..redis_node(address)
            };
        let mut master = redis_node("127.0.0.1:7001");
        // Not a replica: whatever this says, it lags behind nobody.
        master.lag_secs = Some(600);
        let obs = with_redis(vec![
            master,
            replica("127.0.0.1:7004", "127.0.0.1:7001", Some(12), false),
            replica("127.0.0.1:7005", "127.0.0.1:7002", Some(300), true),
            replica("127.0.0.1:7006", "127.0.0.1:7003", Some(5), false),
            // Its master was not read: no figure.
            replica("127.0.0.1:7007", "10.0.0.9:6379", None, false),
        ]);
        let named = [rule(
            "lag",
            RuleKind::RedisReplicationLag,
            "127.0.0.1:7004",
            5.0,
            0,
        )];
        assert_eq!(
            one(&fires_at_once(&named, &obs)),
            (
                "127.0.0.1:7004".to_owned(),
                12.0,
                "Redis replica 127.0.0.1:7004: 12 s behind its master 127.0.0.1:7001 (threshold 5 s)"
                    .to_owned()
            )
        );
        let any = [rule("lag", RuleKind::RedisReplicationLag, "*", 5.0, 0)];
        assert_eq!(
            one(&fires_at_once(&any, &obs)),
            (
                "*".to_owned(),
                300.0,
                "2 Redis replicas affected; worst: Redis replica 127.0.0.1:7005: link to its \
                 master 127.0.0.1:7002 down for 5 min (threshold 5 s); then 127.0.0.1:7004 \
                 (12 s behind)"
                    .to_owned()
            )
        );
        let mut lone = replica("127.0.0.1:7008", "x", Some(60), true);
        lone.master = None;
        assert_eq!(
            one(&fires_at_once(&any, &with_redis(vec![lone]))).2,
            "Redis replica 127.0.0.1:7008: link to its master down for 1 min (threshold 5 s)"
        );
    }

    #[test]
    fn redis_blocked_clients_above_threshold() {
        let blocked = |address: &str, n: Option<u64>| RedisNodeObservation {
            blocked_clients: n,
            ..redis_node(address)
        };
        let r = [rule("blocked", RuleKind::RedisBlockedClients, "*", 0.0, 0)];
        let obs = with_redis(vec![
            blocked("127.0.0.1:7001", Some(0)),
            blocked("127.0.0.1:7002", Some(1)),
            blocked("127.0.0.1:7003", None),
        ]);
        assert_eq!(
            one(&fires_at_once(&r, &obs)),
            (
                "*".to_owned(),
                1.0,
                "Redis node 127.0.0.1:7002: 1 client waiting in a blocking command (threshold 0)"
                    .to_owned()
            )
        );
        let r = [rule("blocked", RuleKind::RedisBlockedClients, "*", 2.0, 0)];
        let obs = with_redis(vec![blocked("127.0.0.1:7001", Some(1_500))]);
        assert_eq!(
            one(&fires_at_once(&r, &obs)).2,
            "Redis node 127.0.0.1:7001: 1,500 clients waiting in a blocking command (threshold 2)"
        );
        let obs = with_redis(vec![blocked("127.0.0.1:7001", Some(2))]);
        assert!(fires_at_once(&r, &obs).active.is_empty());
    }

    fn cache(namespace: &str, minutes: Vec<(i64, u64, u64)>, drifted: &[&str]) -> CacheObservation {
        CacheObservation {
            namespace: namespace.to_owned(),
            minutes: minutes
                .into_iter()
                .map(|(minute_ms, hits, requests)| crate::cache::CacheMinute {
                    minute_ms,
                    hits,
                    requests,
                })
                .collect(),
            drifted: drifted.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn cache_hit_ratio_below_threshold_over_the_window_only() {
        let caches = vec![
            // 5 min window: the old, perfect minute is outside it.
            cache(
                "users",
                vec![
                    (T0 - 30 * MIN, 1000, 1000),
                    (T0 - 2 * MIN, 30, 100),
                    (T0 - MIN, 10, 100),
                ],
                &[],
            ),
            cache("orders", vec![(T0 - MIN, 95, 100)], &[]),
            // No reads in the window: quiet, not failing.
            cache("idle", vec![(T0 - 40 * MIN, 0, 10)], &[]),
        ];
        let obs = Observation {
            caches,
            ..healthy()
        };
        let r = [rule("hits", RuleKind::CacheHitRatio, "*", 90.0, 0)];
        assert_eq!(
            one(&fires_at_once(&r, &obs)),
            (
                "*".to_owned(),
                20.0,
                "Cache namespace users: 20% of 200 reads were hits over the last 5 min (threshold 90%)"
                    .to_owned()
            )
        );
        // Both below 99%: the lowest ratio is the worst.
        let r = [rule("hits", RuleKind::CacheHitRatio, "*", 99.0, 0)];
        let (_, value, summary) = one(&fires_at_once(&r, &obs));
        assert_eq!(value, 20.0);
        assert!(
            summary.starts_with("2 cache namespaces affected; worst: Cache namespace users"),
            "{summary}"
        );
        assert!(summary.ends_with("then orders (95% hits)"), "{summary}");
        let named = [rule("hits", RuleKind::CacheHitRatio, "orders", 90.0, 0)];
        assert!(fires_at_once(&named, &obs).active.is_empty());
        assert!(fires_at_once(&r, &healthy()).active.is_empty());
    }

    #[test]
    fn cache_drift_names_the_instances_holding_stale_values() {
        let obs = Observation {
            caches: vec![
                cache("users", Vec::new(), &["api-2"]),
                cache("orders", Vec::new(), &[]),
            ],
            ..healthy()
        };
        let r = [rule("drift", RuleKind::CacheDrift, "users", 0.0, 0)];
        assert_eq!(
            one(&fires_at_once(&r, &obs)),
            (
                "users".to_owned(),
                1.0,
                "Cache namespace users: api-2 holds the same keys as other instances with other values (an invalidation was missed)"
                    .to_owned()
            )
        );
        let quiet = [rule("drift", RuleKind::CacheDrift, "orders", 0.0, 0)];
        assert!(fires_at_once(&quiet, &obs).active.is_empty());
    }

    #[test]
    fn redis_no_replica_only_for_cluster_masters() {
        let node = |address: &str, cluster: bool, replica: bool, replicas: Option<u64>| {
            RedisNodeObservation {
                cluster,
                replica,
                connected_replicas: replicas,
                ..redis_node(address)
            }
        };
        let mut down = node("127.0.0.1:7009", true, false, Some(0));
        down.reachable = false;
        let r = [rule("no-replica", RuleKind::RedisNoReplica, "*", 0.0, 0)];
        let obs = with_redis(vec![
            node("127.0.0.1:7001", true, false, Some(1)),
            node("127.0.0.1:7003", true, false, Some(0)),
            // A replica has no replicas of its own, and needs none.
            node("127.0.0.1:7004", true, true, Some(0)),
            // A single server is not expected to have any.
            node("127.0.0.1:6379", false, false, Some(0)),
            // Unknown is not none.
            node("127.0.0.1:7002", true, false, None),
            down,
        ]);
        assert_eq!(
            one(&fires_at_once(&r, &obs)),
            (
                "*".to_owned(),
                1.0,
                "Redis master 127.0.0.1:7003: no connected replica (its slots have no copy)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn redis_rules_wait_out_their_for_like_the_others() {
        let r = [rule("blocked", RuleKind::RedisBlockedClients, "*", 0.0, 60)];
        let mut node = redis_node("127.0.0.1:6379");
        node.blocked_clients = Some(4);
        let obs = with_redis(vec![node]);
        let e1 = evaluate(&r, &obs, &[], T0);
        assert_eq!(e1.active[0].status, AlertStatus::Pending);
        let e2 = evaluate(&r, &obs, &e1.active, T0 + MIN);
        assert_eq!(e2.active[0].status, AlertStatus::Firing);
        // The node stops answering: its figures are unknown, so the alert
        // resolves rather than stays on stale figures.
        let mut gone = obs.clone();
        gone.redis[0].reachable = false;
        let e3 = evaluate(&r, &gone, &e2.active, T0 + 2 * MIN);
        assert!(e3.active.is_empty());
        assert!(matches!(&e3.changes[..], [Change::Resolved(_)]));
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(number(1000.0), "1,000");
        assert_eq!(number(7.5), "7.5");
        assert_eq!(number(1234567.26), "1,234,567.3");
        assert_eq!(number(0.04), "0");
        assert_eq!(number(-1500.0), "-1,500");
        assert_eq!(count(999), "999");
        assert_eq!(count(1204), "1,204");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(300), "5 min");
        assert_eq!(duration(3600), "60 min");
        assert_eq!(duration(86400), "24 h");
        assert_eq!(span_ms(35.0), "35 ms");
        assert_eq!(span_ms(1_000.0), "1 s");
        assert_eq!(span_ms(12_345.0), "12.3 s");
        assert_eq!(span_ms(600_000.0), "10 min");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1,023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(2 * 1024 * 1024 * 1024), "2 GiB");
    }

    #[test]
    fn a_rule_on_every_queue_raises_one_alert_naming_the_worst_few() {
        let r = [rule("backlog", RuleKind::QueueBacklog, "*", 10.0, 0)];
        let many = with_queues(
            (0..10_000)
                .map(|i| queue(&format!("q{i:05}"), 11 + i % 7, 0))
                .collect(),
        );
        let e = fires_at_once(&r, &many);
        assert_eq!(e.active.len(), 1, "one alert, not 10,000");
        let alert = &e.active[0];
        assert_eq!(alert.subject, "*");
        assert_eq!(alert.fingerprint, fingerprint("backlog", "*"));
        assert_eq!(alert.value, 17.0, "the worst value");
        assert_eq!(
            alert.summary,
            "10,000 queues affected; worst: Queue q00006: 17 jobs waiting (threshold 10); then q00013 (17 waiting), q00020 (17 waiting), q00027 (17 waiting), q00034 (17 waiting), and 9,995 more (only the worst 5 are named)"
        );
        // The set changing does not start a new alert: same fingerprint,
        // still firing since the first evaluation, no new change.
        let fewer = with_queues(vec![queue("q00001", 12, 0), queue("other", 50, 0)]);
        let e2 = evaluate(&r, &fewer, &e.active, T0 + MIN);
        assert!(e2.changes.is_empty(), "{:?}", e2.changes);
        assert_eq!(e2.active[0].firing_since, Some(T0));
        assert_eq!(
            e2.active[0].summary,
            "2 queues affected; worst: Queue other: 50 jobs waiting (threshold 10); then q00001 (12 waiting)"
        );
        // None holds any more: the one alert resolves.
        let e3 = evaluate(&r, &with_queues(vec![]), &e2.active, T0 + 2 * MIN);
        assert!(matches!(&e3.changes[..], [Change::Resolved(a)] if a.subject == "*"));
    }
}
