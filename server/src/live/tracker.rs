//! What the hub keeps between snapshots so that a tick costs what changed,
//! not what exists.
//!
//! A tick re-reads only the queues events marked (plus, every
//! [`SWEEP_EVERY`], all of them: events from another process can be lost,
//! and a deleted queue sends none). In memory it moves on only the queues
//! whose figures still move with time: rates over the last five minutes
//! while anything finished in them, and hour charts when the minute turns
//! for queues that finished something in the hour. Every other queue keeps
//! the very `Arc` of the last snapshot, so 10,000 idle queues cost one
//! pointer copy each per tick, and no backend call.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coord::CoordError;
use coord::queue::{QueueCounts, QueueName, Queues};
use futures_util::StreamExt;

use super::throughput::{MINUTE_MS, Throughput};
use crate::http::error::one_line;
use crate::queues::figures::{QueueFigures, Thresholds};

/// How often every queue is read, whatever events said: the bound on how
/// long a change no event reported (another process's lost message, a
/// queue deleted by hand) stays unseen.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Counts read at once during a sweep: enough to hide round trips, few
/// enough that a sweep of 10,000 queues never floods the backend.
const READ_CONCURRENCY: usize = 64;

/// The queues read this tick.
pub struct Read {
    /// Whether this was a sweep (the names below are every queue).
    sweep: bool,
    /// Counts read, by queue.
    counts: Vec<(QueueName, QueueCounts)>,
    /// Queues that no longer exist.
    gone: Vec<QueueName>,
}

/// The hub's memory of the queues.
#[derive(Default)]
pub struct Tracker {
    throughput: Throughput,
    figures: BTreeMap<QueueName, Arc<QueueFigures>>,
    /// Queues whose recent rates are not flat yet.
    moving: HashSet<QueueName>,
    /// Queues with a finished job in the chart's hour.
    charted: HashSet<QueueName>,
    last_sweep: Option<Instant>,
    /// Start of the minute the idle queues' minutes were last moved to.
    chart_minute: i64,
}

impl Tracker {
    /// Keeps the last hour read from the history, shown until this
    /// server's own minutes replace it.
    pub fn backfill(&mut self, history: super::Backfill) {
        for (queue, points) in history {
            // Names come from our own table; one that is not a queue name
            // cannot be listed, so it could never be shown.
            if let Ok(name) = QueueName::new(&queue) {
                self.throughput.backfill(&name, points);
            }
        }
    }

    /// Whether the next tick reads every queue.
    pub fn sweep_due(&self) -> bool {
        self.last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY)
    }

    /// Makes the next tick a sweep (after a failed read: what was missed
    /// is unknown).
    pub fn needs_sweep(&mut self) {
        self.last_sweep = None;
    }

    /// Reads every queue (`sweep`) or the `dirty` ones. A queue that is not
    /// there is reported gone, not an error; any other failure fails the
    /// read (the snapshot shows the last figures as stale).
    pub async fn read(
        &self,
        queues: &Queues,
        sweep: bool,
        dirty: &HashSet<String>,
    ) -> Result<Read, String> {
        let names: Vec<QueueName> = if sweep {
            queues
                .queues()
                .await
                .map_err(|err| one_line(&err.to_string()))?
        } else {
            // Event names were valid queue names when they were sent.
            dirty
                .iter()
                .filter_map(|name| QueueName::new(name).ok())
                .collect()
        };
        let mut results = futures_util::stream::iter(names.into_iter().map(|name| async move {
            let counts = queues.counts(&name).await;
            (name, counts)
        }))
        .buffer_unordered(READ_CONCURRENCY);
        let mut read = Read {
            sweep,
            counts: Vec::new(),
            gone: Vec::new(),
        };
        while let Some((name, counts)) = results.next().await {
            match counts {
                Ok(counts) => read.counts.push((name, counts)),
                Err(CoordError::QueueNotFound(_)) => read.gone.push(name),
                Err(err) => return Err(one_line(&err.to_string())),
            }
        }
        Ok(read)
    }

    /// Takes in this tick's reads and moves the figures that move with
    /// time. `pending` are the queues events named (changed even if their
    /// counts look the same: a job replaced by another).
    pub fn apply(
        &mut self,
        read: Read,
        pending: &super::Pending,
        seq: u64,
        now: i64,
        thresholds: &Thresholds,
    ) {
        if read.sweep {
            self.last_sweep = Some(Instant::now());
            let listed: HashSet<&QueueName> = read.counts.iter().map(|(name, _)| name).collect();
            self.keep_only(|name| listed.contains(name));
        }
        if !read.gone.is_empty() {
            let gone: HashSet<&QueueName> = read.gone.iter().collect();
            self.keep_only(|name| !gone.contains(name));
        }
        // Queues that are not read keep their minutes until the minute
        // turns (charts show finished minutes only).
        let chart_minute = now.div_euclid(MINUTE_MS) * MINUTE_MS;
        let minute_turned = chart_minute != self.chart_minute;
        self.chart_minute = chart_minute;
        let mut done: HashSet<QueueName> = HashSet::with_capacity(read.counts.len());
        for (name, counts) in read.counts {
            let previous = self.figures.get(&name);
            let moved = previous.is_none_or(|old| !same_listing_counts(&old.counts, &counts));
            let changed = if pending.all || moved || pending.queues.contains(name.as_str()) {
                seq
            } else {
                previous.map_or(seq, |old| old.changed)
            };
            let figures = self.figure(&name, counts, changed, now, true, thresholds);
            self.figures.insert(name.clone(), Arc::new(figures));
            done.insert(name);
        }
        // No event since the last read means the same counters now: a
        // sample of them lets rates fall back to zero after a burst.
        for name in unread(&self.moving, &done) {
            self.refigure(&name, now, minute_turned, thresholds);
            done.insert(name);
        }
        if minute_turned {
            for name in unread(&self.charted, &done) {
                self.refigure(&name, now, true, thresholds);
            }
        }
    }

    /// Forgets every queue `keep` refuses (deleted ones).
    fn keep_only(&mut self, keep: impl Fn(&QueueName) -> bool) {
        self.figures.retain(|name, _| keep(name));
        self.throughput.retain(&keep);
        self.moving.retain(|name| keep(name));
        self.charted.retain(|name| keep(name));
    }

    /// Moves a queue's time-dependent figures on from its last counts.
    fn refigure(&mut self, name: &QueueName, now: i64, chart: bool, thresholds: &Thresholds) {
        let Some(old) = self.figures.get(name) else {
            self.moving.remove(name);
            self.charted.remove(name);
            return;
        };
        let (counts, changed) = (old.counts.clone(), old.changed);
        let figures = self.figure(name, counts, changed, now, chart, thresholds);
        self.figures.insert(name.clone(), Arc::new(figures));
    }

    /// A queue's figures from its counts as of `now`, recording the
    /// counters; the chart is recomputed only when `chart` says so.
    fn figure(
        &mut self,
        name: &QueueName,
        counts: QueueCounts,
        changed: u64,
        now: i64,
        chart: bool,
        thresholds: &Thresholds,
    ) -> QueueFigures {
        self.throughput
            .record(name, now, counts.completed_total, counts.failed_total);
        let rates = self.throughput.rates(name);
        if rates.jobs_per_min.is_some_and(|r| r == 0.0) {
            self.moving.remove(name);
        } else {
            self.moving.insert(name.clone());
        }
        let minutes = match self.figures.get(name) {
            Some(old) if !chart => old.minutes.clone(),
            _ => {
                let minutes = self.throughput.minutes(name, now);
                if minutes.iter().any(|m| m.completed + m.failed > 0) {
                    self.charted.insert(name.clone());
                } else {
                    self.charted.remove(name);
                }
                Arc::new(minutes)
            }
        };
        QueueFigures {
            name: name.as_str().to_string(),
            health: thresholds.health(&counts, rates.failure_rate),
            counts,
            jobs_per_min: rates.jobs_per_min,
            failure_rate: rates.failure_rate,
            failed_recent: rates.failed,
            minutes,
            changed,
        }
    }

    /// Every known queue's figures, by name.
    pub fn listed(&self) -> Vec<Arc<QueueFigures>> {
        self.figures.values().cloned().collect()
    }
}

/// The queues of `set` not in `done` (not yet refigured this tick).
fn unread(set: &HashSet<QueueName>, done: &HashSet<QueueName>) -> Vec<QueueName> {
    set.iter()
        .filter(|name| !done.contains(*name))
        .cloned()
        .collect()
}

/// Whether two readings show the same jobs where a page lists them: the
/// five state counts and the paused flag. Lifetime totals move with every
/// finished job, which also changes a state count, so they add nothing.
fn same_listing_counts(a: &QueueCounts, b: &QueueCounts) -> bool {
    (
        a.waiting,
        a.active,
        a.delayed,
        a.completed,
        a.failed,
        a.paused,
    ) == (
        b.waiting,
        b.active,
        b.delayed,
        b.completed,
        b.failed,
        b.paused,
    )
}
