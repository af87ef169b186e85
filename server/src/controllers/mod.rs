//! Request handlers, grouped by the resource they serve. Routes are bound
//! to them in one place, [`crate::router`].

pub mod actions;
pub mod alerts;
pub mod audit;
pub mod bullmq;
pub mod events;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod pages;
pub mod queues;
pub mod ratelimits;
pub mod session;
pub mod users;
