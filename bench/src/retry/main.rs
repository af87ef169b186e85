//! `switchyard-retry-bench`: how long "Retry all failed" takes on
//! `--jobs` failed jobs (100,000 by default), next to BullMQ 5's own
//! `queue.retryJobs({ state: 'failed' })` on the same Redis in the same
//! run.
//!
//! Each run, on fresh key prefixes (and a fresh SQLite file) deleted
//! afterwards:
//!
//! - `bullmq/switchyard`: BullMQ jobs, failed by a real BullMQ worker
//!   (`bench/bullmq/retry.mjs fill`), retried by the code behind the
//!   dashboard's button (`BullMq::retry_all_failed` with the server's
//!   batch size);
//! - `bullmq/bullmq`: the same fill, retried by BullMQ itself
//!   (`retry.mjs retry`, timed inside Node around the one call);
//! - `native/redis` and `native/embedded`: Switchyard's own queue, jobs
//!   failed by a worker, retried by `Queues::retry_all_failed` with the
//!   server's batch size (what the hub's retry-all run calls).
//!
//! Only the retry is timed, never the fill. Prints one JSON line per
//! measurement and a markdown table of medians. A benchmark, not a test.

#[path = "../dashboard/fill.rs"]
mod fill;
#[path = "../keys.rs"]
mod keys;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use clap::Parser;
use coord::bullmq::BullMq;
use coord::queue::redis::RedisBackend;
use coord::queue::sql::SqlBackend;
use coord::queue::{QueueBackend, QueueName, Queues};
use serde_json::{Value, json};

/// Retry-all of many failed jobs: Switchyard (BullMQ and native queues)
/// next to BullMQ's own retryJobs.
#[derive(Debug, Parser)]
#[command(name = "switchyard-retry-bench", version)]
struct Args {
    /// Failed jobs per measurement
    #[arg(long, default_value_t = 100_000)]
    jobs: u64,
    /// Runs; the table shows each system's median
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Redis for every system
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
}

const QUEUE: &str = "mail";

fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-retry-{what}-{}-{nanos}", std::process::id())
}

/// `node bench/bullmq/retry.mjs …`, its one JSON line.
async fn node(script_dir: &Path, args: &[&str]) -> anyhow::Result<Value> {
    let output = tokio::process::Command::new("node")
        .arg(script_dir.join("retry.mjs"))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running node (is Node.js installed, and `npm ci` run in bench/bullmq?)")?;
    ensure!(output.status.success(), "retry.mjs {args:?} failed");
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim()).with_context(|| format!("retry.mjs printed {line:?}"))
}

/// BullMQ jobs failed by BullMQ, then retried by Switchyard or by BullMQ.
async fn bullmq_run(args: &Args, dir: &Path, by_switchyard: bool) -> anyhow::Result<Duration> {
    let prefix = unique("bull");
    let n = args.jobs.to_string();
    let outcome = async {
        node(dir, &["fill", &args.redis, &prefix, QUEUE, &n]).await?;
        settle().await;
        if by_switchyard {
            let client = BullMq::connect(&args.redis, &prefix).await?;
            let started = Instant::now();
            let retried = client
                .retry_all_failed(QUEUE, server::queues::RETRY_BATCH)
                .await?;
            let took = started.elapsed();
            ensure!(retried == args.jobs, "retried {retried} of {}", args.jobs);
            let counts = client.counts(QUEUE).await?;
            ensure!(
                counts.get(coord::bullmq::BullState::Failed) == 0,
                "{counts:?}"
            );
            Ok(took)
        } else {
            let result = node(dir, &["retry", &args.redis, &prefix, QUEUE]).await?;
            let seconds = result["seconds"].as_f64().context("no seconds")?;
            Ok(Duration::from_secs_f64(seconds))
        }
    }
    .await;
    keys::delete_prefix(&args.redis, &prefix, keys::Removal::Del).await?;
    outcome
}

/// Switchyard's own queue on `backend`: jobs failed by a worker, then
/// retried as the dashboard's button does.
async fn native_run(args: &Args, backend: Arc<dyn QueueBackend>) -> anyhow::Result<Duration> {
    let queues = Queues::new(backend);
    let queue = QueueName::new(QUEUE)?;
    // The same fill as the dashboard benchmark's: enqueued, then failed by
    // a worker, so each failed job carries its reason and history.
    let times = fill::fill(&queues, &queue, 0, args.jobs).await?;
    eprintln!(
        "# fill: enqueued in {:.1} s, failed in {:.1} s ({:.1} s waiting)",
        times.enqueue_failed.as_secs_f64(),
        times.fail.as_secs_f64(),
        times.enqueue_waiting.as_secs_f64()
    );
    settle().await;
    let started = Instant::now();
    let retried = queues
        .retry_all_failed(&queue, server::queues::RETRY_BATCH, |_| {})
        .await?;
    let took = started.elapsed();
    ensure!(retried == args.jobs, "retried {retried} of {}", args.jobs);
    Ok(took)
}

/// A pause between the fill and the timed retry, the same for every
/// system: after adding 100,000 keys Redis is still growing its keyspace
/// table step by step (incremental rehashing), which slows every lookup
/// until it ends. BullMQ's side would otherwise get that time for free
/// while its retry process starts.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.jobs > 0 && args.runs > 0,
        "--jobs and --runs must be positive"
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bullmq");
    let systems = [
        "bullmq/switchyard",
        "bullmq/bullmq",
        "native/redis",
        "native/embedded",
    ];
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
    for run in 1..=args.runs {
        for (i, system) in systems.iter().enumerate() {
            eprintln!("# run {run}: {system}, {} failed jobs", args.jobs);
            let took = match *system {
                "bullmq/switchyard" => bullmq_run(&args, &dir, true).await?,
                "bullmq/bullmq" => bullmq_run(&args, &dir, false).await?,
                "native/redis" => {
                    let prefix = unique("native");
                    let backend = RedisBackend::connect(&args.redis, &prefix).await?;
                    let took = native_run(&args, Arc::new(backend)).await;
                    keys::delete_prefix(&args.redis, &prefix, keys::Removal::Del).await?;
                    took?
                }
                _ => {
                    let path = std::env::temp_dir().join(format!("{}.db", unique("sqlite")));
                    let text = path.to_str().context("temp path is not UTF-8")?.to_owned();
                    let took = match SqlBackend::open(&text).await {
                        Ok(backend) => native_run(&args, Arc::new(backend)).await,
                        Err(err) => Err(err.into()),
                    };
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{text}{suffix}"));
                    }
                    took?
                }
            };
            let secs = took.as_secs_f64();
            println!(
                "{}",
                json!({ "system": system, "run": run, "jobs": args.jobs, "seconds": secs,
                        "jobs_per_sec": args.jobs as f64 / secs })
            );
            seconds[i].push(secs);
        }
    }
    println!();
    println!("| retry all failed | jobs | median s | jobs/s | vs BullMQ retryJobs | runs (s) |");
    println!("|---|---:|---:|---:|---:|---|");
    let bull = median(seconds[1].clone());
    for (system, runs) in systems.iter().zip(&seconds) {
        let m = median(runs.clone());
        let shown: Vec<String> = runs.iter().map(|s| format!("{s:.2}")).collect();
        println!(
            "| {system} | {} | {m:.2} | {:.0} | {:.2}× | {} |",
            args.jobs,
            args.jobs as f64 / m,
            bull / m,
            shown.join(", ")
        );
    }
    Ok(())
}
