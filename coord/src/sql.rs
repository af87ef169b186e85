//! What every SQL pool in Switchyard shares, on SQLite and PostgreSQL alike:
//! connections that recover by themselves after a storage fault, and the
//! storage faults named so that callers can say "disk full" instead of
//! "internal error".

use std::sync::Mutex;

use sqlx::pool::{PoolConnectionMetadata, PoolOptions};
use sqlx::{Database, TransactionManager};

use crate::time::now_ms;

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
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let code = db.code()?;
    if let Ok(sqlite) = code.parse::<i32>() {
        return match sqlite & 0xff {
            13 => Some(StorageFault::DiskFull),
            8 => Some(StorageFault::ReadOnly),
            _ => None,
        };
    }
    match code.as_ref() {
        "53100" => Some(StorageFault::DiskFull),
        "25006" => Some(StorageFault::ReadOnly),
        _ => None,
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
/// the readiness check must say "not ready" while every write fails (disk
/// full) even though a `SELECT 1` still answers.
#[derive(Debug, Default)]
pub struct WriteHealth {
    state: Mutex<WriteState>,
}

#[derive(Debug, Default, Clone)]
struct WriteState {
    last_ok_ms: i64,
    failing: Option<WriteFailure>,
}

/// The write failure that is still current: no write has succeeded since.
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
    /// Records the outcome of a write transaction. Only database errors
    /// count: a refusal such as "job not found" says nothing about the
    /// writer.
    pub fn record(&self, outcome: Result<(), &sqlx::Error>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(()) => {
                state.last_ok_ms = now_ms();
                state.failing = None;
            }
            Err(err) => {
                let fault = storage_fault(err);
                let reason = match fault {
                    Some(fault) => format!("{}: {err}", fault.describe()),
                    None => err.to_string(),
                };
                let since_ms = state.failing.as_ref().map_or_else(now_ms, |f| f.since_ms);
                state.failing = Some(WriteFailure {
                    since_ms,
                    reason: reason.replace('\n', " "),
                    fault,
                });
            }
        }
    }

    /// The current failure, if the last write failed.
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
    fn writes_heal_the_health_as_soon_as_one_succeeds() {
        let health = WriteHealth::default();
        assert_eq!(health.failing(), None);
        let err = sqlx::Error::PoolTimedOut;
        health.record(Err(&err));
        let first = health.failing().expect("failing after an error");
        health.record(Err(&err));
        assert_eq!(
            health.failing().map(|f| f.since_ms),
            Some(first.since_ms),
            "a second failure keeps the first one's start"
        );
        health.record(Ok(()));
        assert_eq!(health.failing(), None);
    }

    #[test]
    fn non_database_errors_are_no_storage_fault() {
        assert_eq!(storage_fault(&sqlx::Error::PoolTimedOut), None);
        assert_eq!(storage_fault(&sqlx::Error::RowNotFound), None);
    }
}
