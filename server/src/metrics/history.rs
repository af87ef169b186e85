//! Per-minute metrics history in the server's SQL tables
//! (`metrics_samples`), so charts can reach back further than the hub's
//! in-memory hour and survive restarts.
//!
//! Both databases run the same statements: minutes are `BIGINT` minutes
//! since the Unix epoch, so bucketing is integer division (`minute / 5 * 5`),
//! which truncates alike on SQLite and PostgreSQL for the positive minutes
//! stored here; values are `REAL` / `DOUBLE PRECISION`, whose `SUM`, `AVG`
//! and `MAX` all decode as `f64`.

use std::fmt;
use std::str::FromStr;

use crate::db::{Database, DbError};
use crate::on_pool;

/// How one series is folded into a bucket wider than a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Events per minute: a bucket shows the events in it (its minutes
    /// summed), so a chart's area is the same at every range and minutes
    /// the sampler missed do not inflate the figure.
    Sum,
    /// Levels (jobs waiting…): a bucket shows the average level, which a
    /// missed minute does not distort.
    Avg,
    /// Percentiles (p95 wait…): a bucket shows its worst minute. Neither a
    /// sum nor an average of percentiles is a percentile of anything, and
    /// the worst minute is what a chart of an hour or a week is read for.
    Max,
}

/// Every series the sampler writes, with how it aggregates. A series not
/// listed here is refused by [`Series::parse`] (and by the HTTP endpoint
/// with a 400), so a typo never silently answers "no data".
pub const SERIES: &[(&str, Aggregate)] = &[
    ("queue_waiting", Aggregate::Avg),
    ("queue_active", Aggregate::Avg),
    ("queue_delayed", Aggregate::Avg),
    ("queue_completed", Aggregate::Avg),
    ("queue_failed", Aggregate::Avg),
    ("queue_paused", Aggregate::Avg),
    ("queue_completed_per_min", Aggregate::Sum),
    ("queue_failed_per_min", Aggregate::Sum),
    ("channel_messages_per_min", Aggregate::Sum),
    ("ratelimit_rejections_per_min", Aggregate::Sum),
    ("queue_wait_p50_ms", Aggregate::Max),
    ("queue_wait_p95_ms", Aggregate::Max),
    ("queue_wait_p99_ms", Aggregate::Max),
    ("queue_run_p50_ms", Aggregate::Max),
    ("queue_run_p95_ms", Aggregate::Max),
    ("queue_run_p99_ms", Aggregate::Max),
    ("cache_hits_per_min", Aggregate::Sum),
    ("cache_requests_per_min", Aggregate::Sum),
    ("cache_instance_hits_per_min", Aggregate::Sum),
    ("cache_instance_requests_per_min", Aggregate::Sum),
];

/// A known series name: the only kind [`history`] accepts, so the choice
/// of aggregate is never guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series {
    name: &'static str,
    aggregate: Aggregate,
}

impl Series {
    /// The series called `name`, if the sampler writes one.
    pub fn parse(name: &str) -> Option<Self> {
        SERIES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(name, aggregate)| Self { name, aggregate })
    }

    /// Its name as stored.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How its buckets are aggregated.
    pub fn aggregate(&self) -> Aggregate {
        self.aggregate
    }
}

/// How far back a history read goes, and at which resolution: chosen so
/// every range answers at most ~300 points whatever its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The last 60 minutes, one point per minute.
    Hour,
    /// The last 24 hours in 5-minute buckets (288 points).
    Day,
    /// The last 7 days in 1-hour buckets (168 points).
    Week,
}

impl Range {
    /// Minutes covered, ending with the current minute.
    pub fn span_minutes(self) -> i64 {
        match self {
            Range::Hour => 60,
            Range::Day => 24 * 60,
            Range::Week => 7 * 24 * 60,
        }
    }

    /// Minutes per point.
    pub fn bucket_minutes(self) -> i64 {
        match self {
            Range::Hour => 1,
            Range::Day => 5,
            Range::Week => 60,
        }
    }

    /// Points in a full chart of this range: the span in whole buckets, so
    /// every point covers the same time.
    pub fn buckets(self) -> i64 {
        self.span_minutes() / self.bucket_minutes()
    }

    /// The first minute of the oldest of the [`Range::buckets`] aligned
    /// buckets whose last one holds `now_minute`: where a chart with a bar
    /// for every bucket starts, a partial first bucket never showing as a
    /// dip.
    pub fn first_bucket(self, now_minute: i64) -> i64 {
        let width = self.bucket_minutes();
        (now_minute.div_euclid(width) - (self.buckets() - 1)) * width
    }

    /// Its name in URLs (`1h`, `24h`, `7d`).
    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Range {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1h" => Ok(Range::Hour),
            "24h" => Ok(Range::Day),
            "7d" => Ok(Range::Week),
            other => Err(format!("unknown range {other:?}: expected 1h, 24h or 7d")),
        }
    }
}

/// One value to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// A name from [`SERIES`].
    pub series: &'static str,
    /// The queue, channel or policy it is about.
    pub subject: String,
    /// Minutes since the Unix epoch.
    pub minute: i64,
    /// The value.
    pub value: f64,
}

/// The minute (since the Unix epoch) containing `ms`.
pub fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(60_000)
}

const UPSERT: &str = "INSERT INTO metrics_samples (series, subject, minute, value) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (series, subject, minute) DO UPDATE SET value = excluded.value";

const READ_SUM: &str = "SELECT (minute / $3) * $3 AS bucket, SUM(value) AS value \
     FROM metrics_samples \
     WHERE series = $1 AND subject = $2 AND minute > $4 AND minute <= $5 \
     GROUP BY bucket ORDER BY bucket";

const READ_AVG: &str = "SELECT (minute / $3) * $3 AS bucket, AVG(value) AS value \
     FROM metrics_samples \
     WHERE series = $1 AND subject = $2 AND minute > $4 AND minute <= $5 \
     GROUP BY bucket ORDER BY bucket";

const READ_MAX: &str = "SELECT (minute / $3) * $3 AS bucket, MAX(value) AS value \
     FROM metrics_samples \
     WHERE series = $1 AND subject = $2 AND minute > $4 AND minute <= $5 \
     GROUP BY bucket ORDER BY bucket";

const READ_SUM_BY_SUBJECT: &str = "SELECT subject, (minute / $2) * $2 AS bucket, \
     SUM(value) AS value \
     FROM metrics_samples \
     WHERE series = $1 AND minute >= $3 AND minute <= $4 \
     GROUP BY subject, bucket ORDER BY subject, bucket";

const READ_AVG_BY_SUBJECT: &str = "SELECT subject, (minute / $2) * $2 AS bucket, \
     AVG(value) AS value \
     FROM metrics_samples \
     WHERE series = $1 AND minute >= $3 AND minute <= $4 \
     GROUP BY subject, bucket ORDER BY subject, bucket";

const READ_MAX_BY_SUBJECT: &str = "SELECT subject, (minute / $2) * $2 AS bucket, \
     MAX(value) AS value \
     FROM metrics_samples \
     WHERE series = $1 AND minute >= $3 AND minute <= $4 \
     GROUP BY subject, bucket ORDER BY subject, bucket";

// Row values with IN work on SQLite ≥ 3.15 and PostgreSQL alike; the
// subquery walks the minute index, oldest first.
const DELETE_BATCH: &str = "DELETE FROM metrics_samples \
     WHERE (series, subject, minute) IN ( \
         SELECT series, subject, minute FROM metrics_samples \
         WHERE minute < $1 ORDER BY minute LIMIT $2)";

/// Writes samples in one transaction, replacing any value already stored
/// for the same series, subject and minute: two dashboards sampling the
/// same backend write the same minute, and neither may fail for it.
pub async fn write(db: &Database, samples: &[Sample]) -> Result<(), DbError> {
    if samples.is_empty() {
        return Ok(());
    }
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for s in samples {
            sqlx::query(UPSERT)
                .bind(s.series)
                .bind(&s.subject)
                .bind(s.minute)
                .bind(s.value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// A series' points over `range` ending with minute `now_minute` (taken as
/// an argument so callers and tests choose the clock), oldest first, one
/// per bucket that has data: `(first minute of the bucket, value)`. Buckets
/// are aligned to multiples of their width, so two reads a few minutes
/// apart agree on every full bucket. Aggregated in SQL: the rows read
/// never leave the database.
pub async fn history(
    db: &Database,
    series: Series,
    subject: &str,
    range: Range,
    now_minute: i64,
) -> Result<Vec<(i64, f64)>, DbError> {
    let sql = match series.aggregate {
        Aggregate::Sum => READ_SUM,
        Aggregate::Avg => READ_AVG,
        Aggregate::Max => READ_MAX,
    };
    let from = now_minute - range.span_minutes();
    let rows: Vec<(i64, f64)> = on_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(series.name)
            .bind(subject)
            .bind(range.bucket_minutes())
            .bind(from)
            .bind(now_minute)
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}

/// A series' buckets for every subject at once, `(subject, first minute of
/// the bucket, value)` ordered by subject then bucket, covering the full
/// [`Range::buckets`] up to minute `now_minute` (from
/// [`Range::first_bucket`], so unlike [`history`] the oldest bucket is
/// whole). What a page charting every queue reads: one statement per
/// series whatever the number of queues, aggregated in SQL.
pub async fn by_subject(
    db: &Database,
    series: Series,
    range: Range,
    now_minute: i64,
) -> Result<Vec<(String, i64, f64)>, DbError> {
    let sql = match series.aggregate {
        Aggregate::Sum => READ_SUM_BY_SUBJECT,
        Aggregate::Avg => READ_AVG_BY_SUBJECT,
        Aggregate::Max => READ_MAX_BY_SUBJECT,
    };
    let rows: Vec<(String, i64, f64)> = on_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(series.name)
            .bind(range.bucket_minutes())
            .bind(range.first_bucket(now_minute))
            .bind(now_minute)
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}

/// Rows deleted per statement by [`prune`]: small enough that neither
/// database holds a long lock while a week's backlog is cleared.
pub const PRUNE_BATCH: i64 = 5_000;

/// Deletes every sample older than `before_minute`, `batch` rows per
/// statement (yielding between them; the sampler uses [`PRUNE_BATCH`]),
/// and returns how many went.
pub async fn prune(db: &Database, before_minute: i64, batch: i64) -> Result<u64, DbError> {
    let batch = batch.max(1);
    let mut deleted = 0;
    loop {
        let n = on_pool!(db, pool => {
            sqlx::query(DELETE_BATCH)
                .bind(before_minute)
                .bind(batch)
                .execute(pool)
                .await?
                .rows_affected()
        });
        deleted += n;
        if n < batch as u64 {
            return Ok(deleted);
        }
        tokio::task::yield_now().await;
    }
}
