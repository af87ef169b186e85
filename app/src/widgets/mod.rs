//! The building blocks pages share. Each component takes owned view-model
//! data and renders static HTML; leptos escapes every text node and
//! attribute value, so job names and data from producers can never inject
//! markup.
//!
//! Components whose content changes while a page is open render one element
//! with a fixed `id` (a *region*). The live stream sends that same
//! component, rendered alone, and the page's script swaps it in by id, so
//! the markup of a live update and of a full page load is written once.

pub mod banner;
pub mod chart;
pub mod forms;
pub mod health;
pub mod job_log;
pub mod pager;
pub mod queue;
pub mod shell;
pub mod table;
pub mod time;
