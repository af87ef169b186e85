//! Cleaning up after a benchmark run: every run works under a fresh key
//! prefix and deletes it at the end, shared by the benchmark binaries.

use anyhow::ensure;

/// How the keys go: `Del` frees memory at once (so the next run does not
/// race a background thread for the cores), `Unlink` returns at once (for
/// the million-key runs, where DEL would block the server for seconds).
#[derive(Debug, Clone, Copy)]
// Each binary includes this file and uses one of the two.
#[allow(dead_code)]
pub enum Removal {
    /// `DEL`.
    Del,
    /// `UNLINK`.
    Unlink,
}

/// Deletes every key under `prefix:` with SCAN and `removal`; returns how
/// many went.
pub async fn delete_prefix(url: &str, prefix: &str, removal: Removal) -> anyhow::Result<u64> {
    ensure!(
        !prefix.contains(['*', '?', '[', ']', '\\']),
        "prefix {prefix:?} holds glob characters; delete its keys by hand"
    );
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{prefix}:*");
    let command = match removal {
        Removal::Del => "DEL",
        Removal::Unlink => "UNLINK",
    };
    let mut cursor: u64 = 0;
    let mut removed = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd(command)
                .arg(&keys)
                .query_async(&mut conn)
                .await?;
            removed += n;
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}
