//! The Redis page's view model from one read's figures.

use app::vm::redis::{
    KeyspaceVm, LatencyEventRow, PrefixRow, RedisNodeRow, RedisVm, SLOWLOG_ROWS, SlowRow,
};
use coord::redis_health::{GroupKind, KeyspaceSample, NodeReport, NodeRole};

use super::RedisFigures;

/// A replica this many bytes behind its master is flagged.
pub const LAG_WARNING_BYTES: u64 = 1024 * 1024;

fn role(node: &NodeReport) -> &'static str {
    match node.role {
        Some(NodeRole::Master) => "master",
        Some(NodeRole::Replica) => "replica",
        None => "",
    }
}

/// Replication in words, and whether it needs a look.
fn replication(node: &NodeReport, cluster: bool) -> (String, bool) {
    let info = node.info.as_ref();
    match node.role {
        Some(NodeRole::Master) => {
            let replicas = info.and_then(|i| i.connected_replicas).unwrap_or(0);
            let words = app::counted(replicas, "replica", "replicas");
            // A cluster master without a replica loses its slots with it.
            (words, cluster && replicas == 0)
        }
        Some(NodeRole::Replica) => {
            let lag = node.replication.clone().unwrap_or_default();
            let link = match lag.link_up {
                Some(true) => "link up",
                Some(false) => "link down",
                None => "link unknown",
            };
            let behind = lag
                .offset_behind
                .map(|b| format!(" · {} behind", app::format_bytes(b)))
                .unwrap_or_default();
            let of = node
                .master
                .as_deref()
                .map(|m| format!(" of {m}"))
                .unwrap_or_default();
            let warning = lag.link_up == Some(false)
                || lag.offset_behind.is_some_and(|b| b > LAG_WARNING_BYTES);
            (format!("{link}{behind}{of}"), warning)
        }
        None => ("–".to_owned(), false),
    }
}

fn persistence(node: &NodeReport) -> (String, bool) {
    let Some(p) = node.info.as_ref().map(|i| &i.persistence) else {
        return ("–".to_owned(), false);
    };
    let rdb = match p.rdb_last_bgsave_status.as_deref() {
        Some("ok") => "RDB ok",
        Some(_) => "RDB failing",
        None => "RDB –",
    };
    let aof = match (p.aof_enabled, p.aof_last_write_status.as_deref()) {
        (Some(false), _) => "AOF off",
        (Some(true), Some("ok")) => "AOF ok",
        (Some(true), Some(_)) => "AOF failing",
        _ => "AOF –",
    };
    (format!("{rdb} · {aof}"), p.failing())
}

fn node_row(figures: &RedisFigures, node: &NodeReport) -> RedisNodeRow {
    let error = node
        .error
        .as_ref()
        .filter(|_| !node.reachable)
        .map(|e| crate::http::error::one_line(&e.to_string()));
    let info = node.info.clone().unwrap_or_default();
    let rates = figures.rates.get(&node.address);
    let (replication, replication_warning) = replication(node, figures.report.cluster);
    let (persistence, persistence_warning) = persistence(node);
    RedisNodeRow {
        addr: node.address.clone(),
        role: role(node).to_owned(),
        error: if node.reachable {
            None
        } else {
            Some(error.unwrap_or_else(|| "no answer".to_owned()))
        },
        version: info.version.clone().unwrap_or_default(),
        uptime_secs: info.uptime_secs.unwrap_or(0),
        ping_ms: node.ping_us.map(|us| us as f64 / 1000.0),
        used_memory: info.used_memory.unwrap_or(0),
        peak_memory: info.used_memory_peak.unwrap_or(0),
        max_memory: info.maxmemory,
        policy: info.maxmemory_policy.clone().unwrap_or_default(),
        fragmentation: info.fragmentation_ratio,
        clients: info.connected_clients.unwrap_or(0),
        blocked: info.blocked_clients.unwrap_or(0),
        ops_per_sec: info.ops_per_sec.unwrap_or(0),
        hit_ratio: info.hit_ratio(),
        evicted_per_sec: rates.and_then(|r| r.evicted_per_sec),
        expired_per_sec: rates.and_then(|r| r.expired_per_sec),
        replication,
        replication_warning,
        persistence,
        persistence_warning,
    }
}

fn keyspace(sample: &KeyspaceSample, at_ms: i64) -> KeyspaceVm {
    let total_bytes: u64 = sample.groups.iter().map(|g| g.estimated_bytes).sum();
    KeyspaceVm {
        sampled: sample.sampled,
        total: sample.db_keys,
        at_ms,
        prefixes: sample
            .groups
            .iter()
            .map(|g| PrefixRow {
                prefix: match g.kind {
                    GroupKind::Prefix => g.prefix.clone(),
                    GroupKind::NoSeparator => "(no prefix)".to_owned(),
                    GroupKind::Other => "other".to_owned(),
                },
                keys: g.estimated_keys,
                bytes: g.estimated_bytes,
                percent: if total_bytes == 0 {
                    0.0
                } else {
                    g.estimated_bytes as f64 * 100.0 / total_bytes as f64
                },
            })
            .collect(),
    }
}

/// The page: every node, the newest slow commands over every node, the
/// latency events and the key-space sample.
pub fn page(figures: Option<&RedisFigures>, configured: bool) -> RedisVm {
    let Some(figures) = figures else {
        return RedisVm {
            configured,
            problem: configured.then(|| "not read yet; it is read every 5 s".to_owned()),
            ..RedisVm::default()
        };
    };
    let report = &figures.report;
    let mut slowlog: Vec<SlowRow> = report
        .nodes
        .iter()
        .flat_map(|node| {
            node.slowlog.iter().flatten().map(|e| SlowRow {
                node: node.address.clone(),
                id: e.id,
                at_ms: e.time_secs.saturating_mul(1000),
                micros: e.duration_us,
                command: e.line.clone(),
                client: match (&e.client_addr, &e.client_name) {
                    (Some(addr), Some(name)) if !name.is_empty() => format!("{name} ({addr})"),
                    (Some(addr), _) => addr.clone(),
                    (None, Some(name)) => name.clone(),
                    (None, None) => "–".to_owned(),
                },
            })
        })
        .collect();
    slowlog.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then(b.id.cmp(&a.id)));
    slowlog.truncate(SLOWLOG_ROWS);
    let latency = report
        .nodes
        .iter()
        .flat_map(|node| {
            node.latency.iter().flatten().map(|e| LatencyEventRow {
                node: node.address.clone(),
                event: e.event.clone(),
                at_ms: e.latest_secs.saturating_mul(1000),
                latest_ms: e.latest_ms,
                max_ms: e.max_ms,
            })
        })
        .collect();
    let reachable = report.nodes.iter().any(|n| n.reachable);
    RedisVm {
        configured,
        nodes: report.nodes.iter().map(|n| node_row(figures, n)).collect(),
        slowlog,
        latency,
        keyspace: figures.keyspace.as_ref().map(|(s, at)| keyspace(s, *at)),
        problem: (!reachable && report.nodes.is_empty())
            .then(|| report.reasons.join("; "))
            .filter(|p| !p.is_empty()),
        read_at: report.read_at_ms,
    }
}
