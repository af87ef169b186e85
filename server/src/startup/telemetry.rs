//! Logging setup: one subscriber writing to stderr, so stdout stays free for
//! what commands print for scripts (the URL served, an enqueued job's id).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("invalid log filter {filter:?}: {reason}")]
pub struct LogFilterError {
    filter: String,
    reason: String,
}

/// Installs the global subscriber with a `RUST_LOG`-style filter. Calling it
/// twice keeps the first subscriber (tests start several apps).
pub fn init(filter: &str) -> Result<(), LogFilterError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|err| LogFilterError {
        filter: filter.to_string(),
        reason: err.to_string(),
    })?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: log files and CI output stay
        // plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    Ok(())
}
