//! Throughput from the queues' lifetime counters.
//!
//! Backends keep `completed_total` and `failed_total` per queue in O(1);
//! sampling them on every hub tick and attributing the difference to the
//! current minute gives per-minute throughput and recent rates without
//! counting jobs. The cost is one counter pair per queue per tick, whatever
//! the queue's size. Minutes are kept in memory; those from before the
//! server started can be filled in from the SQL history
//! ([`Throughput::backfill`]), so a restart does not empty the charts.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::queues::figures::MinutePoint;
use coord::queue::QueueName;

/// Minutes of throughput kept per queue: the overview chart's hour of
/// finished minutes and the minute under way (which alerting reads; the
/// chart leaves it out so that it changes once a minute).
pub const MINUTES: usize = 61;

/// Span over which jobs/min and the failure rate are computed.
pub const RATE_WINDOW_MS: i64 = 5 * 60_000;

/// A minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;

/// The recent rates of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Finished jobs (completed + failed for good) per minute.
    pub jobs_per_min: Option<f64>,
    /// Share of finished jobs that failed (0–1); `None` when none finished.
    pub failure_rate: Option<f64>,
    /// Jobs that failed for good in the window.
    pub failed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: i64,
    completed: u64,
    failed: u64,
}

#[derive(Debug, Default)]
struct QueueSeries {
    minutes: VecDeque<MinutePoint>,
    window: VecDeque<Sample>,
    /// Minutes read from the history (by `minute_ms`), shown where no
    /// bucket was recorded here; dropped as they leave the chart.
    backfill: BTreeMap<i64, MinutePoint>,
}

/// Per-queue throughput history, fed with counter samples.
#[derive(Debug, Default)]
pub struct Throughput {
    queues: HashMap<QueueName, QueueSeries>,
}

impl Throughput {
    /// Records a queue's lifetime counters as seen at `at` (ms).
    pub fn record(&mut self, queue: &QueueName, at: i64, completed: u64, failed: u64) {
        let series = self.queues.entry(queue.clone()).or_default();
        let sample = Sample {
            at,
            completed,
            failed,
        };
        let minute = at.div_euclid(MINUTE_MS) * MINUTE_MS;
        let (dc, df) = match series.window.back() {
            // Counters only grow; if they shrank the queue was deleted and
            // recreated, so start over from this sample.
            Some(last) if completed >= last.completed && failed >= last.failed => {
                (completed - last.completed, failed - last.failed)
            }
            Some(_) => {
                series.window.clear();
                (0, 0)
            }
            None => (0, 0),
        };
        fill_minutes(&mut series.minutes, minute);
        if let Some(point) = series.minutes.back_mut() {
            point.completed += dc;
            point.failed += df;
        }
        let oldest = minute - (MINUTES as i64 - 1) * MINUTE_MS;
        while series
            .backfill
            .first_key_value()
            .is_some_and(|(&m, _)| m < oldest)
        {
            series.backfill.pop_first();
        }
        series.window.push_back(sample);
        // Keep one sample at or before the window's start so the rate
        // covers the whole window.
        while series.window.len() > 2 && series.window[1].at <= at - RATE_WINDOW_MS {
            series.window.pop_front();
        }
    }

    /// Adds minutes read from the history, shown for every minute without
    /// a bucket of its own (before the server started, or while it was
    /// down): a minute seen here is never overridden. Rates are not
    /// affected; they only trust counters read by this server.
    pub fn backfill(&mut self, queue: &QueueName, points: impl IntoIterator<Item = MinutePoint>) {
        let series = self.queues.entry(queue.clone()).or_default();
        for point in points {
            let minute_ms = point.minute_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
            series
                .backfill
                .insert(minute_ms, MinutePoint { minute_ms, ..point });
        }
    }

    /// Forgets queues no longer listed.
    pub fn retain(&mut self, keep: impl Fn(&QueueName) -> bool) {
        self.queues.retain(|name, _| keep(name));
    }

    /// Jobs per minute and failure rate over the recent window.
    pub fn rates(&self, queue: &QueueName) -> Rates {
        let Some(series) = self.queues.get(queue) else {
            return Rates::default();
        };
        let (Some(first), Some(last)) = (series.window.front(), series.window.back()) else {
            return Rates::default();
        };
        let span = last.at - first.at;
        if span < 1000 {
            return Rates::default();
        }
        let completed = last.completed.saturating_sub(first.completed);
        let failed = last.failed.saturating_sub(first.failed);
        let finished = completed + failed;
        Rates {
            jobs_per_min: Some(finished as f64 * MINUTE_MS as f64 / span as f64),
            failure_rate: (finished > 0).then(|| failed as f64 / finished as f64),
            failed,
        }
    }

    /// The last [`MINUTES`] minutes up to the one containing `now`, oldest
    /// first: recorded buckets, else backfilled ones, else zeros.
    pub fn minutes(&self, queue: &QueueName, now: i64) -> Vec<MinutePoint> {
        let current = now.div_euclid(MINUTE_MS) * MINUTE_MS;
        let first = current - (MINUTES as i64 - 1) * MINUTE_MS;
        let series = self.queues.get(queue);
        (0..MINUTES as i64)
            .map(|i| {
                let minute_ms = first + i * MINUTE_MS;
                series
                    .and_then(|s| {
                        s.minutes
                            .iter()
                            .find(|p| p.minute_ms == minute_ms)
                            .or_else(|| s.backfill.get(&minute_ms))
                    })
                    .copied()
                    .unwrap_or(MinutePoint {
                        minute_ms,
                        completed: 0,
                        failed: 0,
                    })
            })
            .collect()
    }
}

/// Makes `minute` the last bucket, adding empty buckets for minutes without
/// samples and dropping buckets older than [`MINUTES`].
fn fill_minutes(minutes: &mut VecDeque<MinutePoint>, minute: i64) {
    match minutes.back().map(|p| p.minute_ms) {
        Some(last) if last >= minute => return,
        Some(last) if minute - last <= MINUTES as i64 * MINUTE_MS => {
            let mut next = last + MINUTE_MS;
            while next <= minute {
                minutes.push_back(MinutePoint {
                    minute_ms: next,
                    completed: 0,
                    failed: 0,
                });
                next += MINUTE_MS;
            }
        }
        _ => {
            minutes.clear();
            minutes.push_back(MinutePoint {
                minute_ms: minute,
                completed: 0,
                failed: 0,
            });
        }
    }
    while minutes.len() > MINUTES {
        minutes.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> QueueName {
        QueueName::new("emails").expect("valid")
    }

    #[test]
    fn deltas_land_in_the_minute_they_were_seen() {
        let mut t = Throughput::default();
        let base = 1_000 * MINUTE_MS;
        t.record(&q(), base, 100, 10);
        t.record(&q(), base + 30_000, 130, 12);
        t.record(&q(), base + MINUTE_MS + 1_000, 150, 12);
        let minutes = t.minutes(&q(), base + MINUTE_MS + 2_000);
        assert_eq!(minutes.len(), MINUTES);
        let last = minutes[MINUTES - 1];
        let before = minutes[MINUTES - 2];
        assert_eq!(
            (before.minute_ms, before.completed, before.failed),
            (base, 30, 2)
        );
        assert_eq!((last.completed, last.failed), (20, 0));
        assert!(minutes[..MINUTES - 2].iter().all(|p| p.completed == 0));
    }

    #[test]
    fn rates_cover_the_window() {
        let mut t = Throughput::default();
        assert_eq!(t.rates(&q()), Rates::default());
        t.record(&q(), 0, 0, 0);
        t.record(&q(), 60_000, 90, 10);
        let rates = t.rates(&q());
        assert_eq!(rates.jobs_per_min, Some(100.0));
        assert_eq!(rates.failure_rate, Some(0.1));
        // Ten minutes later, with nothing finished meanwhile, the window
        // has moved past the burst.
        t.record(&q(), 600_000, 90, 10);
        t.record(&q(), 660_000, 90, 10);
        let rates = t.rates(&q());
        assert_eq!(rates.jobs_per_min, Some(0.0));
        assert_eq!(rates.failure_rate, None);
    }

    #[test]
    fn a_counter_reset_starts_over_instead_of_going_negative() {
        let mut t = Throughput::default();
        t.record(&q(), 0, 500, 50);
        t.record(&q(), 10_000, 3, 0);
        t.record(&q(), 20_000, 13, 0);
        let rates = t.rates(&q());
        assert_eq!(rates.jobs_per_min, Some(60.0));
        let total: u64 = t.minutes(&q(), 20_000).iter().map(|p| p.completed).sum();
        assert_eq!(total, 10);
    }

    #[test]
    fn history_fills_minutes_not_seen_and_never_overrides_one_seen() {
        let mut t = Throughput::default();
        let base = 1_000 * MINUTE_MS;
        let from_history = |minute_ms, completed, failed| MinutePoint {
            minute_ms,
            completed,
            failed,
        };
        t.backfill(
            &q(),
            [
                // Older than the chart: dropped.
                from_history(base - 70 * MINUTE_MS, 99, 99),
                from_history(base - 2 * MINUTE_MS, 7, 2),
                from_history(base - MINUTE_MS + 5, 3, 0),
                // Also seen live: the live figure wins.
                from_history(base, 500, 500),
            ],
        );
        t.record(&q(), base + 1_000, 100, 10);
        t.record(&q(), base + 30_000, 104, 11);
        let minutes = t.minutes(&q(), base + 31_000);
        assert_eq!(minutes.len(), MINUTES);
        let last = |back: usize| minutes[MINUTES - 1 - back];
        assert_eq!((last(0).completed, last(0).failed), (4, 1));
        assert_eq!(
            (last(1).minute_ms, last(1).completed, last(1).failed),
            (base - MINUTE_MS, 3, 0)
        );
        assert_eq!((last(2).completed, last(2).failed), (7, 2));
        let total: u64 = minutes.iter().map(|p| p.completed).sum();
        assert_eq!(total, 14);
        assert_eq!(t.queues[&q()].backfill.len(), 3);
        // An hour on, the backfilled minutes have left the chart.
        t.record(&q(), base + 61 * MINUTE_MS, 104, 11);
        assert!(t.queues[&q()].backfill.is_empty());
    }

    #[test]
    fn a_long_gap_clears_old_minutes() {
        let mut t = Throughput::default();
        t.record(&q(), 0, 0, 0);
        t.record(&q(), 30_000, 10, 0);
        t.record(&q(), 5 * 3_600_000, 20, 0);
        let total: u64 = t
            .minutes(&q(), 5 * 3_600_000)
            .iter()
            .map(|p| p.completed)
            .sum();
        assert_eq!(total, 10, "only the delta seen after the gap remains");
    }
}
