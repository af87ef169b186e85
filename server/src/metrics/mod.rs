//! Metrics for machines: the Prometheus exposition behind `GET /metrics`
//! ([`Exporter`]) and the per-minute history in SQL written by the sampler
//! ([`start`]) and read by `GET /api/metrics/history` ([`history`]).
//!
//! Both read the hub's snapshots, so scraping or sampling adds no backend
//! read at all: the queues' lifetime counters are in the snapshot's counts.
//! The only figures the snapshots lack are lifetime rate-limit rejections
//! per policy, which the limiter only reports per minute: the exporter and
//! the sampler sum them up themselves ([`Rejections`]).

pub mod charts;
pub mod history;
pub mod prometheus;
pub mod routes;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::Database;
use crate::live::{Hub, Snapshot};
use crate::ratelimits::{RateLimitFigures, rejected_this_minute};
use crate::sync::lock;
use crate::workers::latency::QueueLatency;
use coord::queue::latency::Percentiles;
use history::{Sample, minute_of};
use prometheus::{Extras, QueueTotals};

/// History kept when no `--metrics-retention` is given: a week, the
/// longest range the history endpoint shows.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Shortest time between two retention passes: deleting is batched and
/// cheap, but there is nothing to gain from doing it every minute.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Longest the sampler waits on the database per minute, so a hung
/// connection costs one minute of history, not the sampler.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest startup waits for the last hour's throughput from the history:
/// a slow database costs the restored hour, never the start.
pub const BACKFILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest an overview page waits for a day's or a week's history before
/// answering with an error.
pub const CHART_READ_TIMEOUT: Duration = Duration::from_secs(10);

const MINUTE_MS: i64 = 60_000;

/// Closed minutes kept per policy for the sampler.
const KEPT_MINUTES: usize = 60;

#[derive(Debug, Default)]
struct PolicyRejections {
    /// Rejections of every closed minute seen.
    total: u64,
    /// The minute being counted (ms), and its count so far.
    minute: i64,
    current: u64,
    /// The last closed minutes, oldest first: `(minute ms, rejections)`.
    closed: VecDeque<(i64, u64)>,
}

/// Rate-limit rejections per policy turned into lifetime counters.
///
/// The limiter reports only "rejected in the current minute" per policy.
/// Fed every snapshot (the hub refreshes the figures every second), this
/// keeps the highest count seen for the current minute and, when a later
/// minute shows up, adds that minute's count to the total once. A counter
/// kept this way starts at zero when the dashboard starts, as every
/// Prometheus counter may; rejections in the last second of a minute, after
/// its final reading, are missed.
#[derive(Debug, Default)]
pub struct Rejections {
    policies: BTreeMap<String, PolicyRejections>,
}

impl Rejections {
    /// Takes in one reading of the rate-limit figures.
    pub fn observe(&mut self, figures: &RateLimitFigures) {
        // Every policy's series ends at the reading's current minute.
        let minute = figures
            .policies
            .iter()
            .filter_map(|(_, usage)| usage.minutes.last().map(|m| m.minute))
            .max()
            .unwrap_or_else(|| figures.now.div_euclid(MINUTE_MS) * MINUTE_MS);
        for (policy, usage) in &figures.policies {
            let p = self.policies.entry(policy.name().to_owned()).or_default();
            if p.minute == 0 {
                p.minute = minute;
            }
            if minute > p.minute {
                p.total += p.current;
                p.closed.push_back((p.minute, p.current));
                while p.closed.len() > KEPT_MINUTES {
                    p.closed.pop_front();
                }
                p.minute = minute;
                p.current = 0;
            }
            // An older reading (another clock) or a failed read (zeros)
            // never lowers what was seen.
            if minute == p.minute {
                p.current = p.current.max(rejected_this_minute(usage));
            }
        }
    }

    /// Every policy seen with its rejections so far, by name: closed
    /// minutes plus the current one, so the counter moves within a minute.
    pub fn totals(&self) -> Vec<(String, u64)> {
        self.policies
            .iter()
            .map(|(name, p)| (name.clone(), p.total + p.current))
            .collect()
    }

    /// Rejections per policy in a closed minute (`minute_ms`), for policies
    /// seen both in and after it.
    pub fn closed_minute(&self, minute_ms: i64) -> Vec<(String, u64)> {
        self.policies
            .iter()
            .filter_map(|(name, p)| {
                p.closed
                    .iter()
                    .find(|(m, _)| *m == minute_ms)
                    .map(|(_, n)| (name.clone(), *n))
            })
            .collect()
    }
}

/// What the exposition shows of alerting, handed in by the alerting code
/// so this module does not depend on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFigures {
    /// Pending and firing alerts as `(rule, "pending" | "firing")`.
    pub states: Vec<(String, &'static str)>,
    /// How long this instance's evaluations took.
    pub evaluation: prometheus::Summary,
}

/// How the alerting code plugs its figures into the exposition.
pub type AlertSource = Arc<dyn Fn() -> AlertFigures + Send + Sync>;

struct ExporterInner {
    hub: Hub,
    rejections: Mutex<Rejections>,
    alerts: Option<AlertSource>,
    /// Per-queue series for at most this many queues (`--metrics-queues`).
    queue_cap: usize,
    /// The last exposition and what it was made from: scrapes between two
    /// snapshots (several Prometheus servers, a reloaded dashboard) are
    /// answered from it instead of rendering the same text again.
    rendered: Mutex<Option<Rendered>>,
}

struct Rendered {
    seq: u64,
    alerts: AlertFigures,
    text: String,
}

/// What `GET /metrics` answers from: the hub, and the counters the
/// exposition keeps between scrapes. Cheap to clone.
#[derive(Clone)]
pub struct Exporter {
    inner: Arc<ExporterInner>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Exporter {
    /// Creates the exporter of one server and starts the task that feeds it
    /// every snapshot (rejections must be read every minute, whether or not
    /// anyone scrapes). `alerts` gives the pending and firing alerts (none:
    /// no `switchyard_alerts` lines). The task ends when the hub closes or
    /// the exporter is dropped. Needs a Tokio runtime.
    pub fn start(hub: &Hub, alerts: Option<AlertSource>, queue_cap: usize) -> Self {
        let inner = Arc::new(ExporterInner {
            hub: hub.clone(),
            rejections: Mutex::new(Rejections::default()),
            alerts,
            queue_cap,
            rendered: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(feed_rejections(weak, hub.subscribe(), hub.closed()));
        Self { inner }
    }

    /// The exposition as of the latest snapshot (waiting briefly for the
    /// first one right after startup).
    pub async fn render(&self) -> String {
        let snapshot = self.inner.hub.ready().await;
        lock(&self.inner.rejections).observe_snapshot(&snapshot);
        let alerts = self.inner.alerts.as_ref().map(|f| f()).unwrap_or_default();
        if let Some(last) = lock(&self.inner.rendered).as_ref()
            && last.seq == snapshot.seq
            && last.alerts == alerts
        {
            return last.text.clone();
        }
        let rejections = lock(&self.inner.rejections).totals();
        let totals: Vec<QueueTotals> = snapshot
            .queues
            .iter()
            .map(|q| QueueTotals {
                queue: q.name.clone(),
                completed: q.counts.completed_total,
                failed: q.counts.failed_total,
            })
            .collect();
        let text = prometheus::render(
            &snapshot,
            Extras {
                totals: &totals,
                rejections: &rejections,
                alerts: &alerts.states,
                evaluation: Some(&alerts.evaluation),
            },
            self.inner.queue_cap,
        );
        *lock(&self.inner.rendered) = Some(Rendered {
            seq: snapshot.seq,
            alerts,
            text: text.clone(),
        });
        text
    }
}

impl Rejections {
    /// Takes in a snapshot's rate-limit figures, if it has any.
    pub fn observe_snapshot(&mut self, snapshot: &Snapshot) {
        if let Some(figures) = &snapshot.ratelimits {
            self.observe(figures);
        }
    }
}

async fn feed_rejections(
    exporter: Weak<ExporterInner>,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    mut closed: watch::Receiver<bool>,
) {
    loop {
        if *closed.borrow_and_update() {
            return;
        }
        tokio::select! {
            changed = snapshots.changed() => if changed.is_err() { return },
            _ = closed.changed() => return,
        }
        let snapshot = snapshots.borrow_and_update().clone();
        let Some(exporter) = exporter.upgrade() else {
            return;
        };
        lock(&exporter.rejections).observe_snapshot(&snapshot);
    }
}

/// Starts the sampler: one history sample per minute per series and
/// subject, written shortly after the minute ends (on the first snapshot
/// of the next minute, which the hub takes within [`crate::live::HEARTBEAT`]),
/// and samples older than `retention` deleted at most once per
/// [`PRUNE_EVERY`]. Holds no hub handle (only its channels), so it never
/// keeps the hub alive; it ends when the hub closes. A database error is
/// logged and that minute skipped: the sampler never stops for it.
pub fn start(db: Database, hub: &Hub, retention: Duration, queue_cap: usize) -> JoinHandle<()> {
    tokio::spawn(run(db, hub.subscribe(), hub.closed(), retention, queue_cap))
}

/// The sampler's loop on any pair of channels (what [`start`] runs on the
/// hub's): public so tests can feed it snapshots with chosen times instead
/// of waiting for minutes to pass. Returns when `closed` changes or either
/// sender is gone.
pub async fn run(
    db: Database,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    mut closed: watch::Receiver<bool>,
    retention: Duration,
    queue_cap: usize,
) {
    let retention_minutes = i64::try_from(retention.as_secs() / 60).unwrap_or(i64::MAX);
    let mut rejections = Rejections::default();
    // The first minute seen is only partly observed (rates count from the
    // hub's start, rejections from ours): never written, so it cannot
    // overwrite a full minute another dashboard wrote.
    let mut first_minute: Option<i64> = None;
    let mut last_written: Option<i64> = None;
    let mut last_prune: Option<Instant> = None;
    loop {
        if *closed.borrow_and_update() {
            return;
        }
        tokio::select! {
            changed = snapshots.changed() => if changed.is_err() { return },
            _ = closed.changed() => return,
        }
        let snapshot = snapshots.borrow_and_update().clone();
        if snapshot.seq == 0 {
            continue;
        }
        rejections.observe_snapshot(&snapshot);
        let now_minute = minute_of(snapshot.taken_at);
        let first = *first_minute.get_or_insert(now_minute);
        let minute = now_minute - 1;
        if minute <= first || last_written.is_some_and(|m| m >= minute) {
            continue;
        }
        last_written = Some(minute);
        let samples = samples_for(&snapshot, &rejections, minute, queue_cap);
        match tokio::time::timeout(WRITE_TIMEOUT, history::write(&db, &samples)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, minute, "metrics: cannot write history"),
            Err(_) => tracing::warn!(
                minute,
                "metrics: history not written within {WRITE_TIMEOUT:?}"
            ),
        }
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(Instant::now());
            let before = now_minute.saturating_sub(retention_minutes);
            let prune = history::prune(&db, before, history::PRUNE_BATCH);
            match tokio::time::timeout(WRITE_TIMEOUT, prune).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(deleted = n, "metrics: old history deleted"),
                Ok(Err(err)) => tracing::warn!(error = %err, "metrics: cannot delete old history"),
                Err(_) => tracing::warn!("metrics: retention not done within {WRITE_TIMEOUT:?}"),
            }
        }
    }
}

/// The samples of closed minute `minute` (minutes since the epoch) from a
/// snapshot taken after it: levels as of the snapshot, per-minute figures
/// from the minute's own bucket (throughput from the queues' lifetime
/// counter deltas, channel traffic, rejections per policy) and the wait and
/// run percentiles of the newest minute merged from the workers (under
/// that minute, one or two before `minute`). Queues have
/// series for the `queue_cap` busiest (`--metrics-queues`, as on
/// `/metrics`) and the ones the overview charts: 10,000 queues would
/// otherwise be 80,000 rows a minute, holding the database's writer for
/// seconds every minute.
pub fn samples_for(
    snapshot: &Snapshot,
    rejections: &Rejections,
    minute: i64,
    queue_cap: usize,
) -> Vec<Sample> {
    let minute_ms = minute * MINUTE_MS;
    let mut out = Vec::new();
    let mut push = |series: &'static str, subject: &str, value: f64| {
        out.push(Sample {
            series,
            subject: subject.to_owned(),
            minute,
            value,
        });
    };
    let mut kept = prometheus::shown_queues(snapshot, queue_cap);
    kept.extend(crate::queues::figures::busiest_of_hour(
        snapshot.queues.iter().map(|q| &**q),
        crate::queues::vm::OVERVIEW_CHARTS,
    ));
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    kept.dedup_by(|a, b| a.name == b.name);
    for queue in &kept {
        let c = &queue.counts;
        push("queue_waiting", &queue.name, c.waiting as f64);
        push("queue_active", &queue.name, c.active as f64);
        push("queue_delayed", &queue.name, c.delayed as f64);
        push("queue_completed", &queue.name, c.completed as f64);
        push("queue_failed", &queue.name, c.failed as f64);
        push("queue_paused", &queue.name, f64::from(u8::from(c.paused)));
    }
    for queue in &kept {
        if let Some(p) = queue.minutes.iter().find(|p| p.minute_ms == minute_ms) {
            push("queue_completed_per_min", &queue.name, p.completed as f64);
            push("queue_failed_per_min", &queue.name, p.failed as f64);
        }
    }
    if let Some(figures) = &snapshot.channels {
        for c in &figures.channels {
            if let Some((_, n)) = c.per_minute.iter().find(|(m, _)| *m == minute_ms) {
                push("channel_messages_per_min", &c.name, *n as f64);
            }
        }
    }
    for (policy, n) in rejections.closed_minute(minute_ms) {
        push("ratelimit_rejections_per_min", &policy, n as f64);
    }
    if let Some(caches) = &snapshot.caches {
        let busiest = busiest_caches(caches, CACHE_NAMESPACES);
        for ns in &busiest {
            if let Some(m) = ns.minutes.iter().find(|m| m.minute_ms == minute_ms) {
                push("cache_hits_per_min", &ns.name, m.hits as f64);
                push("cache_requests_per_min", &ns.name, m.requests as f64);
            }
        }
        for instance in busiest_cache_instances(&busiest, CACHE_INSTANCE_SERIES) {
            if let Some(m) = instance.minutes.iter().find(|m| m.minute_ms == minute_ms) {
                let subject = instance.subject();
                push("cache_instance_hits_per_min", &subject, m.hits as f64);
                push(
                    "cache_instance_requests_per_min",
                    &subject,
                    m.requests as f64,
                );
            }
        }
    }
    if let Some(workers) = &snapshot.workers {
        for queue in &kept {
            if let Some(latency) = workers.latency.get(&queue.name) {
                latency_samples(&mut out, &queue.name, latency, minute);
            }
        }
    }
    out
}

/// Cache namespaces with series in the history and on `/metrics`: the
/// busiest of the last hour, so a fleet opening thousands of namespaces
/// writes a bounded number of rows a minute.
pub const CACHE_NAMESPACES: usize = 100;

/// The `n` namespaces with the most reads over the hub's hour (by name
/// among equals), in name order.
pub fn busiest_caches(
    caches: &crate::cache::CacheFigures,
    n: usize,
) -> Vec<&crate::cache::NamespaceFigures> {
    let mut all: Vec<_> = caches.namespaces.iter().collect();
    if all.len() > n {
        let reads = |ns: &crate::cache::NamespaceFigures| {
            ns.minutes.iter().map(|m| m.requests).sum::<u64>()
        };
        all.sort_by(|a, b| reads(b).cmp(&reads(a)).then(a.name.cmp(&b.name)));
        all.truncate(n);
        all.sort_by(|a, b| a.name.cmp(&b.name));
    }
    all
}

/// (namespace, instance) pairs with series of their own in the history,
/// for the Cache page's per-instance chart: the busiest of the hour among
/// the namespaces that have series, so a fleet of hundreds of instances
/// writes a bounded number of rows a minute.
pub const CACHE_INSTANCE_SERIES: usize = 100;

/// The `n` instances of `namespaces` with the most reads over the hub's
/// hour.
pub fn busiest_cache_instances<'a>(
    namespaces: &[&'a crate::cache::NamespaceFigures],
    n: usize,
) -> Vec<&'a crate::cache::InstanceCache> {
    let mut all: Vec<_> = namespaces
        .iter()
        .flat_map(|ns| ns.instances.iter())
        .filter(|i| i.reads_in_hour() > 0)
        .collect();
    all.sort_by(|a, b| {
        b.reads_in_hour()
            .cmp(&a.reads_in_hour())
            .then_with(|| a.subject().cmp(&b.subject()))
    });
    all.truncate(n);
    all
}

/// Minutes back a queue's newest merged latency minute is still written:
/// it is merged a quarter of a minute after it ends, so the sampler
/// normally finds the minute before the one it samples; an older one was
/// written already (the queue has been idle since), and rewriting it every
/// minute for the hour it is kept would only cost rows.
const LATENCY_MINUTES_BACK: i64 = 3;

/// The wait and run percentiles of a queue's newest merged minute, under
/// that minute (not the one being sampled: it is merged later than the
/// sampler runs), for kinds that recorded anything.
fn latency_samples(out: &mut Vec<Sample>, queue: &str, latency: &QueueLatency, minute: i64) {
    let Some((minute_ms, wait, run)) = &latency.last else {
        return;
    };
    let own = minute_of(*minute_ms);
    if own < minute - LATENCY_MINUTES_BACK {
        return;
    }
    let series: [(&Percentiles, [&'static str; 3]); 2] = [
        (
            wait,
            [
                "queue_wait_p50_ms",
                "queue_wait_p95_ms",
                "queue_wait_p99_ms",
            ],
        ),
        (
            run,
            ["queue_run_p50_ms", "queue_run_p95_ms", "queue_run_p99_ms"],
        ),
    ];
    for (p, names) in series {
        if p.count == 0 {
            continue;
        }
        for (name, value) in names.into_iter().zip([p.p50, p.p95, p.p99]) {
            out.push(Sample {
                series: name,
                subject: queue.to_owned(),
                minute: own,
                value: value as f64,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coord::ratelimit::{LimiterStatus, MinuteCount, Policy, PolicyUsage};
    use std::time::Duration;

    fn reading(minute: i64, rejected: &[(&str, u64)]) -> RateLimitFigures {
        RateLimitFigures {
            status: LimiterStatus::healthy("in-process"),
            policies: rejected
                .iter()
                .map(|(name, n)| {
                    let policy = Policy::new(*name, 10, Duration::from_secs(60)).expect("policy");
                    let usage = PolicyUsage {
                        minutes: vec![MinuteCount {
                            minute: minute * MINUTE_MS,
                            allowed: 0,
                            rejected: *n,
                        }],
                        ..PolicyUsage::default()
                    };
                    (policy, usage)
                })
                .collect(),
            problem: None,
            now: minute * MINUTE_MS + 1,
        }
    }

    #[test]
    fn cache_series_are_written_for_namespaces_and_their_busiest_instances() {
        use crate::cache::{
            Agreement, CacheFigures, CacheMinute, CacheTotals, InstanceCache, NamespaceFigures,
        };
        let minute = 29_000_000;
        let m = |requests| CacheMinute {
            minute_ms: minute * MINUTE_MS,
            hits: requests / 2,
            requests,
        };
        let instance = |id: &str, requests| InstanceCache {
            instance: id.into(),
            status: coord::instances::InstanceStatus::Live,
            stats: coord::cache::CacheStats {
                namespace: "users".into(),
                ..Default::default()
            },
            requests_per_s: None,
            compared: false,
            drifted: false,
            minutes: vec![m(requests)],
        };
        let instances: Vec<_> = (0..CACHE_INSTANCE_SERIES + 3)
            .map(|i| instance(&format!("api-{i:03}"), 10 + i as u64))
            .collect();
        let snapshot = Snapshot {
            caches: Some(Arc::new(CacheFigures {
                namespaces: vec![NamespaceFigures {
                    name: "users".into(),
                    backend: "redis".into(),
                    instances,
                    totals: CacheTotals::default(),
                    minutes: vec![m(1000)],
                    agreement: Agreement::NotComparable,
                }],
                omitted: 0,
            })),
            ..Snapshot::default()
        };
        let samples = samples_for(&snapshot, &Rejections::default(), minute, 10);
        let of = |series: &str| -> Vec<&Sample> {
            samples.iter().filter(|s| s.series == series).collect()
        };
        assert_eq!(of("cache_requests_per_min")[0].value, 1000.0);
        assert_eq!(of("cache_hits_per_min")[0].value, 500.0);
        let per_instance = of("cache_instance_requests_per_min");
        assert_eq!(per_instance.len(), CACHE_INSTANCE_SERIES, "capped");
        assert!(
            per_instance.iter().all(|s| s.subject != "users/api-000"),
            "the quietest are left out"
        );
        assert!(per_instance.iter().any(|s| s.subject == "users/api-102"));
    }

    #[test]
    fn each_minute_is_counted_once_with_its_last_reading() {
        let mut r = Rejections::default();
        r.observe(&reading(10, &[("api", 2)]));
        r.observe(&reading(10, &[("api", 5)]));
        assert_eq!(r.totals(), vec![("api".to_owned(), 5)]);
        // A failed read (zeros) does not lower the minute.
        r.observe(&reading(10, &[("api", 0)]));
        r.observe(&reading(11, &[("api", 1)]));
        r.observe(&reading(11, &[("api", 1)]));
        assert_eq!(r.totals(), vec![("api".to_owned(), 6)]);
        assert_eq!(r.closed_minute(10 * MINUTE_MS), vec![("api".to_owned(), 5)]);
        assert_eq!(r.closed_minute(11 * MINUTE_MS), vec![]);
        r.observe(&reading(13, &[("api", 0)]));
        assert_eq!(r.totals(), vec![("api".to_owned(), 6)]);
        assert_eq!(r.closed_minute(11 * MINUTE_MS), vec![("api".to_owned(), 1)]);
    }
}
