//! Reading error groups on the Redis backend. The scripts that move jobs
//! in and out of the failed set keep the groups (`common.lua`:
//! `joinGroups`, `leaveGroups`); reading them is two read-only scripts on the
//! queue's slot.

use std::sync::LazyLock;

use redis::Script;

use super::QueueKeys;
use super::stored_id;
use crate::error::{CoordError, Result};
use crate::errors::{ErrorGroup, ErrorGroups, GroupId, TREND_BUCKET_MS, TREND_BUCKETS, Trend};
use crate::redis::Conn;

static ERROR_GROUPS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("error_groups.lua")));
static ERROR_TRENDS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("error_trends.lua")));
static BACKFILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("common.lua"),
        include_str!("backfill.lua")
    ))
});

/// The sorted set of a group's failed jobs.
pub(super) fn members_key(keys: &QueueKeys, group: GroupId) -> String {
    format!("{}error:{group}:jobs", keys.base)
}

pub(super) async fn error_groups(
    conn: &mut Conn,
    keys: &QueueKeys,
    limit: usize,
) -> Result<ErrorGroups> {
    if limit == 0 {
        return Ok(ErrorGroups::default());
    }
    type Reply = (u64, Vec<(String, u64, Vec<String>)>);
    let (total, rows): Reply = ERROR_GROUPS
        .key(&keys.errors)
        .arg(&keys.base)
        .arg(limit)
        .invoke_async(conn)
        .await
        .map_err(CoordError::from)?;
    let mut groups = Vec::with_capacity(rows.len());
    for (id, failed, fields) in rows {
        match group_from_hash(&id, failed, fields) {
            // A group emptied between the two reads is no group.
            Ok(Some(group)) => groups.push(group),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(group = %id, error = %e, "skipping an undecodable error group")
            }
        }
    }
    Ok(ErrorGroups { groups, total })
}

/// A group from its id, size and `HGETALL` (field, value, field, …).
fn group_from_hash(id: &str, failed: u64, fields: Vec<String>) -> Result<Option<ErrorGroup>> {
    let id = GroupId::parse(id).ok_or_else(|| {
        CoordError::Corrupt(format!("error group id {id:?} is not 16 hex digits"))
    })?;
    if failed == 0 || fields.is_empty() {
        return Ok(None);
    }
    let (mut first_seen, mut last_seen) = (0, 0);
    let (mut sample, mut sample_reason, mut names) = (None, String::new(), Vec::new());
    let mut pairs = fields.into_iter();
    while let (Some(field), Some(value)) = (pairs.next(), pairs.next()) {
        let number = || {
            value
                .parse::<i64>()
                .map_err(|_| CoordError::Corrupt(format!("error group {id}: {field} is {value:?}")))
        };
        match field.as_str() {
            "first_seen" => first_seen = number()?,
            "last_seen" => last_seen = number()?,
            "sample_job" => sample = Some(value),
            "sample_reason" => sample_reason = value,
            _ => {
                if let Some(name) = field.strip_prefix("n:") {
                    let n = u64::try_from(number()?).unwrap_or(0);
                    if n > 0 {
                        names.push((name.to_owned(), n));
                    }
                }
            }
        }
    }
    let sample =
        sample.ok_or_else(|| CoordError::Corrupt(format!("error group {id} has no sample job")))?;
    let mut group = ErrorGroup {
        id,
        failed,
        first_seen,
        last_seen,
        sample_job: stored_id(sample)?.as_str().to_owned(),
        sample_reason,
        names,
        names_total: 0,
    };
    group.keep_top_names();
    Ok(Some(group))
}

pub(super) async fn error_trends(
    conn: &mut Conn,
    keys: &QueueKeys,
    groups: &[GroupId],
    now: i64,
) -> Result<Vec<Trend>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut inv = ERROR_TRENDS.prepare_invoke();
    inv.key(&keys.errors)
        .arg(&keys.base)
        .arg(now)
        .arg(TREND_BUCKET_MS)
        .arg(TREND_BUCKETS);
    for group in groups {
        inv.arg(group.to_string());
    }
    let counts: Vec<u32> = inv.invoke_async(conn).await.map_err(CoordError::from)?;
    if counts.len() != groups.len() * TREND_BUCKETS {
        return Err(CoordError::Corrupt(format!(
            "{} trend counts for {} groups",
            counts.len(),
            groups.len()
        )));
    }
    Ok(counts
        .chunks_exact(TREND_BUCKETS)
        .map(|chunk| {
            let mut trend = Trend::default();
            trend.copy_from_slice(chunk);
            trend
        })
        .collect())
}

/// Failed jobs one call books into groups at most (see [`backfill`]).
pub(super) const BACKFILL_BUDGET: usize = 1_000;
/// Failed jobs read per round of [`backfill`].
const BACKFILL_BATCH: usize = 500;

/// Books the failed jobs of a queue written before error groups existed
/// (no `error_group` field) into their groups, up to `budget` jobs a call,
/// oldest failure first, up to the newest failure when the walk began
/// (later ones joined their groups as they failed); the queue's meta
/// remembers the end (`groups_backfill_until`), where it got to
/// (`groups_backfill`: score and offset among equal scores) and, once
/// there, that it is done (`groups_backfilled`), after which a call costs
/// one `HMGET`. Called before a queue's groups are read, so an
/// upgraded queue's groups fill in as they are looked at; what is still
/// missing shows as failed jobs "in no group" meanwhile.
pub(super) async fn backfill(
    backend: &super::RedisBackend,
    queue: &crate::queue::QueueName,
    budget: usize,
) -> Result<u64> {
    let keys = backend.keys(queue);
    let mut conn = backend.conn();
    let (done, cursor, until): (Option<String>, Option<String>, Option<String>) =
        redis::cmd("HMGET")
            .arg(&keys.meta)
            .arg("groups_backfilled")
            .arg("groups_backfill")
            .arg("groups_backfill_until")
            .query_async(&mut conn)
            .await
            .map_err(CoordError::from)?;
    if done.as_deref() == Some("1") {
        return Ok(0);
    }
    let until = match until.and_then(|u| u.parse::<i64>().ok()) {
        Some(until) => until,
        None => {
            let newest: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
                .arg(&keys.failed)
                .arg(0)
                .arg(0)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .map_err(CoordError::from)?;
            let until = newest.first().map_or(i64::MIN, |(_, s)| *s as i64);
            let _: () = redis::cmd("HSET")
                .arg(&keys.meta)
                .arg("groups_backfill_until")
                .arg(until)
                .query_async(&mut conn)
                .await
                .map_err(CoordError::from)?;
            until
        }
    };
    let (mut score, mut offset) = cursor
        .as_deref()
        .and_then(|c| c.split_once(' '))
        .and_then(|(s, o)| Some((s.parse::<i64>().ok()?, o.parse::<usize>().ok()?)))
        .unwrap_or((i64::MIN, 0));
    let mut booked = 0u64;
    let mut walked = 0usize;
    while walked < budget {
        let min = if score == i64::MIN {
            "-inf".to_owned()
        } else {
            score.to_string()
        };
        let rows: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(&keys.failed)
            .arg(&min)
            .arg(until)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(offset)
            .arg(BACKFILL_BATCH)
            .query_async(&mut conn)
            .await
            .map_err(CoordError::from)?;
        if rows.is_empty() {
            let _: () = redis::cmd("HSET")
                .arg(&keys.meta)
                .arg("groups_backfilled")
                .arg("1")
                .query_async(&mut conn)
                .await
                .map_err(CoordError::from)?;
            return Ok(booked);
        }
        walked += rows.len();
        let mut pipe = redis::pipe();
        for (id, _) in &rows {
            pipe.cmd("HMGET")
                .arg(format!("{}{id}", keys.job_prefix))
                .arg("error_group")
                .arg("failed_reason");
        }
        let fields: Vec<(Option<String>, Option<String>)> = pipe
            .query_async(&mut conn)
            .await
            .map_err(CoordError::from)?;
        let ungrouped: Vec<(&str, String)> = rows
            .iter()
            .zip(fields)
            .filter(|(_, (group, _))| group.as_deref().is_none_or(str::is_empty))
            .map(|((id, _), (_, reason))| (id.as_str(), reason.unwrap_or_default()))
            .collect();
        if !ungrouped.is_empty() {
            let mut inv = backend.invocation(&BACKFILL, queue, &keys);
            for (id, reason) in &ungrouped {
                inv.arg(*id)
                    .arg(reason)
                    .arg(GroupId::of_reason(reason).to_string());
            }
            let n: u64 = inv
                .invoke_async(&mut conn)
                .await
                .map_err(CoordError::from)?;
            booked += n;
        }
        // Next: after the last score read, skipping the members of that
        // score already read (several jobs may fail in one millisecond).
        let last = rows.last().map_or(score, |(_, s)| *s as i64);
        let same = rows
            .iter()
            .rev()
            .take_while(|(_, s)| *s as i64 == last)
            .count();
        if last == score {
            offset += same;
        } else {
            score = last;
            offset = same;
        }
        let _: () = redis::cmd("HSET")
            .arg(&keys.meta)
            .arg("groups_backfill")
            .arg(format!("{score} {offset}"))
            .query_async(&mut conn)
            .await
            .map_err(CoordError::from)?;
    }
    Ok(booked)
}
