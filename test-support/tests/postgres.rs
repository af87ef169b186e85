//! A schema per test: its URL must land every connection in it, and it
//! must be gone afterwards, also when the test failed before dropping it.

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use test_support::postgres::{POSTGRES_URL, PgSchema};

async fn schema_exists(name: &str) -> bool {
    let mut con = PgConnection::connect(POSTGRES_URL).await.expect("connect");
    let found: Option<String> = sqlx::query_scalar(
        "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name = $1",
    )
    .bind(name)
    .fetch_optional(&mut con)
    .await
    .expect("look up the schema");
    con.close().await.expect("close");
    found.is_some()
}

#[tokio::test]
async fn connections_of_a_schema_url_create_in_it_and_drop_removes_it() {
    let schema = PgSchema::create().await;
    let name = schema.name().to_owned();
    assert!(schema_exists(&name).await);

    let mut con = PgConnection::connect(&schema.url()).await.expect("connect");
    let current: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut con)
        .await
        .expect("current schema");
    assert_eq!(current, name);
    sqlx::query("CREATE TABLE probe (n INT)")
        .execute(&mut con)
        .await
        .expect("create table");
    con.close().await.expect("close");
    let mut admin = PgConnection::connect(POSTGRES_URL).await.expect("connect");
    let table_schema: String = sqlx::query_scalar(
        "SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'probe' AND table_schema = $1",
    )
    .bind(&name)
    .fetch_one(&mut admin)
    .await
    .expect("the table is in the schema");
    assert_eq!(table_schema, name);
    admin.close().await.expect("close");

    schema.drop().await;
    assert!(!schema_exists(&name).await, "{name} is left");
}

#[tokio::test]
async fn a_schema_dropped_without_its_drop_call_is_removed_too() {
    let schema = PgSchema::create().await;
    let name = schema.name().to_owned();
    std::mem::drop(schema);
    assert!(!schema_exists(&name).await, "{name} is left");
}
