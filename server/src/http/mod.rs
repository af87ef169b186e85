//! What every handler shares about HTTP: the error that knows its status,
//! the extractors that reject bad input with a reason, the flash message
//! carried across a redirect, and the security headers and limits.

pub mod error;
pub mod extract;
pub mod flash;
pub mod forms;
pub mod page;
pub mod security;
pub mod serve;
