//! What every SQL pool in Switchyard shares, on SQLite and PostgreSQL alike:
//! one pool type ([`Pool`]) and the dispatch that runs the same statements
//! on either ([`on_pool!`]), connections that recover by themselves after
//! a storage fault, and the storage faults named so that callers can say
//! "disk full" instead of "internal error".

mod pool;

use std::sync::Mutex;

use sqlx::migrate::Migrator;
use sqlx::pool::{PoolConnectionMetadata, PoolOptions};
use sqlx::{Database, TransactionManager};

pub use crate::{on_pool, pool_enum};
pub use pool::{PgPool, Pool, PoolRef, SqlitePool};

use crate::time::now_ms;

/// coord's own tables on SQLite (the queue store and the synced state),
/// from `migrations/coord/sqlite`. Nothing else: a service embedding coord
/// gets only these, and the dashboard runs its own set
/// (`migrations/server/…`) on the same file. Migrations applied by another
/// set on the same database are tolerated (versions never collide: they
/// are numbered across both sets).
pub fn sqlite_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("../migrations/coord/sqlite");
    migrator.set_ignore_missing(true);
    migrator
}

/// coord's own tables on PostgreSQL (the synced state), from
/// `migrations/coord/postgres`.
pub fn postgres_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("../migrations/coord/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// Brings coord's SQLite tables up to date.
pub async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlite_migrator().run(pool).await
}

/// Brings coord's PostgreSQL tables up to date.
pub async fn migrate_postgres(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    postgres_migrator().run(pool).await
}

/// A fault of the storage under the database rather than of a statement:
/// the operator has to act (free space, remount), and the writer resumes
/// by itself once they have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// The disk (or quota) is full: writes fail, reads go on.
    DiskFull,
    /// The database file, its directory or its mount cannot be written.
    ReadOnly,
}

impl StorageFault {
    /// How the fault reads in answers and logs.
    pub fn describe(self) -> &'static str {
        match self {
            StorageFault::DiskFull => "disk full: the database's disk has no space left",
            StorageFault::ReadOnly => "read-only: the database's file or disk cannot be written",
        }
    }
}

/// Classifies an SQL error: SQLite's `SQLITE_FULL` (13) and
/// `SQLITE_READONLY` (8), whose extended codes keep the primary code in
/// the low byte, and PostgreSQL's `disk_full` (53100) and
/// `read_only_sql_transaction` (25006).
pub fn storage_fault(err: &sqlx::Error) -> Option<StorageFault> {
    match code(err)? {
        Code::Sqlite(13) => Some(StorageFault::DiskFull),
        Code::Sqlite(8) => Some(StorageFault::ReadOnly),
        Code::Postgres(state) if state == "53100" => Some(StorageFault::DiskFull),
        Code::Postgres(state) if state == "25006" => Some(StorageFault::ReadOnly),
        _ => None,
    }
}

/// True when the error says the database could not be used at all (not
/// reached, refusing connections, out of resources, its storage failing),
/// as opposed to an answer about the statement: what an outage grace may
/// ride out, and what tells that a writer is stuck.
pub fn is_outage(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(_) => match code(err) {
            // BUSY, LOCKED, IOERR, CORRUPT, FULL, CANTOPEN, NOTADB, READONLY.
            Some(Code::Sqlite(c)) => matches!(c, 5 | 6 | 8 | 10 | 11 | 13 | 14 | 26),
            // Connection exceptions, insufficient resources, operator
            // intervention (shutdown, cannot connect now), a database
            // closed to connections, a read-only transaction.
            Some(Code::Postgres(state)) => {
                state.starts_with("08")
                    || state.starts_with("53")
                    || state.starts_with("57P")
                    || state == "25006"
                    // object_not_in_prerequisite_state covers much; only
                    // "database … is not currently accepting connections"
                    // (ALLOW_CONNECTIONS false) is an outage.
                    || (state == "55000"
                        && matches!(err, sqlx::Error::Database(db)
                            if db.message().contains("accepting connections")))
            }
            None => false,
        },
        _ => false,
    }
}

/// True when a statement failed because a table does not exist: the
/// schema is missing (PostgreSQL's `undefined_table`, SQLite's "no such
/// table").
pub fn is_missing_table(err: &sqlx::Error) -> bool {
    match (err, code(err)) {
        (_, Some(Code::Postgres(state))) => state == "42P01",
        (sqlx::Error::Database(db), Some(Code::Sqlite(1))) => {
            db.message().contains("no such table")
        }
        _ => false,
    }
}

/// A database error's code, by driver.
enum Code {
    /// SQLite's primary result code (the low byte of the extended one).
    Sqlite(i32),
    /// PostgreSQL's SQLSTATE.
    Postgres(String),
}

fn code(err: &sqlx::Error) -> Option<Code> {
    if let Some(code) = sqlite_code(err) {
        return Some(Code::Sqlite(code));
    }
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return Some(Code::Postgres(pg.code().to_owned()));
    }
    None
}

/// SQLite's primary result code behind `err` (extended codes keep it in
/// the low byte), from sqlx's driver or from [`DirectSqliteError`].
pub fn sqlite_code(err: &sqlx::Error) -> Option<i32> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        || db.try_downcast_ref::<DirectSqliteError>().is_some();
    if !sqlite {
        return None;
    }
    let extended: i32 = db.code()?.parse().ok()?;
    Some(extended & 0xff)
}

/// An error of SQLite called directly rather than through sqlx (the
/// embedded queue's worker step), carried as an `sqlx::Error::Database`
/// so that callers, outage checks and storage-fault hints see one kind of
/// SQLite error whichever way the statement went.
#[derive(Debug)]
pub struct DirectSqliteError {
    /// SQLite's extended result code.
    pub extended_code: i32,
    /// SQLite's message.
    pub message: String,
}

impl DirectSqliteError {
    /// `err` as sqlx's error: SQLite failures as database errors with their
    /// code, the rest (a value of the wrong type) as decode errors.
    pub fn wrap(err: rusqlite::Error) -> sqlx::Error {
        match err {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let message = message.unwrap_or_else(|| failure.to_string());
                sqlx::Error::Database(Box::new(DirectSqliteError {
                    extended_code: failure.extended_code,
                    message,
                }))
            }
            other => sqlx::Error::Decode(Box::new(other)),
        }
    }
}

impl std::fmt::Display for DirectSqliteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DirectSqliteError {}

impl sqlx::error::DatabaseError for DirectSqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.extended_code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY, _FOREIGNKEY, _NOTNULL, _CHECK.
        match self.extended_code {
            2067 | 1555 => sqlx::error::ErrorKind::UniqueViolation,
            787 => sqlx::error::ErrorKind::ForeignKeyViolation,
            1299 => sqlx::error::ErrorKind::NotNullViolation,
            275 => sqlx::error::ErrorKind::CheckViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

/// Makes a pool hand out only connections outside any transaction.
///
/// When a `COMMIT` fails (SQLite's disk full is the case seen), SQLite may
/// already have rolled the transaction back, so the `ROLLBACK` sqlx sends
/// when the transaction is dropped fails too and sqlx still counts the
/// connection as inside a transaction. Back in the pool, every later
/// `BEGIN IMMEDIATE` on it is refused ("begin_with at non-zero transaction
/// depth") until the process restarts. Checked at acquire time, after
/// sqlx's release has flushed the pending rollback, such a connection is
/// closed instead (SQLite rolls back whatever is left on close) and the
/// pool opens a fresh one. Costs no round trip: the depth is a counter in
/// the connection.
pub fn discard_broken_transactions<DB: Database>(options: PoolOptions<DB>) -> PoolOptions<DB> {
    options.before_acquire(|conn, _meta: PoolConnectionMetadata| {
        let depth = <DB::TransactionManager as TransactionManager>::get_transaction_depth(conn);
        Box::pin(async move {
            if depth > 0 {
                tracing::warn!(
                    depth,
                    "closing a pooled connection left inside a failed transaction"
                );
            }
            Ok(depth == 0)
        })
    })
}

/// Whether writes currently work, as learnt from the writes themselves:
/// the readiness check must say "not ready" while writes fail (disk full)
/// even though a `SELECT 1` still answers.
///
/// Only outages count ([`is_outage`]): a constraint error says nothing
/// about the writer. On a full disk small writes may still fit into free
/// space in the write-ahead log while larger ones fail, so a storage fault
/// stays reported until [`STORAGE_FAULT_HOLD_MS`] have passed without
/// another one; any other outage clears with the next write that works.
#[derive(Debug, Default)]
pub struct WriteHealth {
    state: Mutex<WriteState>,
}

/// How long a storage fault (disk full, read-only) stays reported after
/// the last write it failed (ms).
pub const STORAGE_FAULT_HOLD_MS: i64 = 10_000;

#[derive(Debug, Default, Clone)]
struct WriteState {
    failing: Option<WriteFailure>,
    /// When a write last failed with a storage fault (ms).
    last_fault_ms: i64,
}

/// The write failure that is still current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    /// When writes started failing (ms since the epoch).
    pub since_ms: i64,
    /// The latest failure's reason, on one line.
    pub reason: String,
    /// The storage fault behind it, when it is one.
    pub fault: Option<StorageFault>,
}

impl WriteHealth {
    /// Records the outcome of a write transaction.
    pub fn record(&self, outcome: Result<(), &sqlx::Error>) {
        self.record_at(outcome, now_ms());
    }

    fn record_at(&self, outcome: Result<(), &sqlx::Error>, now: i64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(()) => {
                let held = state.failing.as_ref().is_some_and(|f| {
                    f.fault.is_some() && now - state.last_fault_ms < STORAGE_FAULT_HOLD_MS
                });
                if !held {
                    state.failing = None;
                }
            }
            Err(err) if is_outage(err) => {
                let fault = storage_fault(err);
                if fault.is_some() {
                    state.last_fault_ms = now;
                }
                let reason = match fault {
                    Some(fault) => format!("{}: {err}", fault.describe()),
                    None => err.to_string(),
                };
                let since_ms = state.failing.as_ref().map_or(now, |f| f.since_ms);
                state.failing = Some(WriteFailure {
                    since_ms,
                    reason: reason.replace('\n', " "),
                    fault: fault.or(state.failing.as_ref().and_then(|f| f.fault)),
                });
            }
            Err(_) => {}
        }
    }

    /// The current failure, if writes are failing.
    pub fn failing(&self) -> Option<WriteFailure> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failing
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_errors_met_outside_sqlx_classify_as_sqlx_ones() {
        let failure = |extended: i32| {
            DirectSqliteError::wrap(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(extended),
                Some(format!("code {extended}")),
            ))
        };
        // SQLITE_FULL, SQLITE_READONLY_DBMOVED, SQLITE_IOERR_WRITE.
        assert_eq!(storage_fault(&failure(13)), Some(StorageFault::DiskFull));
        assert_eq!(storage_fault(&failure(1032)), Some(StorageFault::ReadOnly));
        assert!(is_outage(&failure(13)) && is_outage(&failure(778)));
        assert_eq!(sqlite_code(&failure(778)), Some(10));
        // SQLITE_CONSTRAINT_PRIMARYKEY: an answer about the statement.
        let duplicate = failure(1555);
        assert!(!is_outage(&duplicate));
        assert!(
            matches!(&duplicate, sqlx::Error::Database(db) if db.is_unique_violation()),
            "{duplicate:?}"
        );
        // A real one, from SQLite itself: a statement it cannot prepare.
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        let err = conn
            .execute("UPDATE nowhere SET x = 1", [])
            .expect_err("no table");
        let err = DirectSqliteError::wrap(err);
        assert_eq!(sqlite_code(&err), Some(1));
        assert!(!is_outage(&err));
        assert!(err.to_string().contains("no such table: nowhere"), "{err}");
        // Not an SQLite failure: a value of the wrong type.
        let decode = DirectSqliteError::wrap(rusqlite::Error::InvalidColumnType(
            0,
            "id".into(),
            rusqlite::types::Type::Blob,
        ));
        assert!(matches!(decode, sqlx::Error::Decode(_)) && sqlite_code(&decode).is_none());
    }

    #[test]
    fn an_outage_clears_with_the_next_write_that_works() {
        let health = WriteHealth::default();
        assert_eq!(health.failing(), None);
        let err = sqlx::Error::PoolTimedOut;
        health.record_at(Err(&err), 1_000);
        let first = health.failing().expect("failing after an error");
        health.record_at(Err(&err), 2_000);
        assert_eq!(
            health.failing().map(|f| f.since_ms),
            Some(first.since_ms),
            "a second failure keeps the first one's start"
        );
        health.record_at(Ok(()), 2_500);
        assert_eq!(health.failing(), None);
    }

    #[test]
    fn a_storage_fault_holds_while_small_writes_still_fit() {
        let health = WriteHealth::default();
        health.state.lock().unwrap().failing = Some(WriteFailure {
            since_ms: 1_000,
            reason: "disk full".into(),
            fault: Some(StorageFault::DiskFull),
        });
        health.state.lock().unwrap().last_fault_ms = 1_000;
        health.record_at(Ok(()), 1_000 + STORAGE_FAULT_HOLD_MS - 1);
        assert!(health.failing().is_some(), "held");
        health.record_at(Ok(()), 1_000 + STORAGE_FAULT_HOLD_MS);
        assert_eq!(health.failing(), None, "cleared once the hold ran out");
    }

    #[test]
    fn answers_about_the_statement_are_no_outage() {
        let health = WriteHealth::default();
        health.record(Err(&sqlx::Error::RowNotFound));
        assert_eq!(health.failing(), None);
        assert!(!is_outage(&sqlx::Error::RowNotFound));
        assert!(is_outage(&sqlx::Error::PoolClosed));
        assert_eq!(storage_fault(&sqlx::Error::PoolTimedOut), None);
        assert_eq!(storage_fault(&sqlx::Error::RowNotFound), None);
    }

    #[tokio::test]
    async fn sqlite_errors_are_told_apart() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let missing = sqlx::query("SELECT * FROM nowhere")
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(is_missing_table(&missing), "{missing}");
        assert!(!is_outage(&missing));
        assert_eq!(storage_fault(&missing), None);
    }

    #[tokio::test]
    async fn a_connection_left_inside_a_failed_transaction_is_not_handed_out_again() {
        let pool = discard_broken_transactions(sqlx::sqlite::SqlitePoolOptions::new())
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        // SQLite ends the transaction behind sqlx's back, as it does when a
        // COMMIT fails on a full disk: sqlx's COMMIT and ROLLBACK then fail
        // and it still counts the connection as inside a transaction.
        sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
        assert!(tx.commit().await.is_err());
        let again = pool.begin_with("BEGIN IMMEDIATE").await;
        assert!(again.is_ok(), "{:?}", again.err());
    }
}
