//! Wait and run times of BullMQ queues, read from their events streams
//! only for the queues whose pages are open: one
//! [`BullLatencyReader`] per queue viewed lately (at most [`MAX_QUEUES`],
//! the least recently viewed dropped first), polled at most every
//! [`POLL_EVERY`] however many pages show the queue. 10,000 BullMQ queues
//! nobody looks at cost nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coord::bullmq::{BullLatencyReader, BullMq, RECENT_MINUTES};
use coord::queue::latency::LatencyHistogram;
use coord::time::now_ms;

use crate::sync::lock;
use crate::workers::vm::percentiles;

/// Queues whose readers are kept.
pub const MAX_QUEUES: usize = 100;

/// Least time between two reads of one queue's stream.
pub const POLL_EVERY: Duration = Duration::from_secs(5);

struct Kept {
    reader: BullLatencyReader,
    polled: Instant,
    used: Instant,
}

/// The readers of the queues viewed lately. Cheap to clone.
#[derive(Clone, Default)]
pub struct BullLatency {
    kept: Arc<Mutex<HashMap<String, Kept>>>,
}

impl std::fmt::Debug for BullLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BullLatency").finish_non_exhaustive()
    }
}

impl BullLatency {
    /// A queue's wait and run times for its page, reading what its stream
    /// gained since the last read (if that was [`POLL_EVERY`] ago).
    /// `None` when the stream cannot be read: the page says nothing rather
    /// than something wrong.
    pub async fn of(&self, client: &BullMq, queue: &str) -> Option<app::LatencyVm> {
        let taken = lock(&self.kept).remove(queue);
        let mut kept = taken.unwrap_or_else(|| Kept {
            reader: BullLatencyReader::new(queue),
            polled: Instant::now() - POLL_EVERY * 2,
            used: Instant::now(),
        });
        if kept.polled.elapsed() >= POLL_EVERY {
            match kept.reader.poll(client).await {
                Ok(_) => kept.polled = Instant::now(),
                Err(err) => {
                    tracing::warn!(error = %err, queue, "cannot read a BullMQ events stream");
                    return None;
                }
            }
        }
        kept.used = Instant::now();
        let vm = view(&kept.reader, now_ms());
        let mut all = lock(&self.kept);
        all.insert(queue.to_owned(), kept);
        if all.len() > MAX_QUEUES
            && let Some(oldest) = all
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(q, _)| q.clone())
        {
            all.remove(&oldest);
        }
        vm
    }
}

/// The figures as `/api/bullmq/<queue>` answers them (`null` when none
/// could be read yet): the last finished minutes' percentiles in ms.
pub fn json(latency: Option<&app::LatencyVm>) -> serde_json::Value {
    let Some(l) = latency else {
        return serde_json::Value::Null;
    };
    let p = |p: &app::PercentilesVm| serde_json::json!({ "p50": p.p50, "p95": p.p95, "p99": p.p99, "max": p.max });
    serde_json::json!({
        "minutes": l.minutes,
        "attempts": l.attempts,
        "waitMs": p(&l.wait),
        "runMs": p(&l.run),
        "source": "events stream",
    })
}

/// The page's figures: the last finished minutes' percentiles and each
/// kept minute's p95s; `None` before any attempt was seen.
fn view(reader: &BullLatencyReader, now: i64) -> Option<app::LatencyVm> {
    let minutes = reader.minutes();
    if minutes.is_empty() {
        return None;
    }
    let p95 = |pairs: &[(u64, u64)]| {
        LatencyHistogram::from_pairs(pairs)
            .map(|h| h.percentiles().p95)
            .unwrap_or_default()
    };
    let current = coord::queue::latency::minute_of(now);
    let from = current - RECENT_MINUTES as i64 * 60_000;
    let (wait, run) = reader.recent(now);
    Some(app::LatencyVm {
        minutes: minutes
            .iter()
            .filter(|m| (from..current).contains(&m.minute))
            .count(),
        attempts: run.count,
        wait: percentiles(&wait),
        run: percentiles(&run),
        // The minute under way is left out, as on native queues: its
        // figures would move until it ends.
        points: minutes
            .iter()
            .filter(|m| m.minute < current)
            .map(|m| (m.minute, p95(&m.wait), p95(&m.run)))
            .collect(),
    })
}
