//! View models of the native queue pages: the overview, the queues table,
//! one queue's jobs and one job.

use crate::format::{encode_query, format_clock, format_day};

/// Job states in the order every page shows them, with the label used in
/// table headers and tabs. Kept in one place so the overview table, the tabs
/// and the CSS classes cannot disagree on names.
pub const STATES: [(&str, &str); 5] = [
    ("waiting", "Waiting"),
    ("active", "Active"),
    ("delayed", "Delayed"),
    ("completed", "Completed"),
    ("failed", "Failed"),
];

/// Per-state job counts, for one queue or summed over all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Jobs ready to run.
    pub waiting: u64,
    /// Jobs held by a worker right now.
    pub active: u64,
    /// Jobs waiting for their delay or backoff to pass.
    pub delayed: u64,
    /// Finished jobs still kept by retention.
    pub completed: u64,
    /// Jobs in the dead set, waiting for an operator.
    pub failed: u64,
    /// Jobs completed since the queue was created, whatever retention
    /// removed since: beside `completed`, it says when that is capped.
    pub completed_total: u64,
}

impl StateCounts {
    /// How many completed jobs retention removed: `completed` then counts
    /// only those kept.
    pub fn completed_removed(&self) -> u64 {
        self.completed_total.saturating_sub(self.completed)
    }

    /// The count for a state name from [`STATES`]; 0 for an unknown name, so
    /// a renamed state shows as empty instead of breaking the page.
    pub fn count(&self, state: &str) -> u64 {
        match state {
            "waiting" => self.waiting,
            "active" => self.active,
            "delayed" => self.delayed,
            "completed" => self.completed,
            "failed" => self.failed,
            _ => 0,
        }
    }

    /// Adds another queue's counts (for the totals row).
    pub fn add(&mut self, other: &StateCounts) {
        self.waiting += other.waiting;
        self.active += other.active;
        self.delayed += other.delayed;
        self.completed += other.completed;
        self.failed += other.failed;
        self.completed_total += other.completed_total;
    }
}

/// A queue's health at a glance, worst first when several apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueHealth {
    /// Nothing unusual.
    #[default]
    Healthy,
    /// More jobs active than the configured threshold: workers are saturated.
    Busy,
    /// The failure rate is above the configured threshold.
    Warning,
}

impl QueueHealth {
    /// Label shown in the badge.
    pub fn label(self) -> &'static str {
        match self {
            QueueHealth::Healthy => "Healthy",
            QueueHealth::Busy => "Busy",
            QueueHealth::Warning => "Warning",
        }
    }

    /// CSS class of the badge.
    pub fn class(self) -> &'static str {
        match self {
            QueueHealth::Healthy => "healthy",
            QueueHealth::Busy => "busy",
            QueueHealth::Warning => "warning",
        }
    }
}

/// One queue's row in the queues table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueRow {
    /// The queue's name, already validated by the server (URL-safe).
    pub name: String,
    /// Its jobs by state.
    pub counts: StateCounts,
    /// Whether workers are told to stop taking jobs of this queue.
    pub paused: bool,
    /// Jobs finished (completed or failed for good) per minute, averaged
    /// over the recent window; `None` until two samples exist.
    pub jobs_per_min: Option<f64>,
    /// Share of finished jobs that failed over the recent window (0–1);
    /// `None` when nothing finished.
    pub failure_rate: Option<f64>,
    /// The badge, from the thresholds the server is configured with.
    pub health: QueueHealth,
    /// On Redis Cluster, the master (`host:port`) whose slot holds the
    /// queue's keys; `None` elsewhere.
    pub node: Option<String>,
    /// Who takes its jobs, from the worker registry.
    pub workers: crate::vm::workers::QueueWorkersVm,
    /// p95 wait over the last 5 finished minutes (ms), when its workers
    /// finished attempts then.
    pub wait_p95_ms: Option<u64>,
}

impl QueueRow {
    /// The count for a state name (see [`StateCounts::count`]).
    pub fn count(&self, state: &str) -> u64 {
        self.counts.count(state)
    }
}

/// Whether the figures on screen can be trusted: the backend's health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthVm {
    /// Which deployment serves the queues (`embedded`, `redis`), so an
    /// operator knows what a "backend down" line refers to.
    pub backend: String,
    /// Whether the backend answered its health check.
    pub backend_ok: bool,
    /// Round trip of the health check, when it answered.
    pub latency_ms: Option<f64>,
    /// Memory the backend uses, where it tells (Redis).
    pub memory_bytes: Option<u64>,
    /// Why the backend is not usable, when it is not.
    pub problem: Option<String>,
    /// True when the counts shown are the last known ones, not current.
    pub stale: bool,
    /// The dependencies that are not ok (database, rate limiter's Redis,
    /// BullMQ), as the readiness check sees them.
    pub dependencies: Vec<DependencyVm>,
}

/// A dependency that is degraded or down, under the backend's health line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DependencyVm {
    /// Which dependency (`database`, `ratelimits`, `bullmq`, `queues`).
    pub name: String,
    /// True when it cannot work at all (readiness fails), false when it
    /// works in a reduced way.
    pub down: bool,
    /// What it is and why it is not ok.
    pub detail: String,
}

/// Completed and failed jobs of one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinutePoint {
    /// Start of the minute, milliseconds since the epoch (UTC).
    pub minute_ms: i64,
    /// Jobs completed in that minute.
    pub completed: u64,
    /// Jobs that failed for good in that minute.
    pub failed: u64,
}

/// One queue's throughput over the overview's [`ChartRange`], oldest
/// first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThroughputVm {
    /// The queue.
    pub queue: String,
    /// One point per bucket of the range (a minute for the last hour),
    /// `minute_ms` being the bucket's start; buckets without data are
    /// zeros, so bars line up with the axis.
    pub points: Vec<MinutePoint>,
}

/// How far back the overview's throughput charts reach (`?range=`): the
/// last hour is live from the hub's memory; longer spans come from the
/// SQL history in wider buckets, so every chart keeps a few hundred bars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ChartRange {
    /// Last 60 minutes, a bar per minute.
    #[default]
    Hour,
    /// Last 24 hours, a bar per 5 minutes.
    Day,
    /// Last 7 days, a bar per hour.
    Week,
}

impl ChartRange {
    /// Every range, in the order the selector offers them.
    pub const ALL: [ChartRange; 3] = [ChartRange::Hour, ChartRange::Day, ChartRange::Week];

    /// Its `?range=` value: the history API's names, so one vocabulary
    /// serves the page links and the JSON endpoint.
    pub fn as_str(self) -> &'static str {
        match self {
            ChartRange::Hour => "1h",
            ChartRange::Day => "24h",
            ChartRange::Week => "7d",
        }
    }

    /// What the charts cover in words (`last 24 hours`), for the heading
    /// and screen readers, which cannot see the bars' span.
    pub fn title(self) -> &'static str {
        match self {
            ChartRange::Hour => "last hour",
            ChartRange::Day => "last 24 hours",
            ChartRange::Week => "last 7 days",
        }
    }

    /// The selector's label, short so the three links fit beside the
    /// heading.
    pub fn short_label(self) -> &'static str {
        match self {
            ChartRange::Hour => "1 h",
            ChartRange::Day => "24 h",
            ChartRange::Week => "7 d",
        }
    }

    /// Width of one bar in milliseconds, so a tooltip can say where its
    /// bucket ends.
    pub fn bucket_ms(self) -> i64 {
        match self {
            ChartRange::Hour => 60_000,
            ChartRange::Day => 5 * 60_000,
            ChartRange::Week => 3_600_000,
        }
    }

    /// Bars per chart: the span in whole buckets, so every bar covers the
    /// same time.
    pub fn buckets(self) -> usize {
        match self {
            ChartRange::Hour => 60,
            ChartRange::Day => 288,
            ChartRange::Week => 168,
        }
    }

    /// The unit a peak is quoted in (`peak 12/5 min`): a peak per hour and
    /// one per minute are not comparable figures.
    pub fn per(self) -> &'static str {
        match self {
            ChartRange::Hour => "/min",
            ChartRange::Day => "/5 min",
            ChartRange::Week => "/h",
        }
    }

    /// A label under a chart's bars: the time of day for the last hour;
    /// the day with the time over a day (its start and end are different
    /// days: "Sat 5 Dec 08:05 … Sun 6 Dec 08:00"); the day over a week.
    pub fn axis_label(self, bucket_ms: i64) -> String {
        match self {
            ChartRange::Hour => format_clock(bucket_ms),
            ChartRange::Day => format!("{} {}", format_day(bucket_ms), format_clock(bucket_ms)),
            ChartRange::Week => format_day(bucket_ms),
        }
    }

    /// A bar's tooltip heading: the minute for the last hour, the bucket's
    /// day and span (`Mon 23 Nov 14:05–14:10`) for wider buckets, whose
    /// start alone would not say what the bar covers.
    pub fn bucket_label(self, bucket_ms: i64) -> String {
        match self {
            ChartRange::Hour => format_clock(bucket_ms),
            ChartRange::Day | ChartRange::Week => format!(
                "{} {}–{}",
                format_day(bucket_ms),
                format_clock(bucket_ms),
                format_clock(bucket_ms + self.bucket_ms())
            ),
        }
    }
}

/// Everything the overview (`/`) shows. Whatever the number of queues, it
/// names a bounded few: totals, the queues most worth a look, and charts
/// of the busiest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverviewVm {
    /// The backend's health.
    pub health: HealthVm,
    /// Jobs per state summed over every queue.
    pub totals: StateCounts,
    /// How many queues there are.
    pub queue_count: usize,
    /// Queues with a Warning badge, worst first, at most a few.
    pub warnings: Vec<String>,
    /// Queues with a Warning badge beyond those named.
    pub warnings_more: usize,
    /// The queues most worth a look (failing, backed up, not moving),
    /// worst first, at most a few.
    pub attention: Vec<QueueRow>,
    /// Per-queue throughput charts of the busiest queues of the range.
    pub charts: Vec<ThroughputVm>,
    /// Queues without a chart here.
    pub charts_more: usize,
    /// What the charts cover (one bar per bucket of it).
    pub range: ChartRange,
    /// The Redis Cluster's topology, when the queues live on one.
    pub cluster: Option<ClusterVm>,
    /// Every other capability at a glance.
    pub glance: crate::vm::glance::GlanceVm,
}

/// A Redis Cluster as the Overview shows it: which masters serve how many
/// slots and queues, with their replicas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterVm {
    /// Masters by address.
    pub masters: Vec<ClusterMasterVm>,
    /// Slots served by a healthy master (of 16,384).
    pub slots_covered: u32,
    /// Replicas in all.
    pub replicas: usize,
}

/// One master of a cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterMasterVm {
    /// `host:port`.
    pub address: String,
    /// Whether the cluster considers it working.
    pub healthy: bool,
    /// Slots it serves.
    pub slots: u32,
    /// Queues whose keys live in its slots.
    pub queues: usize,
    /// Its replicas: address and whether each is working.
    pub replicas: Vec<(String, bool)>,
}

/// Rows on one page of the queues table.
pub const QUEUES_PER_PAGE: u64 = 50;

/// How many ticked jobs "Retry selected" takes at once: the server's cap
/// on one request (`coord::queue::MAX_PAGE`, checked by a server test),
/// told to the page script so it refuses before posting.
pub const MAX_SELECTED: u64 = 500;

/// How the queues table is ordered (`?sort=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum QueueSort {
    /// By name, so rows stay where they are while figures change.
    #[default]
    Name,
    /// Most jobs failed for good in the last 5 minutes first.
    Failures,
    /// Most jobs waiting or delayed first.
    Backlog,
    /// Most jobs finished per minute first.
    Throughput,
}

impl QueueSort {
    /// Every order, as the selector offers them.
    pub const ALL: [QueueSort; 4] = [
        QueueSort::Name,
        QueueSort::Failures,
        QueueSort::Backlog,
        QueueSort::Throughput,
    ];

    /// Its `?sort=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueSort::Name => "name",
            QueueSort::Failures => "failures",
            QueueSort::Backlog => "backlog",
            QueueSort::Throughput => "throughput",
        }
    }

    /// Its label in the selector.
    pub fn label(self) -> &'static str {
        match self {
            QueueSort::Name => "Name",
            QueueSort::Failures => "Failures in the last 5 min",
            QueueSort::Backlog => "Backlog (waiting + delayed)",
            QueueSort::Throughput => "Throughput (jobs/min)",
        }
    }

    /// The order named by a `?sort=` value.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Which rows of the queues table are shown: order, name filter, page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct QueuesQuery {
    /// The order.
    pub sort: QueueSort,
    /// Text the names must contain (case-insensitive); empty for all.
    pub filter: String,
    /// Rows skipped.
    pub offset: u64,
}

impl QueuesQuery {
    /// Its query string (`?sort=backlog&q=mail&offset=50`), without the
    /// parts left at their defaults.
    pub fn query_string(&self, offset: u64) -> String {
        let mut parts = Vec::new();
        if self.sort != QueueSort::Name {
            parts.push(format!("sort={}", self.sort.as_str()));
        }
        if !self.filter.is_empty() {
            parts.push(format!("q={}", encode_query(&self.filter)));
        }
        if offset > 0 {
            parts.push(format!("offset={offset}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// Everything the queues page (`/queues`) shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueuesVm {
    /// The backend's health.
    pub health: HealthVm,
    /// The page of queues asked for, in the order asked for.
    pub queues: Vec<QueueRow>,
    /// The order, filter and page shown.
    pub query: QueuesQuery,
    /// Queues whose names match the filter (all of them without one).
    pub matching: u64,
    /// Queues there are.
    pub total: u64,
    /// Active jobs above which a queue is Busy (shown in the legend).
    pub busy_active: u64,
    /// Failure rate (percent) above which a queue is in Warning.
    pub warning_failure_rate: f64,
    /// A one-off notice after an action (pause, resume).
    pub notice: Option<String>,
    /// The BullMQ queues monitored next to these, when BullMQ is
    /// configured (shown as rendered; their own page is live).
    pub bullmq: Option<crate::vm::bullmq::BullQueuesVm>,
}

/// One job's row on a queue's page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRow {
    /// The job's id (validated, URL-safe).
    pub id: String,
    /// The job's name, as the producer gave it (any text: must be escaped).
    pub name: String,
    /// A short preview of the job's JSON data (any text: must be escaped).
    pub data_preview: String,
    /// Attempts started so far.
    pub attempts_made: u32,
    /// Attempts allowed before the job fails for good.
    pub attempts: u32,
    /// Lower runs first.
    pub priority: u32,
    /// When the job was enqueued (ms since the epoch).
    pub created_at: i64,
    /// When its last attempt started, once one has.
    pub processed_at: Option<i64>,
    /// When the job finished, for completed and failed jobs.
    pub finished_at: Option<i64>,
    /// The last error, for failed and retrying jobs.
    pub failed_reason: Option<String>,
    /// When a delayed job runs (ms since the epoch).
    pub run_at: Option<i64>,
    /// For a failed job, why it stopped: `retries exhausted`,
    /// `unrecoverable` or `stalled`.
    pub failure: Option<String>,
    /// A waiting or delayed job that failed before and will run again.
    pub retrying: bool,
    /// Which values the listing left out and their whole sizes
    /// (`data 1.0 MB, error 6.1 KB`), when it cut any: the job's page has
    /// them whole.
    pub truncated: Option<String>,
}

/// A queue's Retrying view: the jobs that failed and will run again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryingVm {
    /// The queue.
    pub queue: String,
    /// Whether it is a BullMQ queue.
    pub bullmq: bool,
    /// What was looked at, when not everything was (BullMQ keeps no
    /// retrying set, so its queues are read a bounded number of jobs
    /// deep): never hidden.
    pub coverage: Option<String>,
    /// One page of them, due ones first, then by run time.
    pub jobs: Vec<JobRow>,
    /// How many there are, counted up to `cap`.
    pub total: u64,
    /// Where counting stops.
    pub cap: u64,
    /// Position of the first listed job.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// A one-off notice after an action.
    pub notice: Option<String>,
}

impl RetryingVm {
    /// This page at another offset.
    pub fn url_at(&self, offset: u64) -> String {
        format!(
            "{}/retrying?limit={}&offset={offset}",
            self.queue_path(),
            self.limit
        )
    }

    /// The queue's page.
    pub fn queue_path(&self) -> String {
        if self.bullmq {
            crate::vm::bullmq::bull_queue_path(&self.queue)
        } else {
            format!("/queues/{}", self.queue)
        }
    }

    /// A job's page; its buttons post under it.
    pub fn job_path(&self, id: &str) -> String {
        if self.bullmq {
            crate::vm::bullmq::bull_job_path(&self.queue, id)
        } else {
            format!("/queues/{}/jobs/{id}", self.queue)
        }
    }
}

/// A "retry all failed" running (or just finished) on a queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkProgressVm {
    /// The jobs it acts on (`failed jobs`, `failed jobs of the group “…”`).
    pub subject: String,
    /// Whether it removes them (else it retries them).
    pub removes: bool,
    /// Jobs retried so far.
    pub done: u64,
    /// Failed jobs when the run started: the most it will retry.
    pub total: u64,
    /// True once the run ended.
    pub finished: bool,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

/// The filter of a queue page's job table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilterVm {
    /// Substring of the job name (case-insensitive); empty for any.
    pub name: String,
    /// Substring of the data or failedReason (case-insensitive); empty for any.
    pub text: String,
    /// An error group's id (failed jobs only); empty for any.
    pub group: String,
    /// That group's reason, for the filter line, once known.
    pub group_reason: Option<String>,
}

impl JobFilterVm {
    /// True when a filter is set.
    pub fn is_active(&self) -> bool {
        !self.name.is_empty() || !self.text.is_empty() || !self.group.is_empty()
    }

    /// True when the filter is exactly one error group: the listing is the
    /// group's own (exact, paged) and its actions act on the whole group.
    pub fn is_group_only(&self) -> bool {
        !self.group.is_empty() && self.name.is_empty() && self.text.is_empty()
    }
}

/// Everything a queue's page (`/queues/{queue}`) shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueuePageVm {
    /// The queue with its counts, for the header and the state tabs.
    pub queue: QueueRow,
    /// The state whose jobs are listed (a name from [`STATES`]).
    pub state: String,
    /// One page of jobs in that state, newest first.
    pub jobs: Vec<JobRow>,
    /// Jobs in that state in all, or matches found when filtering.
    pub total: u64,
    /// Position of the first listed job.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// The filter applied, if any.
    pub filter: JobFilterVm,
    /// What a filtered search covered ("searched the newest 5,000 …").
    pub search_note: Option<String>,
    /// A retry-all run on this queue, when one is running or just ended.
    pub progress: Option<BulkProgressVm>,
    /// A one-off notice after an action ("Retried 3 jobs").
    pub notice: Option<String>,
    /// The queue's last hour: completed and failed per finished minute.
    pub chart: Option<ThroughputVm>,
    /// How long its jobs wait and run, when its workers report attempts.
    pub latency: Option<LatencyVm>,
}

/// Percentiles of one kind of time, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PercentilesVm {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Longest.
    pub max: u64,
}

/// A queue's wait and run times: the last minutes merged, and the hour's
/// p95 per finished minute for the chart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyVm {
    /// Finished minutes the percentiles cover.
    pub minutes: usize,
    /// Attempts they cover.
    pub attempts: u64,
    /// From ready (enqueued, delay over, previous attempt over) to start.
    pub wait: PercentilesVm,
    /// From start to finish.
    pub run: PercentilesVm,
    /// Per finished minute with attempts: (minute start ms, p95 wait ms,
    /// p95 run ms), oldest first.
    pub points: Vec<(i64, u64, u64)>,
}

impl QueuePageVm {
    /// This page's URL with its state, filter and paging, for links and for
    /// forms to come back to.
    pub fn url_with_offset(&self, offset: u64) -> String {
        let mut url = format!(
            "/queues/{}?state={}&limit={}",
            self.queue.name, self.state, self.limit
        );
        if offset > 0 {
            url.push_str(&format!("&offset={offset}"));
        }
        if !self.filter.name.is_empty() {
            url.push_str(&format!("&name={}", encode_query(&self.filter.name)));
        }
        if !self.filter.text.is_empty() {
            url.push_str(&format!("&q={}", encode_query(&self.filter.text)));
        }
        if !self.filter.group.is_empty() {
            url.push_str(&format!("&group={}", encode_query(&self.filter.group)));
        }
        url
    }

    /// This page's own URL.
    pub fn url(&self) -> String {
        self.url_with_offset(self.offset)
    }
}

/// One attempt in a job's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptVm {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it started (ms since the epoch).
    pub started_at: i64,
    /// When it ended.
    pub finished_at: i64,
    /// Its error, if it failed.
    pub error: Option<String>,
    /// The error's causes, outermost first.
    pub chain: Vec<String>,
}

/// Everything a job's page (`/queues/{queue}/jobs/{id}`) shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPageVm {
    /// The queue it belongs to.
    pub queue: String,
    /// Its id.
    pub id: String,
    /// Its name (any text).
    pub name: String,
    /// Its state name (from [`STATES`]).
    pub state: String,
    /// For a failed job, why it stopped (see
    /// [`crate::widgets::queue::FailureBadge`]).
    pub failure: Option<String>,
    /// Whether it failed and waits for another attempt (an operator may
    /// stop its retries).
    pub retrying: bool,
    /// Its data as indented JSON (any text).
    pub data_pretty: String,
    /// Which values were too long to show and why (`data 40.0 MB, more
    /// than the 4.0 MB per value a job page shows`), when any was.
    pub truncated: Option<String>,
    /// Its options as indented JSON.
    pub options_pretty: String,
    /// What the handler returned, indented, for completed jobs.
    pub return_value_pretty: Option<String>,
    /// Attempts started so far.
    pub attempts_made: u32,
    /// Attempts allowed.
    pub attempts: u32,
    /// Times its lease expired while active.
    pub stalled_count: u32,
    /// The last error.
    pub failed_reason: Option<String>,
    /// The last error's cause chain.
    pub stacktrace: Vec<String>,
    /// Every finished attempt, oldest first.
    pub history: Vec<AttemptVm>,
    /// When it was enqueued.
    pub created_at: i64,
    /// When its current or last attempt started.
    pub processed_at: Option<i64>,
    /// When it finished.
    pub finished_at: Option<i64>,
    /// When it becomes runnable, for delayed jobs.
    pub run_at: Option<i64>,
    /// The newest lines the job's handler logged, oldest first.
    pub logs: Vec<String>,
    /// Kept lines older than `logs`.
    pub logs_earlier: u64,
    /// Lines dropped by the log's caps.
    pub logs_dropped: u64,
    /// The last progress the handler reported, as compact JSON.
    pub progress: Option<String>,
    /// A one-off notice after an action on this job.
    pub notice: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_state_name() {
        let counts = StateCounts {
            waiting: 1,
            active: 2,
            delayed: 3,
            completed: 4,
            failed: 5,
            completed_total: 9,
        };
        let by_name: Vec<u64> = STATES.iter().map(|(s, _)| counts.count(s)).collect();
        assert_eq!(by_name, [1, 2, 3, 4, 5]);
        assert_eq!(counts.count("nope"), 0);
        let mut total = counts;
        total.add(&counts);
        assert_eq!(total.failed, 10);
    }

    #[test]
    fn chart_ranges_label_their_buckets() {
        // 2026-11-23 10:34 UTC, a Monday.
        let at = 1_795_430_040_000;
        assert_eq!(format_day(at), "Mon 23 Nov");
        assert_eq!(format_day(0), "Thu 1 Jan");
        assert_eq!(ChartRange::Hour.axis_label(at), "10:34");
        assert_eq!(ChartRange::Day.axis_label(at), "Mon 23 Nov 10:34");
        assert_eq!(ChartRange::Week.axis_label(at), "Mon 23 Nov");
        assert_eq!(ChartRange::Hour.bucket_label(at), "10:34");
        assert_eq!(
            ChartRange::Day.bucket_label(at - 4 * 60_000),
            "Mon 23 Nov 10:30–10:35"
        );
        assert_eq!(
            ChartRange::Week.bucket_label(at - 34 * 60_000),
            "Mon 23 Nov 10:00–11:00"
        );
        let names: Vec<&str> = ChartRange::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["1h", "24h", "7d"]);
        for r in ChartRange::ALL {
            assert_eq!(r.buckets() as i64 * r.bucket_ms() % 3_600_000, 0);
        }
        assert_eq!(ChartRange::default(), ChartRange::Hour);
    }

    #[test]
    fn page_urls_keep_state_filter_and_paging() {
        let vm = QueuePageVm {
            queue: QueueRow {
                name: "emails".into(),
                ..QueueRow::default()
            },
            state: "failed".into(),
            limit: 50,
            offset: 100,
            filter: JobFilterVm {
                name: "send welcome".into(),
                text: "a&b=c".into(),
                group: "00000000000000ff".into(),
                group_reason: None,
            },
            ..QueuePageVm::default()
        };
        assert_eq!(
            vm.url(),
            "/queues/emails?state=failed&limit=50&offset=100&name=send%20welcome&q=a%26b%3Dc&group=00000000000000ff"
        );
        assert_eq!(
            vm.url_with_offset(0),
            "/queues/emails?state=failed&limit=50&name=send%20welcome&q=a%26b%3Dc&group=00000000000000ff"
        );
    }
}
