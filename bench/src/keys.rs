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

/// The plain URL of every node a URL names: the seeds of a
/// `redis+cluster://h:p,h:p` URL, or the URL itself.
pub fn nodes(url: &str) -> Vec<String> {
    match url.strip_prefix("redis+cluster://") {
        Some(hosts) => hosts
            .trim_end_matches('/')
            .split(',')
            .map(|h| format!("redis://{h}"))
            .collect(),
        None => vec![url.to_owned()],
    }
}

/// Deletes every key under `prefix:` with SCAN and `removal`; returns how
/// many went. On a cluster URL every master named is scanned (replicas
/// refuse writes and are skipped) and keys go one per command, since a
/// multi-key command may not cross slots.
pub async fn delete_prefix(url: &str, prefix: &str, removal: Removal) -> anyhow::Result<u64> {
    ensure!(
        !prefix.contains(['*', '?', '[', ']', '\\']),
        "prefix {prefix:?} holds glob characters; delete its keys by hand"
    );
    let cluster = url.starts_with("redis+cluster://");
    let pattern = format!("{prefix}:*");
    let command = match removal {
        Removal::Del => "DEL",
        Removal::Unlink => "UNLINK",
    };
    let mut removed = 0u64;
    for node in nodes(url) {
        let client = redis::Client::open(node.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        if cluster {
            let role: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut conn)
                .await?;
            if !role.lines().any(|l| l.trim() == "role:master") {
                continue;
            }
        }
        let mut cursor: u64 = 0;
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
                let mut pipe = redis::pipe();
                if cluster {
                    for key in &keys {
                        pipe.cmd(command).arg(key);
                    }
                } else {
                    pipe.cmd(command).arg(&keys);
                }
                let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
                removed += counts.iter().sum::<u64>();
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(removed)
}
