//! One module per page: its `render_*_page`, which returns the whole
//! document, its `*_fragments`, which render the page's live regions alone
//! for its event stream, and the components only that page uses.

pub mod alerts;
pub mod audit;
pub mod bull_job;
pub mod bull_queue;
pub mod bullmq;
pub mod channels;
pub mod config;
pub mod error;
pub mod instances;
pub mod job;
pub mod login;
pub mod overview;
pub mod queue;
pub mod queues;
pub mod ratelimits;
pub mod users;
