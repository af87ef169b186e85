//! Databases written by an earlier release open and migrate cleanly: the
//! migrations were split by owner (`migrations/coord/…` run by coord,
//! `migrations/server/…` run by the server) without changing a version or
//! a byte of any file, so what is applied stays valid.

use serde_json::json;
use server::config::secret::SecretUrl;
use server::db::Database;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnection;
use test_support::TempDir;
use test_support::postgres::PgSchema;

use crate::helpers::TestApp;

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

/// The PostgreSQL migrations of the release of 2026-12-03, by version,
/// with their SHA-384 checksums as sqlx records them: a database migrated
/// by that release holds exactly these, so none may change.
const PREVIOUS_POSTGRES: [(i64, &str); 7] = [
    (
        20261123000000,
        "b0b833eead83d342f49c419b4f641f403e1cee22cb20e45a9acb71082ea8f07359a504fb9decdc1a869511924f792e20",
    ),
    (
        20261123000001,
        "87ec8553948fa905f3880a01fbcb8ce924fd3063947878c4f8b1517a2bb45989eedbe30bc4a1528b64fd156718f7d397",
    ),
    (
        20261123000002,
        "94e68023711045f75de2c10d114013ca47cf5673f4037b38dca3ffcda55cb8f4c645ebe7dc5bec2ea4ce458887f10327",
    ),
    (
        20261123000003,
        "8a2d1e735ec96854466948333e95588a562379a6bfe65c566374417058dfd01b9f976597ca22ed23da88f5ec302c819b",
    ),
    (
        20261123000004,
        "8e14d434de9cd20492371884ce39ef8cc56376f1fbdad2bd0a17fbd5979b4f99d0e21f2c2f2be67013df37257888856b",
    ),
    (
        20261123000005,
        "4353a176f695c5786d73d170a8b56c35bf52abe7865de923dbca3c81cdb3375318879ff086ca488c98661b95b32d96ed",
    ),
    (
        20261123000006,
        "3f39a7698ca24a78520dbb0bd8bf6c6b56f0e9be87190b2748d25333284ed329f49b947f477e5b1d4fc900bd0e9dfa11",
    ),
];

#[tokio::test]
async fn a_postgres_schema_from_the_previous_release_migrates_cleanly() {
    let schema = PgSchema::create().await;
    // The previous release ran one folder per database: the same files,
    // versions and checksums as both sets together now.
    let mut previous: Migrator = sqlx::migrate!("../migrations/server/postgres");
    let coord_set: Migrator = sqlx::migrate!("../migrations/coord/postgres");
    let mut all: Vec<_> = previous.migrations.iter().cloned().collect();
    all.extend(coord_set.migrations.iter().cloned());
    all.sort_by_key(|m| m.version);
    // Migrations added since are this release's, applied below.
    all.retain(|m| PREVIOUS_POSTGRES.iter().any(|(v, _)| *v == m.version));
    let pinned: Vec<(i64, String)> = all
        .iter()
        .map(|m| {
            let hex: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
            (m.version, hex)
        })
        .collect();
    let expected: Vec<(i64, String)> = PREVIOUS_POSTGRES
        .iter()
        .map(|(v, c)| (*v, (*c).to_owned()))
        .collect();
    assert_eq!(
        pinned, expected,
        "a migration the previous release applied was changed, renumbered or dropped"
    );
    previous.migrations = all.into();
    let mut con = PgConnection::connect(&schema.url()).await.expect("connect");
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

    let db = Database::connect(&SecretUrl::new(schema.url()))
        .await
        .expect("connect");
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
    let sessions: i64 = sqlx::query_scalar("SELECT count(data) FROM sessions")
        .fetch_one(pool)
        .await
        .expect("the sessions' data column");
    assert_eq!(sessions, 0);
    db.close().await;
    schema.drop().await;
}
