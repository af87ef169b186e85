//! A PostgreSQL schema of a test's own in the shared test database, so
//! that tests run in parallel on one server without seeing each other's
//! tables, and leave nothing behind.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The shared test database (trust authentication).
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema created for one test. [`PgSchema::drop`] removes it with all
/// its tables; one that is dropped without it (a test that panicked before
/// reaching it) is removed all the same.
pub struct PgSchema {
    name: String,
    dropped: bool,
}

impl PgSchema {
    /// Creates a schema with a fresh name.
    pub async fn create() -> Self {
        let name = format!("t_{:016x}", rand::random::<u64>());
        execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap_or_else(|e| {
                panic!("create schema {name} in {POSTGRES_URL} (is it running?): {e}")
            });
        Self {
            name,
            dropped: false,
        }
    }

    /// Its name, to look it up in `information_schema`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL whose connections see only this schema: `search_path` is set
    /// by the connection's startup options, so every pool and every
    /// connection of it lands here without running anything first.
    pub fn url(&self) -> String {
        format!("{POSTGRES_URL}?options=-c%20search_path%3D{}", self.name)
    }

    /// Removes it with everything in it. Close the pools on it first: an
    /// open transaction would hold the drop up.
    pub async fn drop(mut self) {
        self.dropped = true;
        execute(&self.drop_sql())
            .await
            .unwrap_or_else(|e| panic!("drop schema {}: {e}", self.name));
    }

    /// As [`PgSchema::drop`], for a cleanup after a failure that is already
    /// being reported: an error here would hide it.
    pub(crate) async fn drop_quietly(mut self) {
        self.dropped = true;
        let _ = execute(&self.drop_sql()).await;
    }

    fn drop_sql(&self) -> String {
        format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)
    }
}

impl Drop for PgSchema {
    /// Only the sync `Drop` runs while a failed test unwinds, and it may
    /// run on the test's runtime, which cannot be blocked on: the drop
    /// goes to a thread with a runtime of its own.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let sql = self.drop_sql();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(execute(&sql)).ok()
        })
        .join();
    }
}

/// Runs one statement on a connection of its own.
async fn execute(sql: &str) -> Result<(), sqlx::Error> {
    let mut con = PgConnection::connect(POSTGRES_URL).await?;
    sqlx::query(sql).execute(&mut con).await?;
    con.close().await
}
