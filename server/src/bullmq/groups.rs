//! The error groups of BullMQ queues, kept by the monitor: BullMQ stores
//! none, so each queue's [`GroupBook`] is filled once from its newest
//! failed jobs and then kept from its `events` stream (a `failed` event
//! adds the job, any later state event takes it out). Whenever a book and
//! the queue's failed count disagree for a while (jobs trimmed by
//! `removeOnFail` or `clean`, which name no job, or events trimmed before
//! they were read) the book is filled again. Pages say how much of the
//! failed set the groups cover ([`Coverage`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use coord::bullmq::groups::{FailedJob, GroupBook};
use coord::bullmq::{BullCounts, BullEvent, BullMq, parse_stream_id};
use coord::time::now_ms;

/// Most failed jobs one queue's book holds (the newest): the groups of a
/// queue with more say they cover only these.
pub const PER_QUEUE: usize = 10_000;
/// Most failed jobs all books hold together, so 10,000 failing queues
/// cost a bounded amount of memory: each book's cap is its share of it
/// among the queues with failed jobs (at most [`PER_QUEUE`], at least
/// [`MIN_PER_QUEUE`]), set again every round as queues start and stop
/// failing.
pub const TOTAL: usize = 200_000;
/// What a queue's book may always hold.
const MIN_PER_QUEUE: usize = 10;
/// Failed jobs read per monitor round to fill books, so a first start
/// against thousands of failing queues spreads its reads out.
const FILL_PER_ROUND: usize = 20_000;
/// Queues filled per round at most.
const QUEUES_PER_ROUND: usize = 200;
/// How long a book and the failed count must disagree before the book is
/// filled again: events already written but not read yet settle sooner.
const SETTLE: Duration = Duration::from_secs(5);
/// Least time between two fills of one queue.
const REFILL_EVERY: Duration = Duration::from_secs(10);

/// Events that move a job out of whatever state it was in: one held as
/// failed has left the failed set.
const LEAVING: [&str; 7] = [
    "waiting",
    "delayed",
    "active",
    "removed",
    "prioritized",
    "waiting-children",
    "completed",
];

/// How much of a queue's failed set its groups cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// Failed jobs in the groups.
    pub grouped: u64,
    /// Failed jobs in the queue, as last counted.
    pub failed: u64,
    /// Most the book holds.
    pub cap: u64,
    /// When the book was last filled from the failed set (ms), None while
    /// it never was.
    pub filled_at: Option<i64>,
}

impl Coverage {
    /// What the groups leave out, in words, or None when they cover every
    /// failed job.
    pub fn note(&self) -> Option<String> {
        if self.filled_at.is_none() {
            return Some(
                "This queue's failed jobs are being read: its groups are not complete yet."
                    .to_owned(),
            );
        }
        if self.grouped >= self.failed {
            return None;
        }
        let left = self.failed - self.grouped;
        Some(if self.grouped >= self.cap {
            format!(
                "Grouped the newest {} of {} failed jobs: BullMQ keeps no groups, so Switchyard holds at most {} per queue; the other {} are in no group.",
                app::format_count(self.grouped),
                app::format_count(self.failed),
                app::format_count(self.cap),
                app::format_count(left)
            )
        } else {
            format!(
                "Grouped {} of {} failed jobs: {} changed since BullMQ's events were last read and will be grouped within seconds.",
                app::format_count(self.grouped),
                app::format_count(self.failed),
                app::format_count(left)
            )
        })
    }
}

/// One queue's book and how it is kept.
#[derive(Debug)]
struct Kept {
    book: GroupBook,
    filled: Option<(Instant, i64)>,
    /// Since when the book and the failed count disagree.
    mismatch_since: Option<Instant>,
    /// The failed count last seen.
    failed: u64,
    /// Asked to be filled again at the next round.
    stale: bool,
    /// Its last fill failed: not tried again before then.
    retry_after: Option<Instant>,
}

#[derive(Debug, Default)]
struct Books {
    queues: BTreeMap<String, Kept>,
    /// Moves on every change, so live pages re-render only then.
    version: u64,
}

/// Every BullMQ queue's error groups. Cheap to clone; the lock is never
/// held across an await.
#[derive(Debug, Clone, Default)]
pub struct BullGroups {
    books: Arc<Mutex<Books>>,
}

impl BullGroups {
    fn lock(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves on every change of any book.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// Reads `f` of a queue's book and its coverage, None for a queue not
    /// followed.
    pub fn read<T>(&self, queue: &str, f: impl FnOnce(&GroupBook, &Coverage) -> T) -> Option<T> {
        let books = self.lock();
        let kept = books.queues.get(queue)?;
        Some(f(&kept.book, &coverage(kept)))
    }

    /// Reads `f` of every followed queue's book with failed jobs (those
    /// with the most first), at most `max`, and how many there were.
    pub fn read_all<T>(
        &self,
        max: usize,
        mut f: impl FnMut(&str, &GroupBook, &Coverage) -> T,
    ) -> (Vec<T>, usize) {
        let books = self.lock();
        let mut failing: Vec<(&String, &Kept)> =
            books.queues.iter().filter(|(_, k)| k.failed > 0).collect();
        failing.sort_by(|a, b| b.1.failed.cmp(&a.1.failed).then(a.0.cmp(b.0)));
        let n = failing.len();
        let read = failing
            .into_iter()
            .take(max)
            .map(|(name, kept)| f(name, &kept.book, &coverage(kept)))
            .collect();
        (read, n)
    }

    /// Takes the events of one monitor read into the books: the jobs that
    /// failed (read from Redis, only if still failed) join their group,
    /// jobs that moved on leave theirs. A queue whose failed jobs cannot
    /// be read now is filled again at the next round.
    pub async fn apply(&self, client: &BullMq, events: &[BullEvent]) {
        let mut wanted: HashMap<&str, Vec<&str>> = HashMap::new();
        for event in events {
            if event.event == "failed"
                && let Some(id) = event.job_id.as_deref()
            {
                wanted.entry(event.queue.as_str()).or_default().push(id);
            }
        }
        let mut failed: HashMap<(&str, &str), FailedJob> = HashMap::new();
        let mut unread: HashSet<&str> = HashSet::new();
        for (queue, ids) in &mut wanted {
            ids.sort_unstable();
            ids.dedup();
            match client.failed_now(queue, ids).await {
                Ok(jobs) => {
                    for job in jobs {
                        if let Some(id) = ids.iter().find(|id| **id == job.id) {
                            failed.insert((queue, id), job);
                        }
                    }
                }
                Err(err) => {
                    tracing::debug!(%queue, error = %err, "cannot read BullMQ failed jobs");
                    unread.insert(queue);
                }
            }
        }
        let mut books = self.lock();
        let mut changed = false;
        for event in events {
            let Some(kept) = books.queues.get_mut(&event.queue) else {
                continue;
            };
            if unread.contains(event.queue.as_str()) || event.event == "cleaned" {
                kept.stale = true;
                continue;
            }
            let Some(id) = event.job_id.as_deref() else {
                continue;
            };
            let at = parse_stream_id(&event.id).unwrap_or((u64::MAX, u64::MAX));
            if event.event == "failed" {
                if let Some(job) = failed.get(&(event.queue.as_str(), id)) {
                    let mut job = job.clone();
                    job.seen = at;
                    kept.book.failed(job);
                    changed = true;
                }
            } else if LEAVING.contains(&event.event.as_str()) {
                // An event no newer than what the book knows of the job
                // (a fill read it failed anew since) is not about it.
                if kept.book.seen(id).is_some_and(|seen| at > seen) {
                    kept.book.left(id);
                    changed = true;
                }
            }
        }
        if changed {
            books.version += 1;
        }
    }

    /// Follows the queues now known (dropping the others), notes which
    /// books disagree with their failed count, and fills those due, up to
    /// a round's budget. Returns whether books are still waiting to be
    /// filled, so the monitor comes back soon.
    pub async fn keep(&self, client: &BullMq, queues: &BTreeMap<String, BullCounts>) -> bool {
        let due = {
            let mut books = self.lock();
            let before = books.queues.len();
            books.queues.retain(|name, _| queues.contains_key(name));
            let mut changed = books.queues.len() != before;
            let now = Instant::now();
            let mut due: Vec<(String, u64)> = Vec::new();
            let failing = queues.values().filter(|c| c.failed > 0).count();
            let share = (TOTAL / failing.max(1)).clamp(MIN_PER_QUEUE, PER_QUEUE);
            for (name, counts) in queues {
                let kept = books.queues.entry(name.clone()).or_insert_with(|| {
                    changed = true;
                    Kept {
                        book: GroupBook::new(PER_QUEUE),
                        filled: None,
                        mismatch_since: None,
                        failed: counts.failed,
                        stale: false,
                        retry_after: None,
                    }
                });
                if kept.failed != counts.failed {
                    kept.failed = counts.failed;
                    changed = true;
                }
                if kept.book.cap() != share {
                    kept.book.set_cap(share);
                    changed = true;
                }
                let expected = (counts.failed as usize).min(kept.book.cap());
                if kept.book.len() == expected {
                    kept.mismatch_since = None;
                } else if kept.mismatch_since.is_none() {
                    kept.mismatch_since = Some(now);
                }
                let settled = kept
                    .mismatch_since
                    .is_some_and(|since| now.duration_since(since) >= SETTLE);
                let rested = kept
                    .filled
                    .is_none_or(|(at, _)| now.duration_since(at) >= REFILL_EVERY);
                let waited = kept.retry_after.is_none_or(|at| now >= at);
                if waited && (kept.filled.is_none() || ((settled || kept.stale) && rested)) {
                    due.push((name.clone(), counts.failed));
                }
            }
            if changed {
                books.version += 1;
            }
            due
        };
        let waiting = due.len();
        let mut budget = FILL_PER_ROUND;
        let mut filled = 0;
        for (queue, failed) in due.into_iter().take(QUEUES_PER_ROUND) {
            let cap = self
                .read(&queue, |book, _| book.cap())
                .unwrap_or(MIN_PER_QUEUE);
            let take = (failed as usize).min(cap);
            if take > budget && filled > 0 {
                break;
            }
            // The stream's head first: events after it are news to the
            // book the read makes.
            let jobs = if take == 0 {
                Ok(Vec::new())
            } else {
                match client.events_head(&queue).await {
                    Ok(head) => client.failed_jobs(&queue, take).await.map(|mut jobs| {
                        for job in &mut jobs {
                            job.seen = head;
                        }
                        jobs
                    }),
                    Err(err) => Err(err),
                }
            };
            match jobs {
                Ok(jobs) => {
                    let mut books = self.lock();
                    if let Some(kept) = books.queues.get_mut(&queue) {
                        kept.book = GroupBook::filled(cap, jobs);
                        kept.filled = Some((Instant::now(), now_ms()));
                        kept.mismatch_since = None;
                        kept.stale = false;
                        kept.retry_after = None;
                        books.version += 1;
                    }
                }
                Err(err) => {
                    // Tried again after a while; the other queues go on.
                    tracing::debug!(%queue, error = %err, "cannot read BullMQ failed jobs");
                    if let Some(kept) = self.lock().queues.get_mut(&queue) {
                        kept.retry_after = Some(Instant::now() + REFILL_EVERY);
                    }
                }
            }
            budget = budget.saturating_sub(take.max(1));
            filled += 1;
        }
        filled < waiting
    }
}

fn coverage(kept: &Kept) -> Coverage {
    Coverage {
        grouped: kept.book.len() as u64,
        failed: kept.failed,
        cap: kept.book.cap() as u64,
        filled_at: kept.filled.map(|(_, at)| at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_says_what_is_left_out() {
        let mut c = Coverage {
            grouped: 10,
            failed: 10,
            cap: 10_000,
            filled_at: Some(1),
        };
        assert_eq!(c.note(), None);
        c.failed = 12;
        assert!(c.note().is_some_and(|n| n.contains("Grouped 10 of 12")));
        c.grouped = 10_000;
        c.failed = 25_000;
        assert!(
            c.note()
                .is_some_and(|n| n.contains("newest 10,000 of 25,000"))
        );
        c.filled_at = None;
        assert!(c.note().is_some_and(|n| n.contains("being read")));
    }
}
