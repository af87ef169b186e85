//! The figures alert rules are evaluated against, taken from the live hub's
//! latest snapshot (domain figures, never a page's view model), plus the
//! age of each queue's oldest waiting job when a rule asks for it.

use coord::instances::InstanceStatus;
use coord::queue::{JobState, QueueName, Queues};

use super::model::{
    BackendObservation, ChannelObservation, InstanceHealth, InstanceObservation, MinuteCounts,
    Observation, PolicyObservation, QueueObservation,
};
use crate::live::Snapshot;
use crate::ratelimits::rejected_this_minute;

/// The observation at `now` from `snapshot`. `oldest_waiting` is asked for
/// each queue with waiting jobs only when `with_latency` (a job-latency
/// rule is enabled): it costs one backend call per such queue.
pub async fn observe(
    snapshot: &Snapshot,
    queues: &Queues,
    with_latency: bool,
    observing_since: i64,
    now: i64,
) -> Observation {
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
        let oldest_waiting_ms = if with_latency && waiting > 0 && backend.reachable {
            oldest_waiting_age(queues, &queue.name, waiting, now).await
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

/// How long the oldest waiting job of `queue` has waited: the last entry
/// of the newest-first waiting list. `None` when it cannot be read (the
/// rule then does not match rather than guessing).
async fn oldest_waiting_age(queues: &Queues, queue: &str, waiting: u64, now: i64) -> Option<i64> {
    let name = QueueName::new(queue).ok()?;
    if waiting == 0 {
        return None;
    }
    let page = queues
        .list(&name, JobState::Waiting, waiting - 1, 1)
        .await
        .ok()?;
    page.jobs.first().map(|job| now - job.created_at)
}
