//! View model of the Redis page (`/redis`): the Redis every capability
//! depends on, node by node (every master and replica of a cluster), its
//! slow log, latency events and which key prefixes hold its memory.
//!
//! Plain data filled by the server from coord's Redis health reader, so
//! the page renders and tests without a Redis.

/// Slow-log entries the page lists.
pub const SLOWLOG_ROWS: usize = 20;

/// One Redis server as one read saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedisNodeRow {
    /// `host:port`.
    pub addr: String,
    /// `master` or `replica`; empty when it did not answer.
    pub role: String,
    /// Why it could not be read, when it could not.
    pub error: Option<String>,
    /// Redis version.
    pub version: String,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Round trip of a PING (ms).
    pub ping_ms: Option<f64>,
    /// Memory used (bytes).
    pub used_memory: u64,
    /// Most memory it ever used (bytes).
    pub peak_memory: u64,
    /// `maxmemory`, when set (0 is "no limit").
    pub max_memory: Option<u64>,
    /// `maxmemory-policy`.
    pub policy: String,
    /// RSS over used memory.
    pub fragmentation: Option<f64>,
    /// Clients connected.
    pub clients: u64,
    /// Clients blocked (BLPOP, BZPOPMIN, XREAD BLOCK…).
    pub blocked: u64,
    /// Commands per second, as Redis measures it.
    pub ops_per_sec: u64,
    /// Keyspace hits over lookups, since it started.
    pub hit_ratio: Option<f64>,
    /// Keys evicted per second since the last read.
    pub evicted_per_sec: Option<f64>,
    /// Keys expired per second since the last read.
    pub expired_per_sec: Option<f64>,
    /// Replication in words (`2 replicas`, `link up · 120 B behind`).
    pub replication: String,
    /// Whether replication needs a look (a replica's link down or far
    /// behind, a cluster master without replicas).
    pub replication_warning: bool,
    /// Persistence in words (`RDB ok · AOF off`).
    pub persistence: String,
    /// Whether the last save or rewrite failed.
    pub persistence_warning: bool,
}

impl RedisNodeRow {
    /// Memory used as a share of `maxmemory` (0–100), when it has one.
    pub fn memory_percent(&self) -> Option<f64> {
        self.max_memory
            .filter(|max| *max > 0)
            .map(|max| self.used_memory as f64 * 100.0 / max as f64)
    }
}

/// One slow command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlowRow {
    /// The node that logged it.
    pub node: String,
    /// Its id in that node's log.
    pub id: u64,
    /// When it ran (ms since the epoch).
    pub at_ms: i64,
    /// How long it took (µs).
    pub micros: u64,
    /// The command and its arguments, truncated with a marker.
    pub command: String,
    /// The client's address and name, as far as known.
    pub client: String,
}

/// One `LATENCY LATEST` event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyEventRow {
    /// The node.
    pub node: String,
    /// The event (`command`, `fast-command`, `expire-cycle`…).
    pub event: String,
    /// When it last happened (ms since the epoch).
    pub at_ms: i64,
    /// Its latest latency (ms).
    pub latest_ms: u64,
    /// Its worst latency (ms).
    pub max_ms: u64,
}

/// One key prefix in the key-space sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrefixRow {
    /// The prefix (`switchyard`, `bull`, `sess`); `other` for the rest.
    pub prefix: String,
    /// Keys, extrapolated from the sample.
    pub keys: u64,
    /// Bytes, extrapolated from the sample.
    pub bytes: u64,
    /// Share of the sampled memory (0–100).
    pub percent: f64,
}

/// Which prefixes hold the memory: a sample, said to be one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyspaceVm {
    /// Keys sampled.
    pub sampled: u64,
    /// Keys in all (`DBSIZE` summed over masters).
    pub total: u64,
    /// The biggest prefixes, then `other`.
    pub prefixes: Vec<PrefixRow>,
    /// When the sample was taken (ms since the epoch).
    pub at_ms: i64,
}

/// The Redis page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedisVm {
    /// Whether a Redis is configured at all (`--redis` or `--bullmq`).
    pub configured: bool,
    /// Every node, masters first.
    pub nodes: Vec<RedisNodeRow>,
    /// The slowest recent commands over every node, newest first.
    pub slowlog: Vec<SlowRow>,
    /// Latency events over every node.
    pub latency: Vec<LatencyEventRow>,
    /// The key-space sample, once taken.
    pub keyspace: Option<KeyspaceVm>,
    /// Why nothing could be read, when nothing could.
    pub problem: Option<String>,
    /// When it was read (ms since the epoch).
    pub read_at: i64,
}
