//! `switchyard-search-bench`: how long a search takes over `--jobs` jobs
//! (1,000,000 by default) in `--queues` queues on the embedded backend —
//! what `/search?q=` and `/api/search` do (`server::search::search`): the
//! id lookup when the text reads as an id, then the text search through
//! the FTS5 index.
//!
//! Fills a fresh SQLite file (deleted afterwards) with jobs in bulk (a
//! tenth of one queue failed, for `error:`), indexes them all as the
//! server's indexer does (timed: the index's build rate), then times
//! `--reads` searches of each shape. Prints one JSON line per shape and a
//! markdown table. A benchmark, not a test.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use clap::Parser;
use coord::queue::sql::SqlBackend;
use coord::queue::{JobError, NewJob, Outcome, OutcomeResult, QueueName, Queues};
use coord::time::now_ms;
use rand::{RngExt, SeedableRng};
use serde_json::json;

/// Search over many jobs on the embedded backend.
#[derive(Debug, Parser)]
#[command(name = "switchyard-search-bench", version)]
struct Args {
    /// Jobs in all
    #[arg(long, default_value_t = 1_000_000)]
    jobs: u64,
    /// Queues they are spread over
    #[arg(long, default_value_t = 20)]
    queues: u64,
    /// Timed searches per shape
    #[arg(long, default_value_t = 200)]
    reads: usize,
}

/// Jobs per bulk enqueue of the fill.
const BATCH: u64 = 10_000;
const NAMES: [&str; 4] = [
    "send-welcome",
    "send-invoice",
    "resize-image",
    "deliver-hook",
];
const PLANS: [&str; 3] = ["pro", "free", "team"];

fn queue(i: u64) -> anyhow::Result<QueueName> {
    Ok(QueueName::new(format!("q{i:02}"))?)
}

async fn fill(queues: &Queues, args: &Args) -> anyhow::Result<()> {
    let mut done = 0;
    while done < args.jobs {
        let n = BATCH.min(args.jobs - done);
        let q = queue((done / BATCH) % args.queues)?;
        let jobs = (done..done + n)
            .map(|i| {
                NewJob::new(
                    NAMES[(i % 4) as usize],
                    json!({
                        "to": format!("user{i}@example.com"),
                        "user": { "id": i, "plan": PLANS[(i % 3) as usize] },
                        "note": "a payload of a realistic size, with a few words in it",
                    }),
                )
            })
            .collect();
        queues.enqueue_bulk(&q, jobs).await?;
        done += n;
    }
    // A tenth of the first queue's newest jobs fail, for `error:`.
    let q = queue(0)?;
    let lease = Duration::from_secs(300);
    let claimed = queues
        .backend()
        .step(
            &q,
            Vec::new(),
            (args.jobs / args.queues / 10).min(10_000) as usize,
            lease,
        )
        .await?
        .claimed;
    let now = now_ms();
    let outcomes = claimed
        .iter()
        .enumerate()
        .map(|(i, job)| Outcome {
            job_id: job.id.clone(),
            lease_token: job.lease_token.clone().unwrap_or_default(),
            started_at: now,
            finished_at: now,
            result: OutcomeResult::Failed {
                error: JobError::fatal(if i % 2 == 0 {
                    "upstream timeout after 30 s"
                } else {
                    "connection refused"
                }),
                retry_delay_ms: 0,
            },
        })
        .collect();
    queues.backend().step(&q, outcomes, 0, lease).await?;
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The shapes searched: a name, and the query text for a random draw.
type Shape = (
    &'static str,
    Box<dyn Fn(&mut rand::rngs::StdRng, &Args) -> String>,
);

fn shapes() -> Vec<Shape> {
    vec![
        (
            "job id (every queue)",
            Box::new(|rng, a| rng.random_range(1..=a.jobs / a.queues).to_string()),
        ),
        (
            "data.user.id:<n> (one match)",
            Box::new(|rng, a| format!("data.user.id:{}", rng.random_range(0..a.jobs))),
        ),
        (
            "a rare word (a prefix)",
            Box::new(|rng, a| format!("user{}", rng.random_range(0..a.jobs))),
        ),
        ("a word in every job", Box::new(|_, _| "example".to_owned())),
        (
            "name: and queue:",
            Box::new(|rng, a| {
                format!(
                    "name:send-invoice queue:q{:02}",
                    rng.random_range(0..a.queues)
                )
            }),
        ),
        (
            "data.user.plan:pro state:waiting",
            Box::new(|_, _| "data.user.plan:pro state:waiting".to_owned()),
        ),
        (
            "error: and state: (no text)",
            Box::new(|_, _| "error:timeout state:failed".to_owned()),
        ),
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.jobs >= args.queues && args.queues > 0 && args.reads > 0,
        "--jobs must be at least --queues, and both and --reads positive"
    );
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path = std::env::temp_dir().join(format!("bench-search-{}-{nanos}.db", std::process::id()));
    let text = path.to_str().context("temp path is not UTF-8")?.to_owned();
    let result = run(&args, &text).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{text}{suffix}"));
    }
    result
}

async fn run(args: &Args, path: &str) -> anyhow::Result<()> {
    let queues = Queues::new(Arc::new(SqlBackend::open(path).await?));
    let started = Instant::now();
    fill(&queues, args).await?;
    eprintln!(
        "# fill: {} jobs in {:.1} s",
        args.jobs,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut indexed = 0;
    loop {
        // The server's indexer takes 1,000 a batch; bigger ones fill faster.
        let progress = queues.index_search(10_000).await?;
        indexed += progress.indexed;
        if progress.pending == 0 {
            break;
        }
    }
    let index_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "# index: {indexed} jobs in {index_secs:.1} s ({:.0} jobs/s)",
        indexed as f64 / index_secs
    );
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut rows = Vec::new();
    let mut all = Vec::new();
    for (name, draw) in shapes() {
        let mut ms = Vec::with_capacity(args.reads);
        let mut partial = 0;
        let mut hits = 0;
        for _ in 0..args.reads {
            let text = draw(&mut rng, args);
            let started = Instant::now();
            let outcome = server::search::search(&queues, &text)
                .await
                .map_err(|e| anyhow::anyhow!("{text}: {}", e.message()))?;
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
            hits += outcome.result.hits.len();
            if !outcome.result.complete {
                partial += 1;
            }
        }
        all.extend_from_slice(&ms);
        ms.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&ms, 50.0), percentile(&ms, 99.0));
        println!(
            "{}",
            json!({ "shape": name, "jobs": args.jobs, "queues": args.queues, "reads": args.reads,
                    "p50_ms": p50, "p99_ms": p99, "mean_hits": hits as f64 / args.reads as f64,
                    "partial": partial })
        );
        rows.push((name, p50, p99, hits as f64 / args.reads as f64, partial));
    }
    all.sort_by(f64::total_cmp);
    println!();
    println!(
        "{} jobs in {} queues; FTS index built at {:.0} jobs/s; database {:.0} MB",
        args.jobs,
        args.queues,
        indexed as f64 / index_secs,
        size as f64 / 1e6
    );
    println!();
    println!("| search | p50 ms | p99 ms | hits (mean) | partial |");
    println!("|---|---:|---:|---:|---:|");
    for (name, p50, p99, hits, partial) in rows {
        println!(
            "| {name} | {p50:.1} | {p99:.1} | {hits:.1} | {partial}/{} |",
            args.reads
        );
    }
    println!(
        "| **all shapes** | {:.1} | {:.1} | | |",
        percentile(&all, 50.0),
        percentile(&all, 99.0)
    );
    Ok(())
}
