//! `switchyard-schedules-bench`: how late repeatable jobs fire. With
//! `--schedules` interval schedules (1,000 by default) all ticking every
//! `--every-ms` (1 s) into one queue — every tick of every schedule at the
//! same instant, the worst burst a deployment of them makes — it runs
//! `--schedulers` schedulers (1; each on a backend handle of its own, as
//! separate processes would) for `--seconds` and reads back every job they
//! enqueued.
//!
//! Lateness is the job's created-at (the backend's clock) minus its tick,
//! for every tick after the schedulers started: ticks that fell due while
//! the schedules were being written are left out, their lateness is the
//! set-up's. Expected ticks are every schedule's ticks in the window;
//! `missing` are those with no job (a tick more than a second late is
//! skipped by design, so lateness shows up there too), `duplicates` the
//! fires beyond the first of one tick, counted from what each scheduler
//! was told it fired (a probe around its backend), over the whole run.
//!
//! On the embedded backend (a SQLite file in a fresh temp directory), on
//! Redis and on a Redis Cluster; each run works under a fresh key prefix
//! or directory, deleted afterwards. Prints one JSON line per backend and a
//! markdown table. A benchmark, not a test: the goal (p99 < 100 ms at
//! 1,000 schedules) is reported as met or missed, never enforced.
//!
//! `--measure read` measures instead what one read of every schedule
//! (`Queues::schedules()`) costs: the read the dashboard's live hub makes
//! every 2 s and every scheduler every 1 s. It writes `--schedules` idle
//! cron schedules (once a year, so nothing fires), then times `--reads`
//! sequential reads after one untimed, with the size of what a read
//! returns (as JSON) and its commands.

mod idle;
#[path = "../keys.rs"]
mod keys;
// A pass-through backend that records the fires each scheduler won.
#[allow(dead_code)]
#[path = "../probe.rs"]
mod probe;
// Percentiles by nearest rank, as the dashboard benchmark states its goals.
#[allow(dead_code)]
#[path = "../dashboard/stats.rs"]
mod stats;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use coord::queue::redis::RedisBackend;
use coord::queue::schedules::{MISSED_AFTER_MS, Schedule, ScheduleId};
use coord::queue::sql::SqlBackend;
use coord::queue::{JobState, MAX_PAGE, QueueBackend, QueueName, Queues};
use coord::time::now_ms;
use serde_json::json;

use crate::probe::Probe;
use crate::stats::Summary;

/// The goal for the p99 lateness at 1,000 schedules.
const GOAL_P99: Duration = Duration::from_millis(100);
/// After the window, how long the schedulers keep running so that the
/// window's last tick is fired (or, past this, skipped as missed).
const SETTLE: Duration = Duration::from_millis(MISSED_AFTER_MS as u64 + 500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Embedded,
    Redis,
    Cluster,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measure {
    /// Firing lateness of interval schedules.
    Lateness,
    /// The cost of one read of every schedule, with idle schedules.
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Embedded,
    Redis,
    Cluster,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Embedded => "embedded",
            Kind::Redis => "redis",
            Kind::Cluster => "cluster",
        }
    }
}

/// Firing lateness of many interval schedules.
#[derive(Debug, Parser)]
#[command(name = "switchyard-schedules-bench", version)]
struct Args {
    /// Which backend to measure.
    #[arg(long, value_enum, default_value = "all")]
    backend: Which,
    /// What to measure: firing lateness, or the cost of reading every
    /// schedule (idle ones, so nothing fires).
    #[arg(long, value_enum, default_value = "lateness")]
    measure: Measure,
    /// Timed reads of every schedule (`--measure read`).
    #[arg(long, default_value_t = 20)]
    reads: usize,
    /// Schedules, all into one queue: interval ones for lateness, idle
    /// cron ones for `--measure read`.
    #[arg(long, default_value_t = 1_000)]
    schedules: usize,
    /// Every schedule's interval (ms); its ticks fall on multiples of it.
    #[arg(long, default_value_t = 1_000)]
    every_ms: u64,
    /// Schedulers running at once, each on its own backend handle.
    #[arg(long, default_value_t = 1)]
    schedulers: usize,
    /// Length of the measured window (s).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Redis URL for the Redis backend.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Redis Cluster URL (`redis+cluster://h:p,h:p`) for the cluster
    /// backend; `scripts/cluster url` prints the local one.
    #[arg(long)]
    cluster: Option<String>,
}

/// What a run deletes afterwards.
enum Cleanup {
    Redis { url: String, prefix: String },
    Dir(PathBuf),
}

/// One backend's handles: the first writes and reads, each runs a
/// scheduler.
struct Target {
    kind: Kind,
    handles: Vec<Queues>,
    probes: Vec<Arc<Probe>>,
    cleanup: Cleanup,
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("swsched-{}-{nanos}", std::process::id())
}

impl Target {
    async fn open(kind: Kind, args: &Args) -> anyhow::Result<Self> {
        let name = unique();
        let mut backends: Vec<Arc<dyn QueueBackend>> = Vec::new();
        // A read needs no scheduler, only a handle to read through.
        let handles = match args.measure {
            Measure::Lateness => args.schedulers,
            Measure::Read => 1,
        };
        let cleanup = match kind {
            Kind::Embedded => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
                let path = dir.join("schedules.db");
                let text = path.to_str().context("temp path is not UTF-8")?;
                for _ in 0..handles {
                    let backend = SqlBackend::open(text)
                        .await
                        .with_context(|| format!("opening SQLite file {}", path.display()))?;
                    backends.push(Arc::new(backend));
                }
                Cleanup::Dir(dir)
            }
            Kind::Redis | Kind::Cluster => {
                let url = match kind {
                    Kind::Cluster => args
                        .cluster
                        .clone()
                        .context("--cluster URL is needed (scripts/cluster url prints it)")?,
                    _ => args.redis.clone(),
                };
                for _ in 0..handles {
                    let backend = RedisBackend::connect(&url, &name)
                        .await
                        .with_context(|| format!("connecting to {}", kind.as_str()))?;
                    backends.push(Arc::new(backend));
                }
                Cleanup::Redis { url, prefix: name }
            }
        };
        let probes: Vec<Arc<Probe>> = backends
            .into_iter()
            .map(|b| Arc::new(Probe::new(b)))
            .collect();
        let handles = probes
            .iter()
            .map(|p| Queues::new(p.clone() as Arc<dyn QueueBackend>))
            .collect();
        Ok(Self {
            kind,
            handles,
            probes,
            cleanup,
        })
    }

    /// Deletes everything the run wrote; the handles go first, so that no
    /// pool holds the SQLite file open.
    async fn cleanup(self) -> anyhow::Result<()> {
        drop(self.handles);
        drop(self.probes);
        match self.cleanup {
            Cleanup::Redis { url, prefix } => {
                let removed = keys::delete_prefix(&url, &prefix, keys::Removal::Del).await?;
                eprintln!("# cleanup: deleted {removed} keys under {prefix}:");
            }
            Cleanup::Dir(dir) => {
                // Give the pools a moment to close their connections.
                tokio::time::sleep(Duration::from_millis(50)).await;
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
                eprintln!("# cleanup: removed {}", dir.display());
            }
        }
        Ok(())
    }
}

/// One backend's figures.
struct Run {
    backend: &'static str,
    fired: u64,
    expected: u64,
    duplicates: u64,
    missing: u64,
    /// Fires won by each scheduler, over the whole run.
    shares: Vec<u64>,
    lateness: Summary,
}

/// The schedule and tick of a tick's job (`<schedule>:<tick ms>`).
fn tick_of(job_id: &str) -> Option<(&str, i64)> {
    let (id, tick) = job_id.rsplit_once(':')?;
    Some((id, tick.parse().ok()?))
}

/// Ticks of an interval anchored at the epoch in `(after, until]`.
fn ticks_between(after: i64, until: i64, every: i64) -> u64 {
    u64::try_from(until.div_euclid(every) - after.div_euclid(every)).unwrap_or(0)
}

async fn run(target: &Target, args: &Args) -> anyhow::Result<Run> {
    let q = &target.handles[0];
    let queue = QueueName::new("bench-schedules")?;
    let every = Duration::from_millis(args.every_ms);
    let writing = Instant::now();
    for i in 0..args.schedules {
        let id = ScheduleId::new(format!("s{i}"))?;
        q.upsert_schedule(Schedule::every(id, queue.clone(), "tick", every))
            .await?;
    }
    eprintln!(
        "# {}: {} schedules written in {:.2} s",
        target.kind.as_str(),
        args.schedules,
        writing.elapsed().as_secs_f64()
    );

    let started = now_ms();
    let until = started + i64::try_from(args.seconds * 1000)?;
    let schedulers: Vec<_> = target
        .handles
        .iter()
        .map(|h| h.scheduler().start())
        .collect();
    let window = Duration::from_millis(u64::try_from(until - started)?);
    tokio::time::sleep(window + SETTLE).await;
    for scheduler in schedulers {
        scheduler.shutdown().await;
    }

    let mut times_fired: HashMap<(ScheduleId, i64), u64> = HashMap::new();
    let mut shares = Vec::new();
    for probe in &target.probes {
        let fired = probe.take_fired();
        shares.push(fired.len() as u64);
        for key in fired {
            *times_fired.entry(key).or_default() += 1;
        }
    }
    let duplicates = times_fired.values().map(|n| n - 1).sum();

    let mut seen = HashSet::new();
    let mut lateness = Vec::new();
    let mut early = 0u64;
    let mut offset = 0;
    loop {
        let page = q.list(&queue, JobState::Waiting, offset, MAX_PAGE).await?;
        if page.jobs.is_empty() {
            break;
        }
        offset += page.jobs.len() as u64;
        for job in page.jobs {
            let (id, tick) = tick_of(job.id.as_str())
                .with_context(|| format!("job {} is not a tick's", job.id))?;
            if tick <= started || tick > until || !seen.insert((id.to_owned(), tick)) {
                continue;
            }
            let late = job.created_at - tick;
            if late < 0 {
                early += 1;
            }
            lateness.push(Duration::from_millis(u64::try_from(late).unwrap_or(0)));
        }
    }
    if early > 0 {
        eprintln!("# warning: {early} jobs were created before their tick (counted as 0 ms)");
    }
    let every_ms = i64::try_from(args.every_ms)?;
    let expected = args.schedules as u64 * ticks_between(started, until, every_ms);
    let fired = seen.len() as u64;
    Ok(Run {
        backend: target.kind.as_str(),
        fired,
        expected,
        duplicates,
        missing: expected.saturating_sub(fired),
        shares,
        lateness: Summary::of(&lateness),
    })
}

/// What one read of every schedule cost on one backend.
struct ReadCost {
    backend: &'static str,
    /// How long writing the idle schedules took.
    written: Duration,
    took: Summary,
    /// What one read returned, as JSON (`serde_json` of the states).
    json_bytes: usize,
    /// Commands one read sends.
    commands: usize,
    /// Round trips one read makes, one after the other.
    round_trips: usize,
}

/// Writes `--schedules` idle schedules, then times `--reads` reads of
/// every schedule after one untimed.
async fn read_cost(target: &Target, args: &Args) -> anyhow::Result<ReadCost> {
    let q = &target.handles[0];
    let written = idle::write(q, args.schedules).await?;
    eprintln!(
        "# {}: {} idle schedules written in {:.2} s",
        target.kind.as_str(),
        args.schedules,
        written.as_secs_f64()
    );
    let first = q.schedules().await?;
    ensure!(
        first.len() == args.schedules,
        "read {} schedules, wrote {}",
        first.len(),
        args.schedules
    );
    ensure!(
        first.iter().all(|s| s.last_run_at.is_none()),
        "an idle schedule fired"
    );
    let json_bytes = serde_json::to_vec(&first)?.len();
    let mut samples = Vec::with_capacity(args.reads);
    for _ in 0..args.reads {
        let started = Instant::now();
        let read = q.schedules().await?;
        samples.push(started.elapsed());
        ensure!(read.len() == args.schedules, "a read came back short");
    }
    // How each backend reads them (coord's `list`): one SELECT on SQLite;
    // on Redis an HGETALL of the index, then one pipeline of an HMGET per
    // schedule (per slot on a cluster: here all share one queue, one slot).
    let (commands, round_trips) = match target.kind {
        Kind::Embedded => (1, 1),
        Kind::Redis | Kind::Cluster => (1 + args.schedules, 2),
    };
    Ok(ReadCost {
        backend: target.kind.as_str(),
        written,
        took: Summary::of(&samples),
        json_bytes,
        commands,
        round_trips,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The JSON line of a lateness run.
fn lateness_line(r: &Run, args: &Args) -> serde_json::Value {
    if args.schedulers > 1 {
        eprintln!("# {}: fires won per scheduler {:?}", r.backend, r.shares);
    }
    let l = &r.lateness;
    json!({ "system": "switchyard", "backend": r.backend, "measure": "schedule_lateness",
            "schedules": args.schedules, "every_ms": args.every_ms,
            "schedulers": args.schedulers, "seconds": args.seconds,
            "fired": r.fired, "expected": r.expected, "duplicates": r.duplicates,
            "missing": r.missing, "fires_per_scheduler": r.shares,
            "p50_ms": ms(l.p50), "p95_ms": ms(l.p95), "p99_ms": ms(l.p99),
            "max_ms": ms(l.max) })
}

/// The JSON line of a read-cost run.
fn read_line(r: &ReadCost, args: &Args) -> serde_json::Value {
    let t = &r.took;
    json!({ "system": "switchyard", "backend": r.backend, "measure": "schedules_read",
            "schedules": args.schedules, "reads": t.n,
            "p50_ms": ms(t.p50), "p95_ms": ms(t.p95), "p99_ms": ms(t.p99),
            "max_ms": ms(t.max), "json_bytes": r.json_bytes, "commands": r.commands,
            "round_trips": r.round_trips, "write_s": r.written.as_secs_f64() })
}

fn lateness_table(runs: &[Run], args: &Args) {
    println!(
        "| backend | schedules | schedulers | fired | expected | duplicates | missing | p50 ms | p95 ms | p99 ms | max ms | p99 < {} ms |",
        GOAL_P99.as_millis()
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in runs {
        let l = &r.lateness;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            r.backend,
            args.schedules,
            args.schedulers,
            r.fired,
            r.expected,
            r.duplicates,
            r.missing,
            ms(l.p50),
            ms(l.p95),
            ms(l.p99),
            ms(l.max),
            if l.p99 < GOAL_P99 { "met" } else { "missed" }
        );
    }
}

fn read_table(reads: &[ReadCost], args: &Args) {
    println!(
        "| backend | schedules | reads | p50 ms | p95 ms | p99 ms | max ms | JSON bytes | commands | round trips |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in reads {
        let t = &r.took;
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            r.backend,
            args.schedules,
            t.n,
            ms(t.p50),
            ms(t.p95),
            ms(t.p99),
            ms(t.max),
            r.json_bytes,
            r.commands,
            r.round_trips
        );
    }
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
    ensure!(
        args.schedules > 0
            && args.schedulers > 0
            && args.seconds > 0
            && args.every_ms > 0
            && args.reads > 0,
        "--schedules, --schedulers, --seconds, --every-ms and --reads must be positive"
    );
    let kinds: &[Kind] = match args.backend {
        Which::Embedded => &[Kind::Embedded],
        Which::Redis => &[Kind::Redis],
        Which::Cluster => &[Kind::Cluster],
        Which::All => &[Kind::Embedded, Kind::Redis, Kind::Cluster],
    };
    let mut runs = Vec::new();
    let mut reads = Vec::new();
    for &kind in kinds {
        match args.measure {
            Measure::Lateness => eprintln!(
                "# {}: {} schedules every {} ms, {} scheduler(s), {} s",
                kind.as_str(),
                args.schedules,
                args.every_ms,
                args.schedulers,
                args.seconds
            ),
            Measure::Read => eprintln!(
                "# {}: {} reads of {} idle schedules",
                kind.as_str(),
                args.reads,
                args.schedules
            ),
        }
        let target = Target::open(kind, &args).await?;
        let result = match args.measure {
            Measure::Lateness => run(&target, &args).await.map(|r| {
                println!("{}", lateness_line(&r, &args));
                runs.push(r);
            }),
            Measure::Read => read_cost(&target, &args).await.map(|r| {
                println!("{}", read_line(&r, &args));
                reads.push(r);
            }),
        };
        let cleaned = target.cleanup().await;
        match (result, cleaned) {
            (Ok(()), Ok(())) => {}
            (Err(e), _) => bail!("{} run failed: {e:#}", kind.as_str()),
            (Ok(()), Err(e)) => bail!("cleanup after the {} run: {e:#}", kind.as_str()),
        }
    }
    println!();
    match args.measure {
        Measure::Lateness => lateness_table(&runs, &args),
        Measure::Read => read_table(&reads, &args),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_counted_in_a_half_open_window() {
        assert_eq!(ticks_between(1_500, 4_500, 1_000), 3);
        assert_eq!(ticks_between(1_000, 4_000, 1_000), 3);
        assert_eq!(ticks_between(999, 1_000, 1_000), 1);
        assert_eq!(ticks_between(1_000, 1_999, 1_000), 0);
    }

    #[test]
    fn a_tick_is_read_from_its_job_id() {
        assert_eq!(
            tick_of("s12:1700000000000"),
            Some(("s12", 1_700_000_000_000))
        );
        assert_eq!(tick_of("s12:now-17"), None);
        assert_eq!(tick_of("plain"), None);
    }
}
