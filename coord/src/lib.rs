//! The coordination backend that services embed.
//!
//! Everything here works on two deployments with one behaviour: the embedded
//! default (state in an SQL database, wake-ups in process) and scale-out
//! (state in Redis). Callers talk to [`queue::Queues`] and never see which
//! backend is behind it, so a service can move from one to the other by
//! configuration alone.

pub mod bullmq;
pub mod cache;
pub mod channels;
pub mod debounce;
pub mod error;
pub mod errors;
pub mod instance;
pub mod instances;
pub mod queue;
pub mod ratelimit;
pub mod redis;
pub mod redis_health;
pub mod search;
pub mod sessions;
pub mod sql;
pub mod sync;
pub mod time;

pub use error::{CoordError, Result};
