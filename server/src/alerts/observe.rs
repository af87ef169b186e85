//! The figures alert rules are evaluated against, taken from the live hub's
//! latest snapshot (domain figures, never a page's view model), plus the
//! age of each queue's oldest waiting job when a rule asks for it. Wait and
//! run percentiles come merged from the workers' reports in the snapshot,
//! so they cost no read.

use std::collections::HashMap;

use futures_util::StreamExt;

use coord::instances::InstanceStatus;
use coord::queue::{JobState, QueueName, Queues};
use coord::redis_health::NodeRole;

use super::model::{
    BackendObservation, CacheObservation, ChannelObservation, InstanceHealth, InstanceObservation,
    MinuteCounts, Observation, PolicyObservation, QueueObservation, RedisNodeObservation,
};
use crate::live::Snapshot;
use crate::ratelimits::rejected_this_minute;
use crate::redis_health::RedisFigures;
use crate::sync::lock;
use crate::workers::latency::QueueLatency;

/// When each queue's oldest waiting job was created, as last read, and the
/// queue's `changed` seq at that read: while a queue does not change, its
/// oldest waiting job is the same job, so the age is `now` minus a time
/// already known. Reads follow changed queues, not queues: 10,000 idle
/// queues with waiting jobs cost no read per evaluation.
#[derive(Debug, Default)]
pub struct OldestWaiting {
    known: std::sync::Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    /// Per queue: `changed` seq at the read, the creation time read, and
    /// the evaluation that read it.
    queues: HashMap<String, (u64, Option<i64>, u64)>,
    /// Evaluations so far.
    evaluations: u64,
}

/// Oldest-waiting reads per evaluation at most, and how many run at once:
/// an evaluation stays within tens of milliseconds however many queues
/// changed (the first one after a start finds every queue unread: 10,000
/// of them are read over the next twenty evaluations, least recently read
/// first).
const READS_PER_EVALUATION: usize = 512;
const READ_CONCURRENCY: usize = 32;

/// The observation at `now` from `snapshot`. The age of each queue's
/// oldest waiting job is read only when `latency` is given (a job-latency
/// rule is enabled), and then only for queues that changed since it was
/// last read, at most [`READS_PER_EVALUATION`] of them; a queue left for a
/// later evaluation keeps the age its last read gives (none before its
/// first). Queues carry the last `minutes` finished minutes (the longest
/// window a rule measures over), not the whole hour the snapshot keeps.
pub async fn observe(
    snapshot: &Snapshot,
    queues: &Queues,
    latency: Option<&OldestWaiting>,
    minutes: usize,
    observing_since: i64,
    now: i64,
) -> Observation {
    let mut known = latency
        .map(|l| std::mem::take(&mut *lock(&l.known)))
        .unwrap_or_default();
    known.evaluations += 1;
    let evaluation = known.evaluations;
    let backend = &snapshot.backend;
    let mut obs = Observation {
        at: now,
        backend: BackendObservation {
            reachable: backend.reachable,
            latency_ms: backend.latency_ms,
            problem: backend.problem.clone(),
        },
        observing_since,
        ..Observation::default()
    };
    let mut kept = HashMap::new();
    // (index in obs.queues, last read evaluation) of queues to read again.
    let mut stale: Vec<(usize, u64)> = Vec::new();
    let latency_figures = snapshot.workers.as_deref().map(|w| &w.latency);
    for queue in &snapshot.queues {
        let (wait_p95_ms, run_p95_ms) = recent_p95(
            latency_figures
                .and_then(|figures| figures.get(&queue.name))
                .map(|l| &**l),
            now,
        );
        let points = &queue.minutes[queue.minutes.len().saturating_sub(minutes)..];
        let waiting = queue.counts.waiting;
        let mut created = None;
        if latency.is_some() && waiting > 0 && backend.reachable {
            let entry = known.queues.remove(&queue.name);
            if entry.is_none_or(|(seq, _, _)| seq != queue.changed) {
                stale.push((obs.queues.len(), entry.map_or(0, |(_, _, read)| read)));
            }
            created = entry.and_then(|(_, at, _)| at);
            // An entry left unread keeps its old seq, so it stays stale.
            if let Some(entry) = entry {
                kept.insert(queue.name.clone(), entry);
            }
        }
        obs.queues.push(QueueObservation {
            name: queue.name.clone(),
            waiting,
            active: queue.counts.active,
            paused: queue.counts.paused,
            minutes: points
                .iter()
                .map(|p| MinuteCounts {
                    minute: p.minute_ms,
                    completed: p.completed,
                    failed: p.failed,
                })
                .collect(),
            oldest_waiting_ms: created.map(|at| now - at),
            workers: snapshot
                .workers
                .as_deref()
                .and_then(|workers| workers.queue(&queue.name)),
            wait_p95_ms,
            run_p95_ms,
        });
    }
    if let Some(latency) = latency {
        // Least recently read first (never read: 0).
        stale.sort_by_key(|&(_, read)| read);
        stale.truncate(READS_PER_EVALUATION);
        let reads = futures_util::stream::iter(stale)
            .map(|(i, _)| {
                let q = &obs.queues[i];
                let (name, waiting) = (q.name.clone(), q.waiting);
                async move { (i, oldest_waiting_created(queues, &name, waiting).await) }
            })
            .buffer_unordered(READ_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for (i, created) in reads {
            let q = &mut obs.queues[i];
            q.oldest_waiting_ms = created.map(|at| now - at);
            if let Some(figures) = snapshot.queue(&q.name) {
                kept.insert(q.name.clone(), (figures.changed, created, evaluation));
            }
        }
        // Queues gone or without waiting jobs are forgotten.
        *lock(&latency.known) = Known {
            queues: kept,
            evaluations: evaluation,
        };
    }
    if let Some(instances) = &snapshot.instances {
        for facts in &instances.instances {
            obs.instances.push(InstanceObservation {
                id: facts.view.report.id.to_string(),
                health: match facts.status() {
                    InstanceStatus::Live => InstanceHealth::Live,
                    InstanceStatus::Stale => InstanceHealth::Stale,
                    InstanceStatus::Gone => InstanceHealth::Gone,
                },
                lag: facts.lag_changes.and_then(|l| u64::try_from(l).ok()),
                drifted: facts.hash_matches == Some(false),
            });
        }
    }
    if let Some(ratelimits) = &snapshot.ratelimits {
        for (policy, usage) in &ratelimits.policies {
            obs.policies.push(PolicyObservation {
                name: policy.name().to_owned(),
                rejected_last_minute: rejected_this_minute(usage),
            });
        }
    }
    if let Some(caches) = &snapshot.caches {
        obs.caches = caches
            .namespaces
            .iter()
            .map(|ns| CacheObservation {
                namespace: ns.name.clone(),
                minutes: ns.minutes.clone(),
                drifted: match &ns.agreement {
                    crate::cache::Agreement::Drifted { instances } => instances.clone(),
                    _ => Vec::new(),
                },
            })
            .collect();
    }
    if let Some(redis) = &snapshot.redis {
        obs.redis = redis_nodes(redis);
    }
    if let Some(channels) = &snapshot.channels {
        for channel in &channels.channels {
            obs.channels.push(ChannelObservation {
                name: channel.name.clone(),
                last_message_at: channel.last_messages.first().map(|m| m.at),
            });
        }
    }
    obs
}

/// Every node of the hub's latest Redis read, as the Redis rules see it.
fn redis_nodes(figures: &RedisFigures) -> Vec<RedisNodeObservation> {
    let cluster = figures.report.cluster;
    figures
        .report
        .nodes
        .iter()
        .map(|node| {
            let info = node.info.as_ref();
            RedisNodeObservation {
                address: node.address.clone(),
                reachable: node.reachable,
                replica: node.role == Some(NodeRole::Replica),
                cluster,
                used_memory: info.and_then(|i| i.used_memory),
                maxmemory: info.and_then(|i| i.maxmemory).filter(|&m| m > 0),
                evicted_per_min: figures
                    .rates
                    .get(&node.address)
                    .and_then(|r| r.evicted_per_sec)
                    .map(|per_sec| per_sec * 60.0),
                blocked_clients: info.and_then(|i| i.blocked_clients),
                connected_replicas: info.and_then(|i| i.connected_replicas),
                master: node.master.clone(),
                lag_secs: crate::redis_health::lag_secs(node),
                link_down: crate::redis_health::link_down(node),
            }
        })
        .collect()
}

/// A queue's p95 wait and run (ms) over the last minutes with attempts,
/// when they are recent enough to speak for the last five minutes.
fn recent_p95(latency: Option<&QueueLatency>, now: i64) -> (Option<u64>, Option<u64>) {
    let Some(latency) = latency.filter(|l| l.is_recent(now)) else {
        return (None, None);
    };
    let p95 = |p: &coord::queue::latency::Percentiles| (p.count > 0).then_some(p.p95);
    (p95(&latency.wait), p95(&latency.run))
}

/// When the oldest waiting job of `queue` was created: the last entry of
/// the newest-first waiting list. `None` when it cannot be read (the rule
/// then does not match rather than guessing).
async fn oldest_waiting_created(queues: &Queues, queue: &str, waiting: u64) -> Option<i64> {
    let name = QueueName::new(queue).ok()?;
    if waiting == 0 {
        return None;
    }
    let page = queues
        .list(&name, JobState::Waiting, waiting - 1, 1)
        .await
        .ok()?;
    page.jobs.first().map(|job| job.created_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coord::queue::latency::Percentiles;

    use crate::workers::latency::{RECENT_MINUTES, SETTLE_MS};

    /// A minute's start.
    const T: i64 = 30_000_000 * 60_000;

    fn ended_at(minute: i64) -> QueueLatency {
        QueueLatency {
            last: Some((minute, Percentiles::default(), Percentiles::default())),
            ..QueueLatency::default()
        }
    }

    #[test]
    fn figures_count_while_their_newest_minute_is_within_the_window() {
        let latency = ended_at(T);
        let window = RECENT_MINUTES as i64 * 60_000 + SETTLE_MS;
        assert!(latency.is_recent(T + 60_000 + SETTLE_MS));
        assert!(latency.is_recent(T + 60_000 + window));
        assert!(!latency.is_recent(T + 60_000 + window + 1));
        assert!(!QueueLatency::default().is_recent(T));
    }

    #[test]
    fn the_p95s_are_known_only_with_recent_attempts() {
        let mut latency = ended_at(T);
        latency.wait = Percentiles {
            count: 4,
            p95: 12_000,
            ..Percentiles::default()
        };
        // No run recorded: unknown, not 0.
        let now = T + 60_000 + SETTLE_MS;
        assert_eq!(recent_p95(Some(&latency), now), (Some(12_000), None));
        latency.run = Percentiles {
            count: 4,
            p95: 800,
            ..Percentiles::default()
        };
        assert_eq!(recent_p95(Some(&latency), now), (Some(12_000), Some(800)));
        // An hour-old busy spell no longer speaks for the last minutes.
        assert_eq!(recent_p95(Some(&latency), T + 3_600_000), (None, None));
        assert_eq!(recent_p95(None, now), (None, None));
    }
}
