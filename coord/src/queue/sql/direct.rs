//! The connection worker steps write through: SQLite called directly
//! (rusqlite) instead of through sqlx.
//!
//! sqlx runs every statement on the connection's own thread and hands the
//! answer back, about 50 µs of thread switching per statement on two cores:
//! more than most of a step's statements cost SQLite. A step here is one
//! hand-off to a blocking thread that runs the whole transaction with
//! cached statement plans. The other writes (enqueues, admin actions) stay
//! on sqlx; all of them queue behind the same process write lock and
//! SQLite's own, so they never interleave.

use std::sync::{Arc, Mutex as StdMutex};

use rusqlite::{Connection, OpenFlags};
use sqlx::SqlitePool;
use tokio::sync::OwnedMutexGuard;

use crate::error::{CoordError, Result};
use crate::sql::DirectSqliteError;

/// Statements a step prepares; each connection keeps their plans.
const CACHED_STATEMENTS: usize = 32;

/// Where a step's transaction runs.
pub(super) enum DirectConn {
    /// A connection of its own on the database file, kept for every step so
    /// that statement plans are prepared once.
    Own(Arc<StdMutex<Connection>>),
    /// An in-memory database exists only inside the pool's connection, so a
    /// step borrows that connection (statements prepared per step).
    Borrowed,
}

impl DirectConn {
    /// A connection on the file the pool's database lives in, with the
    /// pool's durability and key settings, or [`DirectConn::Borrowed`] for
    /// an in-memory database (which has no file).
    pub(super) async fn open(pool: &SqlitePool, busy_timeout: std::time::Duration) -> Result<Self> {
        let mut conn = pool.acquire().await?;
        let file: String =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(&mut *conn)
                .await?;
        if file.is_empty() {
            return Ok(DirectConn::Borrowed);
        }
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await?;
        drop(conn);
        let opened = tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
            let conn = Connection::open_with_flags(
                &file,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(busy_timeout)?;
            conn.pragma_update(None, "synchronous", synchronous)?;
            conn.pragma_update(None, "foreign_keys", foreign_keys)?;
            conn.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
            Ok(conn)
        })
        .await
        .map_err(|e| CoordError::Corrupt(format!("opening the step connection: {e}")))?;
        let conn = opened.map_err(sql_error)?;
        Ok(DirectConn::Own(Arc::new(StdMutex::new(conn))))
    }

    /// Runs `write` inside `BEGIN IMMEDIATE` … `COMMIT` while `lock` (the
    /// process's write lock) is held, then `after` once the commit stands.
    /// A failure of `write` or of the commit rolls back and is returned.
    ///
    /// On its own connection the transaction runs on a blocking thread
    /// that owns everything it needs, so a caller that goes away cannot cut
    /// it short: it commits (and `after` runs) or rolls back as if waited
    /// for.
    pub(super) async fn transaction<T, W, A>(
        &self,
        pool: &SqlitePool,
        lock: OwnedMutexGuard<()>,
        write: W,
        after: A,
    ) -> Result<T>
    where
        T: Send + 'static,
        W: FnOnce(&Connection) -> Result<T> + Send + 'static,
        A: FnOnce(&mut T) + Send + 'static,
    {
        match self {
            DirectConn::Own(conn) => {
                let conn = conn.clone();
                let joined = tokio::task::spawn_blocking(move || {
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    let done = immediate(&conn, write);
                    drop(conn);
                    finish(done, lock, after)
                })
                .await;
                match joined {
                    Ok(done) => done,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(e) => Err(CoordError::Corrupt(format!("worker step cancelled: {e}"))),
                }
            }
            DirectConn::Borrowed => {
                let mut pooled = pool.acquire().await?;
                let mut handle = pooled.lock_handle().await?;
                let raw = handle.as_raw_handle();
                // SAFETY: `handle` locks the connection for as long as it
                // lives, so nothing else uses it meanwhile, and it outlives
                // `conn`, which does not close what it did not open. The
                // transaction below runs without an await, so it cannot be
                // left half done by a cancelled caller.
                let conn = unsafe { Connection::from_handle(raw.as_ptr()) }.map_err(sql_error)?;
                let done = immediate(&conn, write);
                drop(conn);
                drop(handle);
                finish(done, lock, after)
            }
        }
    }
}

/// The end of a step's transaction, whichever connection ran it: the
/// write lock goes first, then `after` runs if it committed.
fn finish<T>(
    mut done: Result<T>,
    lock: OwnedMutexGuard<()>,
    after: impl FnOnce(&mut T),
) -> Result<T> {
    drop(lock);
    if let Ok(value) = &mut done {
        after(value);
    }
    done
}

/// `write` in a `BEGIN IMMEDIATE` transaction, committed when it succeeds
/// and rolled back otherwise. A transaction left open by an earlier panic
/// is rolled back first.
fn immediate<T>(conn: &Connection, write: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    if !conn.is_autocommit() {
        exec(conn, "ROLLBACK")?;
    }
    exec(conn, "BEGIN IMMEDIATE")?;
    let done = write(conn).and_then(|value| exec(conn, "COMMIT").map(|()| value));
    if done.is_err() && !conn.is_autocommit() {
        // A failed statement may have ended the transaction already (disk
        // full rolls back); what matters is that none is left open.
        if let Err(e) = exec(conn, "ROLLBACK") {
            tracing::warn!(error = %e, "rolling back a failed worker step");
        }
    }
    done
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(|_| ())
        .map_err(sql_error)
}

/// A rusqlite error as coord's.
pub(super) fn sql_error(err: rusqlite::Error) -> CoordError {
    CoordError::Database(DirectSqliteError::wrap(err))
}
