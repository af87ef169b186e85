//! How long jobs wait and run: per-minute histograms recorded by the
//! workers, shipped in their registry reports, merged by the dashboard.
//!
//! A worker records each attempt it finishes into the minute it finished
//! in: the **run** (start to finish) of every attempt, and the **wait** of
//! first attempts (from when the job could run — enqueued, or its delay's
//! end — to its start). A retry's wait is left out: it would be mostly its
//! backoff, chosen with jitter and not kept with the job, which says
//! nothing about whether workers keep up. Recording is an in-process histogram update, so it costs the
//! queue backend nothing. Each heartbeat report carries the current and the
//! previous minute as recorded buckets ([`LatencyMinute`]); a reader merges
//! the reports of every worker of a queue once a minute is over
//! ([`LatencyHistogram::merge`]). A worker that dies loses what it recorded
//! since its last heartbeat (at most one interval's attempts).
//!
//! Histograms are HDR (the `hdrhistogram` crate): two significant digits
//! (values are within 1% of the truth) from 1 ms to a day; a longer time is
//! recorded as a day.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::{CoordError, Result};

/// Longest time told apart, in ms: a day.
pub const HIGHEST_MS: u64 = 86_400_000;

/// Most buckets a shipped histogram may hold, so a corrupt or hostile
/// report cannot make a reader allocate without bound (a histogram of
/// 1 ms .. a day at two digits has under 2,700 buckets).
pub const MAX_PAIRS: usize = 4_096;

const MINUTE_MS: i64 = 60_000;

/// One histogram of times in milliseconds.
#[derive(Clone, Debug)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for LatencyHistogram {
    fn eq(&self, other: &Self) -> bool {
        self.pairs() == other.pairs()
    }
}

/// The figures a page shows of one histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    /// Times recorded.
    pub count: u64,
    /// Median, ms.
    pub p50: u64,
    /// 95th percentile, ms.
    pub p95: u64,
    /// 99th percentile, ms.
    pub p99: u64,
    /// Largest, ms.
    pub max: u64,
    /// Sum of the times, ms (for Prometheus' `_sum`; bucket midpoints, so
    /// within the histogram's precision).
    pub sum: u64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        // Constant bounds that `new_with_bounds` accepts (tested below):
        // this cannot fail at run time.
        Self(
            Histogram::new_with_bounds(1, HIGHEST_MS, 2)
                .expect("the latency histogram's constant bounds are valid"),
        )
    }

    /// Records one time (negative clock skew counts as 0, beyond a day as
    /// a day).
    pub fn record_ms(&mut self, ms: i64) {
        let ms = u64::try_from(ms.max(0)).unwrap_or(0).min(HIGHEST_MS);
        self.0.saturating_record(ms);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides: addition cannot fail.
        if let Err(err) = self.0.add(&other.0) {
            tracing::warn!(error = ?err, "latency histograms could not be merged");
        }
    }

    /// How many times were recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Times recorded at or below `ms`, for cumulative buckets.
    pub fn count_at_most(&self, ms: u64) -> u64 {
        self.0.count_between(0, ms.min(HIGHEST_MS))
    }

    /// Median, p95, p99, max and sum.
    pub fn percentiles(&self) -> Percentiles {
        if self.0.is_empty() {
            return Percentiles::default();
        }
        let sum = self
            .0
            .iter_recorded()
            .map(|v| self.0.median_equivalent(v.value_iterated_to()) * v.count_at_value())
            .sum();
        Percentiles {
            count: self.0.len(),
            p50: self.0.value_at_quantile(0.50),
            p95: self.0.value_at_quantile(0.95),
            p99: self.0.value_at_quantile(0.99),
            max: self.0.max(),
            sum,
        }
    }

    /// The recorded buckets as (value, count) pairs, ascending: what a
    /// report carries. Recording each value again lands in the same bucket.
    pub fn pairs(&self) -> Vec<(u64, u64)> {
        self.0
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    /// A histogram from [`LatencyHistogram::pairs`]; refuses more than
    /// [`MAX_PAIRS`] pairs.
    pub fn from_pairs(pairs: &[(u64, u64)]) -> Result<Self> {
        if pairs.len() > MAX_PAIRS {
            return Err(CoordError::Corrupt(format!(
                "a latency histogram of {} buckets (at most {MAX_PAIRS})",
                pairs.len()
            )));
        }
        let mut histogram = Self::new();
        for &(value, count) in pairs {
            let value = value.min(HIGHEST_MS);
            if histogram.0.record_n(value, count).is_err() {
                return Err(CoordError::Corrupt(format!(
                    "a latency bucket out of range: {value} ms"
                )));
            }
        }
        Ok(histogram)
    }
}

/// One minute of a worker's attempts, as its report carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyMinute {
    /// The minute's start (ms since the epoch).
    pub minute: i64,
    /// Wait times: (bucket value in ms, count) pairs.
    pub wait: Vec<(u64, u64)>,
    /// Run times: (bucket value in ms, count) pairs.
    pub run: Vec<(u64, u64)>,
}

/// When a first attempt could have started: enqueued, or its delay's end.
/// `None` for a later attempt (see the module's note on retries).
pub fn ready_at(created_at: i64, delay_ms: i64, attempts_before: usize) -> Option<i64> {
    (attempts_before == 0).then(|| created_at.saturating_add(delay_ms.max(0)))
}

/// The minute `at` falls in (its start, ms).
pub fn minute_of(at: i64) -> i64 {
    at - at.rem_euclid(MINUTE_MS)
}

/// A worker's histograms of the current and previous minute.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// (minute, wait, run), oldest first, at most two.
    minutes: Vec<(i64, LatencyHistogram, LatencyHistogram)>,
}

impl Recorder {
    /// Records one finished attempt.
    pub(crate) fn record(&mut self, ready_at: Option<i64>, started_at: i64, finished_at: i64) {
        let minute = minute_of(finished_at);
        let at = match self.minutes.iter().position(|(m, _, _)| *m == minute) {
            Some(at) => at,
            None => {
                self.minutes
                    .push((minute, LatencyHistogram::new(), LatencyHistogram::new()));
                self.minutes.sort_by_key(|(m, _, _)| *m);
                // Only the two newest minutes are shipped.
                while self.minutes.len() > 2 {
                    self.minutes.remove(0);
                }
                match self.minutes.iter().position(|(m, _, _)| *m == minute) {
                    Some(at) => at,
                    // Older than both kept minutes: too late to ship.
                    None => return,
                }
            }
        };
        let (_, wait, run) = &mut self.minutes[at];
        if let Some(ready_at) = ready_at {
            wait.record_ms(started_at - ready_at);
        }
        run.record_ms(finished_at - started_at);
    }

    /// The minutes a report carries at `now`: this one and the last.
    pub(crate) fn report(&mut self, now: i64) -> Vec<LatencyMinute> {
        let oldest = minute_of(now) - MINUTE_MS;
        self.minutes.retain(|(m, _, _)| *m >= oldest);
        self.minutes
            .iter()
            .map(|(minute, wait, run)| LatencyMinute {
                minute: *minute,
                wait: wait.pairs(),
                run: run.pairs(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_are_accepted() {
        assert!(Histogram::<u64>::new_with_bounds(1, HIGHEST_MS, 2).is_ok());
    }

    #[test]
    fn percentiles_of_known_inputs_are_within_one_percent() {
        let mut h = LatencyHistogram::new();
        for ms in 1..=1000 {
            h.record_ms(ms);
        }
        let p = h.percentiles();
        assert_eq!(p.count, 1000);
        for (got, want) in [(p.p50, 500), (p.p95, 950), (p.p99, 990), (p.max, 1000)] {
            assert!(
                (got as f64 - want as f64).abs() <= want as f64 * 0.01,
                "{got} vs {want}"
            );
        }
        assert!(
            (p.sum as f64 - 500_500.0).abs() < 500_500.0 * 0.01,
            "{}",
            p.sum
        );
        assert_eq!(h.count_at_most(100), 100);
    }

    #[test]
    fn pairs_round_trip_and_merge_adds() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        for ms in [0, 3, 3, 250, 7_000] {
            a.record_ms(ms);
        }
        for ms in [3, 90_000_000, -5] {
            b.record_ms(ms);
        }
        let again = LatencyHistogram::from_pairs(&a.pairs()).unwrap();
        assert_eq!(again, a);
        a.merge(&b);
        assert_eq!(a.count(), 8);
        // Beyond a day is a day; negative is zero.
        assert_eq!(a.percentiles().max, a.0.highest_equivalent(HIGHEST_MS));
        assert_eq!(a.count_at_most(0), 2);
        let too_many: Vec<(u64, u64)> = (0..=MAX_PAIRS as u64).map(|v| (v, 1)).collect();
        assert!(LatencyHistogram::from_pairs(&too_many).is_err());
    }

    #[test]
    fn a_recorder_ships_the_current_and_previous_minute() {
        let mut r = Recorder::default();
        // A minute boundary (30,000,000 minutes since the epoch).
        let t = 1_800_000_000_000;
        r.record(Some(t - 500), t + 100, t + 400);
        r.record(Some(t + 60_000), t + 61_000, t + 61_500);
        r.record(None, t + 120_000, t + 120_010);
        let report = r.report(t + 130_000);
        let minutes: Vec<i64> = report.iter().map(|m| m.minute).collect();
        assert_eq!(minutes, [t + 60_000, t + 120_000]);
        let first = LatencyHistogram::from_pairs(&report[0].wait).unwrap();
        // Within the histogram's precision (1%).
        assert!((1000..=1010).contains(&first.percentiles().p50));
        let run = LatencyHistogram::from_pairs(&report[1].run).unwrap();
        assert_eq!(run.percentiles().max, 10);
        // A late attempt of a minute no longer kept is dropped, not misfiled.
        r.record(Some(t), t, t + 1);
        assert_eq!(r.report(t + 130_000).len(), 2);
        // A retry's run counts, its wait does not.
        let last = r.report(t + 130_000).pop().unwrap();
        assert!(last.wait.is_empty());
        assert_eq!(ready_at(10, 40, 0), Some(50));
        assert_eq!(ready_at(10, -5, 0), Some(10));
        assert_eq!(ready_at(10, 0, 2), None);
    }
}
