//! The alerting vocabulary: rules, what they are evaluated against, and the
//! alerts they raise. Plain data, shared by the evaluator (pure, clocked by
//! its caller), the SQL store, the webhook sender and the pages.

use std::fmt;
use std::str::FromStr;

/// What a rule watches. Each kind reads one figure per subject (a queue,
/// an instance, a policy, a channel, the backend, or a node of the
/// configured Redis) and compares it with the rule's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKind {
    /// Waiting jobs of a queue above `threshold` (jobs).
    QueueBacklog,
    /// Failed / (completed + failed) of a queue over the rule's window, in
    /// percent, above `threshold`; quiet queues (nothing finished in the
    /// window) never match.
    FailureRate,
    /// Jobs wait but none is active (no worker is taking them).
    NoActiveWorker,
    /// The oldest waiting job of a queue is older than `threshold` seconds.
    JobLatency,
    /// An instance has missed its heartbeats (stale) or left (gone).
    InstanceStale,
    /// An instance's synced state differs from the database's (its hash
    /// differs at the same version, or it lags by more than `threshold`
    /// versions).
    InstanceDrifted,
    /// The queue backend does not answer.
    BackendUnreachable,
    /// The backend answers slower than `threshold` milliseconds.
    BackendSlow,
    /// A rate-limit policy rejected more than `threshold` requests in the
    /// last full minute.
    RateLimitRejections,
    /// A channel expected to carry traffic has carried none for the rule's
    /// window.
    ChannelSilent,
    /// The p95 of a queue's jobs' wait (ready → started) over the last five
    /// minutes, as its native workers report it, above `threshold` seconds:
    /// jobs do get taken, but too late for someone (the oldest waiting job
    /// says nothing of the many that wait a little too long each).
    WaitP95,
    /// The p95 of a queue's jobs' run (started → finished) over the last
    /// five minutes above `threshold` seconds: a dependency slowing down
    /// shows here before it shows as a backlog.
    RunP95,
    /// A Redis node's used memory as a share of its `maxmemory`, in
    /// percent, above `threshold`; nodes without a limit never match
    /// (nothing is evicted or refused for them).
    RedisMemory,
    /// Keys a Redis node evicted per minute above `threshold`, from the
    /// `evicted_keys` counter between the hub's last two reads (5 s apart),
    /// scaled to a minute.
    RedisEvictions,
    /// A Redis replica's lag behind its master above `threshold` seconds:
    /// seconds since the master last had its acknowledgement (replicas
    /// acknowledge every second, so 0–1 is healthy), or, with its link
    /// down, how long the link has been down. A replica whose master was
    /// not read (it is not among the configured nodes, or did not answer)
    /// has a lag only while its link is down.
    RedisReplicationLag,
    /// Clients of a Redis node waiting in a blocking command (`BLPOP`,
    /// `XREAD BLOCK`…) above `threshold`.
    RedisBlockedClients,
    /// A master of a Redis Cluster has no connected replica: losing it
    /// loses its slots' data. A single server is not expected to have
    /// replicas, so it never matches.
    RedisNoReplica,
    /// The share of a cache namespace's reads a tier answered, over every
    /// instance and the rule's window, in percent, below `threshold`: the
    /// source takes the load the cache was put there to keep off it. A
    /// namespace without reads in the window never matches.
    CacheHitRatio,
    /// Instances of a cache namespace holding the same keys hold other
    /// values: one missed an invalidation and serves a stale copy (the
    /// FHIR design's hash comparison, per namespace).
    CacheDrift,
}

impl RuleKind {
    /// Every kind, in the order the pages list them.
    pub const ALL: [RuleKind; 19] = [
        RuleKind::QueueBacklog,
        RuleKind::FailureRate,
        RuleKind::NoActiveWorker,
        RuleKind::JobLatency,
        RuleKind::WaitP95,
        RuleKind::RunP95,
        RuleKind::InstanceStale,
        RuleKind::InstanceDrifted,
        RuleKind::BackendUnreachable,
        RuleKind::BackendSlow,
        RuleKind::RateLimitRejections,
        RuleKind::ChannelSilent,
        RuleKind::RedisMemory,
        RuleKind::RedisEvictions,
        RuleKind::RedisReplicationLag,
        RuleKind::RedisBlockedClients,
        RuleKind::RedisNoReplica,
        RuleKind::CacheHitRatio,
        RuleKind::CacheDrift,
    ];

    /// The name used in configuration, the database, the API and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::QueueBacklog => "queue_backlog",
            RuleKind::FailureRate => "failure_rate",
            RuleKind::NoActiveWorker => "no_active_worker",
            RuleKind::JobLatency => "job_latency",
            RuleKind::InstanceStale => "instance_stale",
            RuleKind::InstanceDrifted => "instance_drifted",
            RuleKind::BackendUnreachable => "backend_unreachable",
            RuleKind::BackendSlow => "backend_slow",
            RuleKind::RateLimitRejections => "ratelimit_rejections",
            RuleKind::ChannelSilent => "channel_silent",
            RuleKind::WaitP95 => "wait_p95",
            RuleKind::RunP95 => "run_p95",
            RuleKind::RedisMemory => "redis_memory",
            RuleKind::RedisEvictions => "redis_evictions",
            RuleKind::RedisReplicationLag => "redis_replication_lag",
            RuleKind::RedisBlockedClients => "redis_blocked_clients",
            RuleKind::RedisNoReplica => "redis_no_replica",
            RuleKind::CacheHitRatio => "cache_hit_ratio",
            RuleKind::CacheDrift => "cache_drift",
        }
    }

    /// What a subject of this kind is (`queue`, `instance`, `policy`,
    /// `channel`, `backend`, `node`: a Redis node's `host:port`): the
    /// label name the subject goes under.
    pub fn subject(self) -> &'static str {
        match self {
            RuleKind::QueueBacklog
            | RuleKind::FailureRate
            | RuleKind::NoActiveWorker
            | RuleKind::JobLatency
            | RuleKind::WaitP95
            | RuleKind::RunP95 => "queue",
            RuleKind::InstanceStale | RuleKind::InstanceDrifted => "instance",
            RuleKind::BackendUnreachable | RuleKind::BackendSlow => "backend",
            RuleKind::RateLimitRejections => "policy",
            RuleKind::ChannelSilent => "channel",
            RuleKind::RedisMemory
            | RuleKind::RedisEvictions
            | RuleKind::RedisReplicationLag
            | RuleKind::RedisBlockedClients
            | RuleKind::RedisNoReplica => "node",
            RuleKind::CacheHitRatio | RuleKind::CacheDrift => "namespace",
        }
    }

    /// The unit of the threshold, for forms and messages (empty when the
    /// kind has no threshold).
    pub fn unit(self) -> &'static str {
        match self {
            RuleKind::QueueBacklog => "jobs",
            RuleKind::FailureRate | RuleKind::RedisMemory | RuleKind::CacheHitRatio => "%",
            RuleKind::JobLatency
            | RuleKind::WaitP95
            | RuleKind::RunP95
            | RuleKind::RedisReplicationLag => "s",
            RuleKind::InstanceDrifted => "versions",
            RuleKind::BackendSlow => "ms",
            RuleKind::RateLimitRejections | RuleKind::RedisEvictions => "per min",
            RuleKind::RedisBlockedClients => "clients",
            RuleKind::NoActiveWorker
            | RuleKind::InstanceStale
            | RuleKind::BackendUnreachable
            | RuleKind::ChannelSilent
            | RuleKind::RedisNoReplica
            | RuleKind::CacheDrift => "",
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuleKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        RuleKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = RuleKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown rule kind {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// How loudly an alert should be treated by whoever receives it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Someone should look soon.
    #[default]
    Warning,
    /// Someone should look now.
    Critical,
}

impl Severity {
    /// The label value (`warning`, `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity {other:?} (expected warning or critical)"
            )),
        }
    }
}

/// Every subject of a rule's kind.
pub const ANY_SUBJECT: &str = "*";

/// One alert rule, as stored and edited.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name (1–64 of `[a-z0-9_.-]`), what alerts and history refer
    /// to; the config file's rules are matched to stored ones by it.
    pub name: String,
    /// What it watches.
    pub kind: RuleKind,
    /// Which subject: a queue, instance, policy or channel name, or
    /// [`ANY_SUBJECT`] for all (a channel rule needs a name: a channel is
    /// only expected to carry traffic when someone says so).
    pub target: String,
    /// The limit the figure is compared with, in [`RuleKind::unit`].
    pub threshold: f64,
    /// The window a rate is measured over (failure rate, channel silence),
    /// in seconds.
    pub window_secs: u64,
    /// How long the condition must hold before the alert fires, so one bad
    /// sample pages nobody (`0` fires at once).
    pub for_secs: u64,
    /// How loudly to tell.
    pub severity: Severity,
    /// Disabled rules are kept but not evaluated (their alerts resolve).
    pub enabled: bool,
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertStatus {
    /// The condition holds, for less than the rule's `for` so far.
    Pending,
    /// The condition has held for the rule's `for`: receivers are told.
    Firing,
    /// It fired and the condition no longer holds (kept as history).
    Resolved,
}

impl AlertStatus {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl FromStr for AlertStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(AlertStatus::Pending),
            "firing" => Ok(AlertStatus::Firing),
            "resolved" => Ok(AlertStatus::Resolved),
            other => Err(format!("unknown alert status {other:?}")),
        }
    }
}

/// One alert: a rule's condition on one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Stable identity of (rule, subject), the same across restarts and
    /// instances (Alertmanager's `fingerprint`): 16 hex digits.
    pub fingerprint: String,
    /// The rule's name.
    pub rule: String,
    /// The rule's kind.
    pub kind: RuleKind,
    /// The subject (queue, instance, policy or channel name; `backend`;
    /// a Redis node's `host:port`).
    pub subject: String,
    /// Where it is in its life.
    pub status: AlertStatus,
    /// The rule's severity when it was raised.
    pub severity: Severity,
    /// The figure at the last evaluation, in the kind's unit.
    pub value: f64,
    /// One line for people ("Queue emails: 7.5% of jobs failed over 5 min
    /// (threshold 5%)").
    pub summary: String,
    /// When the condition started holding (ms since the epoch).
    pub pending_since: i64,
    /// When it fired.
    pub firing_since: Option<i64>,
    /// When it resolved.
    pub resolved_at: Option<i64>,
    /// Who acknowledged it and when: it keeps firing, but people know
    /// someone is on it.
    pub acknowledged: Option<(String, i64)>,
    /// Until when receivers are not told about it (ms since the epoch).
    pub silenced_until: Option<i64>,
}

impl Alert {
    /// True while it is pending or firing.
    pub fn is_active(&self) -> bool {
        self.status != AlertStatus::Resolved
    }

    /// True when receivers should not be told about it at `now`.
    pub fn is_silenced(&self, now: i64) -> bool {
        self.silenced_until.is_some_and(|until| until > now)
    }
}

/// The stable fingerprint of (rule, subject): FNV-1a 64 over both with a
/// separator no name can contain.
pub fn fingerprint(rule: &str, subject: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in rule.bytes().chain([0u8]).chain(subject.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// How the queue backend was doing at the observation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendObservation {
    /// Whether it answered.
    pub reachable: bool,
    /// How long its health check took, when it answered.
    pub latency_ms: Option<f64>,
    /// Why not, when it did not.
    pub problem: Option<String>,
}

/// Completed and failed jobs of one minute of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteCounts {
    /// Start of the minute (ms since the epoch).
    pub minute: i64,
    /// Jobs completed in it.
    pub completed: u64,
    /// Jobs that failed for good in it.
    pub failed: u64,
}

/// One queue at the observation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueObservation {
    /// The queue.
    pub name: String,
    /// Jobs waiting (including prioritized).
    pub waiting: u64,
    /// Jobs being processed.
    pub active: u64,
    /// Whether the queue is paused (a paused queue's backlog and missing
    /// workers are intended).
    pub paused: bool,
    /// Completed and failed per minute, oldest first (up to an hour).
    pub minutes: Vec<MinuteCounts>,
    /// Age of the oldest waiting job (ms), when any waits.
    pub oldest_waiting_ms: Option<i64>,
    /// Its live workers from the worker registry, when it could be read.
    pub workers: Option<crate::workers::QueueWorkers>,
    /// p95 wait (ready → started) over the last five minutes with
    /// attempts, ms; none when no native worker reported an attempt
    /// recently (nothing is known then, which is not "fast").
    pub wait_p95_ms: Option<u64>,
    /// p95 run (started → finished) over the same minutes, ms.
    pub run_p95_ms: Option<u64>,
}

/// Whether an instance is heartbeating, as the instances page shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstanceHealth {
    /// Heartbeat recent.
    #[default]
    Live,
    /// Heartbeats missed.
    Stale,
    /// Gone (expired or left).
    Gone,
}

/// One instance at the observation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceObservation {
    /// The instance id.
    pub id: String,
    /// Its heartbeat state.
    pub health: InstanceHealth,
    /// Versions behind the database's latest, when it reports sync status.
    pub lag: Option<u64>,
    /// Its state hash differs from the database's at the same version.
    pub drifted: bool,
}

/// One rate-limit policy at the observation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyObservation {
    /// The policy.
    pub name: String,
    /// Requests rejected in the last full minute.
    pub rejected_last_minute: u64,
}

/// One channel at the observation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelObservation {
    /// The channel.
    pub name: String,
    /// When its last message was seen (ms since the epoch), if ever.
    pub last_message_at: Option<i64>,
}

/// One node of the configured Redis at the observation (the hub's latest
/// read). Figures a node did not give are `None`, and rules then do not
/// match rather than guess.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedisNodeObservation {
    /// `host:port`.
    pub address: String,
    /// Whether it answered: an unreachable node matches no Redis rule
    /// (its figures are unknown, and the page and health check say it is
    /// down).
    pub reachable: bool,
    /// A replica (else a master, or a single server).
    pub replica: bool,
    /// It is a node of a Redis Cluster.
    pub cluster: bool,
    /// Bytes used (`used_memory`).
    pub used_memory: Option<u64>,
    /// Its `maxmemory`, when one is set (0, unlimited, is `None`).
    pub maxmemory: Option<u64>,
    /// Keys evicted per minute between the hub's last two reads.
    pub evicted_per_min: Option<f64>,
    /// Clients waiting in a blocking command.
    pub blocked_clients: Option<u64>,
    /// On a master: replicas connected now.
    pub connected_replicas: Option<u64>,
    /// On a replica: its master's `host:port`, when known.
    pub master: Option<String>,
    /// On a replica: seconds behind its master (see
    /// [`RuleKind::RedisReplicationLag`]).
    pub lag_secs: Option<u64>,
    /// On a replica: its link to the master is down (`lag_secs` is then
    /// how long it has been down).
    pub link_down: bool,
}

/// Everything rules are evaluated against, taken at one moment. Built by
/// the server from the live hub's snapshot; tests build it by hand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// When it was taken (ms since the epoch).
    pub at: i64,
    /// The queue backend.
    pub backend: BackendObservation,
    /// Every queue.
    pub queues: Vec<QueueObservation>,
    /// Every instance in the registry.
    pub instances: Vec<InstanceObservation>,
    /// Every rate-limit policy.
    pub policies: Vec<PolicyObservation>,
    /// Every channel seen, plus those rules name that were never seen.
    pub channels: Vec<ChannelObservation>,
    /// When the dashboard started observing channels (ms since the epoch):
    /// a channel never seen is silent since then.
    pub observing_since: i64,
    /// Every node of the configured Redis, as the hub last read them
    /// (empty without Redis, or before the first read).
    pub redis: Vec<RedisNodeObservation>,
    /// Every cache namespace the instances report.
    pub caches: Vec<CacheObservation>,
}

/// One cache namespace at the observation, over every instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheObservation {
    /// The namespace.
    pub namespace: String,
    /// Hits and reads per minute of the last hour, oldest first.
    pub minutes: Vec<crate::cache::CacheMinute>,
    /// Instances holding the same keys as others with other values.
    pub drifted: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in RuleKind::ALL {
            assert_eq!(kind.as_str().parse::<RuleKind>(), Ok(kind));
        }
        assert!(
            "nope"
                .parse::<RuleKind>()
                .unwrap_err()
                .contains("queue_backlog")
        );
        for s in [Severity::Warning, Severity::Critical] {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        }
        for s in [
            AlertStatus::Pending,
            AlertStatus::Firing,
            AlertStatus::Resolved,
        ] {
            assert_eq!(s.as_str().parse::<AlertStatus>(), Ok(s));
        }
    }

    #[test]
    fn fingerprints_are_stable_and_separate_rule_from_subject() {
        assert_eq!(fingerprint("a", "b"), fingerprint("a", "b"));
        assert_ne!(fingerprint("ab", "c"), fingerprint("a", "bc"));
        assert_eq!(fingerprint("a", "b").len(), 16);
    }
}
