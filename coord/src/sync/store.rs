//! The synced-state registry in SQL, on SQLite (embedded deployments) or
//! PostgreSQL (fleets that already run one).
//!
//! Both databases run the same statements, written with `$1` placeholders
//! that both accept (no `Any` driver), on the tables of the
//! `*_synced_state.sql` migrations.
//!
//! Every write is one transaction that first bumps the one-row version
//! counter with `UPDATE … RETURNING`, then writes the entry with that
//! version. The counter row stays locked until commit, so concurrent
//! writers are serialised: versions are handed out in commit order, a
//! reader that sees version V has also seen every version below it, and
//! "changes since V" can never skip a change that commits late. A write
//! that finds nothing to change, or fails, rolls back, counter included.
//! On SQLite writes run as `BEGIN IMMEDIATE` behind one async mutex per
//! store, as the queue backend does, so writers queue instead of failing
//! with `SQLITE_BUSY`.

use std::sync::Arc;

use serde_json::Value;
use sqlx::{ColumnIndex, Decode, Row, Type};
use tokio::sync::Mutex;

use super::{Entry, StateHash, StateKey, check_author, check_status, state_hash};
use crate::error::{CoordError, Result};
use crate::on_pool;
use crate::sql::{PgPool, Pool, SqlitePool};
use crate::time::now_ms;

/// Columns of an entry, in the form [`decode`] reads.
macro_rules! entry_columns {
    () => {
        "key, value, status, version, updated_at, updated_by, deleted"
    };
}

const NEXT_VERSION: &str =
    "UPDATE synced_state_counter SET version = version + 1 WHERE id = 1 RETURNING version";
const LATEST_VERSION: &str = "SELECT version FROM synced_state_counter WHERE id = 1";
const PUT: &str = concat!(
    "INSERT INTO synced_state (key, value, status, version, updated_at, updated_by, deleted) \
     VALUES ($1, $2, $3, $4, $5, $6, FALSE) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, status = excluded.status, \
     version = excluded.version, updated_at = excluded.updated_at, \
     updated_by = excluded.updated_by, deleted = FALSE \
     RETURNING ",
    entry_columns!()
);
const SET_STATUS: &str = concat!(
    "UPDATE synced_state SET status = $2, version = $3, updated_at = $4, updated_by = $5 \
     WHERE key = $1 AND NOT deleted RETURNING ",
    entry_columns!()
);
const DELETE: &str = concat!(
    "UPDATE synced_state SET deleted = TRUE, version = $2, updated_at = $3, updated_by = $4 \
     WHERE key = $1 AND NOT deleted RETURNING ",
    entry_columns!()
);
const GET: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM synced_state WHERE key = $1 AND NOT deleted"
);
const ALL: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM synced_state WHERE NOT deleted"
);
const CHANGES_SINCE: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM synced_state WHERE version > $1 ORDER BY version LIMIT $2"
);

/// One change, as the write transaction applies it.
enum Change<'a> {
    Put { value: String, status: &'a str },
    Status { status: &'a str },
    Delete,
}

/// The registry in the SQL database: the source of truth instances sync
/// from. Cheap to clone; clones share the pool (and, on SQLite, the write
/// lock).
#[derive(Clone, Debug)]
pub struct StateStore {
    pool: Pool,
    /// On SQLite, held for the whole of every write transaction of this
    /// store, so that writers queue here instead of failing with
    /// `SQLITE_BUSY`; PostgreSQL's row lock on the counter suffices.
    write_lock: Option<Arc<Mutex<()>>>,
}

impl StateStore {
    /// Uses an SQLite pool (configure it with a busy timeout and WAL, as
    /// `SqlBackend::open` does, or take that backend's pool so a server
    /// keeps one database file) and applies the SQLite migrations. Other
    /// migrations already applied on the same database are tolerated.
    pub async fn sqlite(pool: SqlitePool) -> Result<Self> {
        crate::sql::migrate_sqlite(&pool).await?;
        Ok(Self {
            pool: Pool::Sqlite(pool),
            write_lock: Some(Arc::new(Mutex::new(()))),
        })
    }

    /// Uses a PostgreSQL pool and applies the PostgreSQL migrations (the
    /// same set the server runs, so either may go first).
    pub async fn postgres(pool: PgPool) -> Result<Self> {
        crate::sql::migrate_postgres(&pool).await?;
        Ok(Self {
            pool: Pool::Postgres(pool),
            write_lock: None,
        })
    }

    /// Which database holds the registry, for logs and dashboards.
    pub fn kind(&self) -> &'static str {
        self.pool.kind()
    }

    /// Creates or replaces `key` (reviving it if it was deleted) under the
    /// next version, and returns the entry as stored so the caller can
    /// publish exactly what was written. Any JSON value is accepted.
    pub async fn put(
        &self,
        key: &StateKey,
        value: &Value,
        status: &str,
        by: &str,
    ) -> Result<Entry> {
        check_status(key, status)?;
        let value = serde_json::to_string(value)
            .map_err(|err| CoordError::MalformedData(err.to_string()))?;
        let entry = self.write(key, Change::Put { value, status }, by).await?;
        entry.ok_or_else(|| CoordError::Corrupt(format!("upsert of state key {key} wrote no row")))
    }

    /// Changes only the status of a live entry, under the next version.
    /// `None` when the key has no live entry: nothing is written and no
    /// version is used, so a status flip cannot resurrect a deleted key.
    pub async fn set_status(
        &self,
        key: &StateKey,
        status: &str,
        by: &str,
    ) -> Result<Option<Entry>> {
        check_status(key, status)?;
        self.write(key, Change::Status { status }, by).await
    }

    /// Deletes a live entry by turning it into a tombstone under the next
    /// version, so instances syncing by version learn of the delete.
    /// `None` when there was no live entry: nothing is written.
    pub async fn delete(&self, key: &StateKey, by: &str) -> Result<Option<Entry>> {
        self.write(key, Change::Delete, by).await
    }

    /// One change in one transaction that first takes the next version
    /// (see the module documentation); nothing is written, not even the
    /// version, when the change finds no row to write.
    async fn write(&self, key: &StateKey, change: Change<'_>, by: &str) -> Result<Option<Entry>> {
        check_author(by)?;
        let now = now_ms();
        let key = key.as_str();
        let _lock = match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        on_pool!(&self.pool, pool => {
            let mut tx = pool.begin_with(self.begin()).await?;
            let version: i64 = sqlx::query_scalar(NEXT_VERSION).fetch_one(&mut *tx).await?;
            let written = match &change {
                Change::Put { value, status } => sqlx::query(PUT)
                    .bind(key)
                    .bind(value)
                    .bind(*status)
                    .bind(version)
                    .bind(now)
                    .bind(by),
                Change::Status { status } => sqlx::query(SET_STATUS)
                    .bind(key)
                    .bind(*status)
                    .bind(version)
                    .bind(now)
                    .bind(by),
                Change::Delete => sqlx::query(DELETE)
                    .bind(key)
                    .bind(version)
                    .bind(now)
                    .bind(by),
            };
            let Some(row) = written.fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            let entry = decode(&row)?;
            tx.commit().await?;
            Ok(Some(entry))
        })
    }

    /// SQLite takes its write lock at `BEGIN IMMEDIATE`: a deferred
    /// transaction that reads the counter and then writes it fails with
    /// `SQLITE_BUSY` when another writer got there first.
    fn begin(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "BEGIN IMMEDIATE",
            Pool::Postgres(_) => "BEGIN",
        }
    }

    /// The live entry of `key`, or `None` if it was never written or is
    /// deleted (tombstones are only visible through
    /// [`StateStore::changes_since`]).
    pub async fn get(&self, key: &StateKey) -> Result<Option<Entry>> {
        let row = on_pool!(&self.pool, pool => sqlx::query(GET)
            .bind(key.as_str())
            .fetch_optional(pool)
            .await?
            .map(|r| decode(&r)));
        row.transpose()
    }

    /// Every live entry, sorted by key (byte order, whatever the database
    /// collation), for a full reload and for dashboards.
    pub async fn all(&self) -> Result<Vec<Entry>> {
        let mut entries = on_pool!(&self.pool, pool => sqlx::query(ALL)
            .fetch_all(pool)
            .await?
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>>>()?);
        entries.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        Ok(entries)
    }

    /// Up to `limit` entries changed after `version`, oldest change first,
    /// tombstones included: what an instance that applied everything up to
    /// `version` must apply next. Page by passing the last returned
    /// version; `changes_since(0, …)` replays the whole registry. Each key
    /// appears at most once, with its latest change.
    pub async fn changes_since(&self, version: i64, limit: usize) -> Result<Vec<Entry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_pool!(&self.pool, pool => sqlx::query(CHANGES_SINCE)
            .bind(version)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(decode)
            .collect())
    }

    /// The version of the last committed change (0 for an empty registry),
    /// to compare with the version an instance applied and report its lag.
    pub async fn latest_version(&self) -> Result<i64> {
        let version = on_pool!(&self.pool, pool => {
            sqlx::query_scalar(LATEST_VERSION).fetch_one(pool).await?
        });
        Ok(version)
    }

    /// The [`state_hash`] of the live entries in the database, to compare
    /// with the hash an instance computes over what it applied.
    pub async fn state_hash(&self) -> Result<StateHash> {
        Ok(state_hash(&self.all().await?))
    }
}

/// Reads an entry row of either driver; a row whose key or value does not
/// decode is reported as corrupt rather than skipped, so drift is seen.
fn decode<R>(row: &R) -> Result<Entry>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let key: String = row.try_get("key")?;
    let value: String = row.try_get("value")?;
    let key =
        StateKey::new(key).map_err(|err| CoordError::Corrupt(format!("synced state: {err}")))?;
    let value = serde_json::from_str(&value).map_err(|err| {
        CoordError::Corrupt(format!("synced state {key}: value is not JSON: {err}"))
    })?;
    Ok(Entry {
        key,
        value,
        status: row.try_get("status")?,
        version: row.try_get("version")?,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
        deleted: row.try_get("deleted")?,
    })
}
