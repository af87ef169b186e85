//! Switchyard's web server: the dashboard pages, the JSON API, the CLI's
//! building blocks and the demo, on top of the `coord` queue library.
//!
//! The binary (`src/main.rs`) only parses the command line and reports
//! errors; everything else lives here so integration tests in `tests/` can
//! start the same application on port 0 (see [`startup::spawn_app`]).

#![warn(missing_docs)]

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod bullmq;
pub mod cache;
pub mod channels;
pub mod config;
pub mod db;
pub mod demo;
pub mod errors;
pub mod http;
pub mod instances;
pub mod live;
pub mod metrics;
pub mod overview;
pub mod queues;
pub mod ratelimits;
pub mod redis_health;
pub mod schedules;
pub mod search;
pub mod startup;
pub mod state;
pub mod sync;
pub mod system;
pub mod workers;
