//! The native queues' routes: pages, live streams, form actions and the
//! JSON API, each a thin wrapper over an operation in [`crate::queues`].

pub mod api;
pub mod events;
pub mod forms;
pub mod jobs_api;
pub mod pages;
