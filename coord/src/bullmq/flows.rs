//! BullMQ flows (parent and child jobs, `FlowProducer`), read so a job's
//! page can show where it sits in its tree and a `waiting-children` tab
//! can say what each parent still waits for.
//!
//! BullMQ 5's layout, learnt from its `FlowProducer`, `Job.getDependencies`
//! and the scripts that finish, fail and remove jobs:
//!
//! - a child's hash holds `parentKey` (`<prefix>:<queue>:<id>` of its
//!   parent) and `parent`, JSON `{"id", "queueKey"}` plus the flags of what
//!   its failure does to the parent (`fpof` fail it, `idof` ignore the
//!   failure, `rdof` drop the dependency, `cpof` let it continue);
//! - a parent's children are named by their whole job keys, possibly in
//!   other queues or under another prefix, spread over four keys beside the
//!   parent's hash: `:dependencies` (a set, the children it still waits
//!   for), `:processed` (a hash, each completed child's return value),
//!   `:unsuccessful` (a sorted set by failure time, children that failed
//!   with `failParentOnFailure`) and `:failed` (a hash, each failure
//!   ignored or let through with `ignoreDependencyOnFailure` or
//!   `continueParentOnFailure`, with its reason);
//! - a parent added with children sits in `waiting-children` until
//!   `:dependencies` is empty (or a child fails it), then moves to `wait`.
//!   A child that fails without one of those options stays in
//!   `:dependencies`: its parent waits until it is retried.
//!
//! Everything here is a read of plain commands, bounded however many
//! children a parent has, and per key, so children on other cluster nodes
//! cost a pipeline per slot rather than a refusal.

use std::cmp::Ordering;

use redis::Value;
use serde::{Serialize, Serializer};

use super::{BullMq, BullState, check_job_id};
use crate::error::{CoordError, Result};
use crate::redis as conn;

/// Children of one kind a flow read lists at most: a parent of 100,000
/// children costs a bounded read, and the page says how many it left out.
pub const MAX_FLOW_CHILDREN: usize = 100;

/// Shown as BullMQ names it, so the JSON reads like BullMQ's own.
impl Serialize for BullState {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What a child's failure does to its parent (the child's option), so a
/// page can say why a parent failed, or why it did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BullOnFailure {
    /// `failParentOnFailure`: the parent fails too.
    FailParent,
    /// `ignoreDependencyOnFailure`: the parent goes on, the failure kept
    /// in its `:failed` hash.
    IgnoreDependency,
    /// `removeDependencyOnFailure`: the parent goes on, forgetting the
    /// child.
    RemoveDependency,
    /// `continueParentOnFailure`: the parent is processed at once, the
    /// failure kept in its `:failed` hash.
    ContinueParent,
}

/// A job a flow names: the parent, or a child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BullFlowJob {
    /// Its key as BullMQ wrote it (`<prefix>:<queue>:<id>`): children are
    /// named by it, and it is the only name of one under another prefix.
    pub key: String,
    /// Its queue's key (`<prefix>:<queue>`), where its state is looked up.
    pub queue_key: String,
    /// Its queue, when it lives under this handle's prefix: only then can
    /// a page of this handle link it.
    pub queue: Option<String>,
    /// Its id.
    pub id: String,
    /// Its name, when its hash is still there.
    pub name: Option<String>,
    /// Where it is; `None` when its hash is gone (removed on completion,
    /// cleaned) or its key could not be read as a job's.
    pub state: Option<BullState>,
}

/// One kind of a parent's children: how many there are, and some of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BullChildren {
    /// Children of this kind in all.
    pub total: u64,
    /// At most [`MAX_FLOW_CHILDREN`] of them, sorted by queue and id. When
    /// there are more, which ones is Redis's pick (`SRANDMEMBER`,
    /// `HRANDFIELD`; the newest for failed ones).
    pub jobs: Vec<BullFlowJob>,
}

impl BullChildren {
    /// Children of this kind not listed.
    pub fn more(&self) -> u64 {
        self.total.saturating_sub(self.jobs.len() as u64)
    }
}

/// A job's place in its flow: its parent and its children by kind; all
/// empty for a job outside any flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BullFlow {
    /// The job's parent, when it is a child.
    pub parent: Option<BullFlowJob>,
    /// What the job's failure does to its parent; `None` for BullMQ's
    /// default (the parent keeps waiting for it).
    pub on_failure: Option<BullOnFailure>,
    /// Children it still waits for (`:dependencies`).
    pub pending: BullChildren,
    /// Children that completed (`:processed`; their return values are not
    /// read).
    pub processed: BullChildren,
    /// Children that failed it (`:unsuccessful`).
    pub failed: BullChildren,
    /// Children whose failure was ignored or let through (`:failed`).
    pub ignored: BullChildren,
}

impl BullFlow {
    /// True for a job with neither parent nor children.
    pub fn is_empty(&self) -> bool {
        self.parent.is_none() && self.counts().total() == 0
    }

    /// How many children of each kind.
    pub fn counts(&self) -> BullDependencies {
        BullDependencies {
            pending: self.pending.total,
            processed: self.processed.total,
            failed: self.failed.total,
            ignored: self.ignored.total,
        }
    }
}

/// How many children of each kind a parent has, as BullMQ's
/// `getDependenciesCount` tells them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BullDependencies {
    /// Still waited for.
    pub pending: u64,
    /// Completed.
    pub processed: u64,
    /// Failed the parent.
    pub failed: u64,
    /// Failed, ignored or let through.
    pub ignored: u64,
}

impl BullDependencies {
    /// Children in all.
    pub fn total(&self) -> u64 {
        self.pending + self.processed + self.failed + self.ignored
    }
}

/// A job key taken apart: queue key, queue (under `prefix` only) and id.
fn locate(prefix: &str, key: &str) -> Option<(String, Option<String>, String)> {
    let own = key
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| rest.split_once(':'))
        .filter(|(queue, id)| super::check_queue(queue).is_ok() && !id.is_empty());
    if let Some((queue, id)) = own {
        return Some((
            format!("{prefix}:{queue}"),
            Some(queue.to_owned()),
            id.to_owned(),
        ));
    }
    // Another prefix: BullMQ itself takes such keys apart at the first two
    // colons (`FlowProducer.getChildren`); queue names hold none, and of
    // ids only legacy repeat ids do, which stay whole after the second.
    let mut parts = key.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(queue), Some(id))
            if !p.is_empty() && !queue.is_empty() && !id.is_empty() =>
        {
            Some((format!("{p}:{queue}"), None, id.to_owned()))
        }
        _ => None,
    }
}

/// By queue, then numeric ids in number order (BullMQ's counter) before
/// custom ones by text, so a random pick still reads in a stable order.
fn by_queue_and_id(a: &BullFlowJob, b: &BullFlowJob) -> Ordering {
    let number = |id: &str| id.parse::<u64>().ok();
    a.queue_key
        .cmp(&b.queue_key)
        .then_with(|| match (number(&a.id), number(&b.id)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.id.cmp(&b.id),
        })
}

/// A failed command's answer, `None` for any other.
fn server_error(value: &Value) -> Option<&redis::ServerError> {
    match value {
        Value::ServerError(e) => Some(e),
        _ => None,
    }
}

/// Commands whose answers may be errors (a key of another type, a command
/// older Redis lacks) that must not fail the whole read.
fn lenient(value: Value) -> Result<Option<Value>> {
    match server_error(&value) {
        None => Ok(Some(value)),
        Some(e) if e.code() == "WRONGTYPE" => Ok(None),
        Some(e)
            if e.code() == "ERR"
                && e.details()
                    .is_some_and(|d| d.to_ascii_lowercase().contains("unknown command")) =>
        {
            Ok(None)
        }
        Some(e) => Err(CoordError::from(redis::RedisError::from(e.clone()))),
    }
}

fn count_of(value: Value) -> Result<u64> {
    match lenient(value)? {
        Some(v) => {
            redis::from_redis_value(v).map_err(|e| CoordError::from(redis::RedisError::from(e)))
        }
        None => Ok(0),
    }
}

fn strings_of(value: Value) -> Result<Vec<String>> {
    match lenient(value)? {
        Some(v) => {
            redis::from_redis_value(v).map_err(|e| CoordError::from(redis::RedisError::from(e)))
        }
        None => Ok(Vec::new()),
    }
}

/// The eight per-key commands that tell where a job is (see
/// [`state_from`]).
const LOOKUP: usize = 8;

/// Sorted sets holding a state, in the order a job found in several (which
/// BullMQ never leaves) is said to be in.
const SET_STATES: [BullState; 5] = [
    BullState::Delayed,
    BullState::Prioritized,
    BullState::WaitingChildren,
    BullState::Completed,
    BullState::Failed,
];

impl BullMq {
    /// A job's flow: its parent and up to `limit` (at most
    /// [`MAX_FLOW_CHILDREN`]) children of each kind with their totals, each
    /// with its name and state. `None` when `id` names no job of `queue`.
    ///
    /// Two reads whatever the number of children: one pipeline on the
    /// job's keys (counts, and a bounded pick of each kind), then O(1)
    /// commands per listed job, pipelined per cluster slot. States come
    /// from the sorted sets by `ZSCORE`; a job in none of them is active
    /// while its worker's `:lock` is held, else waiting (paused when its
    /// queue is): BullMQ keeps a live job nowhere else, and finding it in
    /// a list of a million would be a scan.
    pub async fn flow(&self, queue: &str, id: &str, limit: usize) -> Result<Option<BullFlow>> {
        self.check(queue)?;
        check_job_id(id)?;
        let limit = limit.clamp(1, MAX_FLOW_CHILDREN);
        let job_key = self.key(queue, id);
        let kinds = [":dependencies", ":processed", ":unsuccessful", ":failed"];
        let [deps, processed, unsuccessful, failed] = kinds.map(|k| format!("{job_key}{k}"));
        let mut pipe = redis::pipe();
        pipe.ignore_errors()
            .cmd("HMGET")
            .arg(&job_key)
            .arg("timestamp")
            .arg("parent")
            .arg("parentKey")
            .cmd("SCARD")
            .arg(&deps)
            .cmd("HLEN")
            .arg(&processed)
            .cmd("ZCARD")
            .arg(&unsuccessful)
            .cmd("HLEN")
            .arg(&failed)
            .cmd("SRANDMEMBER")
            .arg(&deps)
            .arg(limit)
            .cmd("HRANDFIELD")
            .arg(&processed)
            .arg(limit)
            .cmd("ZREVRANGE")
            .arg(&unsuccessful)
            .arg(0)
            .arg(limit - 1)
            .cmd("HRANDFIELD")
            .arg(&failed)
            .arg(limit);
        let replies: Vec<Value> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        let mut replies = replies.into_iter();
        let mut next = || replies.next().unwrap_or(Value::Nil);
        let fields: Vec<Option<String>> = match lenient(next())? {
            Some(v) => redis::from_redis_value(v)
                .map_err(|e| CoordError::from(redis::RedisError::from(e)))?,
            None => return Ok(None),
        };
        let field = |i: usize| fields.get(i).cloned().flatten();
        if field(0).is_none() {
            return Ok(None);
        }
        let totals = [
            count_of(next())?,
            count_of(next())?,
            count_of(next())?,
            count_of(next())?,
        ];
        let listed = [
            strings_of(next())?,
            strings_of(next())?,
            strings_of(next())?,
            strings_of(next())?,
        ];

        let (parent_key, on_failure) = parent_of(field(1).as_deref(), field(2).as_deref());
        let mut wanted: Vec<String> = parent_key.into_iter().collect();
        let has_parent = !wanted.is_empty();
        for keys in &listed {
            wanted.extend(keys.iter().take(limit).cloned());
        }
        let mut found = self.look_up(&wanted).await?.into_iter();
        let parent = if has_parent { found.next() } else { None };
        let mut kinds = listed.iter().zip(totals).map(|(keys, total)| {
            let mut jobs: Vec<BullFlowJob> = found.by_ref().take(keys.len().min(limit)).collect();
            jobs.sort_by(by_queue_and_id);
            BullChildren {
                total: total.max(jobs.len() as u64),
                jobs,
            }
        });
        let mut take = || kinds.next().unwrap_or_default();
        Ok(Some(BullFlow {
            parent,
            on_failure,
            pending: take(),
            processed: take(),
            failed: take(),
            ignored: take(),
        }))
    }

    /// How many children of each kind each of `ids` has: the
    /// `waiting-children` tab's "N of M pending", four O(1) commands a job
    /// in one pipeline for a whole page. A job with no children (or none
    /// left) reads as zeros, and so does an id no job can have (a damaged
    /// set naming `meta`), so one bad member cannot fail the whole tab.
    pub async fn dependencies(&self, queue: &str, ids: &[&str]) -> Result<Vec<BullDependencies>> {
        self.check(queue)?;
        let valid: Vec<bool> = ids.iter().map(|id| check_job_id(id).is_ok()).collect();
        if !valid.contains(&true) {
            return Ok(vec![BullDependencies::default(); ids.len()]);
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for (id, _) in ids.iter().zip(&valid).filter(|(_, ok)| **ok) {
            let job_key = self.key(queue, id);
            pipe.cmd("SCARD")
                .arg(format!("{job_key}:dependencies"))
                .cmd("HLEN")
                .arg(format!("{job_key}:processed"))
                .cmd("ZCARD")
                .arg(format!("{job_key}:unsuccessful"))
                .cmd("HLEN")
                .arg(format!("{job_key}:failed"));
        }
        let replies: Vec<Value> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(CoordError::from)?;
        let mut replies = replies.into_iter();
        let mut next = || count_of(replies.next().unwrap_or(Value::Nil));
        valid
            .into_iter()
            .map(|ok| {
                if !ok {
                    return Ok(BullDependencies::default());
                }
                Ok(BullDependencies {
                    pending: next()?,
                    processed: next()?,
                    failed: next()?,
                    ignored: next()?,
                })
            })
            .collect()
    }

    /// Name and state of each job key, in order ([`LOOKUP`] O(1) commands
    /// each, pipelined per cluster slot since a flow may span queues).
    async fn look_up(&self, keys: &[String]) -> Result<Vec<BullFlowJob>> {
        let jobs: Vec<Option<(String, Option<String>, String)>> =
            keys.iter().map(|key| locate(&self.prefix, key)).collect();
        let mut commands: Vec<(String, redis::Cmd)> = Vec::new();
        for (key, place) in keys.iter().zip(&jobs) {
            let Some((queue_key, _, id)) = place else {
                continue;
            };
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(key).arg("name").arg("timestamp");
            commands.push((key.clone(), hmget));
            for state in SET_STATES {
                let set = format!("{queue_key}:{}", state.suffix());
                let mut zscore = redis::cmd("ZSCORE");
                zscore.arg(&set).arg(id);
                commands.push((set, zscore));
            }
            let lock = format!("{key}:lock");
            let mut exists = redis::cmd("EXISTS");
            exists.arg(&lock);
            commands.push((lock, exists));
            let meta = format!("{queue_key}:meta");
            let mut paused = redis::cmd("HEXISTS");
            paused.arg(&meta).arg("paused");
            commands.push((meta, paused));
        }
        let mut answers = self.per_slot(commands).await?.into_iter();
        let mut out = Vec::with_capacity(keys.len());
        for (key, place) in keys.iter().zip(jobs) {
            let Some((queue_key, queue, id)) = place else {
                out.push(BullFlowJob {
                    key: key.clone(),
                    queue_key: String::new(),
                    queue: None,
                    id: key.clone(),
                    name: None,
                    state: None,
                });
                continue;
            };
            let answers: Vec<Value> = answers.by_ref().take(LOOKUP).collect();
            let (name, state) = state_from(answers)?;
            out.push(BullFlowJob {
                key: key.clone(),
                queue_key,
                queue,
                id,
                name,
                state,
            });
        }
        Ok(out)
    }

    /// Runs single-key commands that may lie in different slots, ignoring
    /// per-command errors (answered as values): one pipeline on one
    /// server, one per slot at once on a cluster.
    async fn per_slot(&self, commands: Vec<(String, redis::Cmd)>) -> Result<Vec<Value>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut groups: std::collections::BTreeMap<u16, Vec<usize>> = Default::default();
        for (i, (key, _)) in commands.iter().enumerate() {
            let slot = if self.endpoint.is_cluster() {
                conn::slot(key.as_bytes())
            } else {
                0
            };
            groups.entry(slot).or_default().push(i);
        }
        let runs = groups.into_values().map(|members| {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for &i in &members {
                pipe.add_command(commands[i].1.clone());
            }
            let mut conn = self.conn.clone();
            async move {
                let values: Vec<Value> = pipe.query_async(&mut conn).await?;
                Ok::<_, redis::RedisError>((members, values))
            }
        });
        let mut answers = vec![Value::Nil; commands.len()];
        for (members, values) in futures_util::future::try_join_all(runs)
            .await
            .map_err(CoordError::from)?
        {
            for (i, value) in members.into_iter().zip(values) {
                answers[i] = value;
            }
        }
        Ok(answers)
    }
}

/// The parent's key and the child's failure option from its hash fields:
/// the `parent` JSON when readable (it names queue key and id apart), else
/// `parentKey`.
fn parent_of(json: Option<&str>, key: Option<&str>) -> (Option<String>, Option<BullOnFailure>) {
    let parsed = json.and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok());
    let from_json = parsed.as_ref().and_then(|v| {
        let queue_key = v.get("queueKey")?.as_str()?;
        let id = match v.get("id")? {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Some(format!("{queue_key}:{id}"))
    });
    let flag = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .is_some_and(|f| f.as_bool().unwrap_or(!f.is_null()))
    };
    // The order BullMQ's failure handling checks them in.
    let on_failure = if flag("fpof") {
        Some(BullOnFailure::FailParent)
    } else if flag("cpof") {
        Some(BullOnFailure::ContinueParent)
    } else if flag("idof") {
        Some(BullOnFailure::IgnoreDependency)
    } else if flag("rdof") {
        Some(BullOnFailure::RemoveDependency)
    } else {
        None
    };
    let parent = from_json.or_else(|| key.filter(|k| !k.is_empty()).map(str::to_owned));
    (parent, on_failure)
}

/// Name and state from one job's [`LOOKUP`] answers: `HMGET name
/// timestamp`, `ZSCORE` in each of [`SET_STATES`], `EXISTS :lock`,
/// `HEXISTS meta paused`.
fn state_from(answers: Vec<Value>) -> Result<(Option<String>, Option<BullState>)> {
    let mut answers = answers.into_iter();
    let mut next = || lenient(answers.next().unwrap_or(Value::Nil));
    let fields: Vec<Option<String>> = match next()? {
        Some(v) => {
            redis::from_redis_value(v).map_err(|e| CoordError::from(redis::RedisError::from(e)))?
        }
        None => Vec::new(),
    };
    let name = fields.first().cloned().flatten();
    let is_job = fields.get(1).is_some_and(Option::is_some);
    let mut state = None;
    for set_state in SET_STATES {
        if matches!(next()?, Some(v) if v != Value::Nil) && state.is_none() {
            state = Some(set_state);
        }
    }
    let locked = matches!(next()?, Some(Value::Int(1)));
    let paused = matches!(next()?, Some(Value::Int(1)));
    if !is_job {
        return Ok((None, None));
    }
    let state = state.unwrap_or(if locked {
        BullState::Active
    } else if paused {
        BullState::Paused
    } else {
        BullState::Waiting
    });
    Ok((name, Some(state)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_keys_are_taken_apart_under_this_prefix_and_others() {
        assert_eq!(
            locate("bull", "bull:mail:7"),
            Some(("bull:mail".into(), Some("mail".into()), "7".into()))
        );
        // A prefix with a colon and a hash tag, an id with colons.
        assert_eq!(
            locate("app:{b}", "app:{b}:mail:repeat:x:1"),
            Some((
                "app:{b}:mail".into(),
                Some("mail".into()),
                "repeat:x:1".into()
            ))
        );
        // Another prefix: no queue to link, but where to look it up.
        assert_eq!(
            locate("bull", "other:thumbs:3"),
            Some(("other:thumbs".into(), None, "3".into()))
        );
        assert_eq!(
            locate("bull", "bullx:q:1"),
            Some(("bullx:q".into(), None, "1".into()))
        );
        for bad in ["", "x", "a:b", ":q:1", "a::1", "a:q:"] {
            assert_eq!(locate("bull", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_parent_and_the_failure_option_come_from_the_parent_field() {
        assert_eq!(
            parent_of(
                Some(r#"{"id":"9","queueKey":"bull:p","fpof":true}"#),
                Some("x")
            ),
            (Some("bull:p:9".into()), Some(BullOnFailure::FailParent))
        );
        assert_eq!(
            parent_of(Some(r#"{"id":"9","queueKey":"bull:p","idof":true}"#), None).1,
            Some(BullOnFailure::IgnoreDependency)
        );
        assert_eq!(
            parent_of(Some(r#"{"id":"9","queueKey":"bull:p","rdof":true}"#), None).1,
            Some(BullOnFailure::RemoveDependency)
        );
        assert_eq!(
            parent_of(Some(r#"{"id":"9","queueKey":"bull:p","cpof":true}"#), None).1,
            Some(BullOnFailure::ContinueParent)
        );
        // Unreadable JSON: the key field, no option.
        assert_eq!(
            parent_of(Some("{"), Some("bull:p:9")),
            (Some("bull:p:9".into()), None)
        );
        assert_eq!(parent_of(None, None), (None, None));
        assert_eq!(parent_of(None, Some("")), (None, None));
    }

    fn answers(hmget: Value, sets: [bool; 5], locked: bool, paused: bool) -> Vec<Value> {
        let mut out = vec![hmget];
        out.extend(sets.map(|hit| {
            if hit {
                Value::BulkString(b"1".to_vec())
            } else {
                Value::Nil
            }
        }));
        out.push(Value::Int(locked.into()));
        out.push(Value::Int(paused.into()));
        out
    }

    fn job_fields() -> Value {
        Value::Array(vec![
            Value::BulkString(b"send".to_vec()),
            Value::BulkString(b"1700000000000".to_vec()),
        ])
    }

    #[test]
    fn states_are_told_from_sets_lock_and_pause() {
        let state = |sets, locked, paused| {
            state_from(answers(job_fields(), sets, locked, paused))
                .expect("read")
                .1
        };
        let none = [false; 5];
        assert_eq!(state(none, false, false), Some(BullState::Waiting));
        assert_eq!(state(none, false, true), Some(BullState::Paused));
        assert_eq!(state(none, true, false), Some(BullState::Active));
        assert_eq!(
            state([false, false, false, true, false], true, false),
            Some(BullState::Completed),
            "a set beats a lock left behind"
        );
        assert_eq!(
            state([false, false, true, false, false], false, false),
            Some(BullState::WaitingChildren)
        );
        assert_eq!(
            state([false, false, false, false, true], false, false),
            Some(BullState::Failed)
        );
        // The hash is gone: no state, whatever else says.
        let gone = Value::Array(vec![Value::Nil, Value::Nil]);
        assert_eq!(
            state_from(answers(gone, none, true, false)).expect("read"),
            (None, None)
        );
        assert_eq!(
            state_from(answers(job_fields(), none, false, false))
                .expect("read")
                .0
                .as_deref(),
            Some("send")
        );
    }

    #[test]
    fn children_sort_by_queue_then_numeric_id() {
        let job = |queue_key: &str, id: &str| BullFlowJob {
            key: format!("{queue_key}:{id}"),
            queue_key: queue_key.into(),
            queue: None,
            id: id.into(),
            name: None,
            state: None,
        };
        let mut jobs = [
            job("b:q", "1"),
            job("b:p", "x"),
            job("b:p", "10"),
            job("b:p", "9"),
        ];
        jobs.sort_by(by_queue_and_id);
        let ids: Vec<_> = jobs
            .iter()
            .map(|j| (j.queue_key.as_str(), j.id.as_str()))
            .collect();
        assert_eq!(
            ids,
            [("b:p", "9"), ("b:p", "10"), ("b:p", "x"), ("b:q", "1")]
        );
    }

    #[test]
    fn flows_serialise_in_camel_case_without_values() {
        let flow = BullFlow {
            parent: Some(BullFlowJob {
                key: "bull:p:1".into(),
                queue_key: "bull:p".into(),
                queue: Some("p".into()),
                id: "1".into(),
                name: Some("report".into()),
                state: Some(BullState::WaitingChildren),
            }),
            on_failure: Some(BullOnFailure::IgnoreDependency),
            pending: BullChildren {
                total: 250,
                jobs: vec![],
            },
            ..BullFlow::default()
        };
        let json = serde_json::to_value(&flow).expect("json");
        assert_eq!(json["parent"]["queueKey"], "bull:p");
        assert_eq!(json["parent"]["state"], "waiting-children");
        assert_eq!(json["onFailure"], "ignoreDependency");
        assert_eq!(json["pending"]["total"], 250);
        assert_eq!(json["processed"]["jobs"], serde_json::json!([]));
        assert_eq!(flow.pending.more(), 250);
        assert_eq!(flow.counts().total(), 250);
        assert!(!flow.is_empty());
        assert!(BullFlow::default().is_empty());
    }
}
