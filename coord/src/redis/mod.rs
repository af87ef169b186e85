//! Connecting to Redis the same way everywhere in `coord`: a URL parsed
//! without ever echoing its password, one plain `PING` that fails fast
//! (a connection manager would retry with backoff), then a connection
//! manager that reconnects by itself after a drop; and one check of key
//! prefixes; and one pub/sub loop that resubscribes after an outage. Each
//! module keeps its own reconnect tuning ([`Reconnect`]) and the characters
//! its key layout cannot take.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncConnectionConfig, Client, Cmd, Msg, Pipeline, RedisError, RedisFuture, Value};

use crate::error::{CoordError, Result};

mod cluster;
mod url;

pub use cluster::{ClusterNode, SLOTS, Topology, slot};
pub(crate) use url::with_address;
pub use url::{RedisUrl, split_cluster};

/// How long connecting (probe included) may take at start-up.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a managed connection behaves once running.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reconnect {
    /// Limit on one (re)connection attempt.
    pub connect_timeout: Duration,
    /// Limit on one command's answer.
    pub response_timeout: Duration,
    /// Reconnection attempts per failed command.
    pub retries: usize,
    /// Longest pause between attempts.
    pub max_delay: Duration,
}

impl Reconnect {
    /// The connection manager's settings.
    pub fn config(self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(self.retries)
            .set_max_delay(self.max_delay)
    }

    /// A cluster client with these limits. Unlike a connection manager,
    /// the cluster client sends a command again after a dropped connection
    /// or a timeout, so a script that did run may run twice: its retries
    /// stay few (enough for a redirection and a `TRYAGAIN`; a failover
    /// takes longer and is the caller's retry), and one overall limit of
    /// `response_timeout` bounds a command whatever happens.
    fn cluster_client(self, nodes: &[String]) -> std::result::Result<ClusterClient, RedisError> {
        ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.response_timeout)
            .overall_response_timeout(Some(self.response_timeout))
            .retries(u32::try_from(self.retries.max(2)).unwrap_or(2))
            .max_retry_wait(u64::try_from(self.max_delay.as_millis()).unwrap_or(1_000))
            .build()
    }
}

/// Limits of connections opened for a moment (the start-up probe, a
/// blocking read's own connection).
const BRIEF: Reconnect = Reconnect {
    connect_timeout: CONNECT_TIMEOUT,
    response_timeout: CONNECT_TIMEOUT,
    retries: 2,
    max_delay: Duration::from_millis(500),
};

/// Where a capability's Redis is, and how to open connections to it: the
/// client of one server, or the client of a cluster with its seed nodes
/// (pub/sub connections go to one node; see [`open_pubsub`]).
#[derive(Clone)]
pub(crate) enum Endpoint {
    Single(Box<Client>),
    Cluster {
        /// The seed URLs; a cluster client is built from them for each
        /// connection, with that connection's limits.
        nodes: Arc<[String]>,
        seeds: Arc<[Client]>,
        /// The node the next pub/sub connection tries first, counting the
        /// seeds and then the learnt nodes: it moves on when one fails, so
        /// a dead node is not retried forever.
        next_seed: Arc<AtomicUsize>,
        /// Nodes read from the topology after a subscription succeeded, so
        /// that pub/sub outlives its seeds (a URL naming one node, or every
        /// seed replaced since).
        learnt: Arc<std::sync::Mutex<Vec<Client>>>,
    },
}

/// Says which kind, never the URL (it may hold a password).
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(_) => f.write_str("Endpoint::Single"),
            Self::Cluster { seeds, .. } => write!(f, "Endpoint::Cluster({} seeds)", seeds.len()),
        }
    }
}

impl Endpoint {
    /// True for a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }

    /// A managed connection with `reconnect`'s limits: a connection
    /// manager for one server, the cluster client's multiplexed connection
    /// (it follows MOVED/ASK, refreshes slots and reconnects) for a
    /// cluster.
    pub async fn managed(&self, reconnect: Reconnect) -> std::result::Result<Conn, RedisError> {
        match self {
            Self::Single(client) => {
                ConnectionManager::new_with_config((**client).clone(), reconnect.config())
                    .await
                    .map(Conn::Single)
            }
            Self::Cluster { nodes, .. } => reconnect
                .cluster_client(nodes)?
                .get_async_connection()
                .await
                .map(Conn::Cluster),
        }
    }

    /// Like [`Self::managed`] without touching the network: the first
    /// command connects.
    pub fn lazy(&self, reconnect: Reconnect) -> std::result::Result<Conn, RedisError> {
        match self {
            Self::Single(client) => {
                ConnectionManager::new_lazy_with_config((**client).clone(), reconnect.config())
                    .map(Conn::Single)
            }
            Self::Cluster { nodes, .. } => Ok(Conn::Cluster(
                reconnect
                    .cluster_client(nodes)?
                    .get_pending_async_connection_with_config(ClusterConfig::new()),
            )),
        }
    }

    /// A connection of its own, for a blocking command that must not hold
    /// up the shared one. It has no response limit (redis-rs's default of
    /// 500 ms would end every quiet `XREAD BLOCK` as an outage): the
    /// caller bounds each command.
    pub async fn dedicated(&self) -> std::result::Result<Conn, RedisError> {
        match self {
            Self::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(None);
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Conn::Plain)
            }
            // A blocking read may wait longer than any response limit: the
            // caller bounds it.
            Self::Cluster { nodes, .. } => ClusterClientBuilder::new(nodes.to_vec())
                .connection_timeout(CONNECT_TIMEOUT)
                .retries(2)
                .build()?
                .get_async_connection()
                .await
                .map(Conn::Cluster),
        }
    }
}

/// Parses a Redis URL (one server or `redis+cluster://`); the error never
/// quotes the URL (it may hold a password).
pub(crate) fn open(url: &str) -> Result<Endpoint> {
    let invalid = |e: RedisError| CoordError::InvalidOptions(format!("invalid Redis URL: {e}"));
    match RedisUrl::parse(url)? {
        RedisUrl::Single(url) => Client::open(url)
            .map(|c| Endpoint::Single(Box::new(c)))
            .map_err(invalid),
        RedisUrl::Cluster(nodes) => {
            let seeds = nodes
                .iter()
                .map(|n| Client::open(n.as_str()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(invalid)?;
            // The same checks a connection makes (one TLS mode, one
            // password), now rather than at the first connection.
            BRIEF.cluster_client(&nodes).map_err(invalid)?;
            // Processes start their pub/sub connections at different seeds,
            // so subscribers spread over the nodes.
            let first = rand::random_range(0..seeds.len().max(1));
            Ok(Endpoint::Cluster {
                nodes: nodes.into(),
                seeds: seeds.into(),
                next_seed: Arc::new(AtomicUsize::new(first)),
                learnt: Arc::default(),
            })
        }
    }
}

/// One connection and `PING`, each bounded by [`CONNECT_TIMEOUT`]: an
/// unreachable server fails at once instead of after retries. For a
/// cluster, connecting reads the slot map, so a seed that is not a cluster
/// node, or a cluster without full slot coverage, fails here too.
pub(crate) async fn probe(endpoint: &Endpoint) -> std::result::Result<(), RedisError> {
    let mut conn = match endpoint {
        Endpoint::Single(client) => {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(CONNECT_TIMEOUT));
            Conn::Plain(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            )
        }
        Endpoint::Cluster { nodes, .. } => {
            Conn::Cluster(BRIEF.cluster_client(nodes)?.get_async_connection().await?)
        }
    };
    redis::cmd("PING").query_async::<()>(&mut conn).await
}

/// Runs a start-up `setup` within [`CONNECT_TIMEOUT`]; failure or silence
/// becomes `Unavailable` with the reason.
pub(crate) async fn within_connect_timeout<T>(
    setup: impl Future<Output = std::result::Result<T, RedisError>>,
) -> Result<T> {
    match tokio::time::timeout(CONNECT_TIMEOUT, setup).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(CoordError::Unavailable(format!("cannot reach Redis: {e}"))),
        Err(_) => Err(CoordError::Unavailable(format!(
            "cannot reach Redis: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Probes the server, then opens a managed connection with `reconnect`.
pub(crate) async fn connect(url: &str, reconnect: Reconnect) -> Result<(Endpoint, Conn)> {
    let endpoint = open(url)?;
    let conn = within_connect_timeout(async {
        probe(&endpoint).await?;
        endpoint.managed(reconnect).await
    })
    .await?;
    Ok((endpoint, conn))
}

/// The one connection type every capability holds: one server's
/// connection manager (or a plain multiplexed connection for blocking
/// reads), or a cluster connection. Commands and scripts run on it as on
/// any redis-rs connection; what differs on a cluster (a pipeline must
/// stay in one slot, some commands need every node) goes through its
/// methods.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Plain(redis::aio::MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Plain(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Plain(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Plain(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// True for a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs single-key commands whose keys may lie in different slots, and
    /// answers in their order: one pipeline on one server; on a cluster,
    /// one pipeline per slot, all at once.
    pub async fn each_slot<T: redis::FromRedisValue>(
        &mut self,
        commands: Vec<(Vec<u8>, Cmd)>,
    ) -> std::result::Result<Vec<T>, RedisError> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        if !self.is_cluster() {
            let mut pipe = redis::pipe();
            for (_, cmd) in &commands {
                pipe.add_command(cmd.clone());
            }
            return pipe.query_async(self).await;
        }
        let mut groups: std::collections::BTreeMap<u16, Vec<usize>> = Default::default();
        for (i, (key, _)) in commands.iter().enumerate() {
            groups.entry(slot(key)).or_default().push(i);
        }
        let runs = groups.into_values().map(|members| {
            let mut pipe = redis::pipe();
            for &i in &members {
                pipe.add_command(commands[i].1.clone());
            }
            let mut conn = self.clone();
            async move {
                let values: Vec<Value> = pipe.query_async(&mut conn).await?;
                Ok::<_, RedisError>((members, values))
            }
        });
        let mut answers: Vec<Option<Value>> = vec![None; commands.len()];
        for (members, values) in futures_util::future::try_join_all(runs).await? {
            for (i, value) in members.into_iter().zip(values) {
                answers[i] = Some(value);
            }
        }
        answers
            .into_iter()
            .map(|v| Ok(redis::from_redis_value(v.unwrap_or(Value::Nil))?))
            .collect()
    }

    /// Runs `cmd` on every master (`SCAN`, `INFO`): one answer per node,
    /// with its address (`""` on a single server).
    pub async fn on_masters(
        &mut self,
        cmd: &Cmd,
    ) -> std::result::Result<Vec<(String, Value)>, RedisError> {
        self.on_nodes(cmd, MultipleNodeRoutingInfo::AllMasters)
            .await
    }

    /// Runs `cmd` on every node, replicas included (`PUBSUB NUMSUB`).
    pub async fn on_all_nodes(
        &mut self,
        cmd: &Cmd,
    ) -> std::result::Result<Vec<(String, Value)>, RedisError> {
        self.on_nodes(cmd, MultipleNodeRoutingInfo::AllNodes).await
    }

    async fn on_nodes(
        &mut self,
        cmd: &Cmd,
        nodes: MultipleNodeRoutingInfo,
    ) -> std::result::Result<Vec<(String, Value)>, RedisError> {
        match self {
            Self::Cluster(c) => {
                let answer = c
                    .route_command(cmd.clone(), RoutingInfo::MultiNode((nodes, None)))
                    .await?;
                match answer {
                    Value::Map(pairs) => pairs
                        .into_iter()
                        .map(|(node, value)| Ok((redis::from_redis_value::<String>(node)?, value)))
                        .collect(),
                    other => Ok(vec![(String::new(), other)]),
                }
            }
            _ => {
                let value: Value = cmd.query_async(self).await?;
                Ok(vec![(String::new(), value)])
            }
        }
    }

    /// Runs `cmd` on the node at `address` (`host:port`, as
    /// [`Topology`] names it); on a single server, on that server.
    pub async fn on_node(
        &mut self,
        address: &str,
        cmd: &Cmd,
    ) -> std::result::Result<Value, RedisError> {
        match self {
            Self::Cluster(c) => {
                let (host, port) = address
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_owned(), p.parse().ok()?)))
                    .ok_or_else(|| {
                        RedisError::from((
                            redis::ErrorKind::InvalidClientConfig,
                            "a cluster node address must be host:port",
                        ))
                    })?;
                c.route_command(
                    cmd.clone(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port }),
                )
                .await
            }
            _ => cmd.query_async(self).await,
        }
    }

    /// The cluster's nodes (`CLUSTER NODES` from any node), or `None` on a
    /// single server.
    pub async fn topology(&mut self) -> std::result::Result<Option<Topology>, RedisError> {
        if !self.is_cluster() {
            return Ok(None);
        }
        let text: String = redis::cmd("CLUSTER").arg("NODES").query_async(self).await?;
        Ok(Some(Topology::parse(&text)))
    }

    /// Every key matching `pattern` (a glob), by `SCAN` on every master,
    /// stopping once about `max_scanned` keys were looked at in all: a
    /// huge keyspace costs a bounded time. The budget is shared: what a
    /// master with few keys leaves goes to the next (with a `{tag}` prefix
    /// all keys sit on one master). Masters are addressed as the client
    /// itself knows them (the first `SCAN` goes to every master at once),
    /// not as `CLUSTER NODES` announces them, which may be another name.
    pub async fn scan_match(
        &mut self,
        pattern: &str,
        max_scanned: usize,
    ) -> std::result::Result<Vec<String>, RedisError> {
        let scan = |cursor: u64, count: usize| {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(count.clamp(1, 1000));
            cmd
        };
        if max_scanned == 0 {
            return Ok(Vec::new());
        }
        let masters = self.on_masters(&scan(0, max_scanned)).await?;
        let mut left = max_scanned;
        let mut found = Vec::new();
        let count = masters.len();
        for (i, (address, first)) in masters.into_iter().enumerate() {
            // An even share of what is left for this master and the rest.
            let share = left / (count - i).max(1);
            let mut scanned = share.clamp(1, 1000).min(left);
            let (mut cursor, keys): (u64, Vec<String>) = redis::from_redis_value(first)?;
            found.extend(keys);
            while cursor != 0 && scanned < share {
                let step = (share - scanned).clamp(1, 1000);
                let answer = self.on_node(&address, &scan(cursor, step)).await?;
                let (next, keys): (u64, Vec<String>) = redis::from_redis_value(answer)?;
                found.extend(keys);
                scanned += step;
                cursor = next;
            }
            left = left.saturating_sub(scanned);
        }
        Ok(found)
    }
}

/// What a capability's probe of its Redis found.
#[derive(Debug, Clone)]
pub(crate) struct Probed {
    /// Round trip of a `PING`.
    pub latency: Duration,
    /// Memory Redis uses (summed over the masters of a cluster), when told.
    pub memory_bytes: Option<u64>,
    /// The cluster's nodes, on a cluster.
    pub topology: Option<Topology>,
}

/// A capability's readiness probe: a `PING` for the latency, then what
/// would make its real commands fail although `PING` works — a plain
/// connection to a Redis Cluster node (its commands would answer MOVED),
/// a cluster that does not serve every slot (CLUSTERDOWN) — and finally a
/// read of `key`, one of the capability's own keys, on the node that
/// serves it.
pub(crate) async fn probe_capability(conn: &mut Conn, key: &str) -> Result<Probed> {
    let started = std::time::Instant::now();
    redis::cmd("PING").query_async::<()>(conn).await?;
    let latency = started.elapsed();
    let topology = conn.topology().await?;
    let memory_bytes = if conn.is_cluster() {
        let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(conn).await?;
        if info_field(&info, "cluster_state") != Some("ok") {
            return Err(CoordError::Unavailable(format!(
                "Redis Cluster is down (CLUSTERDOWN): cluster_state {}, {} of {SLOTS} slots served",
                info_field(&info, "cluster_state").unwrap_or("unknown"),
                info_field(&info, "cluster_slots_ok").unwrap_or("?"),
            )));
        }
        let mut total = None;
        for (_, answer) in conn.on_masters(redis::cmd("INFO").arg("memory")).await? {
            let text: String = redis::from_redis_value(answer).map_err(RedisError::from)?;
            if let Some(used) = info_field(&text, "used_memory").and_then(|v| v.parse::<u64>().ok())
            {
                total = Some(total.unwrap_or(0) + used);
            }
        }
        total
    } else {
        // Two commands: `INFO` takes one section before Redis 7.
        let cluster: String = redis::cmd("INFO").arg("cluster").query_async(conn).await?;
        if info_field(&cluster, "cluster_enabled") == Some("1") {
            return Err(CoordError::Misconfigured(
                "the server is a Redis Cluster node; connect with a redis+cluster:// URL".into(),
            ));
        }
        let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
        info_field(&info, "used_memory").and_then(|v| v.parse().ok())
    };
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<()>(conn)
        .await?;
    Ok(Probed {
        latency,
        memory_bytes,
        topology,
    })
}

/// The value of `field` in `INFO`-style `field:value` lines.
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// Connects a capability whose keys put a hash tag after the prefix
/// (`<prefix>:rl:{…}`, `<prefix>:cache:{…}`, `<prefix>:session:{…}`): a
/// brace in the prefix would move the tag, so such a prefix is refused
/// before connecting.
pub(crate) async fn connect_tagged(url: &str, prefix: &str, reconnect: Reconnect) -> Result<Conn> {
    check_prefix(prefix, &['{', '}'], "braces or whitespace")?;
    // The URL may hold a password: never echo it.
    let (_, conn) = connect(url, reconnect).await?;
    Ok(conn)
}

/// Rejects an empty prefix, whitespace and control characters (unreadable
/// in `redis-cli`), and the characters in `forbidden` that the caller's key
/// layout cannot take, described as `what` in the error.
pub(crate) fn check_prefix(prefix: &str, forbidden: &[char], what: &str) -> Result<()> {
    if prefix.is_empty() {
        return Err(CoordError::InvalidOptions(
            "the Redis key prefix must not be empty".into(),
        ));
    }
    if prefix
        .chars()
        .any(|c| forbidden.contains(&c) || c.is_whitespace() || c.is_control())
    {
        return Err(CoordError::InvalidOptions(format!(
            "the Redis key prefix {prefix:?} must not contain {what}"
        )));
    }
    Ok(())
}

/// What one pub/sub connection listens to.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// One channel (`SUBSCRIBE`).
    Channel(String),
    /// Every channel matching a glob (`PSUBSCRIBE`).
    Pattern(String),
}

/// How often a subscription checks that its connection is alive; a
/// silently dropped connection would otherwise stop its messages for good.
const PUBSUB_PING: Duration = Duration::from_secs(15);
/// Bounds of the resubscription backoff: quick first retries so a blip
/// costs little, capped so an outage does not hammer Redis.
const PUBSUB_BACKOFF_MIN: Duration = Duration::from_millis(100);
const PUBSUB_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Opens a pub/sub connection listening to `target`. Bounded in time
/// because a pub/sub connection has no timeouts of its own.
///
/// On a cluster it is a plain connection to one node: a `PUBLISH` on
/// any node reaches the subscribers of every node (the cluster bus
/// forwards it), and `PSUBSCRIBE` works there as on one server, which
/// sharded pub/sub (`SSUBSCRIBE`) cannot do. A node that fails is skipped
/// and the next one is tried, so losing a node (a failover) moves the
/// subscription to another: the seeds first, then the nodes learnt from
/// the topology once a subscription succeeded.
pub(crate) async fn open_pubsub(
    endpoint: &Endpoint,
    target: &Target,
) -> redis::RedisResult<PubSub> {
    match endpoint {
        Endpoint::Single(client) => subscribe_on(client, target).await,
        Endpoint::Cluster {
            nodes,
            seeds,
            next_seed,
            learnt,
        } => {
            let learnt_now = learnt.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let candidates: Vec<&Client> = seeds.iter().chain(learnt_now.iter()).collect();
            let mut last = None;
            for _ in 0..candidates.len() {
                let i = next_seed.load(Ordering::Relaxed) % candidates.len();
                match subscribe_on(candidates[i], target).await {
                    Ok(pubsub) => {
                        tokio::spawn(learn_nodes(nodes.clone(), learnt.clone()));
                        return Ok(pubsub);
                    }
                    Err(e) => {
                        next_seed.store(i + 1, Ordering::Relaxed);
                        last = Some(e);
                    }
                }
            }
            Err(last.unwrap_or_else(|| {
                RedisError::from((redis::ErrorKind::InvalidClientConfig, "no seed node"))
            }))
        }
    }
}

/// Reads the cluster's healthy nodes into `learnt` (with the first seed's
/// credentials and options), keeping what was there when it cannot: a
/// subscription that fails over later has them to try besides the seeds.
/// A few tries, a second apart: a cluster that was just changed may not
/// answer for its slots at once.
async fn learn_nodes(nodes: Arc<[String]>, learnt: Arc<std::sync::Mutex<Vec<Client>>>) {
    const TRIES: u32 = 3;
    let Some(template) = nodes.first() else {
        return;
    };
    for attempt in 1..=TRIES {
        let read = async {
            let mut conn =
                Conn::Cluster(BRIEF.cluster_client(&nodes)?.get_async_connection().await?);
            conn.topology().await
        };
        let topology = match tokio::time::timeout(CONNECT_TIMEOUT, read).await {
            Ok(Ok(Some(topology))) => topology,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, attempt, "cannot read the cluster's nodes for pub/sub");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => continue,
        };
        let clients: Vec<Client> = topology
            .nodes
            .iter()
            .filter(|node| node.healthy)
            .map(|node| url::with_address(template, &node.address))
            .filter(|url| !nodes.contains(url))
            .filter_map(|url| Client::open(url).ok())
            .collect();
        if !clients.is_empty() {
            *learnt.lock().unwrap_or_else(|p| p.into_inner()) = clients;
        }
        return;
    }
}

async fn subscribe_on(client: &Client, target: &Target) -> redis::RedisResult<PubSub> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        match target {
            Target::Channel(c) => pubsub.subscribe(c).await?,
            Target::Pattern(p) => pubsub.psubscribe(p).await?,
        }
        Ok(pubsub)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "subscribing timed out",
        ))),
    }
}

/// What a subscription loop reports to its owner.
pub(crate) enum PubSubEvent<'a> {
    /// A message arrived.
    Message(&'a Msg),
    /// The connection is up: `restored` is false for the first one (made
    /// by the caller before the loop), true after an outage.
    Up { restored: bool },
    /// The connection was lost; messages published until the next `Up`
    /// are lost.
    Down,
}

/// Forwards everything `target` receives to `on`, starting with the
/// already-open `first` connection, and resubscribes with backoff when
/// Redis goes away (a `PING` every [`PUBSUB_PING`] finds connections that
/// died silently). `what` names the subscription in logs. Runs until its
/// task is aborted.
pub(crate) async fn listen_pubsub(
    endpoint: Endpoint,
    target: Target,
    what: &'static str,
    first: PubSub,
    mut on: impl FnMut(PubSubEvent<'_>),
) {
    let mut pubsub = Some(first);
    let mut backoff = PUBSUB_BACKOFF_MIN;
    let mut restored = false;
    loop {
        let current = match pubsub.take() {
            Some(p) => p,
            None => match open_pubsub(&endpoint, &target).await {
                Ok(p) => {
                    tracing::info!(target = ?target, "{what} subscription restored");
                    p
                }
                Err(e) => {
                    tracing::warn!(target = ?target, error = %e, "cannot resubscribe to {what}; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(PUBSUB_BACKOFF_MAX);
                    continue;
                }
            },
        };
        backoff = PUBSUB_BACKOFF_MIN;
        on(PubSubEvent::Up { restored });
        restored = true;
        let (mut sink, mut stream) = current.split();
        let mut ping = tokio::time::interval(PUBSUB_PING);
        ping.reset();
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => on(PubSubEvent::Message(&msg)),
                    None => break,
                },
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(CONNECT_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        on(PubSubEvent::Down);
        tracing::warn!(target = ?target, "{what} subscription lost; reconnecting");
        tokio::time::sleep(backoff).await;
    }
}

/// Escapes glob characters so that a prefix matches itself only in
/// `SCAN MATCH`.
pub(crate) fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_with_the_caller_s_extra_characters() {
        assert!(check_prefix("switchyard", &['{'], "braces").is_ok());
        assert!(check_prefix("a:b-c", &['{'], "braces").is_ok());
        assert!(check_prefix("", &[], "whitespace").is_err());
        assert!(check_prefix("a b", &[], "whitespace").is_err());
        assert!(check_prefix("a\u{7}", &[], "whitespace").is_err());
        assert!(check_prefix("a{b}", &[], "whitespace").is_ok());
        let err = check_prefix("a{b}", &['{', '}'], "braces or whitespace").expect_err("braces");
        assert!(err.to_string().contains("braces or whitespace"), "{err}");
    }

    /// A URL naming one node (here a replica, so that killing it needs no
    /// failover): once that node is gone, pub/sub carries on through the
    /// nodes read from the topology when it first subscribed.
    #[tokio::test]
    async fn pub_sub_outlives_its_only_seed_through_learnt_nodes() {
        use futures_util::StreamExt;
        let mut cluster = test_support::redis::PrivateCluster::started(3, 1).await;
        let urls = cluster.node_urls();
        let replica = urls[3].trim_start_matches("redis://").to_owned();
        let url = format!("redis+cluster://{replica}");
        let endpoint = open(&url).expect("cluster URL");
        let target = Target::Channel("learnt-nodes".into());
        drop(
            open_pubsub(&endpoint, &target)
                .await
                .expect("subscribes on the seed"),
        );
        let Endpoint::Cluster { learnt, .. } = &endpoint else {
            panic!("a cluster endpoint");
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while learnt.lock().expect("lock").is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no node learnt within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The control: an endpoint that learnt nothing has no node left.
        let unlearnt = open(&url).expect("cluster URL");
        cluster.stop_node(3);
        assert!(open_pubsub(&unlearnt, &target).await.is_err());

        let mut pubsub = open_pubsub(&endpoint, &target)
            .await
            .expect("subscribes on a learnt node");
        let publisher = Client::open(urls[0].as_str()).expect("client");
        let mut conn = publisher
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let _: i64 = redis::cmd("PUBLISH")
            .arg("learnt-nodes")
            .arg("hello")
            .query_async(&mut conn)
            .await
            .expect("publish");
        let message = tokio::time::timeout(Duration::from_secs(5), pubsub.on_message().next())
            .await
            .expect("a message in time")
            .expect("a message");
        assert_eq!(message.get_payload::<String>().expect("text"), "hello");
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        let err = open("http://user:secret@host").expect_err("not redis");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
