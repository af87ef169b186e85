//! The native queues' view models, built from the hub's figures and from
//! jobs read for a page. Page handlers and live streams both call these,
//! so a page and its live updates show the same thing; this is the only
//! place that knows both `coord`'s types and the `app` crate's, which
//! keeps `app` free of any backend and presentation choices (how much of a
//! job's data to preview) out of `coord`.

use app::{
    AttemptVm, BulkProgressVm, HealthVm, JobFilterVm, JobPageVm, JobRow, OverviewVm, QueuePageVm,
    QueueRow, QueuesVm, StateCounts, ThroughputVm,
};
use coord::CoordError;
use coord::errors::GroupId;
use coord::queue::{Job, JobReport, JobState, MAX_PAGE, QueueCounts, QueueName, Queues};
use coord::time::now_ms;
use serde::Deserialize;
use serde_json::Value;

use crate::http::error::AppError;
use crate::http::extract::{PageParams, PageRequest, parse_offset};
use crate::live::{BackendFigures, Snapshot};
use crate::queues::figures::{
    MinutePoint, QueueFigures, QueueHealth, QueueSummary, RetryProgress, Thresholds,
    busiest_of_hour, finished_minutes, top,
};
use crate::system::check::CheckState;

/// Most jobs a filtered search looks at (newest first): a filter over a
/// million jobs must not scan a million jobs per page view.
pub const SEARCH_LIMIT: u64 = 5_000;

/// Longest filter text accepted.
pub const MAX_FILTER_CHARS: usize = 200;

/// The query of a queue's page: `?state=&offset=&limit=&name=&q=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueuePageParams {
    /// A job state name (waiting when absent).
    pub state: Option<String>,
    /// Jobs (or matches) to skip.
    pub offset: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Substring of the job name.
    pub name: Option<String>,
    /// Substring of the data or failedReason.
    pub q: Option<String>,
    /// An error group's id: the failed jobs of that group.
    pub group: Option<String>,
}

/// A validated queue page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePageQuery {
    /// State, offset and limit.
    pub page: PageRequest,
    /// The filter (empty strings for none).
    pub filter: JobFilterVm,
}

/// The tab a queue opens on when the link names none: where an operator
/// has something to do or see — failed jobs if any, else the running
/// ones, else the waiting ones — rather than an empty Waiting tab.
pub fn useful_state(counts: &coord::queue::QueueCounts) -> JobState {
    if counts.failed > 0 {
        JobState::Failed
    } else if counts.active > 0 {
        JobState::Active
    } else {
        JobState::Waiting
    }
}

impl QueuePageParams {
    /// Validates the parameters, with a reason for each bad one; the
    /// state is waiting when none is given.
    pub fn parse(&self) -> Result<QueuePageQuery, AppError> {
        self.parse_or(JobState::Waiting)
    }

    /// As [`Self::parse`], with `state` when none is given.
    pub fn parse_or(&self, state: JobState) -> Result<QueuePageQuery, AppError> {
        let page = PageParams {
            state: self.state.clone(),
            offset: self.offset.clone(),
            limit: self.limit.clone(),
        }
        .parse(Some(state))?;
        let group = match self.group.as_deref().map(str::trim) {
            None | Some("") => String::new(),
            Some(text) => {
                let id = GroupId::parse(text).ok_or_else(|| {
                    AppError::bad_request(format!(
                        "group must be an error group id of 16 lowercase hex digits (got {text:?})"
                    ))
                })?;
                if page.state != JobState::Failed {
                    return Err(AppError::bad_request(
                        "group filters failed jobs: use it with state=failed",
                    ));
                }
                id.to_string()
            }
        };
        let filter = JobFilterVm {
            name: filter_text("name", self.name.as_deref())?,
            text: filter_text("q", self.q.as_deref())?,
            group,
            group_reason: None,
        };
        Ok(QueuePageQuery { page, filter })
    }
}

fn filter_text(param: &str, value: Option<&str>) -> Result<String, AppError> {
    let value = value.unwrap_or("").trim();
    if value.chars().count() > MAX_FILTER_CHARS {
        return Err(AppError::bad_request(format!(
            "the {param} filter is limited to {MAX_FILTER_CHARS} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::bad_request(format!(
            "the {param} filter must not contain control characters"
        )));
    }
    Ok(value.to_string())
}

/// One page of a state's jobs, possibly filtered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The page's jobs, newest first.
    pub jobs: Vec<JobRow>,
    /// Jobs in the state, or matches found when filtering.
    pub total: u64,
    /// What a filtered search covered.
    pub search_note: Option<String>,
    /// When it was loaded (ms): ages on the page are measured from here, so
    /// an unchanged table renders the same and is not sent again (the page
    /// script keeps ages current in the browser).
    pub loaded_at: i64,
}

/// How far a filtered scan looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Jobs looked at, newest first.
    pub scanned: u64,
    /// Jobs in the state (or the group) in all.
    pub total: u64,
}

impl Scan {
    /// Whether it looked at every job.
    pub fn complete(&self) -> bool {
        self.scanned >= self.total
    }
}

/// Calls `matched` for every job of the query's state (or error group)
/// that its name and text filters match, newest first, looking at the
/// newest [`SEARCH_LIMIT`] at most, in pages of [`MAX_PAGE`] with values
/// longer than `clip` left out (never searched inside).
pub async fn scan_filtered(
    queues: &Queues,
    queue: &QueueName,
    query: &QueuePageQuery,
    clip: u32,
    mut matched: impl FnMut(&Job),
) -> Result<Scan, CoordError> {
    let state = query.page.state;
    let group = GroupId::parse(&query.filter.group);
    let name = query.filter.name.to_lowercase();
    let text = query.filter.text.to_lowercase();
    let mut scanned = 0u64;
    let mut total = 0u64;
    while scanned < SEARCH_LIMIT {
        let chunk = MAX_PAGE.min(SEARCH_LIMIT - scanned);
        let page = match group {
            Some(group) => {
                queues
                    .list_error_group(queue, group, scanned, chunk, clip)
                    .await?
            }
            None => {
                queues
                    .list_clipped(queue, state, scanned, chunk, clip)
                    .await?
            }
        };
        total = page.total;
        let fetched = page.jobs.len() as u64;
        for job in &page.jobs {
            let name_ok = name.is_empty() || job.name.to_lowercase().contains(&name);
            let text_ok = text.is_empty()
                || job.data.to_string().to_lowercase().contains(&text)
                || job
                    .failed_reason
                    .as_deref()
                    .is_some_and(|r| r.to_lowercase().contains(&text));
            if name_ok && text_ok {
                matched(job);
            }
        }
        scanned += fetched;
        if fetched < chunk || scanned >= total {
            break;
        }
    }
    Ok(Scan { scanned, total })
}

/// Lists a page of jobs, every value longer than `clip` bytes left out
/// where it is stored (`--listing-value-bytes`). Unfiltered, this is one
/// backend call for the page; filtered, it scans at most [`SEARCH_LIMIT`]
/// of the newest jobs in pages (never inside a value left out) and says
/// how far it looked.
pub async fn listing(
    queues: &Queues,
    queue: &QueueName,
    query: &QueuePageQuery,
    clip: u32,
) -> Result<Listing, CoordError> {
    let PageRequest {
        state,
        offset,
        limit,
    } = query.page;
    let group = GroupId::parse(&query.filter.group);
    if !query.filter.is_active() || query.filter.is_group_only() {
        let page = match group {
            Some(group) => {
                queues
                    .list_error_group(queue, group, offset, limit, clip)
                    .await?
            }
            None => {
                queues
                    .list_clipped(queue, state, offset, limit, clip)
                    .await?
            }
        };
        return Ok(Listing {
            jobs: page.jobs.iter().map(job_row).collect(),
            total: page.total,
            search_note: None,
            loaded_at: now_ms(),
        });
    }
    let mut jobs = Vec::new();
    let mut matched = 0u64;
    let scan = scan_filtered(queues, queue, query, clip, |job| {
        if matched >= offset && (jobs.len() as u64) < limit {
            jobs.push(job_row(job));
        }
        matched += 1;
    })
    .await?;
    let Scan { scanned, total } = scan;
    let state_name = state.as_str();
    let scope = if group.is_some() {
        " of the error group"
    } else {
        ""
    };
    let verb = if matched == 1 { "matches" } else { "match" };
    let note = if scan.complete() {
        format!(
            "Searched all {} {state_name} jobs{scope}: {} {verb}.",
            app::format_count(total),
            app::format_count(matched)
        )
    } else {
        format!(
            "Searched the newest {} of {} {state_name} jobs{scope}: {} {verb}. Narrow the filter or remove old jobs to search further.",
            app::format_count(scanned),
            app::format_count(total),
            app::format_count(matched)
        )
    };
    Ok(Listing {
        jobs,
        total: matched,
        search_note: Some(note),
        loaded_at: now_ms(),
    })
}

/// The badge as the pages show it.
pub fn health_badge(health: QueueHealth) -> app::QueueHealth {
    match health {
        QueueHealth::Healthy => app::QueueHealth::Healthy,
        QueueHealth::Busy => app::QueueHealth::Busy,
        QueueHealth::Warning => app::QueueHealth::Warning,
    }
}

/// A queue's row in the queues table.
pub fn row(figures: &QueueFigures) -> QueueRow {
    QueueRow {
        name: figures.name.clone(),
        counts: state_counts(&figures.counts),
        paused: figures.counts.paused,
        jobs_per_min: figures.jobs_per_min,
        failure_rate: figures.failure_rate,
        health: health_badge(figures.health),
        node: None,
        workers: app::QueueWorkersVm::Unknown,
        wait_p95_ms: None,
    }
}

/// Fills in what the snapshot knows about each row's queue beyond its
/// figures: its workers (from the registry), and on Redis Cluster which
/// master holds it (from the topology). A binary search per row.
pub fn with_snapshot(rows: &mut [QueueRow], snapshot: &Snapshot) {
    for row in rows.iter_mut() {
        row.workers = crate::workers::vm::queue_workers(snapshot.workers.as_deref(), &row.name);
        row.wait_p95_ms = crate::workers::vm::wait_p95(snapshot.workers.as_deref(), &row.name);
    }
    let Some(topology) = &snapshot.backend.cluster else {
        return;
    };
    for row in rows {
        let slot = coord::queue::redis::queue_slot(&row.name);
        row.node = topology.master_serving(slot).map(|n| n.address.clone());
    }
}

/// The Overview's cluster table: each master with its slots, replicas and
/// how many queues live in its slots (one slot computation per queue, no
/// Redis read: the topology comes with the health check).
pub fn cluster_vm(snapshot: &Snapshot) -> Option<app::ClusterVm> {
    let topology = snapshot.backend.cluster.as_ref()?;
    let masters: Vec<&coord::redis::ClusterNode> = topology.masters().collect();
    let mut queues = vec![0usize; masters.len()];
    for queue in &snapshot.queues {
        let slot = coord::queue::redis::queue_slot(queue.name.as_str());
        if let Some(i) = masters.iter().position(|m| m.serves(slot)) {
            queues[i] += 1;
        }
    }
    Some(app::ClusterVm {
        masters: masters
            .iter()
            .zip(queues)
            .map(|(m, queues)| app::ClusterMasterVm {
                address: m.address.clone(),
                healthy: m.healthy,
                slots: m.slot_count(),
                queues,
                replicas: topology
                    .nodes
                    .iter()
                    .filter(|r| r.master_id.as_deref() == Some(m.id.as_str()))
                    .map(|r| (r.address.clone(), r.healthy))
                    .collect(),
            })
            .collect(),
        slots_covered: topology.slots_covered(),
        replicas: topology.replica_count(),
    })
}

/// A series of minutes as a chart draws it.
pub fn chart(queue: &str, minutes: &[MinutePoint]) -> ThroughputVm {
    ThroughputVm {
        queue: queue.to_owned(),
        points: minutes
            .iter()
            .map(|m| app::MinutePoint {
                minute_ms: m.minute_ms,
                completed: m.completed,
                failed: m.failed,
            })
            .collect(),
    }
}

/// The health line of the overview and the queues page.
pub fn health(backend: &BackendFigures) -> HealthVm {
    HealthVm {
        backend: backend.kind.clone(),
        backend_ok: backend.reachable,
        latency_ms: backend.latency_ms,
        memory_bytes: backend.memory_bytes,
        problem: backend.problem.clone(),
        stale: backend.stale,
        dependencies: backend
            .dependencies
            .iter()
            .map(|c| app::DependencyVm {
                name: c.name.to_owned(),
                down: c.state == CheckState::Down,
                detail: c.detail.clone(),
            })
            .collect(),
    }
}

/// A retry-all run as the queue page shows it.
pub fn progress(progress: &RetryProgress) -> BulkProgressVm {
    BulkProgressVm {
        subject: progress.action.subject(),
        removes: progress.action.removes(),
        done: progress.done,
        total: progress.total,
        finished: progress.finished,
        error: progress.error.clone(),
    }
}

/// Queues the overview names in its table of queues to look at.
pub const ATTENTION_ROWS: usize = 10;

/// Queues with a Warning badge the overview names.
pub const WARNINGS_NAMED: usize = 10;

/// Throughput charts on the overview: the busiest queues of the range.
pub const OVERVIEW_CHARTS: usize = 8;

/// The query of the queues page: `?sort=&q=&offset=`, as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueuesParams {
    /// `name`, `failures`, `backlog` or `throughput`.
    pub sort: Option<String>,
    /// Text the queue names must contain.
    pub q: Option<String>,
    /// Rows to skip.
    pub offset: Option<String>,
}

impl QueuesParams {
    /// Validates the parameters, with a reason for each bad one.
    pub fn parse(&self) -> Result<app::QueuesQuery, AppError> {
        let sort = match self.sort.as_deref().map(str::trim) {
            None | Some("") => app::QueueSort::Name,
            Some(text) => app::QueueSort::parse(text).ok_or_else(|| {
                let names: Vec<&str> = app::QueueSort::ALL.iter().map(|s| s.as_str()).collect();
                AppError::bad_request(format!(
                    "sort must be one of {}, not {text:?}",
                    names.join(", ")
                ))
            })?,
        };
        let offset = parse_offset(self.offset.as_deref())?;
        Ok(app::QueuesQuery {
            sort,
            filter: filter_text("q", self.q.as_deref())?,
            offset,
        })
    }
}

/// How much trouble a queue is in, comparable so the worst sorts first:
/// a Warning badge, then jobs failed for good in the last 5 minutes, then
/// the failure rate, then jobs waiting while none is active (no worker
/// taking them), then the backlog.
fn trouble(q: &QueueFigures) -> (bool, u64, u64, bool, u64) {
    let c = &q.counts;
    let stuck = c.waiting > 0 && c.active == 0 && !c.paused;
    (
        q.health == QueueHealth::Warning,
        q.failed_recent,
        // Per ten thousand: an order, not a figure to show.
        (q.failure_rate.unwrap_or(0.0) * 10_000.0) as u64,
        stuck,
        c.waiting + c.delayed,
    )
}

/// The queues the overview charts: the busiest of the last hour.
pub fn charted(snapshot: &Snapshot) -> Vec<&QueueFigures> {
    busiest_of_hour(snapshot.queues.iter().map(|q| &**q), OVERVIEW_CHARTS)
}

/// The overview's queue part (the hour's charts; a day or a week is put
/// in by the page from the history, for the same queues); the page's
/// whole view model is `crate::overview::overview`.
pub fn overview(snapshot: &Snapshot) -> OverviewVm {
    let mut totals = app::StateCounts::default();
    let mut warnings = 0;
    for queue in &snapshot.queues {
        totals.add(&state_counts(&queue.counts));
        warnings += usize::from(queue.health == QueueHealth::Warning);
    }
    let all = || snapshot.queues.iter().map(|q| &**q);
    let attention = top(all(), ATTENTION_ROWS, |q| std::cmp::Reverse(trouble(q)));
    let named = top(
        all().filter(|q| q.health == QueueHealth::Warning),
        WARNINGS_NAMED,
        |q| std::cmp::Reverse(trouble(q)),
    );
    let charts: Vec<ThroughputVm> = charted(snapshot)
        .into_iter()
        .map(|q| chart(&q.name, finished_minutes(&q.minutes)))
        .collect();
    let mut attention: Vec<QueueRow> = attention.into_iter().map(row).collect();
    with_snapshot(&mut attention, snapshot);
    OverviewVm {
        health: health(&snapshot.backend),
        totals,
        queue_count: snapshot.queues.len(),
        warnings_more: warnings - named.len(),
        warnings: named.into_iter().map(|q| q.name.clone()).collect(),
        attention,
        cluster: cluster_vm(snapshot),
        charts_more: snapshot.queues.len() - charts.len(),
        charts,
        range: app::ChartRange::Hour,
        // The other capabilities' cards: `crate::overview`.
        glance: app::GlanceVm::default(),
    }
}

/// A queue list's name filter (`?q=`): case-insensitive, anywhere in the
/// name; empty passes everything. Native and BullMQ lists filter alike.
pub struct NameFilter(String);

impl NameFilter {
    /// The filter of `query`.
    pub fn of(query: &app::QueuesQuery) -> Self {
        Self(query.filter.to_lowercase())
    }

    /// Whether `name` passes.
    pub fn matches(&self, name: &str) -> bool {
        self.0.is_empty() || name.to_lowercase().contains(&self.0)
    }
}

/// The page of `matching` that `query` asks for (`limit` rows from its
/// offset), with how many matched: every paged queue list cuts alike.
pub fn page_of<T>(matching: Vec<T>, query: &app::QueuesQuery, limit: u64) -> (Vec<T>, u64) {
    let total = matching.len() as u64;
    let page = matching
        .into_iter()
        .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    (page, total)
}

/// The names of `names` that match `query`'s filter, in its order. Orders
/// other than by name use the snapshot's figures (a queue the snapshot
/// does not know yet counts as idle), so the cost is one pass over the
/// names and a sort of the matches, never a backend read per queue.
fn ordered<'a>(
    snapshot: &Snapshot,
    names: impl Iterator<Item = &'a str>,
    query: &app::QueuesQuery,
) -> Vec<&'a str> {
    let filter = NameFilter::of(query);
    let mut matching: Vec<&str> = names.filter(|name| filter.matches(name)).collect();
    let idle = QueueFigures::default();
    let figures = |name: &str| snapshot.queue(name).map_or(&idle, |q| &**q);
    match query.sort {
        app::QueueSort::Name => matching.sort_unstable(),
        app::QueueSort::Failures => matching.sort_by_cached_key(|name| {
            let q = figures(name);
            (
                std::cmp::Reverse((q.failed_recent, q.counts.failed)),
                name.to_string(),
            )
        }),
        app::QueueSort::Backlog => matching.sort_by_cached_key(|name| {
            let c = &figures(name).counts;
            (std::cmp::Reverse(c.waiting + c.delayed), name.to_string())
        }),
        app::QueueSort::Throughput => matching.sort_by_cached_key(|name| {
            // Hundredths of a job per minute: an order, not a figure.
            let rate = figures(name).jobs_per_min.unwrap_or(0.0) * 100.0;
            (std::cmp::Reverse(rate as u64), name.to_string())
        }),
    }
    matching
}

/// The names on the page `query` asks for among `names` (`limit` rows),
/// with how many match.
pub fn page_names<'a>(
    snapshot: &Snapshot,
    names: impl Iterator<Item = &'a str>,
    query: &app::QueuesQuery,
    limit: u64,
) -> (Vec<&'a str>, u64) {
    page_of(ordered(snapshot, names, query), query, limit)
}

/// The queues page's view model from the snapshot alone (live updates):
/// the page of rows `query` asks for, in its order.
pub fn queues_page(snapshot: &Snapshot, query: &app::QueuesQuery) -> QueuesVm {
    let thresholds = snapshot.thresholds.unwrap_or(Thresholds {
        busy_active: 0,
        warning_failure_rate: 0.0,
    });
    let names = snapshot.queues.iter().map(|q| q.name.as_str());
    let (page, matching) = page_names(snapshot, names, query, app::QUEUES_PER_PAGE);
    let mut rows: Vec<QueueRow> = page
        .into_iter()
        .filter_map(|name| snapshot.queue(name))
        .map(|q| row(q))
        .collect();
    with_snapshot(&mut rows, snapshot);
    QueuesVm {
        health: health(&snapshot.backend),
        queues: rows,
        query: query.clone(),
        matching,
        total: snapshot.queues.len() as u64,
        busy_active: thresholds.busy_active,
        warning_failure_rate: thresholds.warning_failure_rate,
        notice: None,
        bullmq: None,
    }
}

/// A page of queues with fresh counts, for the page handler and the API
/// (an action just redirected here must show its effect): the names are
/// read from the backend (one read), the counts only for the page's rows.
pub async fn fresh_page(
    queues: &Queues,
    snapshot: &Snapshot,
    query: &app::QueuesQuery,
    limit: u64,
) -> Result<(Vec<QueueSummary>, u64, u64), CoordError> {
    let names = queues.queues().await?;
    let total = names.len() as u64;
    let (page, matching) = page_names(snapshot, names.iter().map(|n| n.as_str()), query, limit);
    // Listed names are valid queue names.
    let page: Vec<QueueName> = page
        .into_iter()
        .filter_map(|name| QueueName::new(name).ok())
        .collect();
    let rows = futures_util::future::join_all(page.into_iter().map(|name| async move {
        match queues.counts(&name).await {
            Ok(counts) => Ok(Some(QueueSummary { name, counts })),
            // Deleted since it was listed: not on the page.
            Err(CoordError::QueueNotFound(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }))
    .await;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(row) = row? {
            out.push(row);
        }
    }
    Ok((out, matching, total))
}

/// A queue's row from fresh counts, with rates and badge from the snapshot
/// (rates need history, which only the hub keeps).
pub fn queue_row(snapshot: &Snapshot, queue: &QueueName, counts: &QueueCounts) -> QueueRow {
    let known = snapshot.queue(queue.as_str());
    let failure_rate = known.and_then(|q| q.failure_rate);
    let health = match snapshot.thresholds {
        Some(t) => t.health(counts, failure_rate),
        None => known.map(|q| q.health).unwrap_or_default(),
    };
    QueueRow {
        name: queue.to_string(),
        counts: state_counts(counts),
        paused: counts.paused,
        jobs_per_min: known.and_then(|q| q.jobs_per_min),
        failure_rate,
        health: health_badge(health),
        node: None,
        workers: app::QueueWorkersVm::Unknown,
        wait_p95_ms: None,
    }
}

/// The queue page's view model from its parts, for the live stream (the
/// row from the snapshot's figures).
pub fn queue_page(
    figures: &QueueFigures,
    query: &QueuePageQuery,
    listing: Listing,
    snapshot: &Snapshot,
) -> QueuePageVm {
    queue_page_of(row(figures), query, listing, snapshot)
}

/// The queue page's view model from a row (read fresh by the page handler).
pub fn queue_page_of(
    mut row: QueueRow,
    query: &QueuePageQuery,
    listing: Listing,
    snapshot: &Snapshot,
) -> QueuePageVm {
    row.workers = crate::workers::vm::queue_workers(snapshot.workers.as_deref(), &row.name);
    row.wait_p95_ms = crate::workers::vm::wait_p95(snapshot.workers.as_deref(), &row.name);
    let latency = crate::workers::vm::latency(snapshot.workers.as_deref(), &row.name);
    let progress = snapshot.progress.get(&row.name).map(progress);
    let chart = snapshot
        .queue(&row.name)
        .map(|q| chart(&q.name, finished_minutes(&q.minutes)));
    QueuePageVm {
        chart,
        latency,
        state: query.page.state.as_str().to_string(),
        jobs: listing.jobs,
        total: listing.total,
        offset: query.page.offset,
        limit: query.page.limit,
        filter: query.filter.clone(),
        search_note: listing.search_note,
        progress,
        notice: None,
        queue: row,
    }
}

/// The page's name for a history range: the app crate cannot depend on
/// the server's [`Range`], so this is the one place the two are tied.
pub fn chart_range(range: crate::metrics::history::Range) -> app::ChartRange {
    match range {
        crate::metrics::history::Range::Hour => app::ChartRange::Hour,
        crate::metrics::history::Range::Day => app::ChartRange::Day,
        crate::metrics::history::Range::Week => app::ChartRange::Week,
    }
}

/// Characters of a job's JSON shown in a table cell; the full data is on
/// the job's page and in the JSON API.
const PREVIEW_CHARS: usize = 160;

/// A queue's per-state counts.
pub fn state_counts(counts: &QueueCounts) -> StateCounts {
    StateCounts {
        waiting: counts.waiting,
        active: counts.active,
        delayed: counts.delayed,
        completed: counts.completed,
        failed: counts.failed,
        completed_total: counts.completed_total,
    }
}

/// One job's row in a table.
pub fn job_row(job: &Job) -> JobRow {
    let data_cut = job.clipped.iter().any(|c| c.field == "data");
    JobRow {
        id: job.id.to_string(),
        name: job.name.clone(),
        // Left out of the listing: the row says so next to it.
        data_preview: if data_cut {
            "…".to_owned()
        } else {
            data_preview(&job.data)
        },
        truncated: truncated(&job.clipped),
        attempts_made: job.attempts_made,
        attempts: job.options.attempts,
        priority: job.options.priority,
        created_at: job.created_at,
        processed_at: job.processed_at,
        finished_at: job.finished_at,
        failed_reason: job.failed_reason.clone(),
        run_at: job.run_at,
        failure: failure_kind(job).map(str::to_owned),
        retrying: is_retrying(job),
    }
}

/// Why a failed job stopped, as its badge says: an operator stopped its
/// retries (its mark is its end: a later failure moves `finished_at` on),
/// it used every attempt, its error said a retry could not help (a fatal
/// error), or it stalled to death (both backends write one of two fixed
/// reasons then).
pub fn failure_kind(job: &Job) -> Option<&'static str> {
    if job.state != JobState::Failed {
        return None;
    }
    let reason = job.failed_reason.as_deref().unwrap_or("");
    let stopped = job.options.retries_stopped_at;
    Some(if stopped.is_some() && stopped == job.finished_at {
        "stopped by an operator"
    } else if reason.starts_with("job stalled") {
        "stalled"
    } else if job.attempts_made >= job.options.attempts {
        "retries exhausted"
    } else {
        "unrecoverable"
    })
}

/// A waiting or delayed job whose last attempt failed: it will run again.
pub fn is_retrying(job: &Job) -> bool {
    matches!(job.state, JobState::Waiting | JobState::Delayed)
        && job.attempts_made > 0
        && job.failed_reason.as_deref().is_some_and(|r| !r.is_empty())
}

/// Everything a job's page shows. The lease token is left out: only the
/// worker holding the job has any use for it.
pub fn job_page(job: &Job, report: &JobReport) -> JobPageVm {
    let truncated = truncated(&job.clipped).map(|what| {
        format!(
            "{what}, more than the {} per value a job page or the API shows",
            app::format_bytes(u64::from(JOB_VALUE_BYTES))
        )
    });
    JobPageVm {
        truncated,
        queue: job.queue.to_string(),
        id: job.id.to_string(),
        name: job.name.clone(),
        state: job.state.as_str().to_string(),
        failure: failure_kind(job).map(str::to_owned),
        retrying: is_retrying(job),
        data_pretty: pretty(&job.data),
        options_pretty: serde_json::to_value(&job.options)
            .map(|v| pretty(&v))
            .unwrap_or_default(),
        return_value_pretty: job.return_value.as_ref().map(pretty),
        attempts_made: job.attempts_made,
        attempts: job.options.attempts,
        stalled_count: job.stalled_count,
        failed_reason: job.failed_reason.clone(),
        stacktrace: job.stacktrace.clone(),
        history: job
            .history
            .iter()
            .map(|a| AttemptVm {
                attempt: a.attempt,
                started_at: a.started_at,
                finished_at: a.finished_at,
                error: a.error.clone(),
                chain: a.chain.clone(),
            })
            .collect(),
        created_at: job.created_at,
        processed_at: job.processed_at,
        finished_at: job.finished_at,
        run_at: job.run_at,
        logs_earlier: report.logs_kept.saturating_sub(report.logs.len() as u64),
        logs_dropped: report.logs_dropped,
        logs: report.logs.clone(),
        progress: report.progress.as_ref().map(Value::to_string),
        notice: None,
    }
}

/// Indented JSON for reading; falls back to compact JSON (which cannot
/// fail for a `Value`) rather than showing nothing.
fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Compact JSON cut to [`PREVIEW_CHARS`] characters (on a character
/// boundary) with an ellipsis when cut.
pub fn data_preview(data: &Value) -> String {
    let text = data.to_string();
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Most bytes of any one value a single job's page, stream or API answer
/// carries: a job holding more is shown without it (and says so), so one
/// request costs at most five such values whatever the job holds.
pub const JOB_VALUE_BYTES: u32 = 4 << 20;

/// Most bytes of any one value a job listing carries unless
/// `--listing-value-bytes` says otherwise: a page of 500 jobs holding
/// megabytes each then costs at most 500 × 5 values × 4 KB.
pub const DEFAULT_LISTING_VALUE_BYTES: u32 = 4096;

/// What a listing left out, as the row says it (`data 1.0 MB, error
/// 6.1 KB`).
fn truncated(clipped: &[coord::queue::Clipped]) -> Option<String> {
    if clipped.is_empty() {
        return None;
    }
    let parts: Vec<String> = clipped
        .iter()
        .map(|c| {
            let what = match c.field.as_str() {
                "failedReason" => "error",
                "returnValue" => "result",
                "stacktrace" => "stack trace",
                other => other,
            };
            format!("{what} {}", app::format_bytes(c.bytes))
        })
        .collect();
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_trimmed_and_bounded() {
        let params = QueuePageParams {
            name: Some("  send  ".into()),
            q: Some("x".repeat(201)),
            ..QueuePageParams::default()
        };
        let err = params.parse().expect_err("too long");
        assert!(err.message().contains("200 characters"), "{err}");
        let ok = QueuePageParams {
            name: Some("  send  ".into()),
            ..QueuePageParams::default()
        }
        .parse()
        .expect("valid");
        assert_eq!(ok.filter.name, "send");
        assert_eq!(ok.page.state, JobState::Waiting);
        let err = QueuePageParams {
            q: Some("a\u{7}b".into()),
            ..QueuePageParams::default()
        }
        .parse()
        .expect_err("control");
        assert!(err.message().contains("control characters"), "{err}");
    }
}

#[cfg(test)]
mod job_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn short_data_is_shown_whole() {
        assert_eq!(data_preview(&json!({"a": 1})), r#"{"a":1}"#);
    }

    #[test]
    fn long_data_is_cut_on_a_char_boundary() {
        let preview = data_preview(&json!("é".repeat(400)));
        assert!(preview.ends_with('…'));
        assert_eq!(preview.chars().count(), PREVIEW_CHARS + 1);
    }
}
