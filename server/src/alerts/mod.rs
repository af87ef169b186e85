//! Alerting: rules over the dashboard's figures (queues, instances, rate
//! limits, channels, the backend), evaluated on a clock, with a lifecycle
//! pending → firing → resolved, stored in the SQL database and delivered to
//! webhooks.

pub mod defaults;
pub mod eval;
pub mod model;
pub mod observe;
pub mod routes;
pub mod runner;
pub mod settings;
pub mod store;
pub mod view;
pub mod vm;
pub mod webhook;
