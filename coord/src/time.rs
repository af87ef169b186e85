//! Wall-clock helpers. Job timestamps are stored as milliseconds since the
//! Unix epoch so that the Redis and SQL backends record exactly the same
//! values and a dashboard can compare them across processes.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, the unit every stored timestamp uses.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
