//! View models: the plain data the pages render, one module per capability.
//!
//! They are defined here, not in `coord`, so that this crate never depends on
//! a queue backend, a database driver or Redis: the server maps its domain
//! types into these structs, and the pages can be rendered (and tested) from
//! hand-made values alone.

pub mod alerts;
pub mod audit;
pub mod bullmq;
pub mod cache;
pub mod channels;
pub mod config;
pub mod errors;
pub mod glance;
pub mod instances;
pub mod queues;
pub mod ratelimits;
pub mod redis;
pub mod schedules;
pub mod search;
pub mod session;
pub mod users;
pub mod workers;
