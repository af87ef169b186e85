//! The overview's throughput charts read from the SQL history: the last
//! 24 hours and 7 days when such a page is rendered, and the last hour once
//! at startup so the hub's live hour survives a restart.
//!
//! Both read the sampler's `queue_completed_per_min` and
//! `queue_failed_per_min` series, summed per bucket in SQL, with one
//! statement per series whatever the number of queues.

use std::collections::{BTreeMap, HashMap};

use super::history::{self, Range, Series};
use crate::db::{Database, DbError};
use crate::live::Backfill;
use crate::queues::figures::MinutePoint;

const MINUTE_MS: i64 = 60_000;

/// One queue's finished jobs per bucket of a range, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueThroughput {
    /// The queue.
    pub queue: String,
    /// One point per bucket, its start in `minute_ms`.
    pub points: Vec<MinutePoint>,
}

/// Completed and failed jobs per bucket start (minutes since the epoch).
type Buckets = BTreeMap<i64, (u64, u64)>;

/// A stored per-minute sum as a count: the sampler writes whole numbers,
/// so rounding only undoes floating-point sums; anything negative or not
/// a number (never written by us) shows as zero rather than wrapping.
pub(crate) fn count(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        value.round() as u64
    } else {
        0
    }
}

/// Every queue's completed and failed jobs per bucket of `range`.
async fn read(
    db: &Database,
    range: Range,
    now_minute: i64,
) -> Result<HashMap<String, Buckets>, DbError> {
    let (Some(completed), Some(failed)) = (
        Series::parse("queue_completed_per_min"),
        Series::parse("queue_failed_per_min"),
    ) else {
        // Both are in `history::SERIES`; a rename there shows no data
        // here rather than a failing page.
        return Ok(HashMap::new());
    };
    let (completed, failed) = tokio::try_join!(
        history::by_subject(db, completed, range, now_minute),
        history::by_subject(db, failed, range, now_minute),
    )?;
    let mut out: HashMap<String, Buckets> = HashMap::new();
    for (queue, bucket, value) in completed {
        out.entry(queue).or_default().entry(bucket).or_default().0 = count(value);
    }
    for (queue, bucket, value) in failed {
        out.entry(queue).or_default().entry(bucket).or_default().1 = count(value);
    }
    Ok(out)
}

/// One chart per queue in `queues` (the overview's order), each with every
/// bucket of `range` up to the one holding `now_ms`, zeros where the
/// history has nothing: bars line up with the axis, and a queue that did
/// nothing still shows that it did nothing.
pub async fn throughput(
    db: &Database,
    queues: &[String],
    range: Range,
    now_ms: i64,
) -> Result<Vec<QueueThroughput>, DbError> {
    let now_minute = history::minute_of(now_ms);
    let mut read = read(db, range, now_minute).await?;
    let first = range.first_bucket(now_minute);
    let width = range.bucket_minutes();
    Ok(queues
        .iter()
        .map(|queue| {
            let buckets = read.remove(queue).unwrap_or_default();
            let points = (0..range.buckets())
                .map(|i| {
                    let bucket = first + i * width;
                    let (completed, failed) = buckets.get(&bucket).copied().unwrap_or_default();
                    MinutePoint {
                        minute_ms: bucket * MINUTE_MS,
                        completed,
                        failed,
                    }
                })
                .collect();
            QueueThroughput {
                queue: queue.clone(),
                points,
            }
        })
        .collect())
}

/// Every queue's minutes of the last hour before `now_ms` that the history
/// has, for [`crate::live::Hub::start_with_history`].
pub async fn last_hour(db: &Database, now_ms: i64) -> Result<Backfill, DbError> {
    let read = read(db, Range::Hour, history::minute_of(now_ms)).await?;
    Ok(read
        .into_iter()
        .map(|(queue, buckets)| {
            let points = buckets
                .into_iter()
                .map(|(minute, (completed, failed))| MinutePoint {
                    minute_ms: minute * MINUTE_MS,
                    completed,
                    failed,
                })
                .collect();
            (queue, points)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_sums_become_counts() {
        assert_eq!(count(3.0), 3);
        assert_eq!(count(2.999_999), 3);
        assert_eq!(count(-1.0), 0);
        assert_eq!(count(f64::NAN), 0);
        assert_eq!(count(f64::INFINITY), 0);
    }

    #[test]
    fn ranges_keep_their_names() {
        for range in [Range::Hour, Range::Day, Range::Week] {
            let chart = crate::queues::vm::chart_range(range);
            assert_eq!(chart.as_str(), range.as_str());
            assert_eq!(chart.buckets() as i64, range.buckets());
            assert_eq!(chart.bucket_ms(), range.bucket_minutes() * MINUTE_MS);
        }
    }

    #[test]
    fn a_chart_ends_with_the_bucket_of_now() {
        let now = 1_000_003;
        assert_eq!(Range::Hour.first_bucket(now), now - 59);
        assert_eq!(Range::Day.first_bucket(now), 1_000_000 - 287 * 5);
        assert_eq!(Range::Week.first_bucket(now), 999_960 - 167 * 60);
    }
}
