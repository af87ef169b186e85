//! One pool over SQLite or PostgreSQL, for coord's stores and for the
//! services that embed coord.
//!
//! The statements are written once, with `$1` placeholders that both
//! databases accept, and [`on_pool!`](crate::on_pool) compiles them for each
//! driver: no `Any` driver (which would lose each driver's types), and no
//! database needed to build (no compile-time checked queries).

pub use sqlx::postgres::PgPool;
pub use sqlx::sqlite::SqlitePool;

/// Declares an enum holding a pool of either database, dispatched by
/// [`on_pool!`](crate::on_pool). A macro rather than one type so that a
/// crate embedding coord can add methods of its own (its tables, its
/// migrations) to the enum it declares; [`Pool`] is coord's.
///
/// ```
/// coord::pool_enum! {
///     /// The service's database.
///     pub enum Database
/// }
/// ```
#[macro_export]
macro_rules! pool_enum {
    ($(#[$attr:meta])* $vis:vis enum $name:ident) => {
        $(#[$attr])*
        #[derive(Clone, Debug)]
        $vis enum $name {
            /// SQLite: the embedded default, or next to Redis.
            Sqlite($crate::sql::SqlitePool),
            /// PostgreSQL, for a deployment that already runs one.
            Postgres($crate::sql::PgPool),
        }

        impl<'a> ::core::convert::From<&'a $name> for $crate::sql::PoolRef<'a> {
            fn from(pool: &'a $name) -> Self {
                match pool {
                    $name::Sqlite(pool) => $crate::sql::PoolRef::Sqlite(pool),
                    $name::Postgres(pool) => $crate::sql::PoolRef::Postgres(pool),
                }
            }
        }

        impl $name {
            /// Which database this is, for logs and dashboards.
            pub fn kind(&self) -> &'static str {
                $crate::sql::PoolRef::from(self).kind()
            }

            /// Closes every connection, so that a test can drop its
            /// schema or file.
            pub async fn close(&self) {
                $crate::sql::PoolRef::from(self).close().await
            }
        }
    };
}

/// Runs `$body` with `$pool` bound to the pool `$db` (a reference to an
/// enum declared by [`pool_enum!`](crate::pool_enum)) holds: a
/// `&SqlitePool` in one arm, a `&PgPool` in the other, so the same sqlx
/// code is compiled for each driver.
///
/// ```
/// # async fn count(db: &coord::sql::Pool) -> Result<i64, sqlx::Error> {
/// let n: i64 = coord::on_pool!(db, pool => {
///     sqlx::query_scalar("SELECT count(*) FROM synced_state")
///         .fetch_one(pool)
///         .await?
/// });
/// # Ok(n) }
/// ```
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $crate::sql::PoolRef::from($db) {
            $crate::sql::PoolRef::Sqlite($pool) => $body,
            $crate::sql::PoolRef::Postgres($pool) => $body,
        }
    };
}

/// A borrowed pool of either database: what [`on_pool!`](crate::on_pool)
/// dispatches on, whichever enum declared by [`pool_enum!`](crate::pool_enum)
/// it was given.
#[derive(Clone, Copy, Debug)]
pub enum PoolRef<'a> {
    /// SQLite.
    Sqlite(&'a SqlitePool),
    /// PostgreSQL.
    Postgres(&'a PgPool),
}

impl PoolRef<'_> {
    /// Which database this is, for logs and dashboards.
    pub fn kind(self) -> &'static str {
        match self {
            PoolRef::Sqlite(_) => "sqlite",
            PoolRef::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection of the pool.
    pub async fn close(self) {
        crate::on_pool!(self, pool => pool.close().await)
    }
}

pool_enum! {
    /// A pool coord's SQL stores run on (see
    /// [`StateStore`](crate::sync::StateStore)); cheap to clone, clones
    /// share the connections.
    pub enum Pool
}
