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
