//! Wait and run times per queue, merged from the workers' reports.
//!
//! Each worker ships the histograms of its current and previous minute
//! with every heartbeat ([`coord::queue::latency`]). The book keeps, per
//! queue and open minute, the latest each worker shipped; a minute is
//! final once every worker has moved on and reported ([`SETTLE_MS`] after
//! its end), when the workers' histograms are merged once into:
//!
//! - a chart point (p95 wait and run, attempts) for the last hour;
//! - the last five minutes' percentiles, merged, for the queue page, the
//!   overview and the p95 alerts (one noisy minute does not page anyone);
//! - the newest minute's full percentiles, for the metrics history;
//! - cumulative Prometheus buckets since this dashboard started.
//!
//! Memory per queue with attempts in the last hour: about 1.5 KB of chart
//! points, five minutes of recorded buckets (sparse) and 16 buckets per
//! kind; queues without attempts cost nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use coord::queue::latency::{LatencyHistogram, Percentiles, minute_of};
use coord::queue::workers::WorkerView;

/// How long after a minute's end it is merged: every worker's first
/// heartbeat in the next minute (5 s apart by default) plus the hub's read
/// (2 s), with room for a slow one.
pub const SETTLE_MS: i64 = 15_000;

/// Minutes of chart points kept per queue.
pub const CHART_MINUTES: usize = 60;

/// Finished minutes the headline percentiles merge.
pub const RECENT_MINUTES: usize = 5;

/// Prometheus bucket bounds, seconds (`le`), shared by wait and run.
pub const BUCKETS_SECS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

const MINUTE_MS: i64 = 60_000;

/// One finished minute of a queue, as its chart shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyPoint {
    /// The minute's start (ms since the epoch).
    pub minute: i64,
    /// Attempts finished in it.
    pub count: u32,
    /// p95 wait, ms.
    pub wait_p95: u32,
    /// p95 run, ms.
    pub run_p95: u32,
}

/// Cumulative counts for Prometheus: per bucket of [`BUCKETS_SECS`], then
/// the total count and sum (ms).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cumulative {
    /// Times at or below each bound.
    pub buckets: [u64; BUCKETS_SECS.len()],
    /// Times recorded.
    pub count: u64,
    /// Their sum, ms.
    pub sum_ms: u64,
}

impl Cumulative {
    fn add(&mut self, histogram: &LatencyHistogram, percentiles: &Percentiles) {
        for (bucket, secs) in self.buckets.iter_mut().zip(BUCKETS_SECS) {
            *bucket += histogram.count_at_most((secs * 1000.0) as u64);
        }
        self.count += percentiles.count;
        self.sum_ms += percentiles.sum;
    }
}

/// What is known of one queue's wait and run times.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueLatency {
    /// The last hour's finished minutes that had attempts, oldest first.
    pub points: VecDeque<LatencyPoint>,
    /// Wait over the last [`RECENT_MINUTES`] finished minutes.
    pub wait: Percentiles,
    /// Run over the same minutes.
    pub run: Percentiles,
    /// The newest merged minute with its full percentiles (wait, run).
    pub last: Option<(i64, Percentiles, Percentiles)>,
    /// Wait since this dashboard started, for `/metrics`.
    pub wait_total: Cumulative,
    /// Run since this dashboard started.
    pub run_total: Cumulative,
    /// The recorded buckets of the recent minutes (minute, wait, run).
    pub(crate) recent: VecDeque<(i64, Shipped)>,
}

impl QueueLatency {
    /// Whether its headline (`wait`, `run`) still speaks of the last
    /// [`RECENT_MINUTES`]: workers ship only minutes with attempts, so a
    /// queue that went idle keeps the figures of its last busy minutes for
    /// the hour its entry lives, and a page or a p95 alert would otherwise
    /// show (or fire on) minutes long gone. Its newest minute counts while
    /// it ended at most the window plus the merge's delay before `now`.
    pub fn is_recent(&self, now: i64) -> bool {
        let window = RECENT_MINUTES as i64 * MINUTE_MS + SETTLE_MS;
        self.last
            .is_some_and(|(minute, _, _)| now.saturating_sub(minute + MINUTE_MS) <= window)
    }
}

/// Per queue, what [`LatencyBook`] knows; shared with snapshots.
pub type LatencyFigures = Arc<HashMap<String, Arc<QueueLatency>>>;

/// One minute's (wait, run) recorded buckets.
type Shipped = (Vec<(u64, u64)>, Vec<(u64, u64)>);

/// The workers' shipped minutes and the merged figures.
#[derive(Debug, Default)]
pub struct LatencyBook {
    /// (queue, minute) → worker id → its latest (wait, run) buckets.
    open: HashMap<(String, i64), HashMap<String, Shipped>>,
    figures: LatencyFigures,
}

impl LatencyBook {
    /// Takes in the reports of one registry read and merges the minutes
    /// that are over; returns the figures (the same `Arc` when nothing
    /// was merged).
    pub fn update(&mut self, views: &[WorkerView], now: i64) -> LatencyFigures {
        let settled_before = minute_of(now - SETTLE_MS) - MINUTE_MS;
        for view in views {
            let report = &view.report;
            for shipped in &report.latency {
                if shipped.minute <= settled_before {
                    // Arrived after its minute was merged: too late.
                    continue;
                }
                self.open
                    .entry((report.queue.to_string(), shipped.minute))
                    .or_default()
                    .insert(
                        report.id.to_string(),
                        (shipped.wait.clone(), shipped.run.clone()),
                    );
            }
        }
        let mut due: Vec<(String, i64)> = self
            .open
            .keys()
            .filter(|(_, minute)| *minute <= settled_before)
            .cloned()
            .collect();
        // Queues whose last point left the hour are dropped.
        let oldest = minute_of(now) - CHART_MINUTES as i64 * MINUTE_MS;
        let fresh = |q: &Arc<QueueLatency>| q.points.back().is_some_and(|p| p.minute >= oldest);
        let expired = self.figures.values().any(|q| !fresh(q));
        if due.is_empty() && !expired {
            return self.figures.clone();
        }
        due.sort();
        let figures = Arc::make_mut(&mut self.figures);
        for key in due {
            let Some(workers) = self.open.remove(&key) else {
                continue;
            };
            let (queue, minute) = key;
            let entry = figures.entry(queue).or_default();
            settle(Arc::make_mut(entry), minute, workers.into_values());
        }
        figures.retain(|_, q| fresh(q));
        self.figures.clone()
    }
}

/// Merges one queue's finished minute from every worker's buckets.
fn settle(queue: &mut QueueLatency, minute: i64, shipped: impl Iterator<Item = Shipped>) {
    let mut wait = LatencyHistogram::new();
    let mut run = LatencyHistogram::new();
    for (w, r) in shipped {
        for (into, pairs) in [(&mut wait, w), (&mut run, r)] {
            match LatencyHistogram::from_pairs(&pairs) {
                Ok(h) => into.merge(&h),
                Err(err) => tracing::warn!(error = %err, "a worker's latency report skipped"),
            }
        }
    }
    if wait.count() == 0 && run.count() == 0 {
        return;
    }
    let (wp, rp) = (wait.percentiles(), run.percentiles());
    let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    queue.points.push_back(LatencyPoint {
        minute,
        count: narrow(wp.count),
        wait_p95: narrow(wp.p95),
        run_p95: narrow(rp.p95),
    });
    while queue.points.len() > CHART_MINUTES {
        queue.points.pop_front();
    }
    queue.last = Some((minute, wp, rp));
    queue.wait_total.add(&wait, &wp);
    queue.run_total.add(&run, &rp);
    queue
        .recent
        .push_back((minute, (wait.pairs(), run.pairs())));
    let oldest = minute - (RECENT_MINUTES as i64 - 1) * MINUTE_MS;
    queue.recent.retain(|(m, _)| *m >= oldest);
    let mut wait_recent = LatencyHistogram::new();
    let mut run_recent = LatencyHistogram::new();
    for (_, (w, r)) in &queue.recent {
        // Pairs we made ourselves: within bounds.
        if let Ok(h) = LatencyHistogram::from_pairs(w) {
            wait_recent.merge(&h);
        }
        if let Ok(h) = LatencyHistogram::from_pairs(r) {
            run_recent.merge(&h);
        }
    }
    queue.wait = wait_recent.percentiles();
    queue.run = run_recent.percentiles();
}

#[cfg(test)]
mod tests {
    use super::*;
    use coord::instances::InstanceStatus;
    use coord::queue::QueueName;
    use coord::queue::latency::LatencyMinute;
    use coord::queue::workers::{WorkerId, WorkerReport, WorkerState};

    // A minute boundary (30,000,000 minutes since the epoch).
    const T: i64 = 1_800_000_000_000;

    fn view(id: &str, queue: &str, latency: Vec<LatencyMinute>) -> WorkerView {
        WorkerView {
            report: WorkerReport {
                id: WorkerId::new(id).unwrap(),
                queue: QueueName::new(queue).unwrap(),
                host: "h".into(),
                pid: 1,
                version: "-".into(),
                concurrency: 1,
                busy: 0,
                running: Vec::new(),
                state: WorkerState::Running,
                completed: 0,
                failed: 0,
                started_at: T,
                heartbeat_at: T,
                latency,
            },
            status: InstanceStatus::Live,
            heartbeat_age_ms: 0,
            command: None,
        }
    }

    fn shipped(minute: i64, waits: &[i64], runs: &[i64]) -> LatencyMinute {
        let (mut w, mut r) = (LatencyHistogram::new(), LatencyHistogram::new());
        waits.iter().for_each(|&ms| w.record_ms(ms));
        runs.iter().for_each(|&ms| r.record_ms(ms));
        LatencyMinute {
            minute,
            wait: w.pairs(),
            run: r.pairs(),
        }
    }

    #[test]
    fn a_minute_merges_every_workers_latest_report_once_it_settled() {
        let mut book = LatencyBook::default();
        // Two workers of one queue; the first reports twice (the second
        // report replaces the first, it does not add to it).
        let early = vec![
            view("a", "q", vec![shipped(T, &[100], &[10])]),
            view("b", "q", vec![shipped(T, &[300, 300], &[30, 30])]),
        ];
        let figures = book.update(&early, T + 30_000);
        assert!(figures.is_empty(), "not over yet");
        let later = vec![view("a", "q", vec![shipped(T, &[100, 100], &[10, 10])])];
        assert!(book.update(&later, T + 60_000 + SETTLE_MS - 1).is_empty());
        let figures = book.update(&[], T + 60_000 + SETTLE_MS);
        let q = figures.get("q").expect("merged");
        assert_eq!(q.points.len(), 1);
        assert_eq!(q.points[0].count, 4);
        assert_eq!(q.wait.count, 4);
        assert!((300..=303).contains(&q.wait.p95), "{:?}", q.wait);
        assert!((10..=11).contains(&q.run.p50), "{:?}", q.run);
        assert_eq!(q.wait_total.count, 4);
        // 100 ms twice is within 0.1 s, 300 ms twice is not.
        assert_eq!(q.wait_total.buckets[4], 2);
        // A report of that minute arriving late is not merged again.
        let again = book.update(&[view("c", "q", vec![shipped(T, &[5], &[5])])], T + 120_000);
        assert_eq!(again.get("q").unwrap().wait.count, 4);
    }

    #[test]
    fn the_headline_merges_five_minutes_and_old_queues_are_dropped() {
        let mut book = LatencyBook::default();
        for i in 0..7 {
            let minute = T + i * 60_000;
            book.update(
                &[view(
                    "a",
                    "q",
                    vec![shipped(minute, &[(i + 1) * 1000], &[1])],
                )],
                minute + 30_000,
            );
        }
        let figures = book.update(&[], T + 7 * 60_000 + SETTLE_MS);
        let q = figures.get("q").unwrap();
        assert_eq!(q.points.len(), 7);
        // Minutes 3..=7 s of wait: five of them.
        assert_eq!(q.wait.count, 5);
        assert!((5000..=5050).contains(&q.wait.p50), "{:?}", q.wait);
        assert_eq!(q.last.map(|(m, _, _)| m), Some(T + 6 * 60_000));
        let later = book.update(&[], T + 200 * 60_000);
        assert!(later.is_empty(), "an idle hour forgets the queue");
    }
}
