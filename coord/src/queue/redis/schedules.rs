//! Schedules on Redis. Each schedule is a hash under its target queue's
//! hash tag, `<p>:{<queue>}:schedule:<id>` (fields `def`: the definition
//! as JSON, `paused`, `next`: the next run in ms or '' for none,
//! `last_run`, `last_job`, `runs`, `version`), so that firing it — the
//! compare-and-set of `next` and `version` and the job's enqueue — is one
//! script on one cluster slot (`schedule_fire.lua` between `common.lua`
//! and `enqueue.lua`). `<p>:schedules` (a hash, its own slot, written
//! outside the scripts) maps every schedule's id to its queue: the index
//! schedulers read, and how a schedule is found by id.

use std::sync::LazyLock;

use redis::Script;

use super::{RedisBackend, to_json};
use crate::error::{CoordError, Result};
use crate::queue::schedules::{Fire, Fired, Schedule, ScheduleId, ScheduleState};
use crate::queue::types::{JobId, JobOptions, QueueName};

static FIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("common.lua"),
        include_str!("schedule_fire.lua"),
        include_str!("enqueue.lua")
    ))
});
static PAUSE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("schedule_pause.lua")));
static UPSERT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("schedule_upsert.lua")));

/// Hash fields read back, in this order.
const FIELDS: [&str; 7] = [
    "def", "paused", "next", "last_run", "last_job", "runs", "version",
];

impl RedisBackend {
    fn schedules_key(&self) -> String {
        format!("{}:schedules", self.inner.prefix)
    }

    fn schedule_key(&self, queue: &QueueName, id: &ScheduleId) -> String {
        format!("{}schedule:{}", self.keys(queue).base, id.as_str())
    }

    /// The queue a schedule lives under, from the index.
    async fn schedule_queue(&self, id: &ScheduleId) -> Result<Option<QueueName>> {
        let queue: Option<String> = redis::cmd("HGET")
            .arg(self.schedules_key())
            .arg(id.as_str())
            .query_async(&mut self.conn())
            .await
            .map_err(CoordError::from)?;
        queue.map(QueueName::new).transpose()
    }
}

fn not_found(id: &ScheduleId) -> CoordError {
    CoordError::ScheduleNotFound(id.to_string())
}

fn opt_num(text: Option<&str>) -> Result<Option<i64>> {
    match text {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| CoordError::Corrupt(format!("a schedule's time {t:?}"))),
    }
}

fn opt_text(n: Option<i64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

/// A schedule from its hash fields ([`FIELDS`]); `None` when it is gone.
fn decode(id: &str, fields: Vec<Option<String>>) -> Result<Option<ScheduleState>> {
    let get = |i: usize| fields.get(i).and_then(|f| f.as_deref());
    let Some(def) = get(0) else {
        return Ok(None);
    };
    let mut schedule: Schedule = serde_json::from_str(def)
        .map_err(|e| CoordError::Corrupt(format!("schedule {id}: {e}")))?;
    schedule.paused = get(1) == Some("1");
    Ok(Some(ScheduleState {
        schedule,
        next_run_at: opt_num(get(2))?,
        last_run_at: opt_num(get(3))?,
        last_job_id: get(4)
            .filter(|s| !s.is_empty())
            .map(JobId::new)
            .transpose()?,
        runs: opt_num(get(5))?.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
        version: opt_num(get(6))?.unwrap_or(0),
    }))
}

pub(super) async fn upsert(
    backend: &RedisBackend,
    schedule: &Schedule,
    next_run_at: Option<i64>,
) -> Result<()> {
    let def = to_json(schedule)?;
    let before = backend.schedule_queue(&schedule.id).await?;
    // The index first: a failure after it leaves an indexed schedule that
    // reads as missing, never a stored one no scheduler finds.
    let _: i64 = redis::cmd("HSET")
        .arg(backend.schedules_key())
        .arg(schedule.id.as_str())
        .arg(schedule.queue.as_str())
        .query_async(&mut backend.conn())
        .await
        .map_err(CoordError::from)?;
    let _: i64 = UPSERT
        .key(backend.schedule_key(&schedule.queue, &schedule.id))
        .arg(def)
        .arg(if schedule.paused { "1" } else { "0" })
        .arg(opt_text(next_run_at))
        .invoke_async(&mut backend.conn())
        .await
        .map_err(CoordError::from)?;
    if let Some(old) = before.filter(|old| *old != schedule.queue) {
        let _: i64 = redis::cmd("DEL")
            .arg(backend.schedule_key(&old, &schedule.id))
            .query_async(&mut backend.conn())
            .await
            .map_err(CoordError::from)?;
    }
    Ok(())
}

pub(super) async fn remove(backend: &RedisBackend, id: &ScheduleId) -> Result<()> {
    let queue = backend
        .schedule_queue(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let deleted: i64 = redis::cmd("DEL")
        .arg(backend.schedule_key(&queue, id))
        .query_async(&mut backend.conn())
        .await
        .map_err(CoordError::from)?;
    let _: i64 = redis::cmd("HDEL")
        .arg(backend.schedules_key())
        .arg(id.as_str())
        .query_async(&mut backend.conn())
        .await
        .map_err(CoordError::from)?;
    if deleted == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

pub(super) async fn list(backend: &RedisBackend) -> Result<Vec<ScheduleState>> {
    let index: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(backend.schedules_key())
        .query_async(&mut backend.conn())
        .await
        .map_err(CoordError::from)?;
    let mut entries = Vec::with_capacity(index.len());
    let mut commands = Vec::with_capacity(index.len());
    for (id, queue) in index {
        let (Ok(sid), Ok(queue)) = (ScheduleId::new(id.clone()), QueueName::new(queue)) else {
            tracing::warn!(id, "skipping an invalid schedule index entry in Redis");
            continue;
        };
        let key = backend.schedule_key(&queue, &sid);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&key).arg(&FIELDS[..]);
        commands.push((key.into_bytes(), cmd));
        entries.push(id);
    }
    let answers: Vec<Vec<Option<String>>> = backend
        .conn()
        .each_slot(commands)
        .await
        .map_err(CoordError::from)?;
    let mut out = Vec::with_capacity(entries.len());
    for (id, fields) in entries.iter().zip(answers) {
        match decode(id, fields) {
            Ok(Some(state)) => out.push(state),
            Ok(None) => {}
            Err(e) => tracing::warn!(id, error = %e, "corrupt schedule; skipped"),
        }
    }
    out.sort_by(|a, b| a.schedule.id.cmp(&b.schedule.id));
    Ok(out)
}

pub(super) async fn get(backend: &RedisBackend, id: &ScheduleId) -> Result<ScheduleState> {
    let queue = backend
        .schedule_queue(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let fields: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(backend.schedule_key(&queue, id))
        .arg(&FIELDS[..])
        .query_async(&mut backend.conn())
        .await
        .map_err(CoordError::from)?;
    decode(id.as_str(), fields)?.ok_or_else(|| not_found(id))
}

pub(super) async fn set_paused(
    backend: &RedisBackend,
    id: &ScheduleId,
    paused: bool,
    next_run_at: Option<i64>,
) -> Result<()> {
    let queue = backend
        .schedule_queue(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let found: i64 = PAUSE
        .key(backend.schedule_key(&queue, id))
        .arg(if paused { "1" } else { "0" })
        .arg(opt_text(next_run_at))
        .invoke_async(&mut backend.conn())
        .await
        .map_err(CoordError::from)?;
    if found == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

/// Schedules one script fires at most, so that a script stays short.
const FIRES_PER_SCRIPT: usize = 200;

pub(super) async fn fire(backend: &RedisBackend, fires: &[Fire]) -> Result<Vec<Fired>> {
    // Per queue (one slot each), in bounded groups, all at once.
    let mut groups: Vec<(QueueName, Vec<usize>)> = Vec::new();
    for (i, fire) in fires.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|(q, members)| *q == fire.queue && members.len() < FIRES_PER_SCRIPT)
        {
            Some((_, members)) => members.push(i),
            None => groups.push((fire.queue.clone(), vec![i])),
        }
    }
    let runs = groups
        .iter()
        .map(|(queue, members)| fire_group(backend, queue, members, fires));
    let confirmed = futures_util::future::try_join_all(runs).await?;
    let mut done = vec![false; fires.len()];
    for (i, ok) in confirmed.into_iter().flatten() {
        done[i] = ok;
    }
    // Read back the schedules whose fire the answer does not confirm.
    let unsure: Vec<usize> = (0..fires.len()).filter(|&i| !done[i]).collect();
    let commands = unsure
        .iter()
        .map(|&i| {
            let key = backend.schedule_key(&fires[i].queue, &fires[i].id);
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(&key).arg(&["next", "version", "paused", "runs"]);
            (key.into_bytes(), cmd)
        })
        .collect();
    let read: Vec<Vec<Option<String>>> = backend
        .conn()
        .each_slot(commands)
        .await
        .map_err(CoordError::from)?;
    let mut outcomes: Vec<Fired> = (0..fires.len()).map(|_| Fired::Done).collect();
    for (i, fields) in unsure.into_iter().zip(read) {
        let get = |k: usize| fields.get(k).and_then(|f| f.as_deref());
        outcomes[i] = match get(1) {
            None => Fired::Missing,
            Some(version) => Fired::Stale {
                next_run_at: opt_num(get(0))?,
                version: opt_num(Some(version))?.unwrap_or(0),
                paused: get(2) == Some("1"),
                runs: opt_num(get(3))?.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            },
        };
    }
    Ok(outcomes)
}

/// Fires the schedules `members` (of `fires`) of one queue in one script;
/// answers, per member, whether its job was enqueued.
async fn fire_group(
    backend: &RedisBackend,
    queue: &QueueName,
    members: &[usize],
    fires: &[Fire],
) -> Result<Vec<(usize, bool)>> {
    let has_jobs = members.iter().any(|&i| fires[i].job.is_some());
    if has_jobs {
        backend.register(queue).await?;
    }
    let had_written = backend.memory().contains_key(queue);
    let keys = backend.keys(queue);
    let mut inv = backend.invocation(&FIRE, queue, &keys);
    for &i in members {
        inv.key(backend.schedule_key(queue, &fires[i].id));
    }
    inv.arg(members.len());
    for &i in members {
        let fire = &fires[i];
        match fire.expected {
            Some((next, version)) => inv
                .arg("cas")
                .arg(next.to_string())
                .arg(version.to_string()),
            None => inv.arg("manual").arg("").arg(""),
        };
        inv.arg(opt_text(fire.next_run_at))
            .arg(if fire.job.is_some() { "1" } else { "0" });
    }
    for &i in members {
        if let Some(job) = &fires[i].job {
            let opts: &JobOptions = &job.options;
            inv.arg(opts.job_id.as_ref().map_or("", JobId::as_str))
                .arg(&job.name)
                .arg(to_json(&job.data)?)
                .arg(to_json(opts)?)
                .arg(opts.priority)
                .arg(opts.delay_ms.max(0))
                .arg(opts.attempts);
        }
    }
    let reply: Vec<String> = inv
        .invoke_async(&mut backend.conn())
        .await
        .map_err(CoordError::from)?;
    let Some((flag, ids)) = reply.split_first() else {
        return Err(CoordError::Corrupt("an empty schedule fire reply".into()));
    };
    if flag == "none" {
        return Ok(members.iter().map(|&i| (i, false)).collect());
    }
    if flag == "1" && had_written {
        backend.restore(queue).await;
    }
    let enqueued: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    Ok(members
        .iter()
        .map(|&i| {
            let job_id = fires[i]
                .job
                .as_ref()
                .and_then(|j| j.options.job_id.as_ref());
            (i, job_id.is_some_and(|id| enqueued.contains(id.as_str())))
        })
        .collect())
}
