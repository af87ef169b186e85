//! What the configured Redis itself says about its health, node by node:
//! the data of the dashboard's Redis page and of a `/health/redis`-style
//! summary.
//!
//! [`RedisHealth`] reads one server, or every master **and** replica of a
//! Redis Cluster (the nodes of `CLUSTER NODES`), each over a plain
//! connection of its own to that node (cached between reads, dropped after
//! an outage): a node that does not answer is reported as unreachable in
//! its [`NodeReport`] while the others are read, never as an error of the
//! whole read, and never a panic.
//!
//! # Cost per read
//!
//! Meant to be read by one hub every few seconds for every viewer:
//!
//! | read | per node | once |
//! |---|---|---|
//! | [`RedisHealth::read`] | one `PING` (its round trip is the latency), then one pipeline of `INFO`, `SLOWLOG GET 20`, `LATENCY LATEST`: 4 commands, 2 round trips | `CLUSTER NODES` on a cluster |
//! | … with [`ReadOptions::keyspace`] | on each master (the server when single) also one `DBSIZE`, at most `max_keys / scan_count + 1` `SCAN`s and at most `max_keys` `MEMORY USAGE` in pipelines of [`keyspace::MEMORY_BATCH`], within the time budget | |
//! | [`RedisHealth::health`] | one `PING` | `CLUSTER NODES` on a cluster |
//!
//! So a cluster of three masters and three replicas costs 25 commands a
//! read, and with the default sample at most 3 × (1 + 5 + 1,000) more;
//! nodes are read at once, each command bounded by
//! [`HealthOptions::timeout`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, Value};
use serde::Serialize;

use crate::error::{CoordError, Result};
use crate::redis::{Endpoint, SLOTS, Topology};
use crate::time::now_ms;

pub mod info;
pub mod keyspace;
pub mod slowlog;

pub use info::{CounterRates, DbKeys, NodeInfo, NodeRole, Persistence, ReplicaLink};
pub use keyspace::{GroupKind, KeyspaceSample, PrefixGroup, SampleOptions};
pub use slowlog::{LatencyEntry, SlowlogEntry};

/// Limits of the reader.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// Bound on connecting to a node and on each command's answer.
    pub timeout: Duration,
    /// Slow-log entries read per node (`SLOWLOG GET n`).
    pub slowlog_entries: usize,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            slowlog_entries: 20,
        }
    }
}

/// What one [`RedisHealth::read`] reads besides the fixed commands.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Sample the key space of each master with these limits.
    pub keyspace: Option<SampleOptions>,
}

/// Why a node, or one of its reads, gave nothing. Texts come from the
/// driver or Redis and never hold the URL (nor its password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NodeError {
    /// No connection: refused, dropped, unknown host.
    #[error("unreachable: {reason}")]
    Unreachable { reason: String },
    /// No answer within [`HealthOptions::timeout`].
    #[error("{command}: no answer in time")]
    Timeout { command: String },
    /// The node answered with an error (an ACL, a disabled or renamed
    /// command, a wrong password, loading).
    #[error("{command} refused: {reason}")]
    Refused { command: String, reason: String },
    /// An answer this module could not read.
    #[error("{command}: unreadable answer: {reason}")]
    Unreadable { command: String, reason: String },
}

impl NodeError {
    fn from_redis(command: &str, e: &RedisError) -> Self {
        if e.is_timeout() {
            Self::Timeout {
                command: command.to_owned(),
            }
        } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
            Self::Unreachable {
                reason: e.to_string(),
            }
        } else if matches!(
            e.kind(),
            ErrorKind::Server(_) | ErrorKind::AuthenticationFailed
        ) {
            Self::Refused {
                command: command.to_owned(),
                reason: e.to_string(),
            }
        } else {
            Self::Unreadable {
                command: command.to_owned(),
                reason: e.to_string(),
            }
        }
    }

    /// True when the node itself is gone (rather than one command refused).
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Timeout { .. })
    }
}

/// A replica's distance from its master.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationLag {
    /// Whether its link to the master is up (`master_link_status`).
    pub link_up: Option<bool>,
    /// Bytes of the replication stream it has not applied: the master's
    /// offset minus its own, both read in this read (so within a round
    /// trip of each other), when both answered.
    pub offset_behind: Option<u64>,
    /// Seconds since it last heard from its master (`-1` with the link
    /// down).
    pub last_io_secs: Option<i64>,
    /// Seconds since the master last had its acknowledgement (the
    /// master's `lag`).
    pub ack_lag_secs: Option<u64>,
    /// A full resynchronisation is running.
    pub sync_in_progress: Option<bool>,
}

/// One node's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    /// `host:port`.
    pub address: String,
    /// From its `INFO`, else from the cluster's topology.
    pub role: Option<NodeRole>,
    /// A replica's master (`host:port`).
    pub master: Option<String>,
    /// It answered `PING`.
    pub reachable: bool,
    /// Why not.
    pub error: Option<NodeError>,
    /// `PING` round trip in microseconds.
    pub ping_us: Option<u64>,
    /// When it was read (ms since the epoch).
    pub read_at_ms: i64,
    pub info: Option<NodeInfo>,
    /// For a replica.
    pub replication: Option<ReplicationLag>,
    /// Newest first.
    pub slowlog: Option<Vec<SlowlogEntry>>,
    pub latency: Option<Vec<LatencyEntry>>,
    /// When asked, on masters.
    pub keyspace: Option<KeyspaceSample>,
    /// Reads of a reachable node that failed (a refused `SLOWLOG`…).
    pub problems: Vec<NodeError>,
}

impl NodeReport {
    fn new(address: &str, role: Option<NodeRole>) -> Self {
        Self {
            address: address.to_owned(),
            role,
            master: None,
            reachable: false,
            error: None,
            ping_us: None,
            read_at_ms: now_ms(),
            info: None,
            replication: None,
            slowlog: None,
            latency: None,
            keyspace: None,
            problems: Vec::new(),
        }
    }

    /// Per-second rates of its counters since `earlier`, a report of the
    /// same node from a previous read.
    pub fn rates_since(&self, earlier: &NodeReport) -> Option<CounterRates> {
        let elapsed = u64::try_from(self.read_at_ms - earlier.read_at_ms).ok()?;
        CounterRates::between(
            earlier.info.as_ref()?,
            self.info.as_ref()?,
            Duration::from_millis(elapsed),
        )
    }
}

/// The verdict on the whole deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Every node answers, every slot is served.
    Ok,
    /// Serving, with a node gone, a replica's link down or persistence
    /// failing.
    Degraded,
    /// Not serving: no node answers, or a cluster with slots unserved.
    Down,
}

/// One read of every node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisReport {
    pub cluster: bool,
    pub read_at_ms: i64,
    pub status: Status,
    /// Why the status is not `ok`.
    pub reasons: Vec<String>,
    /// Masters first (by address), then replicas.
    pub nodes: Vec<NodeReport>,
    /// The key space of every sampled master added up, when asked.
    pub keyspace: Option<KeyspaceSample>,
}

/// A node in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeHealth {
    pub address: String,
    pub role: Option<NodeRole>,
    pub reachable: bool,
    pub ping_us: Option<u64>,
    pub error: Option<NodeError>,
}

/// A `/health/redis`-style summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSummary {
    pub cluster: bool,
    pub read_at_ms: i64,
    pub status: Status,
    pub reasons: Vec<String>,
    pub nodes: Vec<NodeHealth>,
}

impl RedisReport {
    /// The summary of this read (no further command).
    pub fn summary(&self) -> HealthSummary {
        HealthSummary {
            cluster: self.cluster,
            read_at_ms: self.read_at_ms,
            status: self.status,
            reasons: self.reasons.clone(),
            nodes: self.nodes.iter().map(node_health).collect(),
        }
    }

    /// The node at `address`.
    pub fn node(&self, address: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.address == address)
    }
}

fn node_health(node: &NodeReport) -> NodeHealth {
    NodeHealth {
        address: node.address.clone(),
        role: node.role,
        reachable: node.reachable,
        ping_us: node.ping_us,
        error: node.error.clone(),
    }
}

/// The reader. Cheap to keep: it opens nothing until the first read, and
/// then one connection per node.
pub struct RedisHealth {
    endpoint: Endpoint,
    options: HealthOptions,
    /// Open connections by node address.
    conns: Mutex<HashMap<String, MultiplexedConnection>>,
    /// The cluster's nodes at the last read, asked for the topology
    /// before the seeds.
    known: Mutex<Vec<String>>,
}

impl std::fmt::Debug for RedisHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHealth")
            .field("endpoint", &self.endpoint)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisHealth {
    /// A reader of the Redis at `url` (`redis://`, `rediss://`,
    /// `redis+cluster://…`); touches no network. A URL that cannot be
    /// parsed is [`CoordError::InvalidOptions`] (never quoting it).
    pub fn new(url: &str) -> Result<Self> {
        Self::with_options(url, HealthOptions::default())
    }

    /// [`RedisHealth::new`] with other limits.
    pub fn with_options(url: &str, options: HealthOptions) -> Result<Self> {
        if options.timeout.is_zero() {
            return Err(CoordError::InvalidOptions(
                "the Redis health timeout must be above zero".into(),
            ));
        }
        Ok(Self {
            endpoint: crate::redis::open(url)?,
            options,
            conns: Mutex::default(),
            known: Mutex::default(),
        })
    }

    /// Every node's figures; see the module documentation for its cost.
    /// Infallible: what could not be read is said in the report.
    pub async fn read(&self, options: &ReadOptions) -> RedisReport {
        let cluster = self.endpoint.is_cluster();
        let (topology, list) = self.nodes().await;
        let reads = list.iter().map(|(address, role)| {
            let sample = options
                .keyspace
                .as_ref()
                .filter(|_| !cluster || *role == Some(NodeRole::Master));
            self.read_node(address, *role, sample)
        });
        let read: Vec<(NodeReport, Option<keyspace::Tally>)> =
            futures_util::future::join_all(reads).await;
        let (mut reports, tallies): (Vec<NodeReport>, Vec<Option<keyspace::Tally>>) =
            read.into_iter().unzip();
        link_replicas(&mut reports, topology.as_ref());
        let keyspace = options.keyspace.as_ref().map(|sample| {
            let tallies: Vec<&keyspace::Tally> = tallies.iter().flatten().collect();
            KeyspaceSample {
                db_keys: tallies.iter().map(|t| t.db_keys).sum(),
                sampled: tallies.iter().map(|t| t.sampled).sum(),
                is_sample: tallies.is_empty() || tallies.iter().any(|t| !t.complete),
                budget_exhausted: tallies.iter().any(|t| t.budget_exhausted),
                groups: keyspace::merged(&tallies, sample.top),
            }
        });
        let (status, reasons) = judge(cluster, topology.as_ref(), &reports);
        RedisReport {
            cluster,
            read_at_ms: now_ms(),
            status,
            reasons,
            nodes: reports,
            keyspace,
        }
    }

    /// Reachability and `PING` latency of every node, and the verdict:
    /// one `PING` per node (and `CLUSTER NODES` on a cluster).
    pub async fn health(&self) -> HealthSummary {
        let cluster = self.endpoint.is_cluster();
        let (topology, list) = self.nodes().await;
        let pings = list.iter().map(|(address, role)| async move {
            let mut report = NodeReport::new(address, *role);
            // Reachability and latency are all this asks.
            let _ = self.ping(&mut report).await;
            report
        });
        let reports: Vec<NodeReport> = futures_util::future::join_all(pings).await;
        let (status, reasons) = judge(cluster, topology.as_ref(), &reports);
        HealthSummary {
            cluster,
            read_at_ms: now_ms(),
            status,
            reasons,
            nodes: reports.iter().map(node_health).collect(),
        }
    }

    /// The nodes to read, with the role the topology gives them: the one
    /// server; or the nodes of `CLUSTER NODES`, asked of the nodes known
    /// from the last read and then of the seeds until one answers (the
    /// seeds themselves, role unknown, when none does).
    async fn nodes(&self) -> (Option<Topology>, Vec<(String, Option<NodeRole>)>) {
        let seeds = match &self.endpoint {
            Endpoint::Single(client) => {
                return (
                    None,
                    vec![(client.get_connection_info().addr().to_string(), None)],
                );
            }
            Endpoint::Cluster { seeds, .. } => seeds
                .iter()
                .map(|c| c.get_connection_info().addr().to_string())
                .collect::<Vec<_>>(),
        };
        let mut candidates = lock(&self.known).clone();
        for seed in &seeds {
            if !candidates.contains(seed) {
                candidates.push(seed.clone());
            }
        }
        for address in &candidates {
            let Ok(mut conn) = self.connection(address).await else {
                continue;
            };
            let answer: std::result::Result<String, RedisError> = redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async(&mut conn)
                .await;
            match answer {
                Ok(text) => {
                    let topology = Topology::parse(&text);
                    if topology.nodes.is_empty() {
                        continue;
                    }
                    let list: Vec<(String, Option<NodeRole>)> = topology
                        .nodes
                        .iter()
                        .map(|n| {
                            let role = if n.master {
                                NodeRole::Master
                            } else {
                                NodeRole::Replica
                            };
                            (n.address.clone(), Some(role))
                        })
                        .collect();
                    *lock(&self.known) = list.iter().map(|(a, _)| a.clone()).collect();
                    self.keep_connections(&list);
                    return (Some(topology), list);
                }
                Err(e) => {
                    if NodeError::from_redis("CLUSTER NODES", &e).is_outage() {
                        self.forget(address);
                    }
                }
            }
        }
        (None, seeds.into_iter().map(|s| (s, None)).collect())
    }

    /// Drops the connections of nodes no longer in the cluster.
    fn keep_connections(&self, list: &[(String, Option<NodeRole>)]) {
        lock(&self.conns).retain(|address, _| list.iter().any(|(a, _)| a == address));
    }

    /// The client of the node at `address`: the server's own on a single
    /// server; on a cluster, the first seed's URL (credentials, TLS
    /// options) with the node's address.
    fn client(&self, address: &str) -> std::result::Result<Client, NodeError> {
        match &self.endpoint {
            Endpoint::Single(client) => Ok((**client).clone()),
            Endpoint::Cluster { nodes, .. } => {
                let template = nodes.first().ok_or_else(|| NodeError::Unreachable {
                    reason: "no seed node".into(),
                })?;
                Client::open(crate::redis::with_address(template, address)).map_err(|e| {
                    NodeError::Unreachable {
                        reason: format!("invalid node address: {:?}", e.kind()),
                    }
                })
            }
        }
    }

    /// The open connection to `address`, or a new one.
    async fn connection(
        &self,
        address: &str,
    ) -> std::result::Result<MultiplexedConnection, NodeError> {
        if let Some(conn) = lock(&self.conns).get(address) {
            return Ok(conn.clone());
        }
        let client = self.client(address)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.timeout))
            .set_response_timeout(Some(self.options.timeout));
        let connecting = client.get_multiplexed_async_connection_with_config(&config);
        let conn = match tokio::time::timeout(self.options.timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(NodeError::from_redis("connect", &e)),
            Err(_) => {
                return Err(NodeError::Timeout {
                    command: "connect".into(),
                });
            }
        };
        lock(&self.conns).insert(address.to_owned(), conn.clone());
        Ok(conn)
    }

    fn forget(&self, address: &str) {
        lock(&self.conns).remove(address);
    }

    /// Connects and pings, writing reachability, latency or the error
    /// into `report`; the connection when it answered.
    async fn ping(
        &self,
        report: &mut NodeReport,
    ) -> std::result::Result<MultiplexedConnection, ()> {
        let mut conn = match self.connection(&report.address).await {
            Ok(conn) => conn,
            Err(e) => {
                report.error = Some(e);
                return Err(());
            }
        };
        let started = Instant::now();
        match redis::cmd("PING").query_async::<()>(&mut conn).await {
            Ok(()) => {
                report.ping_us =
                    Some(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
                report.reachable = true;
                Ok(conn)
            }
            Err(e) => {
                let error = NodeError::from_redis("PING", &e);
                if error.is_outage() {
                    self.forget(&report.address);
                }
                report.error = Some(error);
                Err(())
            }
        }
    }

    /// One node: `PING`, then `INFO`, `SLOWLOG GET`, `LATENCY LATEST` in
    /// one pipeline, then the key-space sample when asked.
    async fn read_node(
        &self,
        address: &str,
        role: Option<NodeRole>,
        sample: Option<&SampleOptions>,
    ) -> (NodeReport, Option<keyspace::Tally>) {
        let mut report = NodeReport::new(address, role);
        let Ok(mut conn) = self.ping(&mut report).await else {
            return (report, None);
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("INFO");
        pipe.cmd("SLOWLOG")
            .arg("GET")
            .arg(self.options.slowlog_entries);
        pipe.cmd("LATENCY").arg("LATEST");
        let answers: Vec<Value> = match pipe.query_async(&mut conn).await {
            Ok(answers) => answers,
            Err(e) => {
                self.lost(&mut report, NodeError::from_redis("INFO", &e));
                return (report, None);
            }
        };
        let mut answers = answers.into_iter();
        for command in ["INFO", "SLOWLOG", "LATENCY"] {
            match answers.next() {
                Some(Value::ServerError(e)) => report
                    .problems
                    .push(NodeError::from_redis(command, &RedisError::from(e))),
                Some(value) => match command {
                    "INFO" => match redis::from_redis_value::<String>(value) {
                        Ok(text) => {
                            let info = NodeInfo::parse(&text);
                            report.role = info.role.or(report.role);
                            report.master = info.master_address.clone();
                            report.info = Some(info);
                        }
                        Err(e) => report.problems.push(NodeError::Unreadable {
                            command: command.into(),
                            reason: e.to_string(),
                        }),
                    },
                    "SLOWLOG" => report.slowlog = Some(slowlog::parse_slowlog(&value)),
                    _ => report.latency = Some(slowlog::parse_latency(&value)),
                },
                None => report.problems.push(NodeError::Unreadable {
                    command: command.into(),
                    reason: "no answer in the pipeline".into(),
                }),
            }
        }
        let Some(sample) = sample else {
            return (report, None);
        };
        match keyspace::sample(&mut conn, sample).await {
            Ok(tally) => {
                report.keyspace = Some(tally.sample(sample.top));
                (report, Some(tally))
            }
            Err(e) => {
                let error = NodeError::from_redis("SCAN", &e);
                if error.is_outage() {
                    self.lost(&mut report, error);
                } else {
                    report.problems.push(error);
                }
                (report, None)
            }
        }
    }

    /// The node went away during its read.
    fn lost(&self, report: &mut NodeReport, error: NodeError) {
        if error.is_outage() {
            self.forget(&report.address);
            report.reachable = false;
            report.error = Some(error);
        } else {
            report.problems.push(error);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Each replica's master and lag, from the reads of both.
fn link_replicas(reports: &mut [NodeReport], topology: Option<&Topology>) {
    let masters: HashMap<String, (Option<u64>, Vec<ReplicaLink>)> = reports
        .iter()
        .filter(|r| r.role == Some(NodeRole::Master))
        .filter_map(|r| {
            let info = r.info.as_ref()?;
            Some((
                r.address.clone(),
                (info.master_repl_offset, info.replicas.clone()),
            ))
        })
        .collect();
    for report in reports.iter_mut() {
        if report.role != Some(NodeRole::Replica) {
            continue;
        }
        if report.master.is_none()
            && let Some(topology) = topology
        {
            let node = topology.nodes.iter().find(|n| n.address == report.address);
            let master_id = node.and_then(|n| n.master_id.as_deref());
            report.master = topology
                .nodes
                .iter()
                .find(|n| Some(n.id.as_str()) == master_id)
                .map(|n| n.address.clone());
        }
        let Some(info) = &report.info else {
            continue;
        };
        let master = report.master.as_ref().and_then(|m| masters.get(m));
        let offset_behind = match (master.and_then(|m| m.0), info.replica_offset) {
            (Some(master), Some(replica)) => Some(master.saturating_sub(replica)),
            _ => None,
        };
        let ack_lag_secs = master.and_then(|(_, links)| {
            links
                .iter()
                .find(|l| l.address == report.address)
                .and_then(|l| l.lag_secs)
        });
        report.replication = Some(ReplicationLag {
            link_up: info.master_link_up,
            offset_behind,
            last_io_secs: info.master_last_io_secs,
            ack_lag_secs,
            sync_in_progress: info.master_sync_in_progress,
        });
    }
}

/// The deployment's status and the reasons it is not `ok`.
fn judge(
    cluster: bool,
    topology: Option<&Topology>,
    reports: &[NodeReport],
) -> (Status, Vec<String>) {
    let mut reasons = Vec::new();
    let mut down = false;
    if !reports.iter().any(|r| r.reachable) {
        down = true;
        reasons.push("no Redis node answers".to_owned());
    }
    if cluster {
        match topology {
            None => {
                down = true;
                reasons.push("no node told the cluster's topology (CLUSTER NODES)".to_owned());
            }
            Some(topology) => {
                let served = topology.slots_covered();
                if served < u32::from(SLOTS) {
                    down = true;
                    reasons.push(format!(
                        "{served} of {SLOTS} slots are served by a healthy master"
                    ));
                }
            }
        }
    }
    let mut degraded = false;
    for report in reports {
        let who = match report.role {
            Some(NodeRole::Master) => "master",
            Some(NodeRole::Replica) => "replica",
            None => "node",
        };
        if !report.reachable {
            degraded = true;
            let why = report
                .error
                .as_ref()
                .map_or_else(String::new, |e| format!(": {e}"));
            reasons.push(format!("{who} {} does not answer{why}", report.address));
            continue;
        }
        if let Some(info) = &report.info {
            if report.role == Some(NodeRole::Replica) && info.master_link_up == Some(false) {
                degraded = true;
                reasons.push(format!(
                    "replica {} has lost its link to its master",
                    report.address
                ));
            }
            if info.persistence.failing() {
                degraded = true;
                reasons.push(format!("persistence is failing on {}", report.address));
            }
            if info.persistence.loading == Some(true) {
                degraded = true;
                reasons.push(format!("{who} {} is loading its data", report.address));
            }
        }
    }
    let status = if down {
        Status::Down
    } else if degraded {
        Status::Degraded
    } else {
        Status::Ok
    };
    // Several reasons may say the same of one node.
    reasons.dedup();
    (status, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::Topology;

    fn node(address: &str, role: NodeRole, reachable: bool) -> NodeReport {
        NodeReport {
            reachable,
            ..NodeReport::new(address, Some(role))
        }
    }

    #[test]
    fn the_verdict_follows_the_nodes_and_the_slots() {
        let all = [
            node("a:1", NodeRole::Master, true),
            node("b:1", NodeRole::Replica, true),
        ];
        assert_eq!(judge(false, None, &all[..1]), (Status::Ok, vec![]));
        let (status, reasons) = judge(false, None, &[node("a:1", NodeRole::Master, false)]);
        assert_eq!(status, Status::Down);
        assert!(reasons[0].contains("no Redis node"), "{reasons:?}");

        let full = Topology::parse(
            "m1 a:1@2 master - 0 0 1 connected 0-16383
r1 b:1@2 slave m1 0 0 1 connected
",
        );
        assert_eq!(judge(true, Some(&full), &all).0, Status::Ok);
        let one_gone = [
            node("a:1", NodeRole::Master, true),
            node("b:1", NodeRole::Replica, false),
        ];
        let (status, reasons) = judge(true, Some(&full), &one_gone);
        assert_eq!(status, Status::Degraded);
        assert!(
            reasons[0].contains("replica b:1 does not answer"),
            "{reasons:?}"
        );
        let half = Topology::parse(
            "m1 a:1@2 master - 0 0 1 connected 0-8191
",
        );
        assert_eq!(judge(true, Some(&half), &all).0, Status::Down);
        assert_eq!(judge(true, None, &all).0, Status::Down);

        let mut broken = node("b:1", NodeRole::Replica, true);
        broken.info = Some(NodeInfo {
            master_link_up: Some(false),
            ..NodeInfo::default()
        });
        let (status, reasons) = judge(false, None, &[broken]);
        assert_eq!(status, Status::Degraded);
        assert!(reasons[0].contains("lost its link"), "{reasons:?}");
    }

    #[test]
    fn replicas_are_linked_to_their_master_s_offset() {
        let topology = Topology::parse(
            "m1 a:1@2 master - 0 0 1 connected 0-16383
r1 b:1@2 slave m1 0 0 1 connected
",
        );
        let mut master = node("a:1", NodeRole::Master, true);
        master.info = Some(NodeInfo::parse(
            "role:master
master_repl_offset:1500
slave0:ip=b,port=1,state=online,offset=1400,lag=2
",
        ));
        let mut replica = node("b:1", NodeRole::Replica, true);
        replica.info = Some(NodeInfo::parse(
            "role:slave
master_link_status:up
master_last_io_seconds_ago:1
slave_repl_offset:1000
",
        ));
        let mut reports = vec![master, replica];
        link_replicas(&mut reports, Some(&topology));
        assert_eq!(reports[1].master.as_deref(), Some("a:1"));
        assert_eq!(
            reports[1].replication,
            Some(ReplicationLag {
                link_up: Some(true),
                offset_behind: Some(500),
                last_io_secs: Some(1),
                ack_lag_secs: Some(2),
                sync_in_progress: None,
            })
        );
        assert_eq!(reports[0].replication, None);
    }

    #[test]
    fn rates_between_reports_use_their_read_times() {
        let mut earlier = node("a:1", NodeRole::Master, true);
        earlier.read_at_ms = 10_000;
        earlier.info = Some(NodeInfo {
            evicted_keys: Some(0),
            ..NodeInfo::default()
        });
        let mut later = earlier.clone();
        later.read_at_ms = 12_000;
        later.info = Some(NodeInfo {
            evicted_keys: Some(50),
            ..NodeInfo::default()
        });
        let rates = later.rates_since(&earlier).expect("rates");
        assert_eq!(rates.evicted_per_sec, Some(25.0));
        assert_eq!(earlier.rates_since(&later), None);
    }

    #[test]
    fn bad_urls_and_limits_are_refused_without_echoing_them() {
        let err = RedisHealth::new("http://user:secret@host").expect_err("not redis");
        assert!(!err.to_string().contains("secret"), "{err}");
        let zero = HealthOptions {
            timeout: Duration::ZERO,
            ..HealthOptions::default()
        };
        assert!(RedisHealth::with_options("redis://127.0.0.1:1", zero).is_err());
    }
}
