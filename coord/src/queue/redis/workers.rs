//! The worker registry on Redis: the instances' layout
//! ([`crate::instances::presence`]) under `<p>:worker:<id>` and the
//! `<p>:workers` hash, plus the `<p>:worker-commands` hash (worker id →
//! `quiet` or `stop`). Each is its own key, so it works on a cluster; a
//! heartbeat's writes and its read of the command go in one round trip per
//! slot.

use std::time::Duration;

use super::RedisBackend;
use crate::error::{CoordError, Result};
use crate::instances::Thresholds;
use crate::queue::workers::{
    WorkerCommand, WorkerId, WorkerReport, WorkerView, judge_entries, stored_command,
};

impl RedisBackend {
    fn command_of(&self, id: &WorkerId) -> (Vec<u8>, redis::Cmd) {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(&self.inner.worker_commands_key).arg(id.as_str());
        (self.inner.worker_commands_key.clone().into_bytes(), cmd)
    }
}

pub(super) async fn heartbeat(
    backend: &RedisBackend,
    report: &WorkerReport,
    ttl: Duration,
) -> Result<Option<WorkerCommand>> {
    report.validate()?;
    let json = serde_json::to_string(report)
        .map_err(|e| CoordError::Corrupt(format!("cannot encode worker report: {e}")))?;
    let mut commands = backend.inner.workers.beat(report.id.as_str(), &json, ttl);
    commands.push(backend.command_of(&report.id));
    let answers: Vec<redis::Value> = backend
        .conn()
        .each_slot(commands)
        .await
        .map_err(CoordError::from)?;
    let command: Option<String> = match answers.last() {
        Some(value) => redis::from_redis_value(value.clone())
            .map_err(|e| CoordError::Corrupt(format!("a worker's command: {e}")))?,
        None => None,
    };
    Ok(stored_command(command.as_deref()))
}

pub(super) async fn leave(backend: &RedisBackend, id: &WorkerId) -> Result<()> {
    let mut commands = backend.inner.workers.leave(id.as_str());
    let mut command = redis::cmd("HDEL");
    command
        .arg(&backend.inner.worker_commands_key)
        .arg(id.as_str());
    commands.push((
        backend.inner.worker_commands_key.clone().into_bytes(),
        command,
    ));
    backend
        .conn()
        .each_slot::<redis::Value>(commands)
        .await
        .map(drop)
        .map_err(CoordError::from)
}

pub(super) async fn list(
    backend: &RedisBackend,
    now_ms: i64,
    thresholds: &Thresholds,
) -> Result<Vec<WorkerView>> {
    let mut conn = backend.conn();
    let entries = backend
        .inner
        .workers
        .entries(&mut conn, |report: &WorkerReport| report.id.as_str())
        .await?;
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let commands: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&backend.inner.worker_commands_key)
        .query_async(&mut conn)
        .await
        .map_err(CoordError::from)?;
    let entries = entries
        .into_iter()
        .map(|(report, expired)| {
            let command = stored_command(commands.get(report.id.as_str()).map(String::as_str));
            (report, expired, command)
        })
        .collect();
    let (views, forget) = judge_entries(entries, now_ms, thresholds);
    if !forget.is_empty() {
        let ids: Vec<&str> = forget.iter().map(WorkerId::as_str).collect();
        let mut drop_commands = redis::cmd("HDEL");
        drop_commands
            .arg(&backend.inner.worker_commands_key)
            .arg(&ids);
        conn.each_slot::<redis::Value>(vec![
            backend.inner.workers.forget(&ids),
            (
                backend.inner.worker_commands_key.clone().into_bytes(),
                drop_commands,
            ),
        ])
        .await
        .map_err(CoordError::from)?;
    }
    Ok(views)
}

pub(super) async fn command(
    backend: &RedisBackend,
    id: &WorkerId,
    command: WorkerCommand,
) -> Result<()> {
    let mut conn = backend.conn();
    let known: bool = redis::cmd("HEXISTS")
        .arg(backend.inner.workers.members_key())
        .arg(id.as_str())
        .query_async(&mut conn)
        .await
        .map_err(CoordError::from)?;
    if !known {
        return Err(CoordError::WorkerNotFound(id.to_string()));
    }
    let key = &backend.inner.worker_commands_key;
    let mut cmd = match command {
        WorkerCommand::Resume => redis::cmd("HDEL"),
        _ => redis::cmd("HSET"),
    };
    cmd.arg(key).arg(id.as_str());
    if command != WorkerCommand::Resume {
        cmd.arg(command.as_str());
    }
    cmd.query_async::<()>(&mut conn)
        .await
        .map_err(CoordError::from)
}
