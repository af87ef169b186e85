//! `INFO` read into typed figures. The text is `field:value` lines under
//! `# Section` headers; fields this module does not know are ignored, the
//! ones it knows but cannot find or read are `None`, so a Redis of another
//! version (or a managed service that hides some fields) still gives what
//! it tells.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

/// What a node says it is (`role` in `INFO replication`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeRole {
    /// A master (primary).
    Master,
    /// A replica (`role:slave`).
    Replica,
}

/// A replica as its master lists it (`slaveN:ip=…,port=…,state=…,offset=…,lag=…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaLink {
    /// `ip:port` the replica announced.
    pub address: String,
    /// `online`, `wait_bgsave`, `send_bulk`…
    pub state: Option<String>,
    /// The replication offset the replica acknowledged.
    pub offset: Option<u64>,
    /// Seconds since the replica's last acknowledgement.
    pub lag_secs: Option<u64>,
}

/// Keys of one database (`dbN:keys=…,expires=…,avg_ttl=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbKeys {
    pub db: u32,
    pub keys: u64,
    /// Keys with a time to live.
    pub expires: u64,
}

/// Snapshotting and the append-only file (`INFO persistence`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Persistence {
    /// Loading a dump at start-up (the node refuses most commands).
    pub loading: Option<bool>,
    pub rdb_bgsave_in_progress: Option<bool>,
    /// `ok` or `err`.
    pub rdb_last_bgsave_status: Option<String>,
    /// Unix seconds of the last successful save.
    pub rdb_last_save_time: Option<i64>,
    pub rdb_changes_since_last_save: Option<u64>,
    pub aof_enabled: Option<bool>,
    pub aof_rewrite_in_progress: Option<bool>,
    /// `ok` or `err`.
    pub aof_last_bgrewrite_status: Option<String>,
    /// `ok` or `err`.
    pub aof_last_write_status: Option<String>,
}

impl Persistence {
    /// True when a save or a write of the append-only file last failed.
    pub fn failing(&self) -> bool {
        [
            &self.rdb_last_bgsave_status,
            &self.aof_last_bgrewrite_status,
            &self.aof_last_write_status,
        ]
        .into_iter()
        .any(|status| status.as_deref().is_some_and(|s| s != "ok"))
    }
}

/// One node's `INFO`, typed. Counters (`*_keys`, `keyspace_*`,
/// `total_commands_processed`) are cumulative since the node started:
/// see [`CounterRates::between`] for rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub version: Option<String>,
    /// `standalone`, `cluster` or `sentinel`.
    pub mode: Option<String>,
    pub role: Option<NodeRole>,
    pub uptime_secs: Option<u64>,
    pub connected_clients: Option<u64>,
    /// Clients waiting in a blocking command (`BLPOP`, `XREAD BLOCK`…).
    pub blocked_clients: Option<u64>,
    pub used_memory: Option<u64>,
    pub used_memory_peak: Option<u64>,
    /// 0 when unlimited.
    pub maxmemory: Option<u64>,
    pub maxmemory_policy: Option<String>,
    pub fragmentation_ratio: Option<f64>,
    pub ops_per_sec: Option<u64>,
    pub total_commands_processed: Option<u64>,
    pub keyspace_hits: Option<u64>,
    pub keyspace_misses: Option<u64>,
    pub evicted_keys: Option<u64>,
    pub expired_keys: Option<u64>,
    pub persistence: Persistence,
    /// The node's own replication offset.
    pub master_repl_offset: Option<u64>,
    /// On a master: its replicas connected now.
    pub connected_replicas: Option<u64>,
    /// On a master: its replicas as it lists them.
    pub replicas: Vec<ReplicaLink>,
    /// On a replica: `host:port` of its master.
    pub master_address: Option<String>,
    /// On a replica: whether its link to the master is up.
    pub master_link_up: Option<bool>,
    /// On a replica: seconds since it last heard from its master (-1
    /// while the link is down).
    pub master_last_io_secs: Option<i64>,
    /// On a replica whose link is down: for how many seconds
    /// (`master_link_down_since_seconds`), the lag alerts go by then.
    pub master_link_down_secs: Option<u64>,
    /// On a replica: a full resynchronisation is running.
    pub master_sync_in_progress: Option<bool>,
    /// On a replica: the offset it has applied.
    pub replica_offset: Option<u64>,
    pub cluster_enabled: Option<bool>,
    pub keyspace: Vec<DbKeys>,
}

impl NodeInfo {
    /// Parses `INFO` text. Never fails: what cannot be read is `None`.
    pub fn parse(text: &str) -> Self {
        let fields: HashMap<&str, &str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.split_once(':'))
            .collect();
        let text = |key: &str| {
            fields
                .get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let number = |key: &str| fields.get(key).and_then(|v| v.trim().parse::<u64>().ok());
        let signed = |key: &str| fields.get(key).and_then(|v| v.trim().parse::<i64>().ok());
        let flag = |key: &str| number(key).map(|v| v != 0);
        let role = match fields.get("role").map(|v| v.trim()) {
            Some("master") => Some(NodeRole::Master),
            Some("slave" | "replica") => Some(NodeRole::Replica),
            _ => None,
        };
        let master_address = match (text("master_host"), number("master_port")) {
            (Some(host), Some(port)) => Some(format!("{host}:{port}")),
            _ => None,
        };
        let mut replicas: Vec<(u32, ReplicaLink)> = fields
            .iter()
            .filter_map(|(key, value)| {
                let n = key.strip_prefix("slave")?.parse::<u32>().ok()?;
                parse_replica(value).map(|link| (n, link))
            })
            .collect();
        replicas.sort_by_key(|(n, _)| *n);
        let mut keyspace: Vec<DbKeys> = fields
            .iter()
            .filter_map(|(key, value)| {
                let db = key.strip_prefix("db")?.parse::<u32>().ok()?;
                let pairs = pairs(value);
                Some(DbKeys {
                    db,
                    keys: pairs.get("keys")?.parse().ok()?,
                    expires: pairs
                        .get("expires")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                })
            })
            .collect();
        keyspace.sort_by_key(|d| d.db);
        Self {
            version: text("redis_version"),
            mode: text("redis_mode"),
            role,
            uptime_secs: number("uptime_in_seconds"),
            connected_clients: number("connected_clients"),
            blocked_clients: number("blocked_clients"),
            used_memory: number("used_memory"),
            used_memory_peak: number("used_memory_peak"),
            maxmemory: number("maxmemory"),
            maxmemory_policy: text("maxmemory_policy"),
            fragmentation_ratio: fields
                .get("mem_fragmentation_ratio")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|r| r.is_finite()),
            ops_per_sec: number("instantaneous_ops_per_sec"),
            total_commands_processed: number("total_commands_processed"),
            keyspace_hits: number("keyspace_hits"),
            keyspace_misses: number("keyspace_misses"),
            evicted_keys: number("evicted_keys"),
            expired_keys: number("expired_keys"),
            persistence: Persistence {
                loading: flag("loading"),
                rdb_bgsave_in_progress: flag("rdb_bgsave_in_progress"),
                rdb_last_bgsave_status: text("rdb_last_bgsave_status"),
                rdb_last_save_time: signed("rdb_last_save_time"),
                rdb_changes_since_last_save: number("rdb_changes_since_last_save"),
                aof_enabled: flag("aof_enabled"),
                aof_rewrite_in_progress: flag("aof_rewrite_in_progress"),
                aof_last_bgrewrite_status: text("aof_last_bgrewrite_status"),
                aof_last_write_status: text("aof_last_write_status"),
            },
            master_repl_offset: number("master_repl_offset"),
            connected_replicas: number("connected_slaves"),
            replicas: replicas.into_iter().map(|(_, link)| link).collect(),
            master_address,
            master_link_up: fields.get("master_link_status").map(|v| v.trim() == "up"),
            master_last_io_secs: signed("master_last_io_seconds_ago"),
            master_link_down_secs: number("master_link_down_since_seconds"),
            master_sync_in_progress: flag("master_sync_in_progress"),
            replica_offset: number("slave_repl_offset"),
            cluster_enabled: flag("cluster_enabled"),
            keyspace,
        }
    }

    /// Hits over hits and misses, when there was any lookup.
    pub fn hit_ratio(&self) -> Option<f64> {
        let (hits, misses) = (self.keyspace_hits?, self.keyspace_misses?);
        let total = hits + misses;
        (total > 0).then(|| hits as f64 / total as f64)
    }

    /// Used memory over `maxmemory`, when a limit is set.
    pub fn memory_share(&self) -> Option<f64> {
        let max = self.maxmemory.filter(|&m| m > 0)?;
        Some(self.used_memory? as f64 / max as f64)
    }

    /// Keys in every database.
    pub fn total_keys(&self) -> u64 {
        self.keyspace.iter().map(|d| d.keys).sum()
    }
}

/// `a=1,b=2` pairs.
fn pairs(value: &str) -> HashMap<&str, &str> {
    value
        .trim()
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .collect()
}

fn parse_replica(value: &str) -> Option<ReplicaLink> {
    let pairs = pairs(value);
    let ip = pairs.get("ip")?;
    let port = pairs.get("port")?;
    Some(ReplicaLink {
        address: format!("{ip}:{port}"),
        state: pairs.get("state").map(|s| (*s).to_owned()),
        offset: pairs.get("offset").and_then(|v| v.parse().ok()),
        lag_secs: pairs.get("lag").and_then(|v| v.parse().ok()),
    })
}

/// Per-second rates of a node's cumulative counters between two reads.
/// A counter that went down (the node restarted, or `CONFIG RESETSTAT`)
/// has no rate, rather than a negative or a huge one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterRates {
    pub evicted_per_sec: Option<f64>,
    pub expired_per_sec: Option<f64>,
    pub hits_per_sec: Option<f64>,
    pub misses_per_sec: Option<f64>,
    pub commands_per_sec: Option<f64>,
}

impl CounterRates {
    /// The rates from `earlier` to `later`, read `elapsed` apart; `None`
    /// when no time passed or the node restarted in between (its uptime
    /// went down).
    pub fn between(earlier: &NodeInfo, later: &NodeInfo, elapsed: Duration) -> Option<Self> {
        let secs = elapsed.as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        if let (Some(before), Some(after)) = (earlier.uptime_secs, later.uptime_secs)
            && after < before
        {
            return None;
        }
        let rate = |f: fn(&NodeInfo) -> Option<u64>| {
            let (before, after) = (f(earlier)?, f(later)?);
            (after >= before).then(|| (after - before) as f64 / secs)
        };
        Some(Self {
            evicted_per_sec: rate(|i| i.evicted_keys),
            expired_per_sec: rate(|i| i.expired_keys),
            hits_per_sec: rate(|i| i.keyspace_hits),
            misses_per_sec: rate(|i| i.keyspace_misses),
            commands_per_sec: rate(|i| i.total_commands_processed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from a Redis 7.0.15 cluster master (trimmed), with `\r\n`.
    const MASTER: &str = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n\
redis_mode:cluster\r\nuptime_in_seconds:2805\r\n\r\n# Clients\r\nconnected_clients:1\r\n\
blocked_clients:0\r\ntracking_clients:0\r\n\r\n# Memory\r\nused_memory:4338680\r\n\
used_memory_human:4.14M\r\nused_memory_peak:4893544\r\nused_memory_peak_perc:88.66%\r\n\
maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
mem_fragmentation_ratio:2.62\r\n\r\n# Persistence\r\nloading:0\r\n\
rdb_changes_since_last_save:6517\r\nrdb_bgsave_in_progress:0\r\n\
rdb_last_save_time:1796548039\r\nrdb_last_bgsave_status:ok\r\naof_enabled:0\r\n\
aof_rewrite_in_progress:0\r\naof_last_bgrewrite_status:ok\r\naof_last_write_status:ok\r\n\r\n\
# Stats\r\ntotal_commands_processed:91234\r\ninstantaneous_ops_per_sec:7\r\n\
expired_keys:0\r\nevicted_keys:0\r\nkeyspace_hits:4818\r\nkeyspace_misses:2253\r\n\r\n\
# Replication\r\nrole:master\r\nconnected_slaves:1\r\n\
slave0:ip=127.0.0.1,port=33767,state=online,offset=754924,lag=1\r\n\
master_failover_state:no-failover\r\nmaster_replid:5dee3c992bb108bcf2b74584f2a1d4604c29c2f1\r\n\
master_repl_offset:754924\r\n\r\n# Cluster\r\ncluster_enabled:1\r\n\r\n# Keyspace\r\n\
db0:keys=1405,expires=12,avg_ttl=5020\r\n";

    /// Captured from its replica (trimmed).
    const REPLICA: &str = "# Server\nredis_version:7.0.15\nuptime_in_seconds:2804\n\
# Replication\nrole:slave\nmaster_host:127.0.0.1\nmaster_port:39773\n\
master_link_status:up\nmaster_last_io_seconds_ago:3\nmaster_sync_in_progress:0\n\
slave_read_repl_offset:32236763\nslave_repl_offset:32236763\nslave_priority:100\n\
slave_read_only:1\nconnected_slaves:0\nmaster_repl_offset:32236763\n";

    #[test]
    fn a_master_s_info_is_read() {
        let info = NodeInfo::parse(MASTER);
        assert_eq!(info.version.as_deref(), Some("7.0.15"));
        assert_eq!(info.mode.as_deref(), Some("cluster"));
        assert_eq!(info.role, Some(NodeRole::Master));
        assert_eq!(info.uptime_secs, Some(2805));
        assert_eq!(
            (info.connected_clients, info.blocked_clients),
            (Some(1), Some(0))
        );
        assert_eq!(info.used_memory, Some(4_338_680));
        assert_eq!(info.used_memory_peak, Some(4_893_544));
        assert_eq!(info.maxmemory, Some(0));
        assert_eq!(info.memory_share(), None, "no limit, no share");
        assert_eq!(info.maxmemory_policy.as_deref(), Some("noeviction"));
        assert_eq!(info.fragmentation_ratio, Some(2.62));
        assert_eq!(info.ops_per_sec, Some(7));
        assert_eq!(info.total_commands_processed, Some(91_234));
        assert_eq!(
            (info.keyspace_hits, info.keyspace_misses),
            (Some(4818), Some(2253))
        );
        let ratio = info.hit_ratio().expect("lookups");
        assert!((ratio - 4818.0 / 7071.0).abs() < 1e-9);
        assert_eq!((info.evicted_keys, info.expired_keys), (Some(0), Some(0)));
        assert_eq!(
            info.persistence.rdb_last_bgsave_status.as_deref(),
            Some("ok")
        );
        assert_eq!(info.persistence.rdb_bgsave_in_progress, Some(false));
        assert_eq!(info.persistence.rdb_last_save_time, Some(1_796_548_039));
        assert_eq!(info.persistence.aof_enabled, Some(false));
        assert!(!info.persistence.failing());
        assert_eq!(info.master_repl_offset, Some(754_924));
        assert_eq!(info.connected_replicas, Some(1));
        assert_eq!(
            info.replicas,
            vec![ReplicaLink {
                address: "127.0.0.1:33767".into(),
                state: Some("online".into()),
                offset: Some(754_924),
                lag_secs: Some(1),
            }]
        );
        assert_eq!(info.master_address, None);
        assert_eq!(info.master_link_up, None);
        assert_eq!(info.cluster_enabled, Some(true));
        assert_eq!(
            info.keyspace,
            vec![DbKeys {
                db: 0,
                keys: 1405,
                expires: 12
            }]
        );
        assert_eq!(info.total_keys(), 1405);
    }

    #[test]
    fn a_replica_s_info_is_read() {
        let info = NodeInfo::parse(REPLICA);
        assert_eq!(info.role, Some(NodeRole::Replica));
        assert_eq!(info.master_address.as_deref(), Some("127.0.0.1:39773"));
        assert_eq!(info.master_link_up, Some(true));
        assert_eq!(info.master_last_io_secs, Some(3));
        assert_eq!(info.master_link_down_secs, None, "the link is up");
        assert_eq!(info.master_sync_in_progress, Some(false));
        let down = NodeInfo::parse(
            &REPLICA
                .replace("master_link_status:up", "master_link_status:down")
                .replace(
                    "master_last_io_seconds_ago:3",
                    "master_last_io_seconds_ago:-1\nmaster_link_down_since_seconds:42",
                ),
        );
        assert_eq!(down.master_link_up, Some(false));
        assert_eq!(down.master_last_io_secs, Some(-1));
        assert_eq!(down.master_link_down_secs, Some(42));
        assert_eq!(info.replica_offset, Some(32_236_763));
        assert_eq!(info.connected_replicas, Some(0));
        assert!(info.replicas.is_empty());
        // Missing sections are missing, not zero.
        assert_eq!(info.used_memory, None);
        assert_eq!(info.hit_ratio(), None);
        assert_eq!(info.persistence, Persistence::default());
        assert!(info.keyspace.is_empty());
    }

    #[test]
    fn unknown_broken_and_hostile_lines_are_ignored() {
        let text = "# Future\nsome_new_field:42\nused_memory:abc\nmaxmemory:100\n\
                    used_memory_peak:-5\nno colon here\n:\nrole:observer\n\
                    slave0:ip=1.2.3.4\nslave1:port=1,ip=1.2.3.4,offset=x\n\
                    db0:expires=3\ndbx:keys=1\ndb3:keys=7\nmem_fragmentation_ratio:nan\n\
                    rdb_last_bgsave_status:err\nmaster_link_status:down\n\u{0}:\u{0}\né:é";
        let info = NodeInfo::parse(text);
        assert_eq!(info.used_memory, None);
        assert_eq!(info.used_memory_peak, None);
        assert_eq!(info.maxmemory, Some(100));
        assert_eq!(info.role, None);
        assert_eq!(info.replicas.len(), 1);
        assert_eq!(info.replicas[0].address, "1.2.3.4:1");
        assert_eq!(info.replicas[0].offset, None);
        assert_eq!(info.keyspace.len(), 1);
        assert_eq!(info.keyspace[0].db, 3);
        assert_eq!(info.fragmentation_ratio, None);
        assert!(info.persistence.failing());
        assert_eq!(info.master_link_up, Some(false));
        assert_eq!(NodeInfo::parse(""), NodeInfo::default());
    }

    #[test]
    fn rates_come_from_two_reads_and_a_restart_gives_none() {
        let earlier = NodeInfo {
            uptime_secs: Some(100),
            evicted_keys: Some(10),
            expired_keys: Some(4),
            keyspace_hits: Some(100),
            keyspace_misses: Some(50),
            total_commands_processed: Some(1000),
            ..NodeInfo::default()
        };
        let later = NodeInfo {
            uptime_secs: Some(102),
            evicted_keys: Some(30),
            expired_keys: Some(4),
            keyspace_hits: Some(90),
            keyspace_misses: None,
            total_commands_processed: Some(1500),
            ..NodeInfo::default()
        };
        let rates = CounterRates::between(&earlier, &later, Duration::from_secs(2)).expect("rates");
        assert_eq!(rates.evicted_per_sec, Some(10.0));
        assert_eq!(rates.expired_per_sec, Some(0.0));
        assert_eq!(rates.hits_per_sec, None, "a counter that went down");
        assert_eq!(rates.misses_per_sec, None, "a counter not told");
        assert_eq!(rates.commands_per_sec, Some(250.0));
        assert_eq!(
            CounterRates::between(&earlier, &later, Duration::ZERO),
            None
        );
        let restarted = NodeInfo {
            uptime_secs: Some(3),
            ..later
        };
        assert_eq!(
            CounterRates::between(&earlier, &restarted, Duration::from_secs(2)),
            None
        );
    }
}
