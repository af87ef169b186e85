//! The figures alert rules are evaluated against, taken from the live hub's
//! latest snapshot (what the pages show), plus the age of each queue's
//! oldest waiting job when a rule asks for it.

use app::fleet::InstanceState;
use coord::queue::{JobState, QueueName, Queues};

use super::model::{
    BackendObservation, ChannelObservation, InstanceHealth, InstanceObservation, MinuteCounts,
    Observation, PolicyObservation, QueueObservation,
};
use crate::live::Snapshot;

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
    let health = &snapshot.health;
    let mut obs = Observation {
        at: now,
        backend: BackendObservation {
            reachable: health.backend_ok,
            latency_ms: health.latency_ms,
            problem: health.problem.clone(),
        },
        observing_since,
        ..Observation::default()
    };
    for row in &snapshot.rows {
        let minutes = snapshot
            .charts
            .iter()
            .find(|c| c.queue == row.name)
            .map(|c| {
                c.points
                    .iter()
                    .map(|p| MinuteCounts {
                        minute: p.minute_ms,
                        completed: p.completed,
                        failed: p.failed,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let waiting = row.counts.waiting;
        let oldest_waiting_ms = if with_latency && waiting > 0 && health.backend_ok {
            oldest_waiting_age(queues, &row.name, row.counts.waiting, now).await
        } else {
            None
        };
        obs.queues.push(QueueObservation {
            name: row.name.clone(),
            waiting,
            active: row.counts.active,
            paused: row.paused,
            minutes,
            oldest_waiting_ms,
        });
    }
    if let Some(instances) = &snapshot.instances {
        for row in &instances.instances {
            obs.instances.push(InstanceObservation {
                id: row.id.clone(),
                health: match row.state {
                    InstanceState::Live => InstanceHealth::Live,
                    InstanceState::Stale => InstanceHealth::Stale,
                    InstanceState::Gone => InstanceHealth::Gone,
                },
                lag: row.lag_changes.and_then(|l| u64::try_from(l).ok()),
                drifted: row.hash_matches == Some(false),
            });
        }
    }
    if let Some(ratelimits) = &snapshot.ratelimits {
        // The current minute's count only grows within the minute, so
        // "more than R this minute" is already more than R per minute.
        for policy in &ratelimits.policies {
            obs.policies.push(PolicyObservation {
                name: policy.name.clone(),
                rejected_last_minute: policy.rejected_this_minute,
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
