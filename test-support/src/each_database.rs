use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use crate::TempDir;
use crate::postgres::PgSchema;

/// One of the databases a test body runs on: where it is and what to call
/// it in a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDatabase {
    url: String,
    label: &'static str,
}

impl TestDatabase {
    /// A URL to connect with: `sqlite://…?mode=rwc` on a file of its own,
    /// or `postgres://…?options=-c search_path=…` on a schema of its own
    /// (see [`PgSchema::url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn label(&self) -> &'static str {
        self.label
    }
}

impl fmt::Display for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label)
    }
}

/// Runs `body` on a fresh SQLite file, then on a fresh PostgreSQL schema,
/// and removes both, so that one body keeps the two SQL implementations
/// from drifting apart. Both runs happen even when the first fails, and
/// the panic that ends the test names each database that failed with its
/// message: a failure on one database alone points at its implementation,
/// one on both at the code they share or at the test.
///
/// The body owns what it connects: it should close its pools before it
/// returns, as an open transaction would hold up the schema's removal.
pub async fn each_database(mut body: impl AsyncFnMut(TestDatabase)) {
    let mut failures = Vec::new();

    let dir = TempDir::new("each-database");
    let sqlite = TestDatabase {
        url: format!("sqlite://{}?mode=rwc", dir.0.join("test.db").display()),
        label: "sqlite",
    };
    if let Err(panic) = AssertUnwindSafe(body(sqlite.clone())).catch_unwind().await {
        failures.push(failure(&sqlite, panic.as_ref()));
    }
    drop(dir);

    let schema = PgSchema::create().await;
    let postgres = TestDatabase {
        url: schema.url(),
        label: "postgres",
    };
    match AssertUnwindSafe(body(postgres.clone()))
        .catch_unwind()
        .await
    {
        Ok(()) => schema.drop().await,
        Err(panic) => {
            failures.push(failure(&postgres, panic.as_ref()));
            schema.drop_quietly().await;
        }
    }

    if !failures.is_empty() {
        panic!("{}", failures.join("\n"));
    }
}

/// `failed on <label> (<url>): <the panic's message>`.
fn failure(db: &TestDatabase, panic: &(dyn Any + Send)) -> String {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(a panic without a message)");
    format!("failed on {} ({}): {message}", db.label, db.url)
}
