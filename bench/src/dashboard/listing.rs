//! `--measure listing`: what one job listing costs the server when jobs
//! are big. The goal (issue 16): with 300 jobs of about 1 MB, a
//! `limit=500` listing (API and page), one at a time and three at once,
//! grows the server's peak RSS by less than 50 MB.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use coord::queue::{NewJob, QueueName, Queues};
use serde_json::json;

use crate::Server;
use crate::http;
use crate::procfs::{Memory, mib};

/// The queue of big jobs.
pub const QUEUE: &str = "bigq";

/// Fills [`QUEUE`] with `jobs` jobs of `bytes` bytes of data each (skipped
/// when it already holds them, from a `--keep` run).
pub async fn fill(queues: &Queues, jobs: u64, bytes: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let queue = QueueName::new(QUEUE)?;
    if queues.counts(&queue).await.is_ok_and(|c| c.waiting >= jobs) {
        return Ok(started.elapsed());
    }
    let blob = "x".repeat(bytes);
    let mut left = jobs;
    while left > 0 {
        let n = left.min(20);
        let batch = (0..n)
            .map(|i| NewJob::new("big", json!({ "i": i, "blob": blob })))
            .collect();
        queues.enqueue_bulk(&queue, batch).await?;
        left -= n;
    }
    Ok(started.elapsed())
}

/// Resets the process's peak RSS to its current RSS (Linux
/// `clear_refs` 5), so that the next peak is this request's.
fn reset_peak(pid: u32) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("resetting the peak RSS of {pid} (needs the same user or root)"))
}

/// Runs `clients` concurrent GETs of `path`, `rounds` times; returns the
/// report rows (peak RSS growth per round, bytes per answer, time).
async fn measure(
    server: &Server,
    label: &str,
    path: &str,
    clients: usize,
    rounds: usize,
) -> anyhow::Result<String> {
    let mut growth = Vec::new();
    let mut bytes = 0;
    let mut took = Vec::new();
    for _ in 0..rounds {
        // Let the allocator settle between rounds.
        tokio::time::sleep(Duration::from_millis(300)).await;
        reset_peak(server.pid)?;
        let before = Memory::of(server.pid)?;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (addr, path) = (server.addr, path.to_string());
            tasks.spawn(async move {
                let mut body = Vec::new();
                http::get(addr, &path, &mut body).await.map(|f| f.bytes)
            });
        }
        while let Some(done) = tasks.join_next().await {
            bytes = done.context("a client panicked")??;
        }
        took.push(started.elapsed());
        let after = Memory::of(server.pid)?;
        growth.push(after.hwm_kib.saturating_sub(before.rss_kib));
    }
    let worst = growth.iter().copied().max().unwrap_or(0);
    let slowest = took.iter().copied().max().unwrap_or_default();
    Ok(format!(
        "| {label} | `{path}` | {clients} | {bytes} | {} | **{}** | {} | {:.0} |\n",
        growth
            .iter()
            .map(|g| mib(*g))
            .collect::<Vec<_>>()
            .join(", "),
        mib(worst),
        if worst < 50 * 1024 { "yes" } else { "**no**" },
        slowest.as_secs_f64() * 1000.0,
    ))
}

/// The round's report section, against a server started on the filled
/// queue.
pub async fn report(server: &Server, jobs: u64, bytes: usize) -> anyhow::Result<String> {
    let mut body = Vec::new();
    let page = format!("/queues/{QUEUE}?state=waiting&limit=500");
    http::get(server.addr, &page, &mut body).await?;
    ensure!(
        String::from_utf8_lossy(&body).contains("truncated"),
        "the page does not mark its jobs truncated"
    );
    let api = format!("/api/queues/{QUEUE}/jobs?state=waiting&limit=500");
    let mut rows = String::new();
    for clients in [1, 3] {
        rows += &measure(server, "API", &api, clients, 5).await?;
        rows += &measure(server, "page", &page, clients, 5).await?;
    }
    let idle = Memory::of(server.pid)?;
    Ok(format!(
        "{jobs} jobs of {} KB of data each in one queue on Redis; `--listing-value-bytes` at its default. Server RSS after the rounds: {} MiB.\n\n\
         | listing | path | clients at once | bytes per answer | peak RSS growth per round (MiB) | worst | < 50 MB | slowest round ms |\n|---|---|---:|---:|---|---:|---|---:|\n{rows}",
        bytes / 1024,
        mib(idle.rss_kib),
    ))
}
