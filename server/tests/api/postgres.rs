//! The PostgreSQL implementation of the server's SQL side, migrated in a
//! schema of the test's own that is dropped afterwards.

use server::config::Settings;
use server::config::secret::SecretUrl;
use server::db::{Database, FIRST_STARTED_AT};
use server::startup::spawn_app;
use test_support::TempDir;
use test_support::postgres::PgSchema;
use test_support::redis::REDIS_URL;

use crate::helpers::{RedisKeys, embedded_settings};

#[tokio::test]
async fn the_postgres_database_migrates_and_keeps_the_first_start() {
    let schema = PgSchema::create().await;
    let db = Database::connect(&SecretUrl::new(schema.url()))
        .await
        .expect("connect");
    assert_eq!(db.kind(), "postgres");
    db.migrate().await.expect("migrate");
    db.migrate().await.expect("migrating twice is a no-op");
    db.ping().await.expect("ping");

    let tables: Vec<String> = match &db {
        Database::Postgres(pool) => sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(schema.name())
        .fetch_all(pool)
        .await
        .expect("list tables"),
        Database::Sqlite(_) => unreachable!("connected to postgres"),
    };
    assert!(tables.iter().any(|t| t == "switchyard_meta"), "{tables:?}");

    assert_eq!(db.record_first_start(1000).await.expect("first"), "1000");
    assert_eq!(db.record_first_start(2000).await.expect("second"), "1000");
    assert_eq!(
        db.meta(FIRST_STARTED_AT).await.expect("meta").as_deref(),
        Some("1000")
    );
    db.set_meta("note", "a").await.expect("set");
    db.set_meta("note", "b").await.expect("replace");
    assert_eq!(db.meta("note").await.expect("meta").as_deref(), Some("b"));
    assert_eq!(db.meta("absent").await.expect("meta"), None);

    db.close().await;
    schema.drop().await;
}

#[tokio::test]
async fn the_server_starts_on_redis_with_postgres_for_the_sql_side() {
    let schema = PgSchema::create().await;
    let dir = TempDir::new("pg");
    let prefix = format!("switchyard-test-{:016x}", rand::random::<u64>());
    let settings = Settings {
        redis_url: Some(SecretUrl::new(REDIS_URL)),
        redis_prefix: prefix.clone(),
        database_url: SecretUrl::new(schema.url()),
        ..embedded_settings(&dir)
    };
    let _keys = RedisKeys(prefix, REDIS_URL.to_owned());
    let app = spawn_app(&settings).await.expect("starts");
    assert_eq!(app.state.db.kind(), "postgres");
    let first = app.state.db.meta(FIRST_STARTED_AT).await.expect("meta");
    assert!(first.is_some_and(|ms| ms.parse::<i64>().is_ok()));
    let db = app.state.db.clone();
    app.stop().await;
    db.close().await;
    schema.drop().await;
}
