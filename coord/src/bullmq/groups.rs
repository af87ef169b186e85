//! Error groups of BullMQ queues. BullMQ keeps no such thing and its
//! scripts are not ours to change, so the groups are kept in memory by
//! whoever follows the queue's `events` stream: a `failed` event adds the
//! job (after reading its name), any later state event for it takes it
//! out, and a read of the newest failed jobs ([`BullMq::failed_jobs`])
//! fills the book when the queue is first seen and whenever the book and
//! the failed set disagree (jobs trimmed by `removeOnFail`, `clean`, an
//! events stream trimmed before it was read).
//!
//! A book holds at most its cap of jobs, the most recently failed: what a
//! queue with a million failed jobs costs is bounded, and the page says
//! how many failed jobs the groups cover.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::errors::{
    ErrorGroup, ErrorGroups, GroupId, MAX_NAMES, TREND_BUCKETS, Trend, normalise, sample,
    trend_bucket,
};

/// A failed job as the book needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJob {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its `failedReason`.
    pub reason: String,
    /// When it failed (`finishedOn`, ms since the epoch, the worker's
    /// clock): orders the book and places the trend.
    pub at: i64,
    /// The events-stream id (ms, sequence) after which an event about the
    /// job is newer than what the book knows: its `failed` event's, or
    /// the stream's head when a fill read it. Stream ids are Redis's
    /// clock, so comparing them with each other never meets clock skew.
    pub seen: (u64, u64),
}

/// One job in the book.
#[derive(Debug, Clone)]
struct Member {
    group: GroupId,
    name: Arc<str>,
    at: i64,
    seen: (u64, u64),
}

/// One group's running totals.
#[derive(Debug, Clone)]
struct Group {
    /// Its members, by when they failed.
    members: BTreeSet<(i64, Arc<str>)>,
    first_seen: i64,
    last_seen: i64,
    /// The reason of the latest failure into the group.
    reason: String,
    names: HashMap<Arc<str>, u64>,
}

/// The error groups of one BullMQ queue, kept by [`GroupBook::failed`] and
/// [`GroupBook::left`] as its events arrive. Every read is O(groups) or
/// O(a group's members), never O(failed jobs).
#[derive(Debug, Clone)]
pub struct GroupBook {
    cap: usize,
    jobs: HashMap<Arc<str>, Member>,
    /// Every member by when it failed, to drop the oldest over the cap.
    order: BTreeSet<(i64, Arc<str>)>,
    groups: HashMap<GroupId, Group>,
}

impl GroupBook {
    /// An empty book keeping at most `cap` jobs.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            jobs: HashMap::new(),
            order: BTreeSet::new(),
            groups: HashMap::new(),
        }
    }

    /// A book filled from a read of the failed set, newest first or not.
    pub fn filled(cap: usize, jobs: impl IntoIterator<Item = FailedJob>) -> Self {
        let mut book = Self::new(cap);
        for job in jobs {
            book.failed(job);
        }
        book
    }

    /// Most jobs it keeps.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Keeps at most `cap` jobs from now on, the oldest failures leaving
    /// at once when it holds more.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        self.evict();
    }

    fn evict(&mut self) {
        while self.jobs.len() > self.cap {
            let Some((_, oldest)) = self.order.first().cloned() else {
                break;
            };
            self.left(&oldest);
        }
    }

    /// Failed jobs it holds.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Groups it holds.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// When the job it holds failed, if it holds it.
    pub fn failed_at(&self, id: &str) -> Option<i64> {
        self.jobs.get(id).map(|m| m.at)
    }

    /// The stream id after which events about a job it holds are news
    /// (see [`FailedJob::seen`]).
    pub fn seen(&self, id: &str) -> Option<(u64, u64)> {
        self.jobs.get(id).map(|m| m.seen)
    }

    /// `job` is in the failed set now. A job already held moves to the
    /// group of its new reason; over the cap, the oldest failure leaves.
    pub fn failed(&mut self, job: FailedJob) {
        self.left(&job.id);
        let id: Arc<str> = Arc::from(job.id.as_str());
        let reason = sample(&job.reason);
        let group_id = GroupId::of_normalised(&normalise(reason));
        let group = self.groups.entry(group_id).or_insert_with(|| Group {
            members: BTreeSet::new(),
            first_seen: job.at,
            last_seen: job.at,
            reason: reason.to_owned(),
            names: HashMap::new(),
        });
        let name: Arc<str> = match group.names.get_key_value(job.name.as_str()) {
            Some((name, _)) => name.clone(),
            None => Arc::from(job.name.as_str()),
        };
        *group.names.entry(name.clone()).or_default() += 1;
        group.members.insert((job.at, id.clone()));
        group.first_seen = group.first_seen.min(job.at);
        if job.at >= group.last_seen {
            group.last_seen = job.at;
            group.reason = reason.to_owned();
        }
        self.order.insert((job.at, id.clone()));
        self.jobs.insert(
            id,
            Member {
                group: group_id,
                name,
                at: job.at,
                seen: job.seen,
            },
        );
        self.evict();
    }

    /// The job left the failed set (retried, removed, cleaned); a job
    /// not held is ignored. Returns whether it was held.
    pub fn left(&mut self, id: &str) -> bool {
        let Some((id, member)) = self.jobs.remove_entry(id) else {
            return false;
        };
        self.order.remove(&(member.at, id.clone()));
        if let Some(group) = self.groups.get_mut(&member.group) {
            group.members.remove(&(member.at, id));
            if let Some(n) = group.names.get_mut(&member.name) {
                *n -= 1;
                if *n == 0 {
                    group.names.remove(&member.name);
                }
            }
            if group.members.is_empty() {
                self.groups.remove(&member.group);
            }
        }
        true
    }

    /// Up to `limit` groups, the most recently failed first, with how many
    /// there are: the same shape as a native queue's groups.
    pub fn groups(&self, limit: usize) -> ErrorGroups {
        let mut all: Vec<(&GroupId, &Group)> = self.groups.iter().collect();
        all.sort_by(|a, b| b.1.last_seen.cmp(&a.1.last_seen).then(a.0.cmp(b.0)));
        let groups = all
            .into_iter()
            .take(limit)
            .filter_map(|(id, g)| {
                let (_, newest) = g.members.last()?;
                let mut group = ErrorGroup {
                    id: *id,
                    failed: g.members.len() as u64,
                    first_seen: g.first_seen,
                    last_seen: g.last_seen,
                    sample_job: newest.to_string(),
                    sample_reason: g.reason.clone(),
                    names: g.names.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
                    names_total: 0,
                };
                group.keep_top_names();
                debug_assert!(group.names.len() <= MAX_NAMES);
                Some(group)
            })
            .collect();
        ErrorGroups {
            groups,
            total: self.groups.len() as u64,
        }
    }

    /// The trend ending at `now` of each group asked for (zeros for one
    /// it does not hold): O(the group's failures in the last hour).
    pub fn trends(&self, ids: &[GroupId], now: i64) -> Vec<Trend> {
        let from = now - crate::errors::TREND_BUCKET_MS * TREND_BUCKETS as i64;
        ids.iter()
            .map(|id| {
                let mut trend = Trend::default();
                if let Some(group) = self.groups.get(id) {
                    let start = (from + 1, Arc::<str>::from(""));
                    for (at, _) in group.members.range(start..) {
                        if let Some(b) = trend_bucket(now, *at) {
                            trend[b] = trend[b].saturating_add(1);
                        }
                    }
                }
                trend
            })
            .collect()
    }

    /// The ids of a group's failed jobs, newest first, at most `limit`.
    pub fn members(&self, group: GroupId, limit: usize) -> Vec<String> {
        self.groups.get(&group).map_or_else(Vec::new, |g| {
            g.members
                .iter()
                .rev()
                .take(limit)
                .map(|(_, id)| id.to_string())
                .collect()
        })
    }

    /// A group's shared (normalised) reason, if it holds the group.
    pub fn reason(&self, group: GroupId) -> Option<String> {
        self.groups.get(&group).map(|g| normalise(&g.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, name: &str, reason: &str, at: i64) -> FailedJob {
        FailedJob {
            id: id.into(),
            name: name.into(),
            reason: reason.into(),
            at,
            seen: (0, 0),
        }
    }

    #[test]
    fn counts_stay_exact_through_fail_retry_fail() {
        let mut book = GroupBook::new(100);
        book.failed(job("1", "charge", "card declined for order 8812", 1_000));
        book.failed(job("2", "charge", "card declined for order 9120", 2_000));
        book.failed(job("3", "mail", "SMTP 550 mailbox unavailable", 3_000));
        let read = book.groups(10);
        assert_eq!(read.total, 2);
        assert_eq!(read.groups[0].failed, 1, "newest group first");
        assert_eq!(read.groups[1].failed, 2);
        assert_eq!(read.groups[1].sample_job, "2");
        assert_eq!(read.groups[1].names, vec![("charge".to_owned(), 2)]);
        // Retried: out; failing again: back, counted once.
        assert!(book.left("2"));
        assert!(!book.left("2"));
        assert_eq!(book.groups(10).groups[1].sample_job, "1");
        book.failed(job("2", "charge", "card declined for order 9120", 4_000));
        book.failed(job("2", "charge", "card declined for order 9120", 4_000));
        let read = book.groups(10);
        assert_eq!(read.groups[0].failed, 2);
        assert_eq!(read.groups[0].first_seen, 1_000);
        assert_eq!(read.groups[0].last_seen, 4_000);
        assert_eq!(book.len(), 3);
        // A job failing for another reason moves group.
        book.failed(job("3", "mail", "card declined for order 4711", 5_000));
        let read = book.groups(10);
        assert_eq!(read.total, 1);
        assert_eq!(read.groups[0].failed, 3);
        assert_eq!(
            read.groups[0].names,
            vec![("charge".to_owned(), 2), ("mail".to_owned(), 1)]
        );
        for id in ["1", "2", "3"] {
            book.left(id);
        }
        assert!(book.is_empty());
        assert_eq!(book.groups(10).total, 0);
    }

    #[test]
    fn the_cap_keeps_the_newest_failures() {
        let mut book = GroupBook::new(3);
        for i in 0..5i64 {
            book.failed(job(
                &i.to_string(),
                "n",
                &format!("timeout after {i}000 ms"),
                i,
            ));
        }
        assert_eq!(book.len(), 3);
        assert_eq!(book.failed_at("0"), None);
        assert_eq!(book.failed_at("4"), Some(4));
        let newest = book.groups(1).groups[0].id;
        assert_eq!(book.members(newest, 10), ["4", "3", "2"]);
        assert_eq!(book.reason(newest).as_deref(), Some("timeout after # ms"));
        assert_eq!(book.reason(GroupId::of_reason("other")), None);
    }

    #[test]
    fn trends_count_members_of_the_last_hour() {
        let now = 10 * 3_600_000;
        let mut book = GroupBook::new(10);
        book.failed(job("old", "n", "boom", now - 2 * 3_600_000));
        book.failed(job("a", "n", "boom", now - 1));
        book.failed(job("b", "n", "boom", now - 6 * 60_000));
        let id = GroupId::of_reason("boom");
        let trend = book.trends(&[id, GroupId::of_reason("other")], now);
        assert_eq!(trend[0][TREND_BUCKETS - 1], 1);
        assert_eq!(trend[0][TREND_BUCKETS - 2], 1);
        assert_eq!(trend[0].iter().sum::<u32>(), 2);
        assert_eq!(trend[1].iter().sum::<u32>(), 0);
    }
}
