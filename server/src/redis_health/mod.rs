//! The Redis page's figures: the Redis every capability depends on, read
//! by the hub once every [`READ_EVERY`] for all viewers (one `PING` and
//! one pipeline of `INFO`, `SLOWLOG GET 20` and `LATENCY LATEST` per node,
//! see `coord::redis_health`), with the key space sampled only every
//! [`SAMPLE_EVERY`] (a bounded `SCAN` and `MEMORY USAGE` per master). The
//! number of open pages changes nothing on Redis.

pub mod routes;
pub mod vm;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coord::redis_health::{
    CounterRates, KeyspaceSample, ReadOptions, RedisHealth, RedisReport, SampleOptions,
};
use coord::time::now_ms;

use crate::sync::lock;

/// How often the hub reads Redis.
pub const READ_EVERY: Duration = Duration::from_secs(5);

/// How often the key space is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(60);

/// One read, with what it needs from the one before.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisFigures {
    /// Every node as read.
    pub report: RedisReport,
    /// Per node address: counter rates since the previous read.
    pub rates: HashMap<String, CounterRates>,
    /// The latest key-space sample and when it was taken (ms).
    pub keyspace: Option<(KeyspaceSample, i64)>,
}

impl RedisFigures {
    /// Whether a page would show something else than `other`, the read
    /// times aside.
    pub fn same_as(&self, other: &RedisFigures) -> bool {
        let strip = |f: &RedisFigures| {
            let mut report = f.report.clone();
            report.read_at_ms = 0;
            for node in &mut report.nodes {
                node.read_at_ms = 0;
                node.ping_us = None;
            }
            report
        };
        self.keyspace == other.keyspace && self.rates == other.rates && strip(self) == strip(other)
    }
}

/// A replica's lag behind its master in seconds, as alerts and `/metrics`
/// give it: with its link up, seconds since the master last had its
/// acknowledgement (replicas acknowledge every second), known only when
/// the master was read too; with its link down, how long it has been down
/// (since the node started when it never connected). `None` for masters.
pub fn lag_secs(node: &coord::redis_health::NodeReport) -> Option<u64> {
    if node.role != Some(coord::redis_health::NodeRole::Replica) {
        return None;
    }
    let info = node.info.as_ref();
    if link_down(node) {
        info.and_then(|i| i.master_link_down_secs.or(i.uptime_secs))
    } else {
        node.replication.as_ref().and_then(|r| r.ack_lag_secs)
    }
}

/// Whether a replica says its link to its master is down.
pub fn link_down(node: &coord::redis_health::NodeReport) -> bool {
    node.role == Some(coord::redis_health::NodeRole::Replica)
        && node.info.as_ref().and_then(|i| i.master_link_up) == Some(false)
}

struct Last {
    report: Option<RedisReport>,
    keyspace: Option<(KeyspaceSample, i64)>,
    sampled: Option<Instant>,
}

/// The reader of the configured Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisWatch {
    reader: Arc<RedisHealth>,
    last: Arc<Mutex<Last>>,
}

impl std::fmt::Debug for RedisWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWatch").finish_non_exhaustive()
    }
}

impl RedisWatch {
    /// A reader of the Redis at `url` (nothing is opened until the first
    /// read).
    pub fn new(url: &str) -> Result<Self, coord::CoordError> {
        Ok(Self {
            reader: Arc::new(RedisHealth::new(url)?),
            last: Arc::new(Mutex::new(Last {
                report: None,
                keyspace: None,
                sampled: None,
            })),
        })
    }

    /// Reads every node now (and the key space when its sample is due).
    /// Never fails: an unreachable node is in the report.
    pub async fn figures(&self) -> RedisFigures {
        let sample = lock(&self.last)
            .sampled
            .is_none_or(|at| at.elapsed() >= SAMPLE_EVERY);
        let options = ReadOptions {
            keyspace: sample.then(SampleOptions::default),
        };
        let report = self.reader.read(&options).await;
        let mut last = lock(&self.last);
        if sample {
            last.sampled = Some(Instant::now());
            if let Some(keyspace) = &report.keyspace {
                last.keyspace = Some((keyspace.clone(), now_ms()));
            }
        }
        let rates = match &last.report {
            Some(before) => report
                .nodes
                .iter()
                .filter_map(|node| {
                    let earlier = before.node(&node.address)?;
                    Some((node.address.clone(), node.rates_since(earlier)?))
                })
                .collect(),
            None => HashMap::new(),
        };
        last.report = Some(report.clone());
        RedisFigures {
            report,
            rates,
            keyspace: last.keyspace.clone(),
        }
    }

    /// The `/health/redis`-style summary: one `PING` per node.
    pub async fn health(&self) -> coord::redis_health::HealthSummary {
        self.reader.health().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coord::redis_health::{NodeInfo, NodeReport, NodeRole, ReplicationLag};

    fn node(role: NodeRole, info: NodeInfo, ack_lag_secs: Option<u64>) -> NodeReport {
        NodeReport {
            address: "127.0.0.1:7004".to_owned(),
            role: Some(role),
            master: None,
            reachable: true,
            error: None,
            ping_us: None,
            read_at_ms: 0,
            info: Some(info),
            replication: Some(ReplicationLag {
                ack_lag_secs,
                ..ReplicationLag::default()
            }),
            slowlog: None,
            latency: None,
            keyspace: None,
            problems: Vec::new(),
        }
    }

    #[test]
    fn a_replica_lags_by_its_acknowledgement_or_its_link_s_downtime() {
        let up = NodeInfo {
            master_link_up: Some(true),
            uptime_secs: Some(900),
            ..NodeInfo::default()
        };
        let replica = node(NodeRole::Replica, up.clone(), Some(1));
        assert_eq!((lag_secs(&replica), link_down(&replica)), (Some(1), false));
        // Its master was not read: no figure while the link is up.
        assert_eq!(lag_secs(&node(NodeRole::Replica, up.clone(), None)), None);
        let down = NodeInfo {
            master_link_up: Some(false),
            master_link_down_secs: Some(42),
            ..up.clone()
        };
        let replica = node(NodeRole::Replica, down.clone(), Some(1));
        assert_eq!((lag_secs(&replica), link_down(&replica)), (Some(42), true));
        // Never connected: down since the node started.
        let never = NodeInfo {
            master_link_down_secs: None,
            ..down
        };
        assert_eq!(lag_secs(&node(NodeRole::Replica, never, None)), Some(900));
        let master = node(NodeRole::Master, up, Some(1));
        assert_eq!((lag_secs(&master), link_down(&master)), (None, false));
    }
}
