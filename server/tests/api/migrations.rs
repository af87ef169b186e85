//! Databases written by an earlier release open and migrate cleanly: the
//! migrations were split by owner (`migrations/coord/…` run by coord,
//! `migrations/server/…` run by the server) without changing a version or
//! a byte of any file, so what is applied stays valid.

use serde_json::json;
use server::db::Database;
use server::secret::SecretUrl;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnection;

use crate::helpers::{TempDir, TestApp};

/// A SQLite file written by the release of 2026-12-03 (before the split):
/// two `emails` jobs (one waiting, one delayed), the operator `ada` with
/// the API token below, the default alert rules, one metrics sample and
/// one audit record.
const FIXTURE: &str = "tests/fixtures/release-2026-12-03.sqlite";
const FIXTURE_TOKEN: &str = "sy_bxz9jkns_BFSIvzwyunA7FqLoq665YJyBk0yxQeSI6a4AhuUGpZw";

#[tokio::test]
async fn a_sqlite_file_from_the_previous_release_opens_with_everything_in_it() {
    let dir = TempDir::new("fixture");
    let file = dir.0.join("release.db");
    std::fs::copy(env!("CARGO_MANIFEST_DIR").to_owned() + "/" + FIXTURE, &file)
        .expect("copy the fixture");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let app = TestApp::spawn_with(|s| {
        s.database_url = SecretUrl::new(url);
        s.auth.api_tokens = true;
    })
    .await;
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    let counts = app.counts("emails").await;
    assert_eq!((counts.waiting, counts.delayed), (1, 1), "{counts:?}");
    let token = app
        .request_as(
            None,
            "GET",
            "/api/queues/emails",
            &[("Authorization", &format!("Bearer {FIXTURE_TOKEN}"))],
            b"",
        )
        .await;
    assert_eq!(
        token.status, 200,
        "the stored token still works: {}",
        token.body
    );
    let users = app.get("/api/users").await.json();
    assert!(users.to_string().contains("\"ada\""), "{users}");
    let audit = app.get("/api/audit?action=queue.pause").await.json();
    assert_eq!(audit["entries"][0]["actor"], "ada", "{audit}");
    let Database::Sqlite(pool) = &app.app.state.db else {
        panic!("the embedded deployment runs on SQLite");
    };
    let sample: f64 =
        sqlx::query_scalar("SELECT value FROM metrics_samples WHERE subject = 'emails'")
            .fetch_one(pool)
            .await
            .expect("the metrics history is kept");
    assert_eq!(sample, 42.0);
    let rules: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_rules")
        .fetch_one(pool)
        .await
        .expect("alert rules");
    assert_eq!(rules, 9);
    // New jobs go on from the stored counter.
    let id = app.enqueue("emails", &json!({ "name": "welcome" })).await;
    assert_eq!(id, "3");
    app.stop().await;
}

#[tokio::test]
async fn a_postgres_schema_from_the_previous_release_migrates_cleanly() {
    let schema = crate::postgres::Schema::create().await;
    // The previous release ran one folder per database: the same files,
    // versions and checksums as both sets together now.
    let mut previous: Migrator = sqlx::migrate!("../migrations/server/postgres");
    let coord_set: Migrator = sqlx::migrate!("../migrations/coord/postgres");
    let mut all: Vec<_> = previous.migrations.iter().cloned().collect();
    all.extend(coord_set.migrations.iter().cloned());
    all.sort_by_key(|m| m.version);
    previous.migrations = all.into();
    let mut con = PgConnection::connect(schema.url().expose())
        .await
        .expect("connect");
    previous
        .run(&mut con)
        .await
        .expect("the previous release's migrations");
    sqlx::query(
        "INSERT INTO users (name, password_hash, role, created_at, disabled) \
         VALUES ('ada', 'x', 'operator', 1, FALSE)",
    )
    .execute(&mut con)
    .await
    .expect("a user");
    con.close().await.expect("close");

    let db = Database::connect(&schema.url()).await.expect("connect");
    db.migrate().await.expect("the server's set migrates");
    let Database::Postgres(pool) = &db else {
        panic!("postgres");
    };
    coord::sync::StateStore::postgres(pool.clone())
        .await
        .expect("coord's set migrates");
    db.check_schema().await.expect("every migration is applied");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE name = 'ada'")
        .fetch_one(pool)
        .await
        .expect("users");
    assert_eq!(users, 1);
    db.close().await;
    schema.drop().await;
}
