//! Idle schedules for the read-cost measurements: many stored schedules
//! that fire nothing while measured, written through coord. Shared by the
//! schedules benchmark (`--measure read`) and the dashboard benchmark
//! (`--measure schedules`).

use std::time::{Duration, Instant};

use anyhow::Context;
use coord::queue::schedules::{Schedule, ScheduleId};
use coord::queue::{QueueName, Queues};
use tokio::task::JoinSet;

/// The queue the idle schedules would enqueue into.
pub const QUEUE: &str = "bench-idle";
/// Once a year, at midnight UTC on 1 January: never during a run.
pub const CRON: &str = "0 0 1 1 *";
/// Upserts under way at once while writing.
const WRITERS: usize = 16;

/// The id of the `i`th idle schedule (zero-padded, so ids sort as numbers).
fn id(i: usize) -> String {
    format!("idle-{i:06}")
}

/// Writes `n` idle cron schedules ([`CRON`] in UTC, into [`QUEUE`]) with
/// [`WRITERS`] upserts at once; returns how long it took.
pub async fn write(queues: &Queues, n: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let queue = QueueName::new(QUEUE)?;
    let mut set = JoinSet::new();
    for w in 0..WRITERS {
        let (queues, queue) = (queues.clone(), queue.clone());
        set.spawn(async move {
            for i in (w..n).step_by(WRITERS) {
                let schedule =
                    Schedule::cron(ScheduleId::new(id(i))?, queue.clone(), "idle", CRON, "UTC");
                queues
                    .upsert_schedule(schedule)
                    .await
                    .with_context(|| format!("writing schedule {}", id(i)))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}
