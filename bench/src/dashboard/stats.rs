//! Latency summaries: percentiles by nearest rank, printed in milliseconds.

use std::time::Duration;

/// p50/p95/p99/max of a set of timings, the figures the dashboard goals
/// are stated in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Samples summarised.
    pub n: usize,
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile: the figure the page goal is stated in.
    pub p99: Duration,
    /// Slowest sample.
    pub max: Duration,
}

/// Nearest-rank percentile of sorted samples: the smallest sample with at
/// least `q` of the samples at or below it. With 300 samples p99 is the
/// 297th, so three slow requests are enough to move it.
fn rank(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

impl Summary {
    /// Summarises samples in any order.
    pub fn of(samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Self {
            n: sorted.len(),
            p50: rank(&sorted, 0.50),
            p95: rank(&sorted, 0.95),
            p99: rank(&sorted, 0.99),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Median, minimum and maximum of counts (events per client).
pub fn spread(values: &[u64]) -> (u64, u64, u64) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    match (sorted.first(), sorted.last()) {
        (Some(&min), Some(&max)) => (min, sorted[(sorted.len() - 1) / 2], max),
        _ => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&samples);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p95, Duration::from_millis(95));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        let one = Summary::of(&[Duration::from_millis(7)]);
        assert_eq!(one.p99, Duration::from_millis(7));
        assert_eq!(Summary::of(&[]).p99, Duration::ZERO);
    }

    #[test]
    fn spread_of_counts() {
        assert_eq!(spread(&[5, 1, 9, 3]), (1, 3, 9));
        assert_eq!(spread(&[]), (0, 0, 0));
    }
}
