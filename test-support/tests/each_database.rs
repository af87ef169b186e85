//! `each_database`: one body, run on a fresh SQLite file and then on a
//! fresh PostgreSQL schema, and a failure that says on which.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use futures_util::FutureExt;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use test_support::{TestDatabase, each_database};

/// Creates a table on `db`, which fails unless the database is fresh.
async fn create_table(db: &TestDatabase) {
    let sql = "CREATE TABLE fresh (n INTEGER)";
    match db.label() {
        "sqlite" => {
            let mut con = SqliteConnection::connect(db.url()).await.expect("sqlite");
            sqlx::query(sql).execute(&mut con).await.expect("create");
            con.close().await.expect("close");
        }
        "postgres" => {
            let mut con = PgConnection::connect(db.url()).await.expect("postgres");
            sqlx::query(sql).execute(&mut con).await.expect("create");
            con.close().await.expect("close");
        }
        other => panic!("unknown database {other}"),
    }
}

/// The message `each_database` panicked with, when it did.
async fn failure_of(body: impl AsyncFnMut(TestDatabase)) -> Option<String> {
    let panic = AssertUnwindSafe(each_database(body))
        .catch_unwind()
        .await
        .err()?;
    Some(
        panic
            .downcast_ref::<String>()
            .cloned()
            .expect("a formatted message"),
    )
}

#[tokio::test]
async fn the_body_runs_on_a_fresh_sqlite_then_a_fresh_postgres() {
    let seen = Mutex::new(Vec::new());
    for _ in 0..2 {
        each_database(async |db| {
            create_table(&db).await;
            seen.lock().unwrap().push((db.label(), db.url().to_owned()));
        })
        .await;
    }
    let seen = seen.into_inner().unwrap();
    let labels: Vec<_> = seen.iter().map(|(label, _)| *label).collect();
    assert_eq!(labels, ["sqlite", "postgres", "sqlite", "postgres"]);
    assert!(seen[0].1.starts_with("sqlite://"), "{seen:?}");
    assert!(seen[1].1.contains("search_path"), "{seen:?}");
    assert_ne!(seen[0].1, seen[2].1, "a new file each time");
    assert_ne!(seen[1].1, seen[3].1, "a new schema each time");
}

#[tokio::test]
async fn a_failure_on_postgres_names_postgres_alone() {
    let message = failure_of(async |db| {
        assert_eq!(db.label(), "sqlite", "differs here");
    })
    .await
    .expect("it fails");
    assert!(
        message.starts_with("failed on postgres (postgres://"),
        "{message}"
    );
    assert!(message.contains("differs here"), "{message}");
    assert!(!message.contains("sqlite ("), "{message}");
}

#[tokio::test]
async fn a_failure_on_sqlite_still_runs_postgres_and_names_each_failure() {
    let runs = Mutex::new(Vec::new());
    let message = failure_of(async |db| {
        runs.lock().unwrap().push(db.label());
        panic!("broken everywhere");
    })
    .await
    .expect("it fails");
    assert_eq!(*runs.lock().unwrap(), ["sqlite", "postgres"]);
    let lines: Vec<_> = message.lines().collect();
    assert_eq!(lines.len(), 2, "{message}");
    assert!(
        lines[0].starts_with("failed on sqlite (sqlite://"),
        "{message}"
    );
    assert!(lines[0].ends_with(": broken everywhere"), "{message}");
    assert!(lines[1].starts_with("failed on postgres ("), "{message}");
}
