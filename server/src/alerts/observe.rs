//! The figures alert rules are evaluated against, taken from the live hub's
//! latest snapshot (domain figures, never a page's view model), plus the
//! age of each queue's oldest waiting job when a rule asks for it.

use std::collections::HashMap;

use coord::instances::InstanceStatus;
use coord::queue::{JobState, QueueName, Queues};

use super::model::{
    BackendObservation, ChannelObservation, InstanceHealth, InstanceObservation, MinuteCounts,
    Observation, PolicyObservation, QueueObservation,
};
use crate::live::Snapshot;
use crate::ratelimits::rejected_this_minute;

/// When each queue's oldest waiting job was created, as last read, and the
/// queue's `changed` seq at that read: while a queue does not change, its
/// oldest waiting job is the same job, so the age is `now` minus a time
/// already known. Reads follow changed queues, not queues: 10,000 idle
/// queues with waiting jobs cost no read per evaluation.
#[derive(Debug, Default)]
pub struct OldestWaiting {
    known: std::sync::Mutex<HashMap<String, (u64, Option<i64>)>>,
}

/// The observation at `now` from `snapshot`. The age of each queue's
/// oldest waiting job is read only when `latency` is given (a job-latency
/// rule is enabled), and then only for queues that changed since it was
/// last read.
pub async fn observe(
    snapshot: &Snapshot,
    queues: &Queues,
    latency: Option<&OldestWaiting>,
    observing_since: i64,
    now: i64,
) -> Observation {
    let mut known = latency
        .map(|l| std::mem::take(&mut *lock(&l.known)))
        .unwrap_or_default();
    let mut kept = HashMap::new();
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
    for queue in &snapshot.queues {
        let minutes = queue
            .minutes
            .iter()
            .map(|p| MinuteCounts {
                minute: p.minute_ms,
                completed: p.completed,
                failed: p.failed,
            })
            .collect();
        let waiting = queue.counts.waiting;
        let oldest_waiting_ms = if latency.is_some() && waiting > 0 && backend.reachable {
            let created = match known.remove(&queue.name) {
                Some((seq, created)) if seq == queue.changed => created,
                _ => oldest_waiting_created(queues, &queue.name, waiting).await,
            };
            kept.insert(queue.name.clone(), (queue.changed, created));
            created.map(|at| now - at)
        } else {
            None
        };
        obs.queues.push(QueueObservation {
            name: queue.name.clone(),
            waiting,
            active: queue.counts.active,
            paused: queue.counts.paused,
            minutes,
            oldest_waiting_ms,
        });
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
    if let Some(latency) = latency {
        // Queues gone or without waiting jobs are forgotten.
        *lock(&latency.known) = kept;
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

/// A lock that survives a panicked holder: the map is a cache.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
