//! The CLI's commands other than `serve`: each connects only what it needs
//! and prints a one-line error on failure.

pub mod enqueue;
pub mod users;
