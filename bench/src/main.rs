//! `switchyard-bench`: queue throughput of Switchyard's two backends.
//!
//! For each backend and each run it measures, on a fresh key prefix (Redis)
//! or a fresh SQLite file (embedded) that is deleted afterwards:
//!
//! - `enqueue_single`: `--concurrency` producer tasks each adding one job at
//!   a time until `--jobs` jobs are enqueued;
//! - `enqueue_bulk`: `--jobs` jobs added in batches of `--batch` (1000);
//! - `process`: with `--jobs` jobs waiting, one worker with `--concurrency`
//!   slots and a no-op handler, timed until the worker has recorded
//!   `--jobs` completions (its own counter, read every 1 ms, as the BullMQ
//!   bench counts its worker's `completed` events); the queue's counts are
//!   checked afterwards.
//!
//! Each measurement is printed as one JSON line on stdout as it is taken,
//! followed by a markdown table (median and every run). Progress goes to
//! stderr. `bench/run` runs this next to the BullMQ peer in
//! `bench/bullmq/` and merges both outputs with `--summarize`.
//!
//! `--heartbeats N` adds the registry writes of N workers (synthetic
//! reports at the default 5 s interval, through the backend's
//! `worker_heartbeat`) for the whole of each run, so that their cost to the
//! throughput can be read against a run without them, and reports the
//! heartbeats' own latency (one JSON line per run, `worker_heartbeat`).
//!
//! This is a benchmark, not a test: speed goals live here and in
//! `docs/PERFORMANCE.md`, never in the timed test suite.

mod heartbeats;
mod keys;
mod probe;
mod report;
// Percentiles by nearest rank, for the heartbeats' latency.
#[allow(dead_code)]
#[path = "dashboard/stats.rs"]
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use coord::queue::redis::RedisBackend;
use coord::queue::sql::SqlBackend;
use coord::queue::workers::DEFAULT_WORKER_HEARTBEAT;
use coord::queue::{NewJob, QueueBackend, QueueName, Queues};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::heartbeats::{Beats, Heartbeats};
use crate::probe::Probe;
use crate::report::{ENQUEUE_BULK, ENQUEUE_SINGLE, Measurement, PROCESS};

/// How often the process measurement looks at the completed count.
const POLL: Duration = Duration::from_millis(1);
/// A process measurement that completes no job for this long has hung.
const NO_PROGRESS_LIMIT: Duration = Duration::from_secs(60);
/// Grace period for the worker's shutdown after a measurement.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Redis,
    Embedded,
    All,
}

/// One of the three measurements, for `--measure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measure {
    Single,
    Bulk,
    Process,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Redis,
    Embedded,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Embedded => "embedded",
        }
    }
}

/// Queue throughput benchmark of Switchyard (Redis and embedded backends).
#[derive(Debug, Parser)]
#[command(name = "switchyard-bench", version)]
struct Args {
    /// Which backend to measure.
    #[arg(long, value_enum, default_value = "all")]
    backend: Which,
    /// Jobs per measurement.
    #[arg(long, default_value_t = 20_000)]
    jobs: u64,
    /// Producer tasks for the single enqueue, worker slots for processing.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Redis URL for the Redis backend.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Runs per backend; the table shows their median and each run.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Jobs per call in the bulk enqueue (at most 10,000).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Which measurements to take (comma-separated); all three by default.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "single,bulk,process"
    )]
    measure: Vec<Measure>,
    /// Also report, on stderr, the worker's step round trips: their latency
    /// and how many outcomes and claims each carried.
    #[arg(long)]
    probe: bool,
    /// Make every Nth job of the process measurement fail for good (0:
    /// none), with reasons of ten error groups, to measure what failures
    /// cost (error-group upkeep included).
    #[arg(long, default_value_t = 0)]
    fail_every: u64,
    /// Diagnostic: split the process measurement's concurrency over this
    /// many workers (the benchmark proper uses one).
    #[arg(long, default_value_t = 1, hide = true)]
    workers: usize,
    /// Synthetic workers heartbeating into the registry during every run
    /// (one write per worker every 5 s), to measure what the registry's
    /// writes cost the throughput; 0: none.
    #[arg(long, default_value_t = 0)]
    heartbeats: usize,
    /// Measure nothing: read the JSON lines of earlier runs (of this and of
    /// bench/bullmq/bench.mjs) from these files and print one table.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    summarize: Vec<PathBuf>,
}

/// One run's backend, with what is needed to delete its data afterwards.
struct Env {
    kind: Kind,
    workers: usize,
    queues: Queues,
    probe: Option<Arc<Probe>>,
    heartbeats: Option<Heartbeats>,
    cleanup: Cleanup,
}

enum Cleanup {
    Redis { url: String, prefix: String },
    Sqlite { path: PathBuf },
}

fn unique(run: u32) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("swbench-{}-{nanos}-{run}", std::process::id())
}

impl Env {
    async fn open(kind: Kind, args: &Args, run: u32) -> anyhow::Result<Self> {
        let name = unique(run);
        let (backend, cleanup): (Arc<dyn QueueBackend>, Cleanup) = match kind {
            Kind::Redis => {
                let backend = RedisBackend::connect(&args.redis, &name)
                    .await
                    .with_context(|| format!("connecting to Redis at {}", args.redis))?;
                (
                    Arc::new(backend),
                    Cleanup::Redis {
                        url: args.redis.clone(),
                        prefix: name,
                    },
                )
            }
            Kind::Embedded => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                let text = path.to_str().context("temp path is not UTF-8")?;
                let backend = SqlBackend::open(text)
                    .await
                    .with_context(|| format!("opening SQLite file {}", path.display()))?;
                (Arc::new(backend), Cleanup::Sqlite { path })
            }
        };
        let heartbeats = if args.heartbeats > 0 {
            let beats = Heartbeats::start(
                backend.clone(),
                args.heartbeats,
                &QueueName::new("bench-process")?,
            )?;
            // A worker's first beat inserts its entry, every later one
            // updates it: measure the steady state.
            eprintln!(
                "# {} synthetic workers registering ({} s)",
                args.heartbeats,
                DEFAULT_WORKER_HEARTBEAT.as_secs()
            );
            tokio::time::sleep(DEFAULT_WORKER_HEARTBEAT).await;
            beats.forget();
            Some(beats)
        } else {
            None
        };
        let (backend, probe) = if args.probe {
            let probe = Arc::new(Probe::new(backend));
            (probe.clone() as Arc<dyn QueueBackend>, Some(probe))
        } else {
            (backend, None)
        };
        Ok(Self {
            kind,
            workers: args.workers,
            queues: Queues::new(backend),
            probe,
            heartbeats,
            cleanup,
        })
    }

    /// Deletes everything the run wrote. Consumes the env so that the
    /// backend (its connections or pool) is dropped first.
    async fn cleanup(self) -> anyhow::Result<()> {
        let Env {
            queues,
            probe,
            heartbeats,
            cleanup,
            ..
        } = self;
        if let Some(h) = heartbeats {
            h.stop().await;
        }
        drop(probe);
        drop(queues);
        match cleanup {
            Cleanup::Redis { url, prefix } => {
                let removed = delete_prefix(&url, &prefix).await?;
                eprintln!("# cleanup: deleted {removed} Redis keys under {prefix}:");
            }
            Cleanup::Sqlite { path } => {
                // Give the pool a moment to close its connections.
                tokio::time::sleep(Duration::from_millis(50)).await;
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    match std::fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(e).with_context(|| format!("removing {p:?}"));
                        }
                    }
                }
                eprintln!("# cleanup: removed {}", path.display());
            }
        }
        Ok(())
    }
}

/// Deletes every key under `prefix:` (DEL, not UNLINK: memory is freed
/// here rather than by a background thread racing the next run for the two
/// cores); returns how many.
async fn delete_prefix(url: &str, prefix: &str) -> anyhow::Result<u64> {
    let removed = keys::delete_prefix(url, prefix, keys::Removal::Del).await?;
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    // Should the server free lazily anyway (lazyfree-lazy-user-del), wait
    // for that to finish before the next run starts.
    let settle = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await?;
        let pending = info
            .lines()
            .find_map(|l| l.trim().strip_prefix("lazyfree_pending_objects:"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if pending == 0 || Instant::now() >= settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(removed)
}

/// CPU time (user + system) this process has used, from /proc (Linux).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the
    // state, field 3; utime and stime are fields 14 and 15, in clock ticks.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks / 100.0)
}

/// Redis's own accounting (`INFO commandstats` and `INFO cpu`), for
/// `--probe`: how much server time the scripts took. Covers every client
/// of the server, so other users of a shared Redis show up too.
struct RedisStats {
    /// Command name to (calls, microseconds).
    commands: std::collections::HashMap<String, (u64, u64)>,
    cpu_seconds: f64,
}

impl RedisStats {
    async fn snapshot(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let text: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await?;
        let mut commands = std::collections::HashMap::new();
        for line in text.lines() {
            let Some((name, rest)) = line
                .trim()
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let field = |key: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(key))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            commands.insert(name.to_string(), (field("calls="), field("usec=")));
        }
        let cpu: String = redis::cmd("INFO").arg("cpu").query_async(&mut conn).await?;
        let cpu_seconds = cpu
            .lines()
            .filter_map(|l| {
                let (k, v) = l.trim().split_once(':')?;
                matches!(k, "used_cpu_user" | "used_cpu_sys")
                    .then(|| v.parse::<f64>().ok())
                    .flatten()
            })
            .sum();
        Ok(Self {
            commands,
            cpu_seconds,
        })
    }

    /// What happened since `before`: server CPU use over `wall` and the
    /// commands that took the most server time.
    fn since(&self, before: &RedisStats, wall: Duration) -> String {
        let mut rows: Vec<(String, u64, u64)> = self
            .commands
            .iter()
            .map(|(name, &(calls, usec))| {
                let (c0, u0) = before.commands.get(name).copied().unwrap_or((0, 0));
                (
                    name.clone(),
                    calls.saturating_sub(c0),
                    usec.saturating_sub(u0),
                )
            })
            .filter(|(_, calls, _)| *calls > 0)
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.2));
        let cpu = self.cpu_seconds - before.cpu_seconds;
        let top = rows
            .iter()
            .take(6)
            .map(|(name, calls, usec)| {
                format!(
                    "{name} {calls} calls {:.1} ms ({:.1} us/call)",
                    *usec as f64 / 1000.0,
                    *usec as f64 / *calls as f64
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "cpu {:.2} s = {:.0}% of one core over {:.2} s | {top}",
            cpu,
            100.0 * cpu / wall.as_secs_f64().max(1e-9),
            wall.as_secs_f64()
        )
    }
}

fn job(i: u64) -> NewJob {
    NewJob::new("noop", json!({ "i": i }))
}

/// Reasons of the failing jobs: ten groups, each reason with its job's
/// number, as real failures carry ids.
const FAILURES: [&str; 10] = [
    "card declined for order",
    "SMTP 421 try again later for message",
    "upstream 503 for tenant",
    "timeout after 30000 ms for request",
    "invalid address for customer",
    "quota exceeded for account",
    "connection reset by peer for batch",
    "duplicate key for invoice",
    "rate limited for user",
    "missing field 'email' for record",
];

/// What the benchmark's handler answers for a job: a fatal failure for
/// every `fail_every`th one, success otherwise.
fn outcome(data: &Value, fail_every: u64) -> Result<Value, coord::queue::JobError> {
    let i = data.get("i").and_then(Value::as_u64).unwrap_or(1);
    if fail_every > 0 && i.is_multiple_of(fail_every) {
        let reason = FAILURES[(i / fail_every % 10) as usize];
        return Err(coord::queue::JobError::fatal(format!("{reason} {i}")));
    }
    Ok(Value::Null)
}

/// `producers` tasks each enqueueing one job at a time until `jobs` are in.
async fn enqueue_single(
    queues: &Queues,
    queue: &QueueName,
    jobs: u64,
    producers: usize,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..producers {
        let queues = queues.clone();
        let queue = queue.clone();
        let next = next.clone();
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs {
                    return Ok::<_, anyhow::Error>(());
                }
                queues.enqueue(&queue, job(i)).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("producer task panicked")??;
    }
    Ok(started.elapsed())
}

/// `jobs` jobs in calls of `batch`.
async fn enqueue_bulk(
    queues: &Queues,
    queue: &QueueName,
    jobs: u64,
    batch: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut i = 0u64;
    while i < jobs {
        let end = (i + batch as u64).min(jobs);
        let ids = queues
            .enqueue_bulk(queue, (i..end).map(job).collect())
            .await?;
        ensure!(
            ids.len() as u64 == end - i,
            "bulk enqueue returned {} ids for {} jobs",
            ids.len(),
            end - i
        );
        i = end;
    }
    Ok(started.elapsed())
}

/// With `jobs` waiting, one worker of `concurrency` slots and a no-op
/// handler, until the workers have recorded `jobs` completions.
async fn process(
    env: &Env,
    queue: &QueueName,
    args: &Args,
    fail_every: u64,
) -> anyhow::Result<Duration> {
    let (jobs, concurrency, batch) = (args.jobs, args.concurrency, args.batch);
    let failing = if fail_every == 0 {
        0
    } else {
        jobs.div_ceil(fail_every)
    };
    let queues = &env.queues;
    enqueue_bulk(queues, queue, jobs, batch).await?;
    let before = queues.counts(queue).await?;
    ensure!(
        before.waiting == jobs,
        "expected {jobs} waiting jobs before processing, found {}",
        before.waiting
    );
    let redis_before = match (&env.probe, &env.cleanup) {
        (Some(p), Cleanup::Redis { url, .. }) => {
            p.take();
            Some(RedisStats::snapshot(url).await?)
        }
        (Some(p), _) => {
            p.take();
            None
        }
        _ => None,
    };
    let cpu_before = own_cpu_seconds();
    let started = Instant::now();
    // `--workers` > 1 is a diagnostic: the same total concurrency split
    // over several workers, so that several steps are in flight at once.
    let mut workers = Vec::with_capacity(env.workers);
    for w in 0..env.workers {
        let share = concurrency / env.workers + usize::from(w < concurrency % env.workers);
        workers.push(
            queues
                .worker(queue.clone())
                .concurrency(share)
                .start(move |job| async move { outcome(&job.data, fail_every) })?,
        );
    }
    // Timed to the workers' own count of recorded completions, as the
    // BullMQ bench times to its worker's `completed` events: no Redis read
    // in the timed section, and no polling step added to the figure. The
    // queue's counts are checked afterwards.
    let mut last = 0u64;
    let mut last_progress = Instant::now();
    let outcome = loop {
        let stats: Vec<_> = workers.iter().map(|w| w.stats()).collect();
        let completed: u64 = stats.iter().map(|s| s.completed).sum();
        let failed: u64 = stats.iter().map(|s| s.failed).sum();
        if completed + failed >= jobs {
            break Ok(started.elapsed());
        }
        if failed > failing {
            break Err(anyhow::anyhow!(
                "{failed} jobs failed during the process measurement"
            ));
        }
        if completed > last {
            last = completed;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > NO_PROGRESS_LIMIT {
            break Err(anyhow::anyhow!(
                "no job completed for {} s ({last} of {jobs} done)",
                NO_PROGRESS_LIMIT.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    // Read the probes at the end of the timed section, before the
    // shutdown's own steps.
    if let (Some(p), Ok(wall)) = (&env.probe, &outcome) {
        let steps = p.take();
        eprintln!("# probe {}: {}", env.kind.as_str(), steps.summary(*wall));
        if let (Some(a), Some(b)) = (cpu_before, own_cpu_seconds()) {
            eprintln!(
                "# probe bench process: cpu {:.2} s = {:.0}% of one core over {:.2} s",
                b - a,
                100.0 * (b - a) / wall.as_secs_f64().max(1e-9),
                wall.as_secs_f64()
            );
        }
        if let (Some(before), Cleanup::Redis { url, .. }) = (&redis_before, &env.cleanup) {
            let after = RedisStats::snapshot(url).await?;
            eprintln!("# probe redis server: {}", after.since(before, *wall));
        }
    }
    let mut backend_errors = 0;
    for worker in workers {
        backend_errors += worker.shutdown(SHUTDOWN_GRACE).await.backend_errors;
    }
    if backend_errors > 0 {
        eprintln!("# warning: the worker saw {backend_errors} backend errors");
    }
    if outcome.is_ok() {
        let after = queues.counts(queue).await?;
        ensure!(
            after.completed == jobs - failing && after.failed == failing,
            "after processing: {} completed, {} failed, expected {} completed and {failing} failed",
            after.completed,
            after.failed,
            jobs - failing
        );
    }
    outcome
}

async fn run_once(env: &Env, args: &Args, run: u32) -> anyhow::Result<Vec<Measurement>> {
    let backend = env.kind.as_str();
    let mut out = Vec::new();
    let mut record = |measure: &str, concurrency: usize, took: Duration| {
        let m = Measurement::new(
            "switchyard",
            backend,
            measure,
            run,
            args.jobs,
            concurrency as u64,
            took.as_secs_f64(),
        );
        eprintln!(
            "# switchyard {backend} run {run}/{}: {measure} {:.0} jobs/s ({:.3} s)",
            args.runs, m.jobs_per_sec, m.seconds
        );
        println!("{}", m.json_line());
        out.push(m);
    };

    if args.measure.contains(&Measure::Single) {
        let single = QueueName::new("bench-single")?;
        let took = enqueue_single(&env.queues, &single, args.jobs, args.concurrency).await?;
        let waiting = env.queues.counts(&single).await?.waiting;
        ensure!(
            waiting == args.jobs,
            "single enqueue left {waiting} waiting jobs, expected {}",
            args.jobs
        );
        record(ENQUEUE_SINGLE, args.concurrency, took);
    }

    if args.measure.contains(&Measure::Bulk) {
        let bulk = QueueName::new("bench-bulk")?;
        let took = enqueue_bulk(&env.queues, &bulk, args.jobs, args.batch).await?;
        let waiting = env.queues.counts(&bulk).await?.waiting;
        ensure!(
            waiting == args.jobs,
            "bulk enqueue left {waiting} waiting jobs, expected {}",
            args.jobs
        );
        record(ENQUEUE_BULK, args.batch, took);
    }

    if args.measure.contains(&Measure::Process) {
        let queue = QueueName::new("bench-process")?;
        let took = process(env, &queue, args, args.fail_every).await?;
        record(PROCESS, args.concurrency, took);
    }
    Ok(out)
}

/// The heartbeats' latency over one run, as a JSON line (which
/// `--summarize` passes over) and on stderr.
fn report_beats(kind: Kind, run: u32, beats: &Beats) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let l = &beats.latency;
    eprintln!(
        "# heartbeats {} run {run}: {} workers, {} beats, {} errors; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        kind.as_str(),
        beats.workers,
        l.n,
        beats.errors,
        ms(l.p50),
        ms(l.p99),
        ms(l.max)
    );
    if let Some(e) = &beats.first_error {
        eprintln!(
            "# heartbeats {} run {run}: first failure: {e}",
            kind.as_str()
        );
    }
    println!(
        "{}",
        json!({ "system": "switchyard", "backend": kind.as_str(), "measure": "worker_heartbeat",
                "run": run, "workers": beats.workers, "beats": l.n, "errors": beats.errors,
                "p50_ms": ms(l.p50), "p95_ms": ms(l.p95), "p99_ms": ms(l.p99),
                "max_ms": ms(l.max) })
    );
}

fn summarize(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for f in files {
        let text = if f.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())?
        } else {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        };
        all.extend(report::parse_lines(&text));
    }
    ensure!(!all.is_empty(), "no measurements found in the given files");
    print!("{}", report::table(&all));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    if !args.summarize.is_empty() {
        return summarize(&args.summarize);
    }
    ensure!(args.jobs > 0, "--jobs must be positive");
    ensure!(args.runs > 0, "--runs must be positive");
    ensure!(
        (1..=10_000).contains(&args.concurrency),
        "--concurrency must be between 1 and 10000"
    );
    ensure!(
        (1..=args.concurrency).contains(&args.workers),
        "--workers must be between 1 and --concurrency"
    );
    ensure!(
        (1..=coord::queue::MAX_BATCH).contains(&args.batch),
        "--batch must be between 1 and {}",
        coord::queue::MAX_BATCH
    );
    let kinds: &[Kind] = match args.backend {
        Which::Redis => &[Kind::Redis],
        Which::Embedded => &[Kind::Embedded],
        Which::All => &[Kind::Redis, Kind::Embedded],
    };
    let mut all = Vec::new();
    for &kind in kinds {
        for run in 1..=args.runs {
            let mut env = Env::open(kind, &args, run).await?;
            let result = run_once(&env, &args, run).await;
            if let Some(h) = env.heartbeats.take() {
                report_beats(kind, run, &h.stop().await);
            }
            let cleaned = env.cleanup().await;
            match (result, cleaned) {
                (Ok(ms), Ok(())) => all.extend(ms),
                (Err(e), _) => {
                    bail!("switchyard {} run {run} failed: {e:#}", kind.as_str())
                }
                (Ok(_), Err(e)) => bail!("cleanup after {} run {run}: {e:#}", kind.as_str()),
            }
        }
    }
    println!();
    print!("{}", report::table(&all));
    Ok(())
}
