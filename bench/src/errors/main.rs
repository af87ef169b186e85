//! `switchyard-errors-bench`: how long a queue's error-group list takes to
//! read with `--jobs` failed jobs (100,000 by default) in `--groups`
//! groups (1,000), on the Redis and the embedded backend: what the
//! `/queues/{q}/errors` page and its API read (every group's count, names
//! and sample, then the trend of the first page of 50).
//!
//! Each run fills a fresh queue (Redis prefix or SQLite file, deleted
//! afterwards): jobs enqueued in bulk, claimed and failed by worker steps
//! with reasons that fold into `--groups` groups (`failure kind <word> for
//! order <n>`). Only the reads are timed; prints one JSON line per backend
//! and run and a markdown table. A benchmark, not a test.
//!
//! `bullmq` does the same for a BullMQ queue: its failed jobs are written
//! in BullMQ 5's layout (a hash per job, the `failed` sorted set), the
//! server's monitor book is filled from them as when it finds the queue
//! (timed: `fill ms`), and the reads are those of `/bullmq/{q}/errors`.

#[path = "../keys.rs"]
mod keys;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use clap::Parser;
use coord::queue::redis::RedisBackend;
use coord::queue::sql::SqlBackend;
use coord::queue::{JobError, NewJob, Outcome, OutcomeResult, QueueBackend, QueueName, Queues};
use coord::time::now_ms;
use serde_json::json;

/// The error-group list of one queue with many failed jobs.
#[derive(Debug, Parser)]
#[command(name = "switchyard-errors-bench", version)]
struct Args {
    /// Failed jobs in the queue
    #[arg(long, default_value_t = 100_000)]
    jobs: u64,
    /// Error groups they fall in
    #[arg(long, default_value_t = 1_000)]
    groups: u64,
    /// Timed reads per backend and run
    #[arg(long, default_value_t = 200)]
    reads: usize,
    /// Runs
    #[arg(long, default_value_t = 2)]
    runs: usize,
    /// Redis for the Redis backend
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Which to measure, comma-separated: redis, embedded, bullmq
    #[arg(long, default_value = "redis,embedded,bullmq", value_delimiter = ',')]
    systems: Vec<String>,
}

const QUEUE: &str = "payments";
/// Jobs enqueued, claimed and failed per step of the fill.
const BATCH: u64 = 1_000;

fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-errors-{what}-{}-{nanos}", std::process::id())
}

/// A word of letters for group `g`: digits would be folded away.
fn word(mut g: u64) -> String {
    let mut out = String::new();
    loop {
        out.push(char::from(b'a' + (g % 26) as u8));
        g /= 26;
        if g == 0 {
            return out;
        }
    }
}

/// Fills the queue with `jobs` failed jobs in `groups` groups.
async fn fill(queues: &Queues, queue: &QueueName, args: &Args) -> anyhow::Result<()> {
    let backend = queues.backend();
    let lease = Duration::from_secs(300);
    let mut done = 0;
    while done < args.jobs {
        let n = BATCH.min(args.jobs - done);
        let jobs = (done..done + n)
            .map(|i| NewJob::new(format!("job-{}", i % 7), json!({ "order": i })))
            .collect();
        queues.enqueue_bulk(queue, jobs).await?;
        let claimed = backend
            .step(queue, Vec::new(), n as usize, lease)
            .await?
            .claimed;
        let now = now_ms();
        let outcomes = claimed
            .iter()
            .map(|job| {
                let i = job.data["order"].as_u64().unwrap_or(0);
                Outcome {
                    job_id: job.id.clone(),
                    lease_token: job.lease_token.clone().unwrap_or_default(),
                    started_at: now,
                    finished_at: now,
                    result: OutcomeResult::Failed {
                        error: JobError::fatal(format!(
                            "failure kind {} for order {}",
                            word(i % args.groups),
                            100_000 + i
                        )),
                        retry_delay_ms: 0,
                    },
                }
            })
            .collect();
        backend.step(queue, outcomes, 0, lease).await?;
        done += n;
    }
    let counts = queues.counts(queue).await?;
    ensure!(
        counts.failed == args.jobs,
        "{} failed after the fill",
        counts.failed
    );
    Ok(())
}

/// Times `reads` group-list reads as the page does them.
async fn measure(queues: &Queues, queue: &QueueName, args: &Args) -> anyhow::Result<Vec<f64>> {
    let query = server::errors::ErrorsParams::default()
        .parse()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut ms = Vec::with_capacity(args.reads);
    for _ in 0..args.reads {
        let started = Instant::now();
        let page = server::errors::queue_errors(queues, queue, query).await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            page.total == args.groups.min(args.jobs),
            "{} groups listed, expected {}",
            page.total,
            args.groups
        );
    }
    Ok(ms)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Writes `jobs` failed BullMQ jobs (BullMQ 5's layout, as its
/// `moveToFinished` leaves them) under `prefix`, 1,000 per pipeline.
async fn fill_bullmq(args: &Args, prefix: &str) -> anyhow::Result<()> {
    let mut conn = redis::Client::open(args.redis.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let base = format!("{prefix}:{QUEUE}");
    let now = now_ms() - args.jobs as i64;
    let _: () = redis::cmd("HSET")
        .arg(format!("{base}:meta"))
        .arg("opts.maxLenEvents")
        .arg(10_000)
        .query_async(&mut conn)
        .await?;
    let mut done = 0;
    while done < args.jobs {
        let n = BATCH.min(args.jobs - done);
        let mut pipe = redis::pipe();
        for i in done..done + n {
            let at = now + i as i64;
            let reason = format!(
                "failure kind {} for order {}",
                word(i % args.groups),
                100_000 + i
            );
            pipe.cmd("HSET")
                .arg(format!("{base}:{}", i + 1))
                .arg(&[
                    ("name", format!("job-{}", i % 7)),
                    ("data", format!("{{\"order\":{i}}}")),
                    ("opts", "{\"attempts\":1}".to_owned()),
                    ("timestamp", at.to_string()),
                    ("processedOn", at.to_string()),
                    ("finishedOn", at.to_string()),
                    ("atm", "1".to_owned()),
                    ("failedReason", reason),
                ])
                .ignore()
                .zadd(format!("{base}:failed"), i + 1, at)
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await?;
        done += n;
    }
    Ok(())
}

/// The BullMQ run: the book filled as the monitor fills it (timed), then
/// the page's reads; (fill ms, read ms).
async fn run_bullmq(args: &Args, prefix: &str) -> anyhow::Result<(f64, Vec<f64>)> {
    fill_bullmq(args, prefix).await?;
    let client = coord::bullmq::BullMq::connect(&args.redis, prefix).await?;
    let counts = client.counts(QUEUE).await?;
    ensure!(
        counts.failed == args.jobs,
        "{} failed after the fill",
        counts.failed
    );
    let books = server::bullmq::BullGroups::default();
    let listed = std::collections::BTreeMap::from([(QUEUE.to_owned(), counts)]);
    let started = Instant::now();
    let pending = books.keep(&client, &listed).await;
    let fill_ms = started.elapsed().as_secs_f64() * 1000.0;
    ensure!(!pending, "the book was not filled in one round");
    let query = server::errors::ErrorsParams::default()
        .parse()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let held = (server::bullmq::groups::PER_QUEUE as u64).min(args.jobs);
    let mut ms = Vec::with_capacity(args.reads);
    for _ in 0..args.reads {
        let started = Instant::now();
        let page = server::errors::bull_queue_errors(&books, QUEUE, query)
            .context("the queue has a book")?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            page.failed == held,
            "{} failed jobs grouped, expected {held}",
            page.failed
        );
    }
    Ok((fill_ms, ms))
}

async fn run(args: &Args, backend: Arc<dyn QueueBackend>) -> anyhow::Result<Vec<f64>> {
    let queues = Queues::new(backend);
    let queue = QueueName::new(QUEUE)?;
    let started = Instant::now();
    fill(&queues, &queue, args).await?;
    eprintln!("# fill: {:.1} s", started.elapsed().as_secs_f64());
    measure(&queues, &queue, args).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.jobs > 0 && args.groups > 0 && args.reads > 0 && args.runs > 0,
        "--jobs, --groups, --reads and --runs must be positive"
    );
    let mut rows = Vec::new();
    for run_no in 1..=args.runs {
        for system in args.systems.iter().map(String::as_str) {
            let mut fill_ms = None;
            eprintln!(
                "# run {run_no}: {system}, {} failed jobs in {} groups",
                args.jobs, args.groups
            );
            let mut ms = match system {
                "redis" => {
                    let prefix = unique("redis");
                    let backend = RedisBackend::connect(&args.redis, &prefix).await?;
                    let ms = run(&args, Arc::new(backend)).await;
                    keys::delete_prefix(&args.redis, &prefix, keys::Removal::Del).await?;
                    ms?
                }
                "bullmq" => {
                    let prefix = unique("bullmq");
                    let ran = run_bullmq(&args, &prefix).await;
                    keys::delete_prefix(&args.redis, &prefix, keys::Removal::Del).await?;
                    let (fill, ms) = ran?;
                    fill_ms = Some(fill);
                    ms
                }
                "embedded" => {
                    let path = std::env::temp_dir().join(format!("{}.db", unique("sqlite")));
                    let text = path.to_str().context("temp path is not UTF-8")?.to_owned();
                    let ms = match SqlBackend::open(&text).await {
                        Ok(backend) => run(&args, Arc::new(backend)).await,
                        Err(err) => Err(err.into()),
                    };
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{text}{suffix}"));
                    }
                    ms?
                }
                other => anyhow::bail!("unknown system {other:?} (redis, embedded or bullmq)"),
            };
            ms.sort_by(f64::total_cmp);
            let (p50, p99, max) = (
                percentile(&ms, 50.0),
                percentile(&ms, 99.0),
                percentile(&ms, 100.0),
            );
            println!(
                "{}",
                json!({ "system": system, "run": run_no, "jobs": args.jobs, "groups": args.groups,
                        "reads": args.reads, "p50_ms": p50, "p99_ms": p99, "max_ms": max,
                        "fill_ms": fill_ms })
            );
            rows.push((system, run_no, p50, p99, max, fill_ms));
        }
    }
    println!();
    println!("| backend | run | failed jobs | groups | p50 ms | p99 ms | max ms | fill ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (system, run_no, p50, p99, max, fill) in rows {
        let fill = fill.map_or_else(|| "–".to_owned(), |f| format!("{f:.0}"));
        println!(
            "| {system} | {run_no} | {} | {} | {p50:.1} | {p99:.1} | {max:.1} | {fill} |",
            args.jobs, args.groups
        );
    }
    Ok(())
}
