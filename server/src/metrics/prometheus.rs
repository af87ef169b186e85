//! The Prometheus text exposition (format 0.0.4) of the hub's latest
//! snapshot, for `GET /metrics`.
//!
//! Labels carry only names an operator chose (queues, channels, policies,
//! instances, alert rules, the configured Redis' nodes), never job ids or
//! rate-limit keys, so the number of series stays bounded by configuration
//! rather than by traffic.

use std::fmt::Write as _;

use coord::instances::InstanceStatus;
use coord::queue::JobState;

use crate::live::Snapshot;
use crate::workers::latency::{BUCKETS_SECS, Cumulative};

/// The exposition's media type, as Prometheus asks for it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A queue's lifetime counters, which the snapshot's rows do not carry:
/// counters must come from the backend's totals (not reduced by retention),
/// not from the per-state counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueTotals {
    /// The queue.
    pub queue: String,
    /// Jobs completed since the queue was created.
    pub completed: u64,
    /// Jobs moved to the failed set since the queue was created.
    pub failed: u64,
}

/// Everything one exposition shows besides the snapshot: figures kept by
/// the exporter or supplied by other parts of the server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    /// Lifetime counters per queue.
    pub totals: &'a [QueueTotals],
    /// Rate-limit rejections per policy since the exporter started.
    pub rejections: &'a [(String, u64)],
    /// Pending and firing alerts: `(rule, "pending" | "firing")`.
    pub alerts: &'a [(String, &'static str)],
    /// How long this instance's alert evaluations took (none without
    /// alerting).
    pub evaluation: Option<&'a Summary>,
}

/// A Prometheus summary: quantiles over a recent window, and the count
/// and sum since start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Observations since start.
    pub count: u64,
    /// Their total.
    pub sum: f64,
    /// `(quantile label, value)`, e.g. `("0.99", 0.004)`.
    pub quantiles: Vec<(&'static str, f64)>,
}

/// Escapes a label value as the format requires (backslash, double quote
/// and line feed), so any queue or channel name yields a parseable line.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Formats a float as the format spells it (`NaN`, `+Inf`, `-Inf`).
fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

/// Collects one metric family, so its `# HELP` and `# TYPE` lines are
/// written once, and only when it has samples.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    lines: Vec<String>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            kind,
            lines: Vec::new(),
        }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.sample_of("", labels, value);
    }

    /// A sample of one of the family's own series (a summary's `_sum` and
    /// `_count`, a histogram's `_bucket`).
    fn sample_of(&mut self, suffix: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let mut line = format!("{}{suffix}", self.name);
        if !labels.is_empty() {
            line.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "{key}=\"{}\"", escape_label(val));
            }
            line.push('}');
        }
        let _ = write!(line, " {value}");
        self.lines.push(line);
    }

    fn write_to(self, out: &mut String) {
        if self.lines.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for line in self.lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
}

/// One queue's cumulative times as a Prometheus histogram: a `_bucket`
/// per bound and `+Inf`, then `_sum` (seconds) and `_count`.
fn histogram(family: &mut Family, queue: &str, times: &Cumulative) {
    for (bound, n) in BUCKETS_SECS.iter().zip(times.buckets) {
        family.sample_of("_bucket", &[("queue", queue), ("le", &float(*bound))], n);
    }
    family.sample_of("_bucket", &[("queue", queue), ("le", "+Inf")], times.count);
    family.sample_of(
        "_sum",
        &[("queue", queue)],
        float(times.sum_ms as f64 / 1000.0),
    );
    family.sample_of("_count", &[("queue", queue)], times.count);
}

/// Default for `--metrics-queues`: per-queue series for the 100 busiest
/// queues keep a scrape near 100 KB whatever the deployment runs.
pub const DEFAULT_QUEUE_SERIES: usize = 100;

/// The queues that get series of their own: the `cap` busiest, by the
/// jobs they ever finished plus those they hold now (by name among
/// equals). The lifetime part keeps the choice steady from one scrape to
/// the next, so a busy queue that happens to be drained keeps its series
/// and `rate()` over them stays whole. Thousands of per-tenant queues
/// would otherwise make every scrape megabytes and every Prometheus
/// thousands of series.
pub fn shown_queues(snapshot: &Snapshot, cap: usize) -> Vec<&crate::queues::figures::QueueFigures> {
    let load = |q: &crate::queues::figures::QueueFigures| {
        q.counts.completed_total
            + q.counts.failed_total
            + q.counts.waiting
            + q.counts.active
            + q.counts.delayed
            + q.counts.failed
    };
    let mut queues = crate::queues::figures::top(snapshot.queues.iter().map(|q| &**q), cap, |q| {
        std::cmp::Reverse(load(q))
    });
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    queues
}

/// The exposition of one snapshot: O(queues + channels + instances +
/// policies), never proportional to jobs, with per-queue series for at
/// most `queue_cap` queues (totals over every queue always). Families
/// without samples are left out entirely (no fleet attached, no alerts).
pub fn render(snapshot: &Snapshot, extras: Extras<'_>, queue_cap: usize) -> String {
    let shown = shown_queues(snapshot, queue_cap);
    let mut all_jobs = Family::new(
        "switchyard_all_queues_jobs",
        "gauge",
        "Jobs per state over every queue, as of the latest snapshot.",
    );
    for state in JobState::ALL {
        let sum: u64 = snapshot.queues.iter().map(|q| q.counts.get(state)).sum();
        all_jobs.sample(&[("state", state.as_str())], sum);
    }
    let mut queue_count = Family::new(
        "switchyard_queues",
        "gauge",
        "Queues, and how many of them have per-queue series here (--metrics-queues).",
    );
    queue_count.sample(&[("series", "shown")], shown.len());
    queue_count.sample(
        &[("series", "omitted")],
        snapshot.queues.len() - shown.len(),
    );
    let mut jobs = Family::new(
        "switchyard_queue_jobs",
        "gauge",
        "Jobs per queue and state, as of the latest snapshot.",
    );
    let mut paused = Family::new(
        "switchyard_queue_paused",
        "gauge",
        "Whether workers are told to stop taking the queue's jobs (1) or not (0).",
    );
    for queue in &shown {
        for state in JobState::ALL {
            jobs.sample(
                &[("queue", &queue.name), ("state", state.as_str())],
                queue.counts.get(state),
            );
        }
        paused.sample(&[("queue", &queue.name)], u8::from(queue.counts.paused));
    }
    let mut completed = Family::new(
        "switchyard_jobs_completed_total",
        "counter",
        "Jobs completed since the queue was created.",
    );
    let mut failed = Family::new(
        "switchyard_jobs_failed_total",
        "counter",
        "Jobs moved to the failed set since the queue was created.",
    );
    let mut all_completed = Family::new(
        "switchyard_all_queues_jobs_completed_total",
        "counter",
        "Jobs completed, summed over every queue.",
    );
    let mut all_failed = Family::new(
        "switchyard_all_queues_jobs_failed_total",
        "counter",
        "Jobs moved to the failed set, summed over every queue.",
    );
    if !extras.totals.is_empty() {
        all_completed.sample(&[], extras.totals.iter().map(|t| t.completed).sum::<u64>());
        all_failed.sample(&[], extras.totals.iter().map(|t| t.failed).sum::<u64>());
    }
    // A set, not a scan of `shown` per queue: 10,000 totals against 100
    // shown queues would be a million comparisons per exposition.
    let shown_names: std::collections::HashSet<&str> =
        shown.iter().map(|q| q.name.as_str()).collect();
    for t in extras.totals {
        if shown_names.contains(t.queue.as_str()) {
            completed.sample(&[("queue", &t.queue)], t.completed);
            failed.sample(&[("queue", &t.queue)], t.failed);
        }
    }
    let mut wait = Family::new(
        "switchyard_job_wait_seconds",
        "histogram",
        "How long attempts waited to start once they could run (enqueued, delay over or previous attempt ended), as native workers report them, since this dashboard started.",
    );
    let mut run = Family::new(
        "switchyard_job_run_seconds",
        "histogram",
        "How long attempts ran, from start to finish, as native workers report them, since this dashboard started.",
    );
    if let Some(workers) = &snapshot.workers {
        // The shown queues only, like every per-queue family: a queue's
        // histogram is 17 series per kind.
        for queue in &shown {
            if let Some(latency) = workers.latency.get(&queue.name) {
                histogram(&mut wait, &queue.name, &latency.wait_total);
                histogram(&mut run, &queue.name, &latency.run_total);
            }
        }
    }
    let mut channels = Family::new(
        "switchyard_channel_messages_total",
        "counter",
        "Messages seen on the channel since this dashboard started.",
    );
    if let Some(figures) = &snapshot.channels {
        for c in &figures.channels {
            channels.sample(&[("channel", &c.name)], c.total);
        }
    }
    let mut rejections = Family::new(
        "switchyard_ratelimit_rejections_total",
        "counter",
        "Requests rejected by the rate-limit policy since this dashboard started.",
    );
    for (policy, n) in extras.rejections {
        rejections.sample(&[("policy", policy)], n);
    }
    let mut instances = Family::new(
        "switchyard_instance_up",
        "gauge",
        "Whether the instance heartbeats (1) or is stale or gone (0).",
    );
    if let Some(figures) = &snapshot.instances {
        for i in &figures.instances {
            let up = i.status() == InstanceStatus::Live;
            instances.sample(&[("instance", i.view.report.id.as_ref())], u8::from(up));
        }
    }
    let mut backend_up = Family::new(
        "switchyard_backend_up",
        "gauge",
        "Whether the queue backend answered the latest health check (1) or not (0).",
    );
    let mut latency = Family::new(
        "switchyard_backend_latency_seconds",
        "gauge",
        "Round trip of the latest health check of the queue backend.",
    );
    // Before the first snapshot nothing was checked: say nothing rather
    // than report the backend down.
    if snapshot.seq > 0 {
        backend_up.sample(&[], u8::from(snapshot.backend.reachable));
        if let Some(ms) = snapshot.backend.latency_ms {
            latency.sample(&[], float(ms / 1000.0));
        }
    }
    let mut alerts = Family::new(
        "switchyard_alerts",
        "gauge",
        "Alerts pending or firing, per rule and state (several subjects of one rule add up).",
    );
    // One line per rule and state: a rule alerting on several queues must
    // not repeat a series, which Prometheus would reject.
    let mut by_rule: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
    for (rule, state) in extras.alerts {
        *by_rule.entry((rule.as_str(), state)).or_default() += 1;
    }
    for ((rule, state), n) in by_rule {
        alerts.sample(&[("alertname", rule), ("state", state)], n);
    }
    let mut evaluation = Family::new(
        "switchyard_alert_evaluation_seconds",
        "summary",
        "How long this instance's alert evaluations took (quantiles over the latest 256).",
    );
    if let Some(times) = extras.evaluation.filter(|t| t.count > 0) {
        for (q, value) in &times.quantiles {
            evaluation.sample(&[("quantile", q)], float(*value));
        }
        evaluation.sample_of("_sum", &[], float(times.sum));
        evaluation.sample_of("_count", &[], times.count);
    }
    let mut out = String::new();
    let families = [
        all_jobs,
        queue_count,
        jobs,
        paused,
        all_completed,
        all_failed,
        completed,
        failed,
        wait,
        run,
        channels,
        rejections,
        instances,
        backend_up,
        latency,
        alerts,
        evaluation,
    ];
    for family in families.into_iter().chain(redis_families(snapshot)) {
        family.write_to(&mut out);
    }
    for family in cache_families(snapshot) {
        family.write_to(&mut out);
    }
    out
}

/// The services' caches: reads by outcome as lifetime counters the hub
/// keeps (an instance restarting does not take them back), and entries and
/// bytes over the live instances, for the busiest
/// [`super::CACHE_NAMESPACES`] namespaces.
fn cache_families(snapshot: &Snapshot) -> [Family; 3] {
    let mut requests = Family::new(
        "switchyard_cache_requests_total",
        "counter",
        "Cache reads by namespace and result (hit_local, hit_shared, miss) over every instance, since this dashboard started.",
    );
    let mut entries = Family::new(
        "switchyard_cache_entries",
        "gauge",
        "Entries in the instances' local tiers, by namespace.",
    );
    let mut bytes = Family::new(
        "switchyard_cache_bytes",
        "gauge",
        "Approximate bytes of the instances' local tiers, by namespace.",
    );
    if let Some(caches) = &snapshot.caches {
        for ns in super::busiest_caches(caches, super::CACHE_NAMESPACES) {
            let name = ns.name.as_str();
            for (result, n) in [
                ("hit_local", ns.totals.hits_local),
                ("hit_shared", ns.totals.hits_shared),
                ("miss", ns.totals.misses),
            ] {
                requests.sample(&[("namespace", name), ("result", result)], n);
            }
            entries.sample(&[("namespace", name)], ns.sum(|s| s.entries));
            bytes.sample(&[("namespace", name)], ns.sum(|s| s.bytes));
        }
    }
    [requests, entries, bytes]
}

/// Nodes of the configured Redis with series of their own: a cluster of
/// 64 nodes is already a large one, and each node is 10 series.
pub const REDIS_NODE_SERIES: usize = 64;

/// The `switchyard_redis_*` families from the hub's latest read of the
/// configured Redis (none before the first read or without Redis), one
/// series per node (`node` = `host:port`, at most [`REDIS_NODE_SERIES`],
/// masters first). A node that did not answer has only `up` 0; a figure
/// its `INFO` did not give is left out rather than reported as 0.
fn redis_families(snapshot: &Snapshot) -> Vec<Family> {
    let Some(figures) = &snapshot.redis else {
        return Vec::new();
    };
    let mut up = Family::new(
        "switchyard_redis_up",
        "gauge",
        "Whether the Redis node answered the hub's latest read (1) or not (0).",
    );
    let mut used = Family::new(
        "switchyard_redis_memory_used_bytes",
        "gauge",
        "Memory the Redis node uses (INFO used_memory).",
    );
    let mut max = Family::new(
        "switchyard_redis_memory_max_bytes",
        "gauge",
        "The Redis node's maxmemory (0: no limit).",
    );
    let mut clients = Family::new(
        "switchyard_redis_connected_clients",
        "gauge",
        "Clients connected to the Redis node.",
    );
    let mut blocked = Family::new(
        "switchyard_redis_blocked_clients",
        "gauge",
        "Clients of the Redis node waiting in a blocking command (BLPOP, XREAD BLOCK...).",
    );
    let mut ops = Family::new(
        "switchyard_redis_ops_per_second",
        "gauge",
        "Commands per second the Redis node processes (INFO instantaneous_ops_per_sec).",
    );
    let mut evicted = Family::new(
        "switchyard_redis_evicted_keys_total",
        "counter",
        "Keys the Redis node evicted since it started (INFO evicted_keys).",
    );
    let mut expired = Family::new(
        "switchyard_redis_expired_keys_total",
        "counter",
        "Keys that expired on the Redis node since it started (INFO expired_keys).",
    );
    let mut lag = Family::new(
        "switchyard_redis_replication_lag_seconds",
        "gauge",
        "A Redis replica's lag: seconds since its master last had its acknowledgement, or, with its link down, since the link went down.",
    );
    let mut hit_ratio = Family::new(
        "switchyard_redis_keyspace_hit_ratio",
        "gauge",
        "Key lookups of the Redis node that found their key, since it started (0 to 1).",
    );
    for node in figures.report.nodes.iter().take(REDIS_NODE_SERIES) {
        let labels = [("node", node.address.as_str())];
        up.sample(&labels, u8::from(node.reachable));
        let Some(info) = node.info.as_ref().filter(|_| node.reachable) else {
            continue;
        };
        if let Some(secs) = crate::redis_health::lag_secs(node) {
            lag.sample(&labels, secs);
        }
        let figures = [
            (&mut used, info.used_memory),
            (&mut max, info.maxmemory),
            (&mut clients, info.connected_clients),
            (&mut blocked, info.blocked_clients),
            (&mut ops, info.ops_per_sec),
            (&mut evicted, info.evicted_keys),
            (&mut expired, info.expired_keys),
        ];
        for (family, value) in figures {
            if let Some(value) = value {
                family.sample(&labels, value);
            }
        }
        if let Some(ratio) = info.hit_ratio() {
            hit_ratio.sample(&labels, float(ratio));
        }
    }
    vec![
        up, used, max, clients, blocked, ops, evicted, expired, lag, hit_ratio,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use coord::redis_health::{
        NodeInfo, NodeReport, NodeRole, RedisReport, ReplicationLag, Status,
    };

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("plain"), "plain");
    }

    fn node(address: &str, info: Option<NodeInfo>) -> NodeReport {
        NodeReport {
            address: address.to_owned(),
            role: info.as_ref().and_then(|i| i.role),
            master: None,
            reachable: info.is_some(),
            error: None,
            ping_us: None,
            read_at_ms: 0,
            info,
            replication: None,
            slowlog: None,
            latency: None,
            keyspace: None,
            problems: Vec::new(),
        }
    }

    fn with_nodes(nodes: Vec<NodeReport>) -> Snapshot {
        Snapshot {
            seq: 1,
            redis: Some(std::sync::Arc::new(crate::redis_health::RedisFigures {
                report: RedisReport {
                    cluster: false,
                    read_at_ms: 0,
                    status: Status::Ok,
                    reasons: Vec::new(),
                    nodes,
                    keyspace: None,
                },
                rates: Default::default(),
                keyspace: None,
            })),
            ..Snapshot::default()
        }
    }

    /// The lines of `family` in `text`.
    fn lines<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| {
                l.starts_with(&format!("{family}{{")) || l.starts_with(&format!("{family} "))
            })
            .collect()
    }

    #[test]
    fn redis_nodes_have_their_gauges_and_counters() {
        let master = NodeInfo {
            role: Some(NodeRole::Master),
            used_memory: Some(1_048_576),
            maxmemory: Some(0),
            connected_clients: Some(7),
            blocked_clients: Some(2),
            ops_per_sec: Some(130),
            evicted_keys: Some(5),
            expired_keys: Some(40),
            keyspace_hits: Some(3),
            keyspace_misses: Some(1),
            ..NodeInfo::default()
        };
        let mut replica = node(
            "10.0.0.2:6380",
            Some(NodeInfo {
                role: Some(NodeRole::Replica),
                master_link_up: Some(true),
                ..NodeInfo::default()
            }),
        );
        replica.replication = Some(ReplicationLag {
            ack_lag_secs: Some(1),
            ..ReplicationLag::default()
        });
        let text = render(
            &with_nodes(vec![
                node("10.0.0.1:6379", Some(master)),
                replica,
                node("a\"b:1", None),
            ]),
            Extras::default(),
            DEFAULT_QUEUE_SERIES,
        );
        assert_eq!(
            lines(&text, "switchyard_redis_up"),
            [
                r#"switchyard_redis_up{node="10.0.0.1:6379"} 1"#,
                r#"switchyard_redis_up{node="10.0.0.2:6380"} 1"#,
                r#"switchyard_redis_up{node="a\"b:1"} 0"#,
            ]
        );
        for (family, line) in [
            ("switchyard_redis_memory_used_bytes", "1048576"),
            ("switchyard_redis_memory_max_bytes", "0"),
            ("switchyard_redis_connected_clients", "7"),
            ("switchyard_redis_blocked_clients", "2"),
            ("switchyard_redis_ops_per_second", "130"),
            ("switchyard_redis_evicted_keys_total", "5"),
            ("switchyard_redis_expired_keys_total", "40"),
            ("switchyard_redis_keyspace_hit_ratio", "0.75"),
        ] {
            assert_eq!(
                lines(&text, family),
                [format!(r#"{family}{{node="10.0.0.1:6379"}} {line}"#)],
                "{text}"
            );
        }
        assert_eq!(
            lines(&text, "switchyard_redis_replication_lag_seconds"),
            [r#"switchyard_redis_replication_lag_seconds{node="10.0.0.2:6380"} 1"#]
        );
        assert!(text.contains("# TYPE switchyard_redis_evicted_keys_total counter\n"));
        assert!(text.contains("# TYPE switchyard_redis_up gauge\n"));
        // Without Redis, no family at all.
        let none = render(&Snapshot::default(), Extras::default(), 1);
        assert!(!none.contains("switchyard_redis_"), "{none}");
    }

    #[test]
    fn redis_series_are_capped() {
        let nodes = (0..100)
            .map(|i| node(&format!("10.0.{}.{}:6379", i / 10, i % 10), None))
            .collect();
        let text = render(&with_nodes(nodes), Extras::default(), 1);
        assert_eq!(lines(&text, "switchyard_redis_up").len(), REDIS_NODE_SERIES);
    }

    #[test]
    fn floats_use_the_formats_spelling() {
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(0.25), "0.25");
    }
}
