//! The server's own SQL tables (the "SQL side"), on SQLite or PostgreSQL.
//!
//! Queue state lives in the queue backend; this database holds what the
//! server itself needs to remember (for now one key/value table, used to
//! record when this installation first started). Both drivers run the same
//! statements, written with `$1` placeholders that SQLite and PostgreSQL
//! both accept, through coord's pool enum and [`on_pool!`] (see
//! [`coord::sql::Pool`]): no `Any` driver, and no compile-time database
//! needed to build.

use std::str::FromStr;
use std::time::Duration;

use coord::sql::discard_broken_transactions;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePoolOptions};

use crate::config::secret::SecretUrl;

/// How long a first connection may take before the database counts as
/// unreachable, so a wrong URL fails startup quickly instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per pool: the server's own tables see little traffic.
const MAX_CONNECTIONS: u32 = 4;

/// Meta key under which the first start of this installation is recorded.
pub const FIRST_STARTED_AT: &str = "first_started_at";

const INSERT_META_IF_ABSENT: &str =
    "INSERT INTO switchyard_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
const UPSERT_META: &str = "INSERT INTO switchyard_meta (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const SELECT_META: &str = "SELECT value FROM switchyard_meta WHERE key = $1";

/// The server's own tables on SQLite (`migrations/server/sqlite`).
fn sqlite_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("../migrations/server/sqlite");
    migrator.set_ignore_missing(true);
    migrator
}

/// The server's own tables on PostgreSQL (`migrations/server/postgres`).
fn postgres_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("../migrations/server/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// Why the SQL side could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names a database this server has no driver for.
    #[error("unsupported database URL {0} (expected sqlite:… or postgres://…)")]
    UnsupportedUrl(SecretUrl),
    /// Connecting or a statement failed.
    #[error("{0}")]
    Sql(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database answers but lacks this version's tables; restarting
    /// the server applies the migrations.
    #[error("the schema is missing: {0}; restart the server to apply the migrations")]
    SchemaMissing(String),
    /// A stored row holds a value this version cannot read (a hand edit,
    /// or a newer version's data).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// [`coord::on_pool!`], under the name the server's modules import
/// (`crate::on_pool`).
#[macro_export]
macro_rules! on_pool {
    ($($args:tt)*) => {
        ::coord::on_pool!($($args)*)
    };
}

coord::pool_enum! {
    /// A connection pool to the SQL side, on either supported database.
    /// An enum of the server's own (declared by coord) so that it can carry
    /// the server's tables: its migrations and its meta table.
    pub enum Database
}

/// Opens one connection outside any pool and closes it: a pool retries
/// failed connections until its timeout and then reports only "timed out",
/// while this surfaces the real reason (refused, unknown host, bad
/// password) for the startup error.
async fn check_connect<C: Connection>(
    connect: impl std::future::Future<Output = Result<C, sqlx::Error>>,
) -> Result<(), DbError> {
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            ))
        })??;
    connection.close().await?;
    Ok(())
}

impl DbError {
    /// True when the database could not be used at all (not reached,
    /// refusing connections, its storage failing), rather than answering
    /// about the statement: what an outage grace may ride out.
    pub fn is_outage(&self) -> bool {
        match self {
            DbError::Sql(err) => coord::sql::is_outage(err),
            _ => false,
        }
    }
}

impl Database {
    /// Connects to the database the URL names (`sqlite:…`, `postgres://…` or
    /// `postgresql://…`); nothing is migrated yet.
    pub async fn connect(url: &SecretUrl) -> Result<Self, DbError> {
        match url.scheme().as_str() {
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url.expose())?
                    .busy_timeout(Duration::from_secs(5));
                check_connect(SqliteConnection::connect_with(&options)).await?;
                let pool = discard_broken_transactions(SqlitePoolOptions::new())
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await?;
                Ok(Self::Sqlite(pool))
            }
            "postgres" | "postgresql" => {
                let options = PgConnectOptions::from_str(url.expose())?;
                check_connect(PgConnection::connect_with(&options)).await?;
                let pool = discard_broken_transactions(PgPoolOptions::new())
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await?;
                Ok(Self::Postgres(pool))
            }
            _ => Err(DbError::UnsupportedUrl(url.clone())),
        }
    }

    /// Brings the server's own tables (`migrations/server/…`) up to date.
    /// coord's tables (queues, synced state) are coord's to migrate: the
    /// queue store and the synced-state store do it when they open. Both
    /// sets share the database's migration table, so each tolerates the
    /// other's versions.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Self::Sqlite(pool) => sqlite_migrator().run(pool).await?,
            Self::Postgres(pool) => postgres_migrator().run(pool).await?,
        }
        Ok(())
    }

    /// Checks that every migration this build knows (the server's and
    /// coord's) is applied, so that the readiness check fails on a database
    /// that answers but lacks the tables (dropped and recreated empty, or
    /// pointed at the wrong database); costs one small read.
    pub async fn check_schema(&self) -> Result<(), DbError> {
        const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success";
        let versions = |own: Migrator, coord: Migrator| -> Vec<i64> {
            own.iter().chain(coord.iter()).map(|m| m.version).collect()
        };
        let (known, applied): (Vec<i64>, Result<Vec<i64>, sqlx::Error>) = match self {
            Self::Sqlite(pool) => (
                versions(sqlite_migrator(), coord::sql::sqlite_migrator()),
                sqlx::query_scalar(APPLIED).fetch_all(pool).await,
            ),
            Self::Postgres(pool) => (
                versions(postgres_migrator(), coord::sql::postgres_migrator()),
                sqlx::query_scalar(APPLIED).fetch_all(pool).await,
            ),
        };
        let applied = match applied {
            Ok(applied) => applied,
            // The database answered, but has no migration table at all.
            Err(err) if coord::sql::is_missing_table(&err) => {
                return Err(DbError::SchemaMissing(
                    "no migrations are applied (no migration table)".into(),
                ));
            }
            Err(err) => return Err(err.into()),
        };
        let missing = known.iter().filter(|v| !applied.contains(v)).count();
        if missing > 0 {
            return Err(DbError::SchemaMissing(format!(
                "{missing} of {} migrations are not applied",
                known.len()
            )));
        }
        Ok(())
    }

    /// Round trip of a trivial statement, for the readiness check.
    pub async fn ping(&self) -> Result<(), DbError> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// A stored value, if the key was ever set.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, DbError> {
        let value = on_pool!(self, pool => {
            sqlx::query_scalar(SELECT_META)
                .bind(key)
                .fetch_optional(pool)
                .await?
        });
        Ok(value)
    }

    /// Sets a value, replacing any earlier one.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), DbError> {
        self.execute_meta(UPSERT_META, key, value).await
    }

    /// Sets a value only if the key has none yet, and returns the value that
    /// is stored afterwards (the earlier one, if any): the first writer wins,
    /// also when several processes start at once.
    pub async fn meta_or_insert(&self, key: &str, value: &str) -> Result<String, DbError> {
        self.execute_meta(INSERT_META_IF_ABSENT, key, value).await?;
        Ok(self.meta(key).await?.unwrap_or_else(|| value.to_string()))
    }

    /// Records this start if it is the installation's first, and returns
    /// when the first start was (milliseconds since the Unix epoch, as text).
    pub async fn record_first_start(&self, now_ms: i64) -> Result<String, DbError> {
        self.meta_or_insert(FIRST_STARTED_AT, &now_ms.to_string())
            .await
    }

    async fn execute_meta(&self, sql: &'static str, key: &str, value: &str) -> Result<(), DbError> {
        on_pool!(self, pool => {
            sqlx::query(sql).bind(key).bind(value).execute(pool).await?;
        });
        Ok(())
    }
}
