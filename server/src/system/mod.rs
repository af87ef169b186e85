//! The server about itself: readiness of every dependency, the storage
//! hint shown when SQLite cannot write, and the health routes.

pub mod check;
pub mod readiness;
pub mod routes;
pub mod storage_hint;
pub mod vm;
