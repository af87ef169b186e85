//! Redis backend: the scale-out deployment, where any number of processes
//! share queues through one Redis (or a Redis Cluster).
//!
//! Every state change of a queue is one Lua script run atomically on the
//! server (the scripts live in `redis/*.lua`), so two processes can never
//! see a job half-moved. All keys of one queue carry the hash tag
//! `{<queue>}` and therefore live in one cluster slot, which is what lets a
//! script touch several of them:
//!
//! - `<p>:{<q>}:meta` hash: `paused` (0/1), the `seq` (waiting order) and
//!   `id` (generated ids) counters, the lifetime totals `completed_total`,
//!   `failed_total`, `stalled_total`, `retried_total`, and the retention
//!   settings `keep_{completed,failed}_{count,age_ms}` (absent = keep all);
//! - `<p>:{<q>}:job:<id>` hash: one job, in the fields `token`,
//!   `attempts_made`, `history` (JSON array text), `state`,
//!   `stalled_count`, `created_at`, `name`, `data` and `opts` (JSON text),
//!   `failed_reason`, `stacktrace` (JSON array text), `processed_at`,
//!   `priority`, `max_attempts`, and later `finished_at`, `return_value`
//!   (JSON text), `run_at`. An empty string means "none": clearing a field
//!   keeps its place, and small hashes are lists scanned from the front, so
//!   the hot fields come first;
//! - `<p>:{<q>}:waiting` sorted set, score `priority * PRIORITY_SHIFT + seq`
//!   (lowest runs first); `:active` scored by lease deadline, `:delayed` by
//!   due time, `:completed` and `:failed` by finish time (all ms). `:active`
//!   also holds one anchor member scored `+inf` that keeps Redis from
//!   storing it as a listpack (see `redis/common.lua`); readers skip `+inf`;
//! - `<p>:queues` set of queue names (its own slot, updated outside scripts;
//!   written again after Redis lost it: an enqueue that finds the queue's
//!   meta hash missing says so, and a reconnected listener rebuilds the set
//!   from the `meta` keys when it is gone);
//! - `<p>:events` pub/sub channel: one JSON array of [`QueueEvent`]s per
//!   change, at most one event per kind;
//! - `<p>:worker:<id>`, `<p>:workers` and `<p>:worker-commands`: the worker
//!   registry ([`workers`]);
//! - `<p>:{<q>}:schedule:<id>` hashes and the `<p>:schedules` index
//!   (schedule id → queue): the schedules ([`schedules`]).
//!
//! Timestamps come from the Redis server's clock (`TIME`) so that every
//! process agrees on when a lease expires or a delayed job falls due. The
//! attempt records in a job's history keep the worker's own start and end
//! times.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::{RedisError, Script, ScriptInvocation};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::backend::{BackendHealth, BackendKind, QueueBackend};
use super::events::{EVENT_BUFFER, EventBatch, QueueEvent};
use super::report::JobReport;
use super::stored::{
    OptionsCache, STALLED_NO_ATTEMPTS, STALLED_TOO_OFTEN, StoredJob, listed_jobs, stored_id,
};
use super::types::{
    Job, JobId, JobOptions, JobPage, JobState, NewJob, Outcome, OutcomeResult, QueueCounts,
    QueueName, Retention, RetentionPolicy, StalledReport, StepResult,
};
use super::workers::{WorkerCommand, WorkerId, WorkerReport, WorkerView};
use crate::error::{CoordError, Result};
use crate::errors::{ErrorGroups, GroupAction, GroupId, Trend};
use crate::instances::Thresholds;
use crate::instances::presence::Presence;
use crate::redis::{
    self as conn, CONNECT_TIMEOUT, Conn, PubSubEvent, Reconnect, Target, glob_escape,
    listen_pubsub, open_pubsub,
};
use crate::search::{FoundJob, IndexProgress, SearchQuery, SearchResult};

/// The command connection: one command may take 10 s (generous because a
/// bulk enqueue or a full retry batch is one script of up to 10,000 jobs);
/// a failing command waits for two reconnection attempts of 3 s at most
/// before it reports the outage. Few, so that callers (a worker's step)
/// learn of an outage within about a second and apply their own backoff;
/// the next command tries again.
const RECONNECT: Reconnect = Reconnect {
    connect_timeout: Duration::from_secs(3),
    response_timeout: Duration::from_secs(10),
    retries: 2,
    max_delay: Duration::from_secs(1),
};
/// Fields of a job hash in the order the scripts return them (after the id).
const JOB_FIELDS: [&str; 15] = [
    "name",
    "data",
    "opts",
    "state",
    "attempts_made",
    "stalled_count",
    "failed_reason",
    "stacktrace",
    "history",
    "return_value",
    "created_at",
    "processed_at",
    "finished_at",
    "run_at",
    "token",
];
/// Values per job record in script replies: the id, then [`JOB_FIELDS`].
const RECORD_LEN: usize = 1 + JOB_FIELDS.len();
/// Values per claimed job in a step's reply (see `step.lua`).
const CLAIM_RECORD_LEN: usize = 2;
/// Meta fields holding the retention policy, in the order the scripts read them.
const RETENTION_FIELDS: [&str; 4] = [
    "keep_completed_count",
    "keep_completed_age_ms",
    "keep_failed_count",
    "keep_failed_age_ms",
];

/// Builds a script from a shared prelude and an operation: `common.lua`
/// (keys, clock, event helpers) before every state-changing script,
/// `read_job.lua` (the job reader) before the read-only ones.
macro_rules! script {
    ($prelude:literal, $file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!(concat!("redis/", $prelude)),
                include_str!(concat!("redis/", $file))
            ))
        })
    };
    ($file:literal) => {
        script!("common.lua", $file)
    };
}

static ENQUEUE: LazyLock<Script> = script!("enqueue.lua");
static STEP: LazyLock<Script> = script!("step.lua");
static EXTEND: LazyLock<Script> = script!("extend.lua");
static STALLED: LazyLock<Script> = script!("stalled.lua");
static RETRY: LazyLock<Script> = script!("retry.lua");
static RETRY_BATCH: LazyLock<Script> = script!("retry_batch.lua");
static REMOVE: LazyLock<Script> = script!("remove.lua");
static PROMOTE: LazyLock<Script> = script!("promote.lua");
static STOP: LazyLock<Script> = script!("stop.lua");
static PAUSE: LazyLock<Script> = script!("pause.lua");
static CLEAN: LazyLock<Script> = script!("clean.lua");
static GROUP_BATCH: LazyLock<Script> = script!("group_batch.lua");
static LIST: LazyLock<Script> = script!("read_job.lua", "list.lua");
static JOB: LazyLock<Script> = script!("read_job.lua", "job.lua");

mod errors;
mod report;
mod schedules;
mod search;
mod workers;

/// Queue state in Redis, shared by every process that connects with the same
/// URL and prefix. Cheap to clone: clones share one multiplexed connection
/// and one event listener, which stops when the last clone is dropped.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Conn,
    prefix: String,
    queues_key: String,
    channel: String,
    /// Queues known to be in `<p>:queues`: queues are never unregistered,
    /// so a hit saves the existence check and the `SADD` round trip. The
    /// event listener empties it whenever its connection had to be made
    /// again (Redis restarted, maybe without its data), so every queue is
    /// checked and registered afresh.
    known: Arc<Mutex<HashSet<QueueName>>>,
    /// What this process has told Redis about each queue, to tell it again
    /// should Redis lose it (see [`QueueMemory`]).
    memory: Mutex<HashMap<QueueName, QueueMemory>>,
    events: broadcast::Sender<EventBatch>,
    listener: JoinHandle<()>,
    /// The worker registry's entries and the operator's commands
    /// ([`workers`]).
    workers: Presence,
    worker_commands_key: String,
}

/// Shows where the backend keeps its state, never credentials: the URL is
/// not kept at all.
impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("prefix", &self.inner.prefix)
            .field("channel", &self.inner.channel)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// What a process remembers of a queue so that a Redis that lost its data
/// (restarted without persistence, flushed) gets it back on the next
/// enqueue: the retention this process set, and the highest id it
/// generated, below which the id generator never starts again.
#[derive(Debug, Clone, Copy, Default)]
struct QueueMemory {
    retention: Option<RetentionPolicy>,
    last_id: u64,
}

/// The keys of one queue, all under its hash tag.
/// How [`RedisBackend::list_set`] reads its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOrder {
    /// A sorted set, lowest score first.
    Ascending,
    /// A sorted set, highest score first.
    Descending,
    /// A list of ids, from its head.
    List,
}

struct QueueKeys {
    meta: String,
    waiting: String,
    active: String,
    delayed: String,
    completed: String,
    failed: String,
    job_prefix: String,
    /// `<p>:{<q>}:`, what the error-group keys start with (see `common.lua`).
    base: String,
    /// The queue's error groups, by last failure.
    errors: String,
}

impl QueueKeys {
    fn state(&self, state: JobState) -> &str {
        match state {
            JobState::Waiting => &self.waiting,
            JobState::Active => &self.active,
            JobState::Delayed => &self.delayed,
            JobState::Completed => &self.completed,
            JobState::Failed => &self.failed,
        }
    }

    /// A job's hash.
    fn job(&self, id: &JobId) -> String {
        format!("{}{}", self.job_prefix, id.as_str())
    }

    /// A job's log list, `<p>:{<q>}:logs:<id>`: a prefix no job key has,
    /// as ids may hold `:` (`common.lua`'s `logsPrefix`).
    fn logs(&self, id: &JobId) -> String {
        format!("{}logs:{}", self.base, id.as_str())
    }
}

impl RedisBackend {
    /// Connects (`redis://` or `rediss://` URL), checks with `PING` within
    /// 5 s and starts the event listener, so that a misconfigured URL fails
    /// at start-up rather than at the first job. Every key lives under
    /// `prefix`, which lets several deployments (or tests) share one Redis.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        validate_prefix(prefix)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(CoordError::Unavailable(
                "the Redis backend must be connected inside a tokio runtime".into(),
            ));
        }
        let shown = redact_url(url);
        let endpoint = conn::open(url).map_err(|e| match e {
            CoordError::InvalidOptions(reason) => {
                CoordError::InvalidOptions(format!("{reason} ({shown})"))
            }
            other => other,
        })?;
        let channel = format!("{prefix}:events");
        let unreachable = |reason: String| {
            CoordError::Unavailable(format!("cannot reach Redis at {shown}: {reason}"))
        };
        let setup = async {
            // One plain attempt first: the connection manager would retry
            // with backoff, and an unreachable server should fail fast.
            conn::probe(&endpoint).await?;
            let pubsub = open_pubsub(&endpoint, &Target::Channel(channel.clone())).await?;
            let conn = endpoint.managed(RECONNECT).await?;
            Ok::<_, RedisError>((conn, pubsub))
        };
        let (conn, pubsub) = match tokio::time::timeout(CONNECT_TIMEOUT, setup).await {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let known = Arc::new(Mutex::new(HashSet::new()));
        let registry = Registry {
            key: format!("{prefix}:queues"),
            prefix: prefix.to_owned(),
            known: known.clone(),
        };
        let listener = tokio::spawn(listen_pubsub(
            endpoint,
            Target::Channel(channel.clone()),
            "queue event",
            pubsub,
            forwarder(conn.clone(), events.clone(), Arc::new(registry)),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                prefix: prefix.to_owned(),
                queues_key: format!("{prefix}:queues"),
                channel,
                known,
                memory: Mutex::new(HashMap::new()),
                events,
                listener,
                workers: Presence::new(format!("{prefix}:worker:"), format!("{prefix}:workers")),
                worker_commands_key: format!("{prefix}:worker-commands"),
            }),
        })
    }

    fn conn(&self) -> Conn {
        self.inner.conn.clone()
    }

    fn keys(&self, queue: &QueueName) -> QueueKeys {
        let base = format!("{}:{{{}}}", self.inner.prefix, queue.as_str());
        QueueKeys {
            meta: format!("{base}:meta"),
            waiting: format!("{base}:waiting"),
            active: format!("{base}:active"),
            delayed: format!("{base}:delayed"),
            completed: format!("{base}:completed"),
            failed: format!("{base}:failed"),
            job_prefix: format!("{base}:job:"),
            errors: format!("{base}:errors"),
            base: format!("{base}:"),
        }
    }

    /// A script call with the arguments every queue script expects first.
    fn invocation<'a>(
        &self,
        script: &'a Script,
        queue: &QueueName,
        keys: &QueueKeys,
    ) -> ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.key(&keys.meta)
            .key(&keys.waiting)
            .key(&keys.active)
            .key(&keys.delayed)
            .key(&keys.completed)
            .key(&keys.failed)
            .arg(&keys.job_prefix)
            .arg(queue.as_str())
            .arg(&self.inner.channel);
        inv
    }

    /// One job, every value longer than `clip` bytes left out (0: whole),
    /// as `job.lua` reads it: what both [`QueueBackend::job`] and
    /// [`QueueBackend::job_clipped`] answer.
    async fn read_job(&self, queue: &QueueName, id: &JobId, clip: u32) -> Result<Job> {
        self.ensure_exists(queue).await?;
        let keys = self.keys(queue);
        let mut fields: Vec<Option<String>> = JOB
            .key(keys.job(id))
            .arg(clip)
            .invoke_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        if fields.is_empty() {
            return Err(CoordError::JobNotFound {
                queue: queue.clone(),
                job: id.clone(),
            });
        }
        let clipped = fields.pop().flatten();
        let mut record = Vec::with_capacity(RECORD_LEN);
        record.push(Some(id.as_str().to_owned()));
        record.extend(fields);
        let mut raw = RawJob::from_record(record)?;
        raw.clipped = clipped;
        decode_job(queue, raw, &mut None)
    }

    fn is_known(&self, queue: &QueueName) -> bool {
        self.known().contains(queue)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<QueueName>> {
        // A poisoned lock only means a panic elsewhere mid-insert into a
        // plain set; the set is still usable.
        self.inner.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<QueueName, QueueMemory>> {
        self.inner.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After an enqueue found the queue without its meta hash although this
    /// process had written to it, Redis lost the queue (restarted without
    /// its data, or flushed): registers it again and restores the retention
    /// this process set. The jobs are written already, so a failure here
    /// is logged and left to the next enqueue rather than failing this one.
    async fn restore(&self, queue: &QueueName) {
        self.known().remove(queue);
        let retention = self.memory().get(queue).and_then(|m| m.retention);
        let restored = async {
            let added = self.register(queue).await?;
            // The registry may have kept the name while the queue's meta
            // hash went (another process registered it first).
            if let (false, Some(policy)) = (added, retention) {
                self.write_retention(queue, policy).await?;
            }
            Ok::<_, CoordError>(())
        };
        match restored.await {
            Ok(()) => tracing::warn!(
                queue = %queue,
                retention_restored = retention.is_some(),
                "queue was missing from Redis (data lost?); registered it again"
            ),
            Err(e) => {
                self.known().remove(queue);
                tracing::warn!(queue = %queue, error = %e, "cannot register a queue Redis lost; the next enqueue tries again");
            }
        }
    }

    async fn write_retention(&self, queue: &QueueName, policy: RetentionPolicy) -> Result<()> {
        let keys = self.keys(queue);
        let values = [
            policy.completed.max_count,
            policy.completed.max_age_ms,
            policy.failed.max_count,
            policy.failed.max_age_ms,
        ];
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (field, value) in RETENTION_FIELDS.iter().zip(values) {
            match value {
                Some(v) => pipe.cmd("HSET").arg(&keys.meta).arg(field).arg(v).ignore(),
                None => pipe.cmd("HDEL").arg(&keys.meta).arg(field).ignore(),
            };
        }
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(CoordError::from)
    }

    /// Adds the queue to `<p>:queues` (once per process). Done before the
    /// queue's own write: a failure after it leaves a listed empty queue,
    /// never an unlisted one with jobs.
    ///
    /// A name that was missing although this process had registered it
    /// before (the listener forgets after a reconnect, and Redis may have
    /// lost its data meanwhile) gets the retention this process set written
    /// again, whichever process wrote to the queue first since.
    /// True when this call added the name (and restored the retention).
    async fn register(&self, queue: &QueueName) -> Result<bool> {
        if self.is_known(queue) {
            return Ok(false);
        }
        let added: u64 = redis::cmd("SADD")
            .arg(&self.inner.queues_key)
            .arg(queue.as_str())
            .query_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        let retention = self.memory().get(queue).and_then(|m| m.retention);
        if let (1, Some(policy)) = (added, retention) {
            self.write_retention(queue, policy).await?;
        }
        self.known().insert(queue.clone());
        Ok(added == 1)
    }

    /// `QueueNotFound` unless the queue is registered.
    async fn ensure_exists(&self, queue: &QueueName) -> Result<()> {
        if self.is_known(queue) {
            return Ok(());
        }
        let exists: bool = redis::cmd("SISMEMBER")
            .arg(&self.inner.queues_key)
            .arg(queue.as_str())
            .query_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        if !exists {
            return Err(CoordError::QueueNotFound(queue.clone()));
        }
        self.known().insert(queue.clone());
        Ok(())
    }

    /// One page (`(offset, limit)`) of the jobs of a sorted set of the
    /// queue (a state's, an error group's, the retrying jobs) in `order`,
    /// or of a list of ids (the name index), as `list.lua` reads it.
    async fn list_set(
        &self,
        queue: &QueueName,
        set: &str,
        keys: &QueueKeys,
        (offset, limit): (u64, u64),
        clip: Option<u32>,
        order: SetOrder,
    ) -> Result<JobPage> {
        let (total, flat): (u64, Vec<Option<String>>) = LIST
            .key(set)
            .arg(&keys.job_prefix)
            .arg(offset.min(i64::MAX as u64))
            .arg(limit.min(i64::MAX as u64))
            .arg(clip.unwrap_or(0))
            .arg(match order {
                SetOrder::Ascending => "asc",
                SetOrder::Descending => "desc",
                SetOrder::List => "list",
            })
            .invoke_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        // Each record ends with the list of values the script left out.
        let jobs = decode_records(queue, flat, RECORD_LEN + 1, |mut r| {
            let clipped = r.pop().flatten();
            let mut raw = RawJob::from_record(r)?;
            raw.clipped = clipped;
            Ok(raw)
        })?;
        Ok(JobPage {
            jobs: listed_jobs(queue, jobs),
            total,
            offset,
            limit,
        })
    }

    /// Runs a script that answers `{'ok'}`, `{'missing'}`, `{'active'}` or
    /// `{'state', actual}` about one job, turning the refusals into errors.
    async fn job_command(
        &self,
        script: &Script,
        queue: &QueueName,
        id: &JobId,
        expected: JobState,
    ) -> Result<()> {
        self.ensure_exists(queue).await?;
        let keys = self.keys(queue);
        let mut inv = self.invocation(script, queue, &keys);
        inv.arg(id.as_str());
        let reply: Vec<String> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        match reply.first().map(String::as_str) {
            Some("ok") => Ok(()),
            Some("missing") => Err(CoordError::JobNotFound {
                queue: queue.clone(),
                job: id.clone(),
            }),
            Some("active") => Err(CoordError::JobActive {
                queue: queue.clone(),
                job: id.clone(),
            }),
            Some("state") => {
                let actual = reply
                    .get(1)
                    .ok_or_else(|| CoordError::Corrupt("script reply lacks the state".into()))?
                    .parse()?;
                Err(CoordError::WrongState {
                    queue: queue.clone(),
                    job: id.clone(),
                    actual,
                    expected,
                })
            }
            other => Err(CoordError::Corrupt(format!(
                "unexpected script reply {other:?}"
            ))),
        }
    }
}

#[async_trait]
impl QueueBackend for RedisBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Redis
    }

    fn steps_in_flight(&self) -> usize {
        2
    }

    async fn health(&self) -> Result<BackendHealth> {
        let probed = conn::probe_capability(&mut self.conn(), &self.inner.queues_key).await?;
        Ok(BackendHealth {
            latency: probed.latency,
            memory_bytes: probed.memory_bytes,
            cluster: probed.topology,
        })
    }

    async fn enqueue_bulk(&self, queue: &QueueName, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.register(queue).await?;
        let keys = self.keys(queue);
        let mut inv = self.invocation(&ENQUEUE, queue, &keys);
        // Read before the script: another task's first enqueue of the same
        // queue must not make this one look like a return after data loss.
        let (had_written, floor) = self
            .memory()
            .get(queue)
            .map_or((false, 0), |m| (true, m.last_id));
        inv.arg(jobs.len()).arg(floor);
        // Bulks mostly repeat one set of options: encode it once.
        let mut last_options: Option<(&JobOptions, String)> = None;
        for job in &jobs {
            let opts = &job.options;
            let opts_json = match &last_options {
                Some((prev, text)) if *prev == opts => text.clone(),
                _ => {
                    let text = to_json(opts)?;
                    last_options = Some((opts, text.clone()));
                    text
                }
            };
            inv.arg(opts.job_id.as_ref().map_or("", JobId::as_str))
                .arg(&job.name)
                .arg(to_json(&job.data)?)
                .arg(opts_json)
                .arg(opts.priority)
                .arg(opts.delay_ms.max(0))
                .arg(opts.attempts);
        }
        let mut reply: Vec<String> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        if reply.len() != jobs.len() + 1 {
            return Err(CoordError::Corrupt(format!(
                "enqueue returned {} values for {} jobs",
                reply.len(),
                jobs.len()
            )));
        }
        let queue_was_new = reply.remove(0) == "1";
        let generated = jobs
            .iter()
            .zip(&reply)
            .filter(|(job, _)| job.options.job_id.is_none())
            .filter_map(|(_, id)| id.parse::<u64>().ok())
            .max();
        {
            let mut memory = self.memory();
            let entry = memory.entry(queue.clone()).or_default();
            entry.last_id = entry.last_id.max(generated.unwrap_or(0));
        }
        if queue_was_new && had_written {
            self.restore(queue).await;
        }
        reply.into_iter().map(stored_id).collect()
    }

    async fn queues(&self) -> Result<Vec<QueueName>> {
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&self.inner.queues_key)
            .query_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        let mut queues: Vec<QueueName> = names
            .into_iter()
            .filter_map(|name| match QueueName::new(name) {
                Ok(q) => Some(q),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an invalid queue name in Redis");
                    None
                }
            })
            .collect();
        queues.sort();
        Ok(queues)
    }

    async fn counts(&self, queue: &QueueName) -> Result<QueueCounts> {
        self.ensure_exists(queue).await?;
        let keys = self.keys(queue);
        // MULTI so that the counts are one snapshot: a job moving between
        // two sets is never counted twice or not at all.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for state in JobState::ALL {
            if state == JobState::Active {
                // Not the anchor member (see common.lua).
                pipe.cmd("ZCOUNT")
                    .arg(&keys.active)
                    .arg("-inf")
                    .arg("(+inf");
            } else {
                pipe.cmd("ZCARD").arg(keys.state(state));
            }
        }
        pipe.cmd("HMGET").arg(&keys.meta).arg(&[
            "paused",
            "completed_total",
            "failed_total",
            "stalled_total",
            "retried_total",
        ]);
        type Reply = (u64, u64, u64, u64, u64, Vec<Option<u64>>);
        let (waiting, active, delayed, completed, failed, meta): Reply = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        let meta_field = |i: usize| meta.get(i).copied().flatten().unwrap_or(0);
        Ok(QueueCounts {
            waiting,
            active,
            delayed,
            completed,
            failed,
            paused: meta_field(0) == 1,
            completed_total: meta_field(1),
            failed_total: meta_field(2),
            stalled_total: meta_field(3),
            retried_total: meta_field(4),
        })
    }

    async fn list(
        &self,
        queue: &QueueName,
        state: JobState,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<JobPage> {
        self.ensure_exists(queue).await?;
        let keys = self.keys(queue);
        self.list_set(
            queue,
            keys.state(state),
            &keys,
            (offset, limit),
            clip,
            SetOrder::Descending,
        )
        .await
    }

    async fn list_retrying(
        &self,
        queue: &QueueName,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<JobPage> {
        self.ensure_exists(queue).await?;
        let keys = self.keys(queue);
        let retrying = format!("{}retrying", keys.base);
        let mut page = self
            .list_set(
                queue,
                &retrying,
                &keys,
                (offset, limit),
                clip,
                SetOrder::Ascending,
            )
            .await?;
        page.total = page.total.min(super::MAX_RETRYING_COUNT);
        Ok(page)
    }

    async fn job_clipped(&self, queue: &QueueName, id: &JobId, clip: u32) -> Result<Job> {
        self.read_job(queue, id, clip).await
    }

    async fn job(&self, queue: &QueueName, id: &JobId) -> Result<Job> {
        self.read_job(queue, id, 0).await
    }

    async fn step(
        &self,
        queue: &QueueName,
        outcomes: Vec<Outcome>,
        claim: usize,
        lease: Duration,
    ) -> Result<StepResult> {
        let keys = self.keys(queue);
        let mut inv = self.invocation(&STEP, queue, &keys);
        let token_base = format!("{:016x}", rand::random::<u64>());
        inv.arg(duration_ms(lease))
            .arg(claim)
            .arg(&token_base)
            .arg(outcomes.len());
        for outcome in &outcomes {
            inv.arg(outcome.job_id.as_str()).arg(&outcome.lease_token);
            // The attempt record is written here, all but its number, which
            // only the script knows.
            match &outcome.result {
                OutcomeResult::Completed { value } => {
                    inv.arg(format!(
                        r#","startedAt":{},"finishedAt":{},"error":null,"chain":[]}}"#,
                        outcome.started_at, outcome.finished_at
                    ))
                    .arg("c")
                    .arg(to_json(value)?);
                }
                OutcomeResult::Failed {
                    error,
                    retry_delay_ms,
                } => {
                    let chain = to_json(&error.chain)?;
                    inv.arg(format!(
                        r#","startedAt":{},"finishedAt":{},"error":{},"chain":{}}}"#,
                        outcome.started_at,
                        outcome.finished_at,
                        to_json(&error.message)?,
                        chain
                    ))
                    .arg("f")
                    .arg(&error.message)
                    .arg(chain)
                    .arg(if error.retryable { "1" } else { "0" })
                    .arg(*retry_delay_ms)
                    .arg(GroupId::of_reason(&error.message).to_string());
                }
            }
        }
        type Reply = (Vec<Option<String>>, String, String, Vec<String>);
        let (flat, claimed_at, next_due, stale): Reply = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        // A claimed job that cannot be decoded stays active without a
        // worker, so stalled recovery eventually fails it; the rest of the
        // batch is still handed out.
        let claimed = decode_records(queue, flat, CLAIM_RECORD_LEN, |r| {
            RawJob::from_claim(r, &claimed_at, &token_base)
        })?
            .into_iter()
            .filter_map(|decoded| match decoded {
                Ok(job) => Some(job),
                Err(e) => {
                    tracing::error!(queue = %queue, error = %e, "claimed an undecodable job; leaving it to stall");
                    None
                }
            })
            .collect();
        let next_due_at = if next_due.is_empty() {
            None
        } else {
            Some(parse_score(&next_due)?)
        };
        Ok(StepResult {
            claimed,
            next_due_at,
            stale: stale.into_iter().map(stored_id).collect::<Result<_>>()?,
        })
    }

    async fn extend_leases(
        &self,
        queue: &QueueName,
        leases: &[(JobId, String)],
        lease: Duration,
    ) -> Result<Vec<JobId>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(queue);
        let mut inv = self.invocation(&EXTEND, queue, &keys);
        inv.arg(duration_ms(lease));
        for (id, token) in leases {
            inv.arg(id.as_str()).arg(token);
        }
        let lost: Vec<String> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        lost.into_iter().map(stored_id).collect()
    }

    async fn append_logs(
        &self,
        queue: &QueueName,
        id: &JobId,
        token: &str,
        lines: &[String],
    ) -> Result<bool> {
        report::append_logs(&mut self.conn(), &self.keys(queue), id, token, lines).await
    }

    async fn set_progress(
        &self,
        queue: &QueueName,
        id: &JobId,
        token: &str,
        progress: &str,
    ) -> Result<bool> {
        report::set_progress(&mut self.conn(), &self.keys(queue), id, token, progress).await
    }

    async fn job_report(&self, queue: &QueueName, id: &JobId, lines: u32) -> Result<JobReport> {
        self.ensure_exists(queue).await?;
        report::job_report(&mut self.conn(), queue, &self.keys(queue), id, lines)
            .await?
            .ok_or_else(|| CoordError::JobNotFound {
                queue: queue.clone(),
                job: id.clone(),
            })
    }

    async fn find_job(&self, id: &JobId) -> Result<Vec<FoundJob>> {
        search::find_job(self, id).await
    }

    async fn search(&self, query: &SearchQuery, limit: usize) -> Result<SearchResult> {
        search::search(self, query, limit).await
    }

    /// Redis keeps no text index: a search reads the jobs themselves.
    async fn index_search(&self, _batch: usize) -> Result<IndexProgress> {
        Ok(IndexProgress::default())
    }

    async fn recover_stalled(&self, queue: &QueueName, max_stalled: u32) -> Result<StalledReport> {
        let keys = self.keys(queue);
        let mut inv = self.invocation(&STALLED, queue, &keys);
        inv.arg(max_stalled)
            .arg(STALLED_TOO_OFTEN)
            .arg(GroupId::of_reason(STALLED_TOO_OFTEN).to_string())
            .arg(STALLED_NO_ATTEMPTS)
            .arg(GroupId::of_reason(STALLED_NO_ATTEMPTS).to_string());
        let (requeued, failed): (Vec<String>, Vec<String>) = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        Ok(StalledReport {
            requeued: requeued.into_iter().map(stored_id).collect::<Result<_>>()?,
            failed: failed.into_iter().map(stored_id).collect::<Result<_>>()?,
        })
    }

    async fn retry(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.job_command(&RETRY, queue, id, JobState::Failed).await
    }

    async fn retry_failed_batch(&self, queue: &QueueName, batch: usize) -> Result<u64> {
        self.ensure_exists(queue).await?;
        if batch == 0 {
            return Ok(0);
        }
        let keys = self.keys(queue);
        let mut inv = self.invocation(&RETRY_BATCH, queue, &keys);
        inv.arg(batch);
        inv.invoke_async(&mut self.conn())
            .await
            .map_err(CoordError::from)
    }

    async fn error_groups(&self, queue: &QueueName, limit: usize) -> Result<ErrorGroups> {
        self.ensure_exists(queue).await?;
        // A queue from before error groups: book its old failures a slice
        // at a time (done once; then one HGET).
        errors::backfill(self, queue, errors::BACKFILL_BUDGET).await?;
        errors::error_groups(&mut self.conn(), &self.keys(queue), limit).await
    }

    async fn error_trends(
        &self,
        queue: &QueueName,
        groups: &[GroupId],
        now: i64,
    ) -> Result<Vec<Trend>> {
        self.ensure_exists(queue).await?;
        errors::error_trends(&mut self.conn(), &self.keys(queue), groups, now).await
    }

    async fn list_error_group(
        &self,
        queue: &QueueName,
        group: GroupId,
        offset: u64,
        limit: u64,
        clip: Option<u32>,
    ) -> Result<JobPage> {
        self.ensure_exists(queue).await?;
        let keys = self.keys(queue);
        let members = errors::members_key(&keys, group);
        self.list_set(
            queue,
            &members,
            &keys,
            (offset, limit),
            clip,
            SetOrder::Descending,
        )
        .await
    }

    async fn error_group_batch(
        &self,
        queue: &QueueName,
        group: GroupId,
        action: GroupAction,
        batch: usize,
    ) -> Result<u64> {
        self.ensure_exists(queue).await?;
        if batch == 0 {
            return Ok(0);
        }
        let keys = self.keys(queue);
        let mut inv = self.invocation(&GROUP_BATCH, queue, &keys);
        inv.arg(group.to_string()).arg(action.as_str()).arg(batch);
        inv.invoke_async(&mut self.conn())
            .await
            .map_err(CoordError::from)
    }

    async fn remove(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        // `expected` is unused: removal refuses only active jobs.
        self.job_command(&REMOVE, queue, id, JobState::Active).await
    }

    async fn promote(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.job_command(&PROMOTE, queue, id, JobState::Delayed)
            .await
    }

    async fn stop_retrying(&self, queue: &QueueName, id: &JobId) -> Result<()> {
        self.ensure_exists(queue).await?;
        let keys = self.keys(queue);
        // The group is computed here from the error read first; the script
        // refuses if the error changed meanwhile (the job ran again), and
        // the read is tried once more.
        for _ in 0..2 {
            let reason: Option<String> = redis::cmd("HGET")
                .arg(keys.job(id))
                .arg("failed_reason")
                .query_async(&mut self.conn())
                .await
                .map_err(CoordError::from)?;
            let reason = reason.unwrap_or_default();
            let group = crate::errors::GroupId::of_reason(&reason).to_string();
            let mut inv = self.invocation(&STOP, queue, &keys);
            inv.arg(id.as_str()).arg(&reason).arg(&group);
            let reply: Vec<String> = inv
                .invoke_async(&mut self.conn())
                .await
                .map_err(CoordError::from)?;
            return match reply.first().map(String::as_str) {
                Some("ok") => Ok(()),
                Some("changed") => continue,
                Some("missing") => Err(CoordError::JobNotFound {
                    queue: queue.clone(),
                    job: id.clone(),
                }),
                Some("fresh") => Err(CoordError::NotRetrying {
                    queue: queue.clone(),
                    job: id.clone(),
                }),
                Some("state") => Err(CoordError::WrongState {
                    queue: queue.clone(),
                    job: id.clone(),
                    actual: reply
                        .get(1)
                        .ok_or_else(|| CoordError::Corrupt("script reply lacks the state".into()))?
                        .parse()?,
                    expected: JobState::Delayed,
                }),
                other => Err(CoordError::Corrupt(format!(
                    "unexpected script reply {other:?}"
                ))),
            };
        }
        Err(CoordError::Unavailable(format!(
            "job {id} in queue {queue} kept failing anew while its retries were being stopped"
        )))
    }

    async fn set_paused(&self, queue: &QueueName, paused: bool) -> Result<()> {
        self.register(queue).await?;
        let keys = self.keys(queue);
        let mut inv = self.invocation(&PAUSE, queue, &keys);
        inv.arg(if paused { "1" } else { "0" });
        inv.invoke_async::<()>(&mut self.conn())
            .await
            .map_err(CoordError::from)
    }

    async fn set_retention(&self, queue: &QueueName, policy: RetentionPolicy) -> Result<()> {
        self.register(queue).await?;
        self.write_retention(queue, policy).await?;
        self.memory().entry(queue.clone()).or_default().retention = Some(policy);
        Ok(())
    }

    async fn retention(&self, queue: &QueueName) -> Result<RetentionPolicy> {
        self.ensure_exists(queue).await?;
        let keys = self.keys(queue);
        let v: Vec<Option<u64>> = redis::cmd("HMGET")
            .arg(&keys.meta)
            .arg(&RETENTION_FIELDS)
            .query_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        let at = |i: usize| v.get(i).copied().flatten();
        Ok(RetentionPolicy {
            completed: Retention {
                max_count: at(0),
                max_age_ms: at(1),
            },
            failed: Retention {
                max_count: at(2),
                max_age_ms: at(3),
            },
        })
    }

    async fn clean(&self, queue: &QueueName, limit: usize) -> Result<u64> {
        self.ensure_exists(queue).await?;
        if limit == 0 {
            return Ok(0);
        }
        let keys = self.keys(queue);
        let mut inv = self.invocation(&CLEAN, queue, &keys);
        inv.arg(limit);
        inv.invoke_async(&mut self.conn())
            .await
            .map_err(CoordError::from)
    }

    async fn worker_heartbeat(
        &self,
        report: &WorkerReport,
        ttl: Duration,
    ) -> Result<Option<WorkerCommand>> {
        workers::heartbeat(self, report, ttl).await
    }

    async fn worker_leave(&self, id: &WorkerId) -> Result<()> {
        workers::leave(self, id).await
    }

    async fn workers(&self, now_ms: i64, thresholds: &Thresholds) -> Result<Vec<WorkerView>> {
        workers::list(self, now_ms, thresholds).await
    }

    async fn command_worker(&self, id: &WorkerId, command: WorkerCommand) -> Result<()> {
        workers::command(self, id, command).await
    }

    async fn upsert_schedule(
        &self,
        schedule: &super::schedules::Schedule,
        next_run_at: Option<i64>,
    ) -> Result<()> {
        schedules::upsert(self, schedule, next_run_at).await
    }

    async fn remove_schedule(&self, id: &super::schedules::ScheduleId) -> Result<()> {
        schedules::remove(self, id).await
    }

    async fn schedules(&self) -> Result<Vec<super::schedules::ScheduleState>> {
        schedules::list(self).await
    }

    async fn schedule(
        &self,
        id: &super::schedules::ScheduleId,
    ) -> Result<super::schedules::ScheduleState> {
        schedules::get(self, id).await
    }

    async fn set_schedule_paused(
        &self,
        id: &super::schedules::ScheduleId,
        paused: bool,
        next_run_at: Option<i64>,
    ) -> Result<()> {
        schedules::set_paused(self, id, paused, next_run_at).await
    }

    async fn fire_schedules(
        &self,
        fires: &[super::schedules::Fire],
    ) -> Result<Vec<super::schedules::Fired>> {
        schedules::fire(self, fires).await
    }

    fn events(&self) -> broadcast::Receiver<EventBatch> {
        self.inner.events.subscribe()
    }
}

/// Rejects prefixes that would break the key layout: braces would change
/// the hash tag (and with it the cluster slot), a `*` would be read as the
/// wildcard of the SORT pattern the retry-all batch reads jobs with,
/// whitespace is unreadable in `redis-cli`.
fn validate_prefix(prefix: &str) -> Result<()> {
    conn::check_prefix(prefix, &['{', '}', '*'], "braces, '*' or whitespace")
}

/// The URL with its password (and query, which may carry one) masked, for
/// error messages and logs.
fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return "<unparseable URL>".into();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    // The host starts after the last `@`: a password holding `/`, `?` or
    // `#` (malformed, but typed all the same) stays hidden.
    let host_start = rest.rfind('@').map_or(0, |at| at + 1);
    let authority_end = rest[host_start..]
        .find(['/', '?', '#'])
        .map_or(rest.len(), |i| host_start + i);
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***{host}"),
                None => format!("***{host}"),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.find('?') {
        Some(q) => format!("{}?***", &tail[..q]),
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| CoordError::InvalidOptions(e.to_string()))
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A sorted-set score (a float in Redis) as milliseconds.
fn parse_score(score: &str) -> Result<i64> {
    score
        .parse::<f64>()
        .map(|s| s as i64)
        .map_err(|_| CoordError::Corrupt(format!("invalid score {score:?}")))
}

/// A job's stored fields, as text, before decoding.
#[derive(Default)]
struct RawJob {
    id: Option<String>,
    name: Option<String>,
    data: Option<String>,
    opts: Option<String>,
    state: Option<String>,
    attempts_made: Option<String>,
    stalled_count: Option<String>,
    failed_reason: Option<String>,
    stacktrace: Option<String>,
    history: Option<String>,
    return_value: Option<String>,
    created_at: Option<String>,
    processed_at: Option<String>,
    finished_at: Option<String>,
    run_at: Option<String>,
    token: Option<String>,
    /// Values a clipped listing left out (see `list.lua`).
    clipped: Option<String>,
}

impl RawJob {
    /// From a job id followed by the [`JOB_FIELDS`] values.
    fn from_record(record: Vec<Option<String>>) -> Result<Self> {
        let Ok(
            [
                id,
                name,
                data,
                opts,
                state,
                attempts_made,
                stalled_count,
                failed_reason,
                stacktrace,
                history,
                return_value,
                created_at,
                processed_at,
                finished_at,
                run_at,
                token,
            ],
        ) = <[Option<String>; RECORD_LEN]>::try_from(record)
        else {
            return Err(CoordError::Corrupt("job record of the wrong length".into()));
        };
        Ok(Self {
            id,
            name,
            data,
            opts,
            state,
            attempts_made,
            stalled_count,
            failed_reason,
            stacktrace,
            history,
            return_value,
            created_at,
            processed_at,
            finished_at,
            run_at,
            token,
            clipped: None,
        })
    }

    /// From one record of a step's claim (see `step.lua`): the job's
    /// fields joined by NUL (the name last, as the only one that may hold
    /// a NUL), then its last error. Only what a waiting job can hold; the
    /// claim itself fixes the rest, and its lease token is
    /// `<token_base>.<id>`.
    fn from_claim(
        record: Vec<Option<String>>,
        processed_at: &str,
        token_base: &str,
    ) -> Result<Self> {
        let Ok([packed, failed_reason]) = <[Option<String>; CLAIM_RECORD_LEN]>::try_from(record)
        else {
            return Err(CoordError::Corrupt(
                "claim record of the wrong length".into(),
            ));
        };
        let packed = packed.unwrap_or_default();
        let mut parts = packed.splitn(9, '\0').map(|p| Some(p.to_owned()));
        let mut next = || parts.next().flatten();
        let id = next();
        let token = id.as_ref().map(|id| format!("{token_base}.{id}"));
        let raw = Self {
            id,
            attempts_made: next(),
            stalled_count: next(),
            history: next(),
            created_at: next(),
            stacktrace: next(),
            data: next(),
            opts: next(),
            name: next(),
            state: Some(JobState::Active.as_str().to_owned()),
            failed_reason,
            processed_at: Some(processed_at.to_owned()),
            token,
            ..Self::default()
        };
        if raw.name.is_none() {
            return Err(CoordError::Corrupt(format!(
                "claim record of job {:?} lacks fields",
                raw.id
            )));
        }
        Ok(raw)
    }
}

/// Splits a flat script reply into records of `len` values, decoding each
/// on its own so one corrupt job does not hide the others.
fn decode_records(
    queue: &QueueName,
    flat: Vec<Option<String>>,
    len: usize,
    mut raw: impl FnMut(Vec<Option<String>>) -> Result<RawJob>,
) -> Result<Vec<Result<Job>>> {
    if flat.len().checked_rem(len) != Some(0) {
        return Err(CoordError::Corrupt(format!(
            "job records of {} values are not a multiple of {len}",
            flat.len()
        )));
    }
    let mut jobs = Vec::with_capacity(flat.len() / len);
    let mut values = flat.into_iter();
    let mut last_options = None;
    loop {
        let record: Vec<Option<String>> = values.by_ref().take(len).collect();
        if record.is_empty() {
            break;
        }
        jobs.push(raw(record).and_then(|r| decode_job(queue, r, &mut last_options)));
    }
    Ok(jobs)
}

/// Decodes the stored text of a job ([`StoredJob::decode`]): Redis keeps
/// "none" as an empty string and numbers as text, so those are mapped
/// first; `Corrupt` names the field at fault.
fn decode_job(queue: &QueueName, raw: RawJob, last_options: &mut OptionsCache) -> Result<Job> {
    let id = raw.id.unwrap_or_default();
    let corrupt = |field: &str, why: String| {
        CoordError::Corrupt(format!("job {id} in queue {queue}: {field}: {why}"))
    };
    let text = |v: Option<String>| v.filter(|s| !s.is_empty());
    let int = |field: &str, v: Option<String>| -> Result<Option<i64>> {
        match text(v) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| corrupt(field, format!("not an integer: {s:?}"))),
        }
    };
    let stored = StoredJob {
        name: text(raw.name),
        data: text(raw.data),
        options: text(raw.opts),
        state: text(raw.state),
        attempts_made: int("attempts_made", raw.attempts_made)?,
        stalled_count: int("stalled_count", raw.stalled_count)?,
        failed_reason: text(raw.failed_reason),
        stacktrace: text(raw.stacktrace),
        history: text(raw.history),
        return_value: text(raw.return_value),
        created_at: int("created_at", raw.created_at)?,
        processed_at: int("processed_at", raw.processed_at)?,
        finished_at: int("finished_at", raw.finished_at)?,
        run_at: int("run_at", raw.run_at)?,
        lease_token: text(raw.token),
        clipped: raw.clipped,
        id: id.clone(),
    };
    stored.decode(queue, last_options)
}

/// The cluster slot every key of `queue` lives in: its keys share the
/// hash tag `{<queue>}` whatever the prefix, so the Overview can say which
/// node serves a queue from its name alone.
pub fn queue_slot(queue: &str) -> u16 {
    conn::slot(format!("{{{queue}}}").as_bytes())
}

/// Forwards the event channel's batches to the backend's subscribers, and
/// after a reconnect lets the registry heal (see [`Registry::reconnected`]).
fn forwarder(
    conn: Conn,
    sender: broadcast::Sender<EventBatch>,
    registry: Arc<Registry>,
) -> impl FnMut(PubSubEvent<'_>) {
    move |event| match event {
        PubSubEvent::Message(msg) => forward(&sender, msg.get_payload_bytes()),
        PubSubEvent::Up { restored: true } => {
            let (conn, registry) = (conn.clone(), registry.clone());
            // Bounded, so a Redis that hangs mid-repair cannot keep a task
            // alive; what it missed, the next enqueue of each queue repairs.
            tokio::spawn(async move {
                let repair = registry.reconnected(conn);
                if tokio::time::timeout(REPAIR_TIMEOUT, repair).await.is_err() {
                    tracing::warn!(
                        "the queue registry repair after reconnecting took too long; left to the next enqueues"
                    );
                }
            });
        }
        PubSubEvent::Up { restored: false } | PubSubEvent::Down => {}
    }
}

/// Longest a registry repair after a reconnect may take (a rebuild scans
/// at most [`REBUILD_SCAN_LIMIT`] keys).
const REPAIR_TIMEOUT: Duration = Duration::from_secs(60);

/// The queue registry as the event listener looks after it.
struct Registry {
    prefix: String,
    key: String,
    known: Arc<Mutex<HashSet<QueueName>>>,
}

/// Keys one registry rebuild may scan at most, so that a huge keyspace
/// cannot keep it busy for long; what it misses, the next enqueue of each
/// queue registers.
const REBUILD_SCAN_LIMIT: usize = 1_000_000;

impl Registry {
    /// After the connection had to be made again, Redis may have restarted
    /// without its data: forget which queues were registered, so each is
    /// registered again on its next write, and should the registry itself
    /// be gone, rebuild it from the queues' meta keys.
    async fn reconnected(&self, conn: Conn) {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clear();
        match self.rebuild(conn).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                queues = n,
                "the queue registry was missing in Redis; rebuilt it from the queues' keys"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the queue registry after reconnecting")
            }
        }
    }

    /// Rebuilds `<p>:queues` from `<p>:{<q>}:meta` keys when it is missing;
    /// returns how many queues were found.
    async fn rebuild(&self, mut conn: Conn) -> redis::RedisResult<usize> {
        let exists: bool = redis::cmd("EXISTS")
            .arg(&self.key)
            .query_async(&mut conn)
            .await?;
        if exists {
            return Ok(0);
        }
        let pattern = format!("{}:{{*}}:meta", glob_escape(&self.prefix));
        let keys = conn.scan_match(&pattern, REBUILD_SCAN_LIMIT).await?;
        let names: Vec<QueueName> = keys
            .iter()
            .filter_map(|key| {
                let tagged = key.strip_prefix(&self.prefix)?.strip_prefix(":{")?;
                let name = tagged.strip_suffix("}:meta")?;
                QueueName::new(name.to_owned()).ok()
            })
            .collect();
        if !names.is_empty() {
            redis::cmd("SADD")
                .arg(&self.key)
                .arg(names.iter().map(QueueName::as_str).collect::<Vec<_>>())
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok(names.len())
    }
}

fn forward(sender: &broadcast::Sender<EventBatch>, payload: &[u8]) {
    match serde_json::from_slice::<Vec<QueueEvent>>(payload) {
        Ok(batch) if !batch.is_empty() => {
            // No subscriber is not an error: nobody is listening right now.
            let _ = sender.send(Arc::new(batch));
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "skipping a malformed queue event message"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("rediss://:secret@host"), "rediss://:***@host");
        assert_eq!(
            redact_url("redis+cluster://:p#w/d@h1:1,h2:2/0"),
            "redis+cluster://:***@h1:1,h2:2/0"
        );
        assert_eq!(redact_url("redis://secret@host"), "redis://***@host");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis+unix:///tmp/r.sock?pass=secret"),
            "redis+unix:///tmp/r.sock?***"
        );
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(validate_prefix("switchyard").is_ok());
        assert!(validate_prefix("a:b-c").is_ok());
        for bad in ["", "a{b", "a}b", "a*b", "a b", "a\tb"] {
            assert!(matches!(
                validate_prefix(bad),
                Err(CoordError::InvalidOptions(_))
            ));
        }
    }
}
