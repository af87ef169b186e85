//! What Switchyard's integration tests share across crates: a private
//! redis-server, a PostgreSQL schema per test, a small HTTP client, HTML
//! probes, and [`each_database`]. A crate of its own rather than files
//! included by `#[path]`, so each helper is compiled, linted and tested
//! once. It depends on no Switchyard crate: as a dev-dependency of `coord`
//! and `server` it would otherwise build their types a second time, and
//! values of the two copies would not mix; helpers speak plain URLs and
//! strings, and call sites wrap them in their crate's types.

mod each_database;
pub mod html;
pub mod http;
pub mod postgres;
pub mod redis;
mod temp_dir;

pub use each_database::{TestDatabase, each_database};
pub use temp_dir::TempDir;
