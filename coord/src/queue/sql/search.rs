//! Finding jobs on SQLite ([`crate::search`]): an id by primary-key
//! lookups per queue, text through the FTS5 index `job_search`
//! (`migrations/coord/sqlite/20261206000001_job_search.sql`), which
//! [`index_search`] fills behind the writers.

use sqlx::Row;

use super::SqlBackend;
use crate::error::{CoordError, Result};
use crate::queue::{JobId, JobState, QueueName};
use crate::search::{
    DATA_INDEX_BYTES, FoundJob, HIT_ERROR_BYTES, IndexProgress, SearchHit, SearchQuery,
    SearchResult, thousands,
};

/// Index matches a text search examines, newest first, before it says it
/// stopped: a word in every job costs this many lookups, not a million.
pub const MATCHES_EXAMINED: i64 = 5_000;
/// Jobs a search without text (only `queue:`, `state:`, `error:`)
/// examines: the newest by rowid, or the first in the states it names.
pub const JOBS_SCANNED: i64 = 100_000;
/// Newest indexed rowids each indexing round re-checks for reuse: SQLite
/// gives the rowids of deleted newest jobs to the next ones, so only the
/// top of the range can change hands. Deleting more than this many newest
/// jobs between two rounds can leave reused rows unsearchable (never
/// wrong: hits are checked against the job's identity).
const REUSE_WINDOW: i64 = 1_000;
/// Most queues [`find_job`] reports.
const MAX_FOUND: i64 = 1_000;

pub(super) async fn find_job(backend: &SqlBackend, id: &JobId) -> Result<Vec<FoundJob>> {
    // Queues first (CROSS JOIN keeps that order): one primary-key lookup
    // per queue, whatever the number of jobs.
    let rows = sqlx::query(
        "SELECT j.queue, j.state FROM queues q CROSS JOIN jobs j \
         ON j.queue = q.name AND j.id = $1 ORDER BY j.queue LIMIT $2",
    )
    .bind(id.as_str())
    .bind(MAX_FOUND)
    .fetch_all(&backend.inner.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(FoundJob {
                queue: QueueName::new(row.try_get::<String, _>(0)?)?,
                state: row.try_get::<String, _>(1)?.parse()?,
            })
        })
        .collect()
}

pub(super) async fn index_search(backend: &SqlBackend, batch: usize) -> Result<IndexProgress> {
    let batch = batch as i64;
    let mut w = backend.begin_write().await?;
    let state = sqlx::query("SELECT indexed_to, purged_to FROM job_search_state WHERE one = 1")
        .fetch_one(w.conn())
        .await?;
    let (mut indexed_to, purged_to): (i64, i64) = (state.try_get(0)?, state.try_get(1)?);
    let mut indexed = 0u64;

    // Rowids handed again to new jobs: the newest indexed rows whose job
    // is not the one indexed lose their old entry and are indexed anew.
    let reused: Vec<i64> = sqlx::query_scalar(
        "SELECT j.rowid FROM jobs j LEFT JOIN job_search_keys k ON k.row = j.rowid \
         WHERE j.rowid > $1 AND j.rowid <= $2 \
         AND (k.row IS NULL OR k.queue <> j.queue OR k.id <> j.id)",
    )
    .bind(indexed_to - REUSE_WINDOW)
    .bind(indexed_to)
    .fetch_all(w.conn())
    .await?;
    for row in &reused {
        forget(w.conn(), *row).await?;
        indexed += add_rows(w.conn(), row - 1, *row).await?;
    }

    // New jobs, in rowid order.
    let upto: Option<i64> = sqlx::query_scalar(
        "SELECT max(rowid) FROM (SELECT rowid FROM jobs WHERE rowid > $1 ORDER BY rowid LIMIT $2)",
    )
    .bind(indexed_to)
    .bind(batch)
    .fetch_one(w.conn())
    .await?;
    if let Some(upto) = upto {
        indexed += add_rows(w.conn(), indexed_to, upto).await?;
        indexed_to = upto;
    }

    // A slice of the sweep for entries whose job is gone.
    let slice_end: Option<i64> = sqlx::query_scalar(
        "SELECT max(row) FROM (SELECT row FROM job_search_keys WHERE row > $1 ORDER BY row LIMIT $2)",
    )
    .bind(purged_to)
    .bind(batch)
    .fetch_one(w.conn())
    .await?;
    if let Some(end) = slice_end {
        let stale: Vec<i64> = sqlx::query_scalar(
            "SELECT k.row FROM job_search_keys k LEFT JOIN jobs j ON j.rowid = k.row \
             WHERE k.row > $1 AND k.row <= $2 \
             AND (j.rowid IS NULL OR j.queue <> k.queue OR j.id <> k.id)",
        )
        .bind(purged_to)
        .bind(end)
        .fetch_all(w.conn())
        .await?;
        for row in stale {
            forget(w.conn(), row).await?;
        }
    }
    sqlx::query("UPDATE job_search_state SET indexed_to = $1, purged_to = $2 WHERE one = 1")
        .bind(indexed_to)
        .bind(slice_end.unwrap_or(0))
        .execute(w.conn())
        .await?;
    let pending = unindexed(w.conn(), indexed_to).await?;
    w.commit().await?;
    Ok(IndexProgress { indexed, pending })
}

/// Indexes the jobs with rowids in `(after, upto]`.
async fn add_rows(conn: &mut sqlx::SqliteConnection, after: i64, upto: i64) -> Result<u64> {
    let done = sqlx::query(&format!(
        "INSERT INTO job_search (rowid, name, data) \
         SELECT rowid, name, substr(data, 1, {DATA_INDEX_BYTES}) FROM jobs \
         WHERE rowid > $1 AND rowid <= $2"
    ))
    .bind(after)
    .bind(upto)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT OR REPLACE INTO job_search_keys (row, queue, id) \
         SELECT rowid, queue, id FROM jobs WHERE rowid > $1 AND rowid <= $2",
    )
    .bind(after)
    .bind(upto)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Drops the index entry of a rowid.
async fn forget(conn: &mut sqlx::SqliteConnection, row: i64) -> Result<()> {
    sqlx::query("DELETE FROM job_search WHERE rowid = $1")
        .bind(row)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM job_search_keys WHERE row = $1")
        .bind(row)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Jobs the index has not reached yet.
async fn unindexed(conn: &mut sqlx::SqliteConnection, indexed_to: i64) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE rowid > $1")
        .bind(indexed_to)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n.max(0) as u64)
}

/// A term as an FTS5 string: quoted, quotes doubled.
fn fts_string(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The MATCH expression of a query's text terms: words and names as
/// prefixes, data values as phrases in the data column.
fn match_expression(query: &SearchQuery) -> String {
    let mut terms = Vec::new();
    for word in &query.words {
        terms.push(format!("{}*", fts_string(word)));
    }
    for name in &query.names {
        terms.push(format!("name : {}*", fts_string(name)));
    }
    for (_, value) in &query.data {
        terms.push(format!("data : {}", fts_string(value)));
    }
    terms.join(" AND ")
}

/// A JSON path for `json_extract` from dotted keys, each quoted.
fn json_path(path: &[String]) -> String {
    let mut out = String::from("$");
    for key in path {
        out.push_str(&format!(".\"{}\"", key.replace('"', "")));
    }
    out
}

/// A LIKE pattern finding `text` anywhere, with `\` escaping.
fn like_anywhere(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// The filters every search applies to the job row `j`, with their
/// values, numbered from `$first`.
fn filters(query: &SearchQuery, first: usize) -> (String, Vec<String>) {
    let mut sql = Vec::new();
    let mut binds = Vec::new();
    let next = |value: String, binds: &mut Vec<String>| {
        binds.push(value);
        format!("${}", first + binds.len() - 1)
    };
    if !query.queues.is_empty() {
        let list: Vec<String> = query
            .queues
            .iter()
            .map(|q| next(q.to_string(), &mut binds))
            .collect();
        sql.push(format!("j.queue IN ({})", list.join(", ")));
    }
    if !query.states.is_empty() {
        let list: Vec<String> = query
            .states
            .iter()
            .map(|s| next(s.as_str().to_owned(), &mut binds))
            .collect();
        sql.push(format!("j.state IN ({})", list.join(", ")));
    }
    for error in &query.errors {
        let p = next(like_anywhere(error), &mut binds);
        sql.push(format!("j.failed_reason LIKE {p} ESCAPE '\\'"));
    }
    for (path, value) in &query.data {
        let p = next(json_path(path), &mut binds);
        let v = next(value.to_lowercase(), &mut binds);
        sql.push(format!(
            "(CASE json_type(j.data, {p}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
             ELSE lower(CAST(json_extract(j.data, {p}) AS TEXT)) END) = {v}"
        ));
    }
    if sql.is_empty() {
        (String::from("1"), binds)
    } else {
        (sql.join(" AND "), binds)
    }
}

pub(super) async fn search(
    backend: &SqlBackend,
    query: &SearchQuery,
    limit: usize,
) -> Result<SearchResult> {
    // One snapshot: the index, its progress and the jobs agree.
    let mut tx = backend.inner.pool.begin().await?;
    // Jobs the index has not reached: only a text search misses them (the
    // others read the jobs themselves).
    let pending = if query.has_text() {
        let indexed_to: i64 =
            sqlx::query_scalar("SELECT indexed_to FROM job_search_state WHERE one = 1")
                .fetch_one(&mut *tx)
                .await?;
        unindexed(&mut tx, indexed_to).await?
    } else {
        0
    };
    let hit_columns = format!(
        "j.queue, j.id, j.name, j.state, j.created_at, substr(j.failed_reason, 1, {HIT_ERROR_BYTES})"
    );
    let (rows, examined, cap, searched) = if query.has_text() {
        // The index is read once: the newest matches' rowids, then their
        // jobs, filtered.
        let matched: Vec<i64> = sqlx::query_scalar(
            "SELECT rowid FROM job_search WHERE job_search MATCH $1 ORDER BY rowid DESC LIMIT $2",
        )
        .bind(match_expression(query))
        .bind(MATCHES_EXAMINED)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| fts_error(e, query))?;
        let examined = matched.len() as i64;
        let (filter, binds) = filters(query, 3);
        let sql = format!(
            "SELECT {hit_columns} FROM json_each($1) m \
             CROSS JOIN job_search_keys k ON k.row = m.value \
             CROSS JOIN jobs j ON j.rowid = k.row AND j.queue = k.queue AND j.id = k.id \
             WHERE {filter} ORDER BY k.row DESC LIMIT $2"
        );
        let rowids = serde_json::to_string(&matched)
            .map_err(|e| CoordError::Corrupt(format!("search rowids: {e}")))?;
        let mut q = sqlx::query(&sql).bind(rowids).bind(limit as i64);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&mut *tx).await?;
        let searched = if examined >= MATCHES_EXAMINED {
            format!(
                "the text index (names and the first 4 KiB of data): its newest {} matches",
                thousands(MATCHES_EXAMINED as u64)
            )
        } else {
            "the text index (names and the first 4 KiB of data) of every queue".to_owned()
        };
        (rows, examined, MATCHES_EXAMINED, searched)
    } else if !query.states.is_empty() {
        // Where to look is named: the jobs of those states, through the
        // (queue, state) index, one queue after another.
        let (filter, binds) = filters(query, 3);
        let states = query
            .states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        // Named queues narrow the walk itself, not only its result.
        let only = |first: usize| {
            if query.queues.is_empty() {
                return String::new();
            }
            let list: Vec<String> = (0..query.queues.len())
                .map(|i| format!("${}", first + i))
                .collect();
            format!(" WHERE q.name IN ({})", list.join(", "))
        };
        let walk = |first: usize| {
            format!(
                "SELECT j.rowid AS r FROM queues q CROSS JOIN jobs j INDEXED BY jobs_by_state \
                 ON j.queue = q.name AND j.state IN ({states}){} LIMIT $1",
                only(first)
            )
        };
        let sql = format!(
            "SELECT {hit_columns} FROM ({}) m \
             CROSS JOIN jobs j ON j.rowid = m.r \
             WHERE {filter} ORDER BY m.r DESC LIMIT $2",
            walk(3 + binds.len())
        );
        let mut q = sqlx::query(&sql).bind(JOBS_SCANNED).bind(limit as i64);
        for b in &binds {
            q = q.bind(b);
        }
        for name in &query.queues {
            q = q.bind(name.as_str());
        }
        let rows = q.fetch_all(&mut *tx).await?;
        let count_sql = format!("SELECT count(*) FROM ({})", walk(2));
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql).bind(JOBS_SCANNED);
        for name in &query.queues {
            count = count.bind(name.as_str());
        }
        let examined = count.fetch_one(&mut *tx).await?;
        let searched = if examined >= JOBS_SCANNED {
            format!(
                "the first {} jobs in those states",
                thousands(JOBS_SCANNED as u64)
            )
        } else {
            format!("all {} jobs in those states", thousands(examined as u64))
        };
        (rows, examined, JOBS_SCANNED, searched)
    } else {
        // Nothing narrows it: the newest rows, as a rowid range.
        let newest: i64 = sqlx::query_scalar("SELECT coalesce(max(rowid), 0) FROM jobs")
            .fetch_one(&mut *tx)
            .await?;
        let lowest = newest - JOBS_SCANNED;
        let (filter, binds) = filters(query, 3);
        let sql = format!(
            "SELECT {hit_columns} FROM jobs j \
             WHERE j.rowid > $1 AND {filter} ORDER BY j.rowid DESC LIMIT $2"
        );
        let mut q = sqlx::query(&sql).bind(lowest).bind(limit as i64);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&mut *tx).await?;
        let older: Option<i64> =
            sqlx::query_scalar("SELECT rowid FROM jobs WHERE rowid <= $1 LIMIT 1")
                .bind(lowest)
                .fetch_optional(&mut *tx)
                .await?;
        let (examined, searched) = if older.is_some() {
            (
                JOBS_SCANNED,
                format!(
                    "the newest {} jobs of every queue",
                    thousands(JOBS_SCANNED as u64)
                ),
            )
        } else {
            (0, "every job of every queue".to_owned())
        };
        (rows, examined, JOBS_SCANNED, searched)
    };
    let hits = rows
        .iter()
        .map(|row| {
            Ok(SearchHit {
                queue: QueueName::new(row.try_get::<String, _>(0)?)?,
                id: JobId::new(row.try_get::<String, _>(1)?)?,
                name: row.try_get(2)?,
                state: row.try_get::<String, _>(3)?.parse::<JobState>()?,
                created_at: row.try_get(4)?,
                failed_reason: row.try_get(5)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SearchResult {
        hits,
        complete: examined < cap && pending == 0,
        searched,
        unindexed: pending,
    })
}

/// A query the FTS5 parser refuses is the operator's to fix.
fn fts_error(err: sqlx::Error, query: &SearchQuery) -> CoordError {
    match &err {
        sqlx::Error::Database(db) if db.message().contains("fts5") => CoordError::InvalidSearch {
            query: match_expression(query),
            reason: format!("the text index cannot read it: {}", db.message()),
        },
        _ => err.into(),
    }
}
