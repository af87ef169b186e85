//! A running job's log lines and progress on Redis
//! ([`crate::queue::report`]): the lines in a list beside the job's hash
//! (`<p>:{<q>}:logs:<id>`; BullMQ keeps `bull:<q>:<id>:logs`), progress and
//! the cap counters in the hash. Each write is one script that checks the
//! lease, so an attempt that lost its job writes nothing.

use std::sync::LazyLock;

use redis::{Script, Value as RedisValue};

use super::QueueKeys;
use crate::error::{CoordError, Result};
use crate::queue::report::{JobReport, MAX_LOG_BYTES, MAX_LOG_LINES};
use crate::queue::{JobId, QueueName};
use crate::redis::Conn;

static LOG: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("log.lua")));
static PROGRESS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("progress.lua")));
static REPORT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("report.lua")));

pub(super) async fn append_logs(
    conn: &mut Conn,
    keys: &QueueKeys,
    id: &JobId,
    token: &str,
    lines: &[String],
) -> Result<bool> {
    if lines.is_empty() {
        return Ok(true);
    }
    let mut inv = LOG.prepare_invoke();
    inv.key(keys.job(id))
        .key(keys.logs(id))
        .arg(token)
        .arg(MAX_LOG_LINES)
        .arg(MAX_LOG_BYTES);
    for line in lines {
        inv.arg(line);
    }
    let held: i64 = inv.invoke_async(conn).await.map_err(CoordError::from)?;
    Ok(held == 1)
}

pub(super) async fn set_progress(
    conn: &mut Conn,
    keys: &QueueKeys,
    id: &JobId,
    token: &str,
    progress: &str,
) -> Result<bool> {
    let held: i64 = PROGRESS
        .key(keys.job(id))
        .arg(token)
        .arg(progress)
        .invoke_async(conn)
        .await
        .map_err(CoordError::from)?;
    Ok(held == 1)
}

/// `None` when the job does not exist.
pub(super) async fn job_report(
    conn: &mut Conn,
    queue: &QueueName,
    keys: &QueueKeys,
    id: &JobId,
    lines: u32,
) -> Result<Option<JobReport>> {
    let reply: Vec<RedisValue> = REPORT
        .key(keys.job(id))
        .key(keys.logs(id))
        .arg(lines.max(1))
        .invoke_async(conn)
        .await
        .map_err(CoordError::from)?;
    if reply.is_empty() {
        return Ok(None);
    }
    let corrupt =
        |why: String| CoordError::Corrupt(format!("report of job {id} in queue {queue}: {why}"));
    let text = |v: &RedisValue| -> Result<Option<String>> {
        match v {
            RedisValue::Nil => Ok(None),
            other => redis::from_redis_value_ref::<String>(other)
                .map(Some)
                .map_err(|e| corrupt(e.to_string())),
        }
    };
    let number = |v: &RedisValue| -> Result<u64> {
        redis::from_redis_value_ref::<u64>(v).map_err(|e| corrupt(e.to_string()))
    };
    let [progress, kept, dropped, rest @ ..] = reply.as_slice() else {
        return Err(corrupt(format!("{} values", reply.len())));
    };
    let progress = match text(progress)? {
        None => None,
        Some(json) => Some(serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?),
    };
    let mut logs = Vec::with_capacity(rest.len());
    if lines > 0 {
        for line in rest {
            logs.push(text(line)?.unwrap_or_default());
        }
    }
    Ok(Some(JobReport {
        progress,
        logs,
        logs_kept: number(kept)?,
        logs_dropped: number(dropped)?,
    }))
}
