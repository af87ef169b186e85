//! Reading and operating queues of Node's BullMQ (v5) that live in Redis,
//! so Switchyard can show and repair queues that other services own while
//! their real BullMQ workers keep running.
//!
//! Everything here follows BullMQ's own data layout and semantics, learnt
//! from its documentation and its scripts (the Lua here is Switchyard's
//! own):
//!
//! - keys are `<prefix>:<queue>:<suffix>`: lists `wait`, `paused` and
//!   `active` (jobs join at the left, workers take from the right); sorted
//!   sets `delayed` (score = due ms × 4096 + sequence), `prioritized`
//!   (score = priority × 2³² + counter `pc`), `waiting-children`,
//!   `completed` and `failed` (score = finish time in ms); the hash `meta`
//!   (a queue exists when it has one); the stream `events`; the sorted set
//!   `marker`; and per job the hash `<id>`, the list `<id>:logs` and the
//!   string `<id>:lock` held by the worker processing it;
//! - a paused queue has the field `paused` in `meta`, and its ready jobs sit
//!   in `paused` instead of `wait`;
//! - idle workers block on the `marker` sorted set: whenever a job becomes
//!   ready again (retry, promote, resume) member `"0"` must be added at
//!   score 0, or workers sleep until their drain delay ends;
//! - every transition appends an event (`waiting` with `prev`, `removed`,
//!   `paused`, `resumed`, `cleaned`…) to `events`, trimmed to about the
//!   `opts.maxLenEvents` field of `meta` (10 000 by default).
//!
//! Each state change is one Lua script, so it is atomic with respect to
//! BullMQ's own scripts.

mod flows;
pub mod groups;
mod latency;
mod schedulers;
mod workers;

pub use flows::{
    BullChildren, BullDependencies, BullFlow, BullFlowJob, BullOnFailure, MAX_FLOW_CHILDREN,
};
pub use latency::{
    BullLatencyPoll, BullLatencyReader, KEPT_MINUTES, MAX_EVENTS_READ, MAX_TRACKED_JOBS,
    RECENT_MINUTES,
};
pub use schedulers::{
    BullScheduler, BullSchedulerKind, BullSchedulerPage, BullTemplate, MAX_TEMPLATE_BYTES,
};
pub use workers::{BullWorker, MAX_WORKERS, parse_client_list};

use std::collections::HashMap;

use futures_util::StreamExt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;

use crate::error::{CoordError, Result};
use crate::redis::{self as conn, Conn, Endpoint, Reconnect, glob_escape};

/// A dashboard action may wait 5 s for Redis and one reconnection attempt
/// before reporting the outage.
const RECONNECT: Reconnect = Reconnect {
    connect_timeout: Duration::from_secs(2),
    response_timeout: Duration::from_secs(5),
    retries: 1,
    max_delay: Duration::from_secs(1),
};

/// Longest queue name accepted: BullMQ sets no limit, but names end up in
/// keys and URLs, and nothing legitimate is longer.
pub const MAX_QUEUE_NAME: usize = 200;

/// Longest job id accepted (custom ids and scheduler ids included).
pub const MAX_JOB_ID: usize = 512;

/// Most jobs one page of [`BullMq::jobs`] returns.
pub const MAX_PAGE: u64 = 100;

/// Most jobs one script call of a bulk operation touches, so one call never
/// blocks Redis for long.
const MAX_BATCH: usize = 1000;

/// Connections kept idle for [`BullMq::read_events`].
const MAX_IDLE_BLOCKING: usize = 4;

/// How much longer than its `BLOCK` a blocking read may take before it is
/// given up as an outage.
const BLOCK_GRACE: Duration = Duration::from_secs(5);

macro_rules! script {
    ($name:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/common.lua"),
                "\n",
                include_str!(concat!("lua/", $name))
            ))
        })
    };
}

static RETRY: LazyLock<Script> = script!("retry.lua");
static PROMOTE: LazyLock<Script> = script!("promote.lua");
static REMOVE: LazyLock<Script> = script!("remove.lua");
static PAUSE: LazyLock<Script> = script!("pause.lua");
static CLEAN: LazyLock<Script> = script!("clean.lua");
static SCHEDULERS: LazyLock<Script> = script!("schedulers.lua");
static REMOVE_SCHEDULER: LazyLock<Script> = script!("remove_scheduler.lua");
static RUN_SCHEDULER: LazyLock<Script> = script!("run_scheduler.lua");

/// The states a BullMQ job can be in, each one key of the queue, so pages
/// can list and count them the way BullMQ's own tools do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BullState {
    /// Ready, in the `wait` list.
    Waiting,
    /// Taken by a worker, in the `active` list.
    Active,
    /// Due later, in the `delayed` sorted set.
    Delayed,
    /// Ready with a priority, in the `prioritized` sorted set.
    Prioritized,
    /// A parent waiting for its children, in `waiting-children`.
    WaitingChildren,
    /// Finished successfully, in `completed`.
    Completed,
    /// Finished with an error (attempts exhausted), in `failed`.
    Failed,
    /// Ready while the queue is paused, in the `paused` list.
    Paused,
}

impl BullState {
    /// Every state, in the order BullMQ dashboards show them.
    pub const ALL: [BullState; 8] = [
        BullState::Waiting,
        BullState::Active,
        BullState::Delayed,
        BullState::Prioritized,
        BullState::WaitingChildren,
        BullState::Completed,
        BullState::Failed,
        BullState::Paused,
    ];

    /// BullMQ's name of the state (as in `getJobCounts`), used in URLs and
    /// JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BullState::Waiting => "waiting",
            BullState::Active => "active",
            BullState::Delayed => "delayed",
            BullState::Prioritized => "prioritized",
            BullState::WaitingChildren => "waiting-children",
            BullState::Completed => "completed",
            BullState::Failed => "failed",
            BullState::Paused => "paused",
        }
    }

    /// The key suffix holding the state's jobs (`waiting` lives in `wait`).
    fn suffix(self) -> &'static str {
        match self {
            BullState::Waiting => "wait",
            other => other.as_str(),
        }
    }

    /// True for the states kept in lists rather than sorted sets.
    fn is_list(self) -> bool {
        matches!(
            self,
            BullState::Waiting | BullState::Active | BullState::Paused
        )
    }
}

impl std::fmt::Display for BullState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses BullMQ's names (and `wait`, the key name) so URLs can carry a
/// state; anything else is bad input.
impl FromStr for BullState {
    type Err = CoordError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "wait" => Ok(BullState::Waiting),
            _ => BullState::ALL
                .into_iter()
                .find(|state| state.as_str() == s)
                .ok_or_else(|| CoordError::InvalidOptions(format!("unknown BullMQ state {s:?}"))),
        }
    }
}

/// How many jobs each state holds, read in one round trip, so a dashboard
/// shows the same numbers as BullMQ's `getJobCounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullCounts {
    /// Jobs in `wait`.
    pub waiting: u64,
    /// Jobs in `active`.
    pub active: u64,
    /// Jobs in `delayed`.
    pub delayed: u64,
    /// Jobs in `prioritized`.
    pub prioritized: u64,
    /// Jobs in `waiting-children`.
    pub waiting_children: u64,
    /// Jobs in `completed` (as far as retention kept them).
    pub completed: u64,
    /// Jobs in `failed` (as far as retention kept them).
    pub failed: u64,
    /// Jobs in `paused`.
    pub paused: u64,
    /// Whether the queue is paused (meta field `paused`).
    pub is_paused: bool,
}

impl BullCounts {
    /// The count of one state, so pages can loop over [`BullState::ALL`].
    pub fn get(&self, state: BullState) -> u64 {
        match state {
            BullState::Waiting => self.waiting,
            BullState::Active => self.active,
            BullState::Delayed => self.delayed,
            BullState::Prioritized => self.prioritized,
            BullState::WaitingChildren => self.waiting_children,
            BullState::Completed => self.completed,
            BullState::Failed => self.failed,
            BullState::Paused => self.paused,
        }
    }
}

/// One BullMQ job as stored in its hash; JSON fields are kept as raw text
/// so nothing is lost or reformatted on the way to a page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BullJob {
    /// The job id (BullMQ's counter or a custom id).
    pub id: String,
    /// The job name given to `queue.add`.
    pub name: String,
    /// The job data, raw JSON text.
    pub data: String,
    /// The job options, raw JSON text (BullMQ abbreviates some keys).
    pub opts: String,
    /// When the job was added (ms since the epoch).
    pub timestamp: i64,
    /// Its delay in ms (0 once promoted or never delayed).
    pub delay: i64,
    /// Its priority (0 = none; lower runs first).
    pub priority: i64,
    /// When a worker last started it (ms).
    pub processed_on: Option<i64>,
    /// When it last finished (ms).
    pub finished_on: Option<i64>,
    /// Attempts that ended (BullMQ's `attemptsMade`, field `atm`).
    pub attempts_made: u64,
    /// Attempts that started (field `ats`).
    pub attempts_started: u64,
    /// The error message of the last failure.
    pub failed_reason: Option<String>,
    /// Stack traces of the failures, newest last.
    pub stacktrace: Vec<String>,
    /// What the processor returned, raw JSON text.
    pub returnvalue: Option<String>,
    /// The last progress reported, raw JSON text.
    pub progress: Option<String>,
    /// The newest [`crate::queue::SHOWN_LOG_LINES`] log lines, oldest
    /// first; only filled by [`BullMq::job`].
    pub logs: Vec<String>,
    /// Lines in the job's log in all (BullMQ trims it to `keepLogs`).
    pub logs_count: u64,
    /// The state the job is in; only filled by [`BullMq::job`].
    pub state: Option<BullState>,
}

impl BullJob {
    /// Attempts its options allow (`opts.attempts`, 1 when not set).
    pub fn attempts_allowed(&self) -> u64 {
        attempts_of(&self.opts)
    }

    /// Whether its last failure threw BullMQ's `UnrecoverableError`
    /// (which fails a job at once whatever attempts it has left): BullMQ
    /// keeps no flag, but the error's stack, stored last in `stacktrace`,
    /// starts with its name. Without a stack (`stackTraceLimit: 0`) it
    /// cannot be told.
    pub fn threw_unrecoverable(&self) -> bool {
        self.stacktrace
            .last()
            .is_some_and(|stack| stack.trim_start().starts_with("UnrecoverableError"))
    }
}

/// A stream entry id (`<ms>-<seq>`) as numbers.
pub fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// `attempts` of a job's options JSON; 1 (BullMQ's default) when absent
/// or unreadable.
fn attempts_of(opts: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(opts)
        .ok()
        .and_then(|v| v.get("attempts").and_then(serde_json::Value::as_u64))
        .unwrap_or(1)
        .max(1)
}

/// A job that failed and will run again: BullMQ put it back in `delayed`
/// (a backoff) or `wait`/`prioritized` (none) with its last error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BullRetry {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its last error.
    pub reason: String,
    /// Attempts made (`atm`).
    pub attempts_made: u64,
    /// Attempts its options allow.
    pub attempts: u64,
    /// When it runs again (delayed jobs), None when it waits for a worker.
    pub run_at: Option<i64>,
    /// Where it is.
    pub state: BullState,
}

/// A queue's retrying jobs as far as they were looked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullRetrying {
    /// Those found, waiting ones first, then delayed by when they run.
    pub jobs: Vec<BullRetry>,
    /// Jobs looked at.
    pub scanned: u64,
    /// False when `delayed`, `wait` or `prioritized` held more than was
    /// looked at: there may be more.
    pub complete: bool,
}

/// One entry of a queue's `events` stream, so a page can follow BullMQ's
/// own events and Switchyard's alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BullEvent {
    /// The queue whose stream holds it.
    pub queue: String,
    /// The stream entry id, to read on from.
    pub id: String,
    /// The event name (`added`, `waiting`, `active`, `completed`, `failed`,
    /// `removed`, `paused`, `resumed`, `cleaned`…).
    pub event: String,
    /// The job it is about, when it is about one (field `jobId`).
    pub job_id: Option<String>,
    /// The other fields (`prev`, `returnvalue`, `failedReason`, `count`…),
    /// in stream order, without `event` and `jobId`.
    pub fields: Vec<(String, String)>,
}

/// A handle on the BullMQ queues under one key prefix. Cheap to clone:
/// clones share one auto-reconnecting connection (and the idle connections
/// kept for blocking reads).
#[derive(Clone)]
pub struct BullMq {
    conn: Conn,
    endpoint: Endpoint,
    prefix: String,
    blocking: Arc<Mutex<Vec<Conn>>>,
}

/// Shows the prefix only: the URL (and any password in it) is not kept.
impl std::fmt::Debug for BullMq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BullMq")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Refuses queue names that could reach other keys or break key parsing:
/// empty, longer than [`MAX_QUEUE_NAME`], or holding `:` or control
/// characters. Braces are fine: `{emails}` is how a BullMQ queue is given
/// a slot of its own on Redis Cluster.
fn check_queue(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_QUEUE_NAME {
        Some("must be at most 200 bytes")
    } else if name.contains(':') {
        Some("must not contain ':'")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CoordError::InvalidQueueName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Refuses job ids that are empty, too long or hold control characters
/// (`:` is fine: BullMQ's scheduler ids contain it).
/// The names of a queue's own keys in BullMQ 5 (`<prefix>:<queue>:meta`,
/// `…:wait`; its `QueueKeys`): a job id is the last part of its key, so
/// one of these names the queue's structure, never a job. (Other keys
/// under the prefix, such as a job's `:logs`, are told apart inside the
/// scripts: a job is a hash with a `timestamp`.)
pub const RESERVED_JOB_IDS: [&str; 18] = [
    "meta",
    "id",
    "wait",
    "paused",
    "active",
    "prioritized",
    "pc",
    "marker",
    "events",
    "delayed",
    "completed",
    "failed",
    "waiting-children",
    "stalled",
    "stalled-check",
    "limiter",
    "repeat",
    "de",
];

fn check_job_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        Some("must not be empty")
    } else if RESERVED_JOB_IDS.contains(&id) {
        Some("names one of the queue's own keys, not a job")
    } else if id.len() > MAX_JOB_ID {
        Some("must be at most 512 bytes")
    } else if id.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CoordError::InvalidJobId {
            id: id.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks a stream id to read from: `$`, `0`, `<ms>` or `<ms>-<seq>`.
fn check_stream_id(id: &str) -> Result<()> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let ok = id == "$"
        || match id.split_once('-') {
            Some((ms, seq)) => digits(ms) && digits(seq),
            None => digits(id),
        };
    if ok {
        Ok(())
    } else {
        Err(CoordError::InvalidOptions(format!(
            "invalid event stream id {id:?}"
        )))
    }
}

/// Milliseconds since the epoch by this machine's clock (BullMQ stamps
/// jobs with its clients' clocks too).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A timestamp field; BullMQ writes integers, but accept `1.5e12` too.
fn parse_ms(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .or_else(|| text.parse::<f64>().ok().map(|f| f as i64))
}

/// Builds a job from its hash fields (read as bytes, decoded leniently).
fn parse_job(id: &str, hash: HashMap<String, Vec<u8>>) -> BullJob {
    let text = |field: &str| {
        hash.get(field)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    };
    let number = |field: &str| text(field).as_deref().and_then(parse_ms);
    let count = |field: &str| {
        number(field)
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0)
    };
    let stacktrace = match text("stacktrace") {
        None => Vec::new(),
        Some(raw) => match serde_json::from_str::<Vec<serde_json::Value>>(&raw) {
            Ok(items) => items
                .into_iter()
                .filter_map(|item| match item {
                    serde_json::Value::String(s) => Some(s),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                })
                .collect(),
            Err(_) => vec![raw],
        },
    };
    BullJob {
        id: id.to_owned(),
        name: text("name").unwrap_or_default(),
        data: text("data").unwrap_or_else(|| "{}".to_owned()),
        opts: text("opts").unwrap_or_else(|| "{}".to_owned()),
        timestamp: number("timestamp").unwrap_or(0),
        delay: number("delay").unwrap_or(0),
        priority: number("priority").unwrap_or(0),
        processed_on: number("processedOn"),
        finished_on: number("finishedOn"),
        // Old BullMQ versions wrote `attemptsMade`, newer ones `atm`.
        attempts_made: if hash.contains_key("attemptsMade") {
            count("attemptsMade")
        } else {
            count("atm")
        },
        attempts_started: count("ats"),
        failed_reason: text("failedReason").filter(|s| !s.is_empty()),
        stacktrace,
        returnvalue: text("returnvalue"),
        progress: text("progress"),
        logs: Vec::new(),
        logs_count: 0,
        state: None,
    }
}

/// True when `base` holds a complete hash tag (`{…}` with something
/// inside), so every key built by appending to it lands in its slot.
fn has_hash_tag(base: &str) -> bool {
    base.find('{')
        .is_some_and(|open| base[open + 1..].find('}').is_some_and(|close| close > 0))
}

/// Entries deprecated BullMQ versions left in `wait`/`paused` as markers.
fn is_legacy_marker(id: &str) -> bool {
    id.starts_with("0:")
}

/// One stream of an `XREAD` answer: key, then entries of id and flat
/// field/value pairs.
type StreamReply = Vec<(String, Vec<(String, Vec<String>)>)>;

impl BullMq {
    /// Connects (`redis://` or `rediss://`) and checks with `PING` within
    /// 5 s, so a bad URL fails at start-up. `prefix` is BullMQ's `prefix`
    /// option (`bull` by default); it must be non-empty without whitespace.
    /// A queue name that could escape its keys (`:`, braces, longer than
    /// 200 bytes) is refused with [`CoordError::InvalidQueueName`] by every
    /// method taking one.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        conn::check_prefix(prefix, &[], "whitespace")?;
        let (endpoint, conn) = conn::connect(url, RECONNECT).await?;
        Ok(Self {
            conn,
            endpoint,
            prefix: prefix.to_owned(),
            blocking: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Round trip of a `PING`, for readiness checks: the monitor reads
    /// nothing while there is no queue to watch, so its last read cannot
    /// tell whether this Redis still answers.
    /// Besides `PING`, the capability probe: a cluster node reached with
    /// a plain URL, or a cluster that lost slots, fails it.
    pub async fn ping(&self) -> Result<std::time::Duration> {
        let probe_key = format!("{}:meta", self.prefix);
        conn::probe_capability(&mut self.conn.clone(), &probe_key)
            .await
            .map(|probed| probed.latency)
    }

    /// Checks a queue name ([`check_queue`]) and, on Redis Cluster, that
    /// all of the queue's keys share one slot: BullMQ's scripts touch
    /// several of them at once, so on a cluster BullMQ itself only works
    /// with a hash-tagged prefix (`{bull}`) or queue name (`{emails}`).
    fn check(&self, queue: &str) -> Result<()> {
        check_queue(queue)?;
        if self.endpoint.is_cluster() && !has_hash_tag(&self.base(queue)) {
            return Err(CoordError::InvalidQueueName {
                name: queue.to_owned(),
                reason: "on Redis Cluster needs a hash-tagged prefix ({bull}) or name ({emails}), \
                         as BullMQ itself does",
            });
        }
        Ok(())
    }

    /// True when this handle talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.endpoint.is_cluster()
    }

    /// The key prefix the handle works under, for display and links.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:<queue>:<suffix>`.
    fn key(&self, queue: &str, suffix: &str) -> String {
        format!("{}:{queue}:{suffix}", self.prefix)
    }

    /// The base job keys are built on: `<prefix>:<queue>:`.
    fn base(&self, queue: &str) -> String {
        format!("{}:{queue}:", self.prefix)
    }

    /// The eight keys every "make ready" script takes first (common.lua).
    fn ready_keys(&self, queue: &str) -> [String; 8] {
        [
            "meta",
            "active",
            "wait",
            "paused",
            "prioritized",
            "pc",
            "marker",
            "events",
        ]
        .map(|suffix| self.key(queue, suffix))
    }

    /// Finds the queues under the prefix by their `meta` hashes (BullMQ
    /// writes one for every queue), so an operator need not type names.
    /// The scan (of every master, on a cluster) stops after about
    /// `max_scanned` keys in all, so a huge keyspace costs a bounded time;
    /// names come back sorted and deduplicated, and names this module
    /// would refuse are left out (on a cluster, queues without a hash tag
    /// too, with a warning). Callers should cache.
    pub async fn discover(&self, max_scanned: usize) -> Result<Vec<String>> {
        let pattern = format!("{}:*:meta", glob_escape(&self.prefix));
        let head = format!("{}:", self.prefix);
        let keys = self
            .conn
            .clone()
            .scan_match(&pattern, max_scanned)
            .await
            .map_err(CoordError::from)?;
        let mut names = std::collections::BTreeSet::new();
        let mut untagged = 0usize;
        for key in keys {
            let name = key
                .strip_prefix(&head)
                .and_then(|rest| rest.strip_suffix(":meta"));
            match name {
                Some(name) if check_queue(name).is_ok() => {
                    if self.check(name).is_ok() {
                        names.insert(name.to_owned());
                    } else {
                        untagged += 1;
                    }
                }
                _ => {}
            }
        }
        if untagged > 0 {
            tracing::warn!(
                queues = untagged,
                prefix = %self.prefix,
                "BullMQ queues without a hash tag on Redis Cluster are left out: BullMQ needs a {{bull}} prefix or {{queue}} names there"
            );
        }
        Ok(names.into_iter().collect())
    }

    /// The size of every state plus the pause flag, in one pipeline of
    /// O(1) commands, so a dashboard can poll it cheaply.
    pub async fn counts(&self, queue: &str) -> Result<BullCounts> {
        self.check(queue)?;
        let mut pipe = redis::pipe();
        for state in BullState::ALL {
            let key = self.key(queue, state.suffix());
            if state.is_list() {
                pipe.llen(key);
            } else {
                pipe.zcard(key);
            }
        }
        pipe.hexists(self.key(queue, "meta"), "paused");
        let (sizes, is_paused): ([u64; 8], bool) = {
            let reply: Vec<u64> = pipe
                .query_async(&mut self.conn.clone())
                .await
                .map_err(CoordError::from)?;
            let mut sizes = [0u64; 8];
            for (slot, value) in sizes.iter_mut().zip(&reply) {
                *slot = *value;
            }
            (sizes, reply.get(8).copied().unwrap_or(0) == 1)
        };
        let mut counts = BullCounts {
            is_paused,
            ..BullCounts::default()
        };
        for (state, size) in BullState::ALL.into_iter().zip(sizes) {
            let slot = match state {
                BullState::Waiting => &mut counts.waiting,
                BullState::Active => &mut counts.active,
                BullState::Delayed => &mut counts.delayed,
                BullState::Prioritized => &mut counts.prioritized,
                BullState::WaitingChildren => &mut counts.waiting_children,
                BullState::Completed => &mut counts.completed,
                BullState::Failed => &mut counts.failed,
                BullState::Paused => &mut counts.paused,
            };
            *slot = size;
        }
        Ok(counts)
    }

    /// One page of a state's jobs in the order BullMQ's `getJobs` shows
    /// them: lists from the head (the most recently queued first; workers
    /// take from the tail), sorted sets by score descending (the latest
    /// finished or due first; for `prioritized` the lowest priority first).
    /// `limit` is capped at [`MAX_PAGE`]; jobs whose hash vanished between
    /// the two reads are skipped.
    pub async fn jobs(
        &self,
        queue: &str,
        state: BullState,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<BullJob>> {
        self.check(queue)?;
        let limit = limit.min(MAX_PAGE);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let start = i64::try_from(offset)
            .map_err(|_| CoordError::InvalidOptions("offset too large".into()))?;
        let stop = start.saturating_add(i64::try_from(limit).unwrap_or(0) - 1);
        let key = self.key(queue, state.suffix());
        let mut conn = self.conn.clone();
        let ids: Vec<String> = if state.is_list() {
            redis::cmd("LRANGE")
        } else {
            redis::cmd("ZREVRANGE")
        }
        .arg(&key)
        .arg(start)
        .arg(stop)
        .query_async(&mut conn)
        .await
        .map_err(CoordError::from)?;
        let ids: Vec<String> = ids.into_iter().filter(|id| !is_legacy_marker(id)).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.key(queue, id));
        }
        let hashes: Vec<HashMap<String, Vec<u8>>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(CoordError::from)?;
        Ok(ids
            .iter()
            .zip(hashes)
            .filter(|(_, hash)| !hash.is_empty())
            .map(|(id, hash)| parse_job(id, hash))
            .collect())
    }

    /// The newest `limit` failed jobs as an error-group book needs them
    /// (id, name, reason, when), to fill it: one `ZREVRANGE` and one
    /// pipelined `HMGET` per thousand jobs. Ids whose hash is gone are
    /// skipped.
    pub async fn failed_jobs(&self, queue: &str, limit: usize) -> Result<Vec<groups::FailedJob>> {
        self.check(queue)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
            .arg(self.key(queue, "failed"))
            .arg(0)
            .arg(limit.saturating_sub(1))
            .arg("WITHSCORES")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        let mut jobs = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
            let read = self.failed_fields(queue, &ids).await?;
            for ((id, score), fields) in chunk.iter().zip(read) {
                if let Some((name, reason, at)) = fields {
                    jobs.push(groups::FailedJob {
                        id: id.clone(),
                        name,
                        reason,
                        // The score is the finish time; a hash without
                        // one is older than this field.
                        at: at.unwrap_or(*score as i64),
                        seen: (0, 0),
                    });
                }
            }
        }
        Ok(jobs)
    }

    /// The id of the newest entry of a queue's `events` stream as (ms,
    /// sequence), (0, 0) when it has none: what a fill of an error-group
    /// book knows events up to.
    pub async fn events_head(&self, queue: &str) -> Result<(u64, u64)> {
        self.check(queue)?;
        let newest: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
            .arg(self.key(queue, "events"))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        Ok(newest
            .first()
            .and_then(|(id, _)| parse_stream_id(id))
            .unwrap_or((0, 0)))
    }

    /// Of `ids` (that events said failed), those in the failed set now,
    /// with what an error-group book needs; one pipeline.
    pub async fn failed_now(&self, queue: &str, ids: &[&str]) -> Result<Vec<groups::FailedJob>> {
        self.check(queue)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.zscore(self.key(queue, "failed"), id);
        }
        let scores: Vec<Option<f64>> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        let failed: Vec<(&str, f64)> = ids
            .iter()
            .zip(scores)
            .filter_map(|(id, score)| Some((*id, score?)))
            .collect();
        let names: Vec<&str> = failed.iter().map(|(id, _)| *id).collect();
        let read = self.failed_fields(queue, &names).await?;
        Ok(failed
            .into_iter()
            .zip(read)
            .filter_map(|((id, score), fields)| {
                let (name, reason, at) = fields?;
                Some(groups::FailedJob {
                    id: id.to_owned(),
                    name,
                    reason,
                    at: at.unwrap_or(score as i64),
                    seen: (0, 0),
                })
            })
            .collect())
    }

    /// The jobs that failed and will run again, BullMQ's retrying set: of
    /// the first `scan` jobs of `wait` and `prioritized` (next to run) and
    /// of `delayed` (soonest first), those with attempts made and a last
    /// error. One read per state and one pipelined `HMGET` per thousand.
    pub async fn retrying(&self, queue: &str, scan: usize) -> Result<BullRetrying> {
        self.check(queue)?;
        let scan = scan.max(1);
        let stop = scan - 1;
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        // Workers take from the tail of `wait`: its last entries run first.
        pipe.cmd("LRANGE")
            .arg(self.key(queue, "wait"))
            .arg(-(scan as i64))
            .arg(-1)
            .cmd("ZRANGE")
            .arg(self.key(queue, "prioritized"))
            .arg(0)
            .arg(stop)
            .cmd("ZRANGE")
            .arg(self.key(queue, "delayed"))
            .arg(0)
            .arg(stop)
            .arg("WITHSCORES")
            .llen(self.key(queue, "wait"))
            .zcard(self.key(queue, "prioritized"))
            .zcard(self.key(queue, "delayed"));
        type Reply = (Vec<String>, Vec<String>, Vec<(String, f64)>, u64, u64, u64);
        let (mut wait, prioritized, delayed, n_wait, n_prio, n_delayed): Reply = pipe
            .query_async(&mut conn)
            .await
            .map_err(CoordError::from)?;
        wait.reverse();
        let mut candidates: Vec<(String, Option<i64>, BullState)> = Vec::new();
        candidates.extend(
            wait.into_iter()
                .filter(|id| !is_legacy_marker(id))
                .map(|id| (id, None, BullState::Waiting)),
        );
        candidates.extend(
            prioritized
                .into_iter()
                .map(|id| (id, None, BullState::Prioritized)),
        );
        // A delayed score is the due time × 4096 plus a sequence.
        candidates.extend(
            delayed
                .into_iter()
                .map(|(id, score)| (id, Some((score / 4096.0) as i64), BullState::Delayed)),
        );
        let scanned = candidates.len() as u64;
        let complete = n_wait <= scan as u64 && n_prio <= scan as u64 && n_delayed <= scan as u64;
        let mut jobs = Vec::new();
        for chunk in candidates.chunks(1000) {
            let mut pipe = redis::pipe();
            for (id, _, _) in chunk {
                pipe.cmd("HMGET")
                    .arg(self.key(queue, id))
                    .arg("name")
                    .arg("failedReason")
                    .arg("atm")
                    .arg("attemptsMade")
                    .arg("opts");
            }
            type Fields = (
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
            );
            let rows: Vec<Fields> = pipe
                .query_async(&mut conn)
                .await
                .map_err(CoordError::from)?;
            for ((id, run_at, state), (name, reason, atm, legacy, opts)) in chunk.iter().zip(rows) {
                let made = legacy
                    .or(atm)
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                let Some(reason) = reason.filter(|r| !r.is_empty()) else {
                    continue;
                };
                if made == 0 {
                    continue;
                }
                jobs.push(BullRetry {
                    id: id.clone(),
                    name: name.unwrap_or_default(),
                    reason,
                    attempts_made: made,
                    attempts: attempts_of(opts.as_deref().unwrap_or("{}")),
                    run_at: *run_at,
                    state: *state,
                });
            }
        }
        Ok(BullRetrying {
            jobs,
            scanned,
            complete,
        })
    }

    /// `name`, `failedReason` and `finishedOn` of each job, `None` where
    /// its hash is gone; one pipeline.
    async fn failed_fields(
        &self,
        queue: &str,
        ids: &[&str],
    ) -> Result<Vec<Option<(String, String, Option<i64>)>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.key(queue, id))
                .arg("name")
                .arg("failedReason")
                .arg("finishedOn")
                .arg("timestamp");
        }
        type Fields = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Fields> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        Ok(rows
            .into_iter()
            .map(|(name, reason, finished, timestamp)| {
                // A job is a hash with a `timestamp`: anything else under
                // its key is not one.
                timestamp?;
                Some((
                    name.unwrap_or_default(),
                    reason.unwrap_or_default(),
                    finished.and_then(|t| t.parse().ok()),
                ))
            })
            .collect())
    }

    /// One job with its first 100 log lines and its state (found by
    /// membership in each state's key), for a job's detail page. `None`
    /// when no job has that id: its key is missing or holds something
    /// else (a job's log list, a repeat config).
    pub async fn job(&self, queue: &str, id: &str) -> Result<Option<BullJob>> {
        self.check(queue)?;
        check_job_id(id)?;
        let kind: String = redis::cmd("TYPE")
            .arg(self.key(queue, id))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        if kind != "hash" {
            return Ok(None);
        }
        let logs_key = self.key(queue, &format!("{id}:logs"));
        let mut pipe = redis::pipe();
        pipe.hgetall(self.key(queue, id))
            .lrange(&logs_key, -(crate::queue::SHOWN_LOG_LINES as isize), -1)
            .llen(&logs_key);
        type Reply = (HashMap<String, Vec<u8>>, Vec<Vec<u8>>, u64);
        let (hash, logs, logs_count): Reply = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        if !hash.contains_key("timestamp") {
            return Ok(None);
        }
        let mut job = parse_job(id, hash);
        job.logs_count = logs_count;
        job.logs = logs
            .iter()
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect();
        job.state = self.state_of(queue, id).await?;
        Ok(Some(job))
    }

    /// Which state key holds the job, if any: `ZSCORE` for sets, `LPOS`
    /// for lists, in one pipeline.
    async fn state_of(&self, queue: &str, id: &str) -> Result<Option<BullState>> {
        let mut pipe = redis::pipe();
        for state in BullState::ALL {
            let key = self.key(queue, state.suffix());
            if state.is_list() {
                pipe.cmd("LPOS").arg(key).arg(id);
            } else {
                pipe.zscore(key, id);
            }
        }
        let found: Vec<redis::Value> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        Ok(BullState::ALL
            .into_iter()
            .zip(found)
            .find(|(_, value)| !matches!(value, redis::Value::Nil))
            .map(|(state, _)| state))
    }

    /// The typed error for a job that exists but is not in `expected`.
    async fn wrong_state(&self, queue: &str, id: &str, expected: &'static str) -> CoordError {
        let actual = match self.state_of(queue, id).await {
            Ok(Some(state)) => state.as_str(),
            Ok(None) => "unknown",
            Err(e) => return e,
        };
        CoordError::BullWrongState {
            queue: queue.to_owned(),
            job: id.to_owned(),
            actual,
            expected,
        }
    }

    fn not_found(queue: &str, id: &str) -> CoordError {
        CoordError::BullJobNotFound {
            queue: queue.to_owned(),
            job: id.to_owned(),
        }
    }

    /// Runs the attempt again, as BullMQ's `job.retry()` does: the job
    /// leaves `failed` for `wait` (`paused` while paused; `prioritized`
    /// when it has a priority, `RPUSH` for LIFO jobs), loses `failedReason`,
    /// `finishedOn` and `processedOn` but keeps its attempt counters and
    /// stack traces; workers are woken through the marker and a `waiting`
    /// event (`prev` = `failed`) is written. A missing job is
    /// [`CoordError::BullJobNotFound`], one not failed
    /// [`CoordError::BullWrongState`].
    pub async fn retry_job(&self, queue: &str, id: &str) -> Result<()> {
        self.check(queue)?;
        check_job_id(id)?;
        let mut inv = RETRY.prepare_invoke();
        for key in self.ready_keys(queue) {
            inv.key(key);
        }
        inv.key(self.key(queue, "failed"))
            .arg(self.base(queue))
            .arg("one")
            .arg(id);
        let code: i64 = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        match code {
            1 => Ok(()),
            -1 => Err(Self::not_found(queue, id)),
            _ => Err(self.wrong_state(queue, id, "failed").await),
        }
    }

    /// Retries every job failed when the call starts, `batch` per script
    /// call (at most 1000) so Redis is never blocked for long, oldest
    /// failure first; returns how many were retried. Jobs go where BullMQ's
    /// own `queue.retryJobs` puts them (`wait`, or `paused`; a priority or
    /// LIFO is not honoured in bulk, as there), and a failed child its
    /// parent recorded is pending for that parent again, as `job.retry()`
    /// makes it. Jobs that fail again meanwhile are not retried a second
    /// time. Ids whose hash is gone are dropped from `failed`.
    pub async fn retry_all_failed(&self, queue: &str, batch: usize) -> Result<u64> {
        self.check(queue)?;
        if batch == 0 {
            return Err(CoordError::InvalidOptions(
                "retry batch size must be at least 1".into(),
            ));
        }
        let batch = batch.min(MAX_BATCH);
        let failed_key = self.key(queue, "failed");
        let mut conn = self.conn.clone();
        let total: u64 = redis::cmd("ZCARD")
            .arg(&failed_key)
            .query_async(&mut conn)
            .await
            .map_err(CoordError::from)?;
        let mut examined = 0u64;
        let mut retried = 0u64;
        while examined < total {
            let take = (total - examined).min(batch as u64);
            let mut inv = RETRY.prepare_invoke();
            for key in self.ready_keys(queue) {
                inv.key(key);
            }
            inv.key(&failed_key)
                .arg(self.base(queue))
                .arg("batch")
                .arg(take);
            let (done, seen): (u64, u64) = inv
                .invoke_async(&mut conn)
                .await
                .map_err(CoordError::from)?;
            retried += done;
            examined += seen;
            if seen < take {
                break;
            }
        }
        Ok(retried)
    }

    /// Makes a delayed job ready now, as BullMQ's `job.promote()` does:
    /// out of `delayed` into `wait`/`paused` (or `prioritized`), `delay`
    /// set to 0, workers woken, a `waiting` event (`prev` = `delayed`).
    /// A job not delayed is [`CoordError::BullWrongState`].
    pub async fn promote(&self, queue: &str, id: &str) -> Result<()> {
        self.check(queue)?;
        check_job_id(id)?;
        let mut inv = PROMOTE.prepare_invoke();
        for key in self.ready_keys(queue) {
            inv.key(key);
        }
        inv.key(self.key(queue, "delayed"))
            .arg(self.base(queue))
            .arg(id);
        let code: i64 = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        match code {
            1 => Ok(()),
            -1 => Err(Self::not_found(queue, id)),
            _ => Err(self.wrong_state(queue, id, "delayed").await),
        }
    }

    /// Deletes a job no worker holds: from its state key, with its hash,
    /// logs and dependency keys, releasing its deduplication id and its
    /// parent (which becomes ready when this was its last pending child);
    /// writes a `removed` event. Like BullMQ, refuses a job that is active
    /// or locked ([`CoordError::BullJobLocked`]); also refuses a parent with
    /// pending children ([`CoordError::BullWrongState`]) rather than orphan
    /// them.
    pub async fn remove(&self, queue: &str, id: &str) -> Result<()> {
        self.check(queue)?;
        check_job_id(id)?;
        let mut inv = REMOVE.prepare_invoke();
        for key in self.ready_keys(queue) {
            inv.key(key);
        }
        for suffix in ["completed", "failed", "delayed", "waiting-children"] {
            inv.key(self.key(queue, suffix));
        }
        inv.arg(self.base(queue)).arg(id);
        let (code, _prev): (i64, String) = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        match code {
            1 => Ok(()),
            -1 => Err(Self::not_found(queue, id)),
            -2 => Err(CoordError::BullJobLocked {
                queue: queue.to_owned(),
                job: id.to_owned(),
            }),
            _ => Err(CoordError::BullWrongState {
                queue: queue.to_owned(),
                job: id.to_owned(),
                actual: "waiting for children",
                expected: "free of pending children",
            }),
        }
    }

    /// Runs the pause script either way.
    async fn set_paused(&self, queue: &str, paused: bool) -> Result<()> {
        self.check(queue)?;
        let mut inv = PAUSE.prepare_invoke();
        for key in self.ready_keys(queue) {
            inv.key(key);
        }
        inv.key(self.key(queue, "delayed"))
            .arg(if paused { "paused" } else { "resumed" });
        let done: i64 = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        if done == 0 {
            return Err(CoordError::BullQueueNotFound(queue.to_owned()));
        }
        Ok(())
    }

    /// Pauses the queue for every worker, as BullMQ's `queue.pause()`
    /// does: meta `paused` set, ready jobs moved from `wait` to `paused`,
    /// the marker dropped, a `paused` event. Running jobs finish; no new
    /// ones start. Idempotent.
    pub async fn pause(&self, queue: &str) -> Result<()> {
        self.set_paused(queue, true).await
    }

    /// Resumes the queue, as BullMQ's `queue.resume()` does: meta `paused`
    /// cleared, `paused` jobs back to `wait`, the marker set so sleeping
    /// workers wake at once (or when the first delayed job is due), a
    /// `resumed` event. Idempotent.
    pub async fn resume(&self, queue: &str) -> Result<()> {
        self.set_paused(queue, false).await
    }

    /// Deletes up to `limit` completed or failed jobs that finished more
    /// than `older_than` ago, oldest first, as BullMQ's `queue.clean()`
    /// does (one `cleaned` event per batch of up to 1000); returns how many
    /// went. Other states are bad input.
    pub async fn clean(
        &self,
        queue: &str,
        state: BullState,
        older_than: Duration,
        limit: u64,
    ) -> Result<u64> {
        self.check(queue)?;
        if !matches!(state, BullState::Completed | BullState::Failed) {
            return Err(CoordError::InvalidOptions(format!(
                "only completed or failed jobs can be cleaned, not {state}"
            )));
        }
        let age = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(age);
        let mut conn = self.conn.clone();
        let mut removed = 0u64;
        while removed < limit {
            let take = (limit - removed).min(MAX_BATCH as u64);
            let mut inv = CLEAN.prepare_invoke();
            inv.key(self.key(queue, state.suffix()))
                .key(self.key(queue, "events"))
                .key(self.key(queue, "meta"))
                .arg(self.base(queue))
                .arg(cutoff)
                .arg(take);
            let done: u64 = inv
                .invoke_async(&mut conn)
                .await
                .map_err(CoordError::from)?;
            removed += done;
            if done < take {
                break;
            }
        }
        Ok(removed)
    }

    /// A connection of its own for a blocking read: an idle one kept from
    /// an earlier read, or a new one.
    async fn blocking_conn(&self) -> Result<Conn> {
        let idle = self
            .blocking
            .lock()
            .map_err(|_| CoordError::Unavailable("blocking connection pool poisoned".into()))?
            .pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        conn::within_connect_timeout(self.endpoint.dedicated()).await
    }

    /// Keeps a connection whose read completed for the next blocking read.
    fn give_back(&self, conn: Conn) {
        if let Ok(mut idle) = self.blocking.lock()
            && idle.len() < MAX_IDLE_BLOCKING
        {
            idle.push(conn);
        }
    }

    /// Reads the `events` streams of several queues after the given ids
    /// (`$` for only new entries, `0` for all kept), waiting up to `block`
    /// for one (`Duration::ZERO` = do not wait), at most `count` per
    /// stream. Runs on a connection of its own, so a long wait never stalls
    /// the shared connection; one that does not answer within `block` plus
    /// 5 s is an outage. An empty `from` returns at once.
    ///
    /// On Redis Cluster one `XREAD` may only name streams of one slot, so
    /// the streams are grouped by slot: with a `{bull}` prefix that is
    /// still one blocking read. Several groups (`{queue}` names) are read
    /// without blocking, [`MAX_GROUP_READS`] at a time; when none had news
    /// the call waits out a poll interval that grows with the number of
    /// groups ([`group_poll_interval`]) so the reads per second stay
    /// bounded.
    pub async fn read_events(
        &self,
        from: &[(String, String)],
        block: Duration,
        count: usize,
    ) -> Result<Vec<BullEvent>> {
        if from.is_empty() {
            return Ok(Vec::new());
        }
        let mut queue_of = HashMap::new();
        let mut groups: std::collections::BTreeMap<u16, Vec<(String, String)>> = Default::default();
        for (queue, id) in from {
            check_queue(queue)?;
            check_stream_id(id)?;
            if self.check(queue).is_err() {
                // A queue without a hash tag on a cluster: its own reads
                // say why; it must not stop the events of the others.
                continue;
            }
            let key = self.key(queue, "events");
            let slot = if self.endpoint.is_cluster() {
                conn::slot(key.as_bytes())
            } else {
                0
            };
            groups
                .entry(slot)
                .or_default()
                .push((key.clone(), id.clone()));
            queue_of.insert(key, queue.clone());
        }
        let count = count.clamp(1, 10_000);
        let replies = if groups.len() == 1 {
            let streams = groups.into_values().next().unwrap_or_default();
            vec![self.xread(&streams, block, count).await?]
        } else {
            let started = std::time::Instant::now();
            let polled = groups.len();
            let reads = groups
                .into_values()
                .map(|streams| async move { self.xread(&streams, Duration::ZERO, count).await });
            let replies: Vec<StreamReply> = futures_util::stream::iter(reads)
                .buffer_unordered(MAX_GROUP_READS)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_>>()?;
            if replies.iter().all(Vec::is_empty) {
                let wait = group_poll_interval(polled)
                    .min(block)
                    .saturating_sub(started.elapsed());
                tokio::time::sleep(wait).await;
            }
            replies
        };
        let mut events = Vec::new();
        for (key, entries) in replies.into_iter().flatten() {
            let Some(queue) = queue_of.get(&key) else {
                continue;
            };
            for (id, flat) in entries {
                let mut event = BullEvent {
                    queue: queue.clone(),
                    id,
                    event: String::new(),
                    job_id: None,
                    fields: Vec::new(),
                };
                let mut pairs = flat.into_iter();
                while let (Some(field), Some(value)) = (pairs.next(), pairs.next()) {
                    match field.as_str() {
                        "event" => event.event = value,
                        "jobId" => event.job_id = Some(value),
                        _ => event.fields.push((field, value)),
                    }
                }
                events.push(event);
            }
        }
        Ok(events)
    }

    /// One `XREAD` of streams that share a slot, on a connection of its
    /// own when it blocks.
    async fn xread(
        &self,
        streams: &[(String, String)],
        block: Duration,
        count: usize,
    ) -> Result<StreamReply> {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count);
        if !block.is_zero() {
            cmd.arg("BLOCK")
                .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        cmd.arg("STREAMS");
        for (key, _) in streams {
            cmd.arg(key);
        }
        for (_, id) in streams {
            cmd.arg(id);
        }
        if block.is_zero() {
            let reply: Option<StreamReply> = cmd
                .query_async(&mut self.conn.clone())
                .await
                .map_err(CoordError::from)?;
            return Ok(reply.unwrap_or_default());
        }
        let mut conn = self.blocking_conn().await?;
        let reply: Option<StreamReply> =
            match tokio::time::timeout(block + BLOCK_GRACE, cmd.query_async(&mut conn)).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => return Err(CoordError::from(e)),
                Err(_) => {
                    return Err(CoordError::Unavailable(
                        "Redis did not answer a blocking event read".into(),
                    ));
                }
            };
        self.give_back(conn);
        Ok(reply.unwrap_or_default())
    }
}

/// Event reads of different slots in flight at once (see
/// [`BullMq::read_events`]).
const MAX_GROUP_READS: usize = 16;

/// How long a poll of `groups` slot groups that found nothing waits before
/// the next: 250 ms per 64 groups, so a cluster with thousands of
/// `{queue}`-named queues costs about 256 reads a second, and its events
/// arrive that much later.
pub fn group_poll_interval(groups: usize) -> Duration {
    Duration::from_millis(250) * u32::try_from(groups.div_ceil(64).max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_compare_as_numbers() {
        assert_eq!(
            parse_stream_id("1700000000000-3"),
            Some((1_700_000_000_000, 3))
        );
        assert!(parse_stream_id("9-10") > parse_stream_id("9-9"));
        assert_eq!(parse_stream_id("x-1"), None);
        assert_eq!(parse_stream_id("12"), None);
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in BullState::ALL {
            assert_eq!(state.as_str().parse::<BullState>().ok(), Some(state));
        }
        assert_eq!("wait".parse::<BullState>().ok(), Some(BullState::Waiting));
        assert!("stalled".parse::<BullState>().is_err());
    }

    #[test]
    fn hostile_names_and_ids_are_refused() {
        assert!(check_queue("emails").is_ok());
        assert!(check_queue("with space").is_ok());
        assert!(check_queue("{emails}").is_ok(), "a cluster hash tag");
        assert!(has_hash_tag("bull:{emails}:"));
        assert!(has_hash_tag("{bull}:emails:"));
        assert!(!has_hash_tag("bull:emails:"));
        assert!(!has_hash_tag("bull:{}emails:"));
        for bad in ["", "a:b", "a\nb", &"x".repeat(201)] {
            assert!(check_queue(bad).is_err(), "{bad:?}");
        }
        assert!(check_job_id("repeat:abc:123").is_ok());
        assert!(check_job_id("").is_err());
        assert!(check_job_id("a\u{0}").is_err());
        for key in RESERVED_JOB_IDS {
            let err = check_job_id(key).expect_err(key);
            assert!(err.is_bad_input(), "{key}: {err}");
            assert!(err.to_string().contains("queue's own keys"), "{err}");
        }
        assert!(check_job_id("metadata").is_ok(), "only whole names");
        assert!(check_stream_id("$").is_ok());
        assert!(check_stream_id("0").is_ok());
        assert!(check_stream_id("1700000000000-3").is_ok());
        assert!(check_stream_id("x").is_err());
        assert!(check_stream_id("1-").is_err());
    }

    #[test]
    fn globs_in_prefixes_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn job_hashes_are_parsed_leniently() {
        let hash: HashMap<String, Vec<u8>> = [
            ("name", "send"),
            ("data", "{\"a\":1}"),
            ("timestamp", "1700000000000"),
            ("atm", "2"),
            ("ats", "3"),
            ("failedReason", "boom"),
            ("stacktrace", "[\"Error: boom\\n at x\",null]"),
            ("finishedOn", "1700000000005"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
        let job = parse_job("7", hash);
        assert_eq!(job.name, "send");
        assert_eq!(job.data, "{\"a\":1}");
        assert_eq!(job.opts, "{}");
        assert_eq!(job.attempts_made, 2);
        assert_eq!(job.attempts_started, 3);
        assert_eq!(job.failed_reason.as_deref(), Some("boom"));
        assert_eq!(job.stacktrace, vec!["Error: boom\n at x".to_owned()]);
        assert_eq!(job.finished_on, Some(1_700_000_000_005));
        assert_eq!(job.processed_on, None);
    }
}
