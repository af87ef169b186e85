//! `switchyard-ratelimit-bench`: decisions/s and accuracy of coord's
//! sliding-window rate limiter (`coord::ratelimit`).
//!
//! Two measurements, on the embedded backend (`LocalLimiter`) and on Redis
//! (`RedisLimiter`) under a fresh key prefix (`bench-rl-<pid>-<nanos>`)
//! whose keys are deleted at the end (`SCAN` + `DEL`):
//!
//! - **load**: for each `--tasks` level, that many tasks call
//!   `RateLimiter::check` back to back for `--duration-secs`, each on a key
//!   drawn uniformly from `--keys` keys. On Redis all tasks share one
//!   `RedisLimiter` (one multiplexed connection, as a service would). Every
//!   call is timed; the report gives decisions/s, p50/p99 latency and the
//!   share allowed. The policy is `--embedded-limit` or `--redis-limit`
//!   requests per 1 s per key, picked so that each backend's rate gives a
//!   mix of allowed and rejected. Embedded tasks yield every 16 decisions
//!   (a check never awaits, so without it one task would run alone);
//! - **accuracy**: a traffic trace generated from `--seed` (see `trace.rs`:
//!   steady, bursty and abusive clients, `--trace-secs` long) is replayed
//!   in real time by `--replayers` tasks, each request sent by the replayer
//!   the trace assigns it to. Embedded: the replayers share one
//!   `LocalLimiter`. Redis: each replayer has its own `RedisLimiter`
//!   connection (separate service instances sharing the limit). Every
//!   decision's `decided_at` and `allowed` are recorded and judged against
//!   an exact sliding-window log run over those timestamps (`judge.rs`),
//!   plus a direct check of the most admissions of one key in any window.
//!   A fixed-window counter and the sliding-window counter approximation
//!   are simulated in process on the trace's own timestamps and judged the
//!   same way, for comparison.
//!
//! The report is markdown on stdout, progress on stderr.
//!
//! This is a benchmark, not a test: speed goals live here and in
//! `docs/PERFORMANCE.md`, never in the timed test suite.

mod judge;
#[path = "../keys.rs"]
mod keys;
mod trace;

use keys::{Removal, delete_prefix};

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use clap::{Parser, ValueEnum};
use coord::ratelimit::local::LocalLimiter;
use coord::ratelimit::redis::RedisLimiter;
use coord::ratelimit::{Policy, RateLimitBackend, RateLimiter};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::task::JoinSet;

use crate::judge::{Outcome, Request, Verdict};
use crate::trace::{Class, Trace};

/// Name of the trace's policy.
const TRACE_POLICY: &str = "trace";
/// Embedded load tasks yield after this many decisions.
const YIELD_EVERY: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measure {
    Load,
    Accuracy,
    All,
}

/// Command line of the benchmark.
#[derive(Debug, Parser)]
#[command(about = "Decisions/s and accuracy of coord's sliding-window rate limiter")]
struct Args {
    /// Redis to run against.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Measure the embedded backend only.
    #[arg(long)]
    skip_redis: bool,
    /// Measurement(s) to take.
    #[arg(long, value_enum, default_value = "all")]
    measure: Measure,
    /// Seconds of each decisions/s run.
    #[arg(long, default_value_t = 3.0)]
    duration_secs: f64,
    /// Concurrent tasks of the decisions/s runs.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 64])]
    tasks: Vec<usize>,
    /// Keys the decisions/s runs spread over, uniformly.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Requests per key per 1 s of the embedded decisions/s policy.
    #[arg(long, default_value_t = 100)]
    embedded_limit: u32,
    /// Requests per key per 1 s of the Redis decisions/s policy.
    #[arg(long, default_value_t = 3)]
    redis_limit: u32,
    /// Seconds of traffic in the replayed trace.
    #[arg(long, default_value_t = 16)]
    trace_secs: u64,
    /// Seed of the trace.
    #[arg(long, default_value_t = 20_261_123)]
    seed: u64,
    /// Concurrent replayers (instances) of the trace.
    #[arg(long, default_value_t = 4)]
    replayers: usize,
    /// Limit of the trace's policy.
    #[arg(long, default_value_t = 20)]
    trace_limit: u32,
    /// Window of the trace's policy, in ms.
    #[arg(long, default_value_t = 2000)]
    trace_window_ms: u64,
    /// Burst of the trace's policy.
    #[arg(long, default_value_t = 5)]
    trace_burst: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.duration_secs > 0.0, "--duration-secs must be positive");
    ensure!(
        (1..=255).contains(&args.replayers),
        "--replayers must be 1 to 255"
    );
    ensure!(args.keys > 0, "--keys must be at least 1");
    println!("# switchyard-ratelimit-bench\n");
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!("started {}; {}", utc(started), machine());
    let prefix = unique_prefix();
    if !args.skip_redis {
        let version = redis_version(&args.redis_url)
            .await
            .with_context(|| format!("asking {} for its version", args.redis_url))?;
        println!(
            "redis-server {version} at {}; key prefix {prefix}:",
            args.redis_url
        );
    }
    println!();
    let result = run(&args, &prefix).await;
    if !args.skip_redis {
        match delete_prefix(&args.redis_url, &prefix, Removal::Del).await {
            Ok(n) => eprintln!("# cleanup: deleted {n} Redis keys under {prefix}:"),
            Err(e) => {
                let e = e.context(format!("deleting the keys under {prefix}:"));
                if result.is_ok() {
                    return Err(e);
                }
                eprintln!("# cleanup failed: {e:#}");
            }
        }
    }
    result?;
    println!("{}", machine());
    Ok(())
}

async fn run(args: &Args, prefix: &str) -> anyhow::Result<()> {
    if matches!(args.measure, Measure::Load | Measure::All) {
        load(args, prefix).await?;
    }
    if matches!(args.measure, Measure::Accuracy | Measure::All) {
        accuracy(args, prefix).await?;
    }
    Ok(())
}

/// Cores and load average, for the report.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("machine: {cores} cores, load average {}", load.join(" "))
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time (civil-from-days).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A fresh prefix per run (no glob characters, so `SCAN MATCH` takes it
/// literally).
fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-rl-{}-{nanos}", std::process::id())
}

async fn admin(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    Ok(client.get_multiplexed_async_connection().await?)
}

async fn redis_version(url: &str) -> anyhow::Result<String> {
    let mut conn = admin(url).await?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await?;
    Ok(info
        .lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .to_owned())
}

// ---------------------------------------------------------------- load

/// What one decisions/s run measured.
struct LoadResult {
    decisions: u64,
    allowed: u64,
    elapsed: Duration,
    p50_us: f64,
    p99_us: f64,
}

async fn load(args: &Args, prefix: &str) -> anyhow::Result<()> {
    let keys: Arc<Vec<String>> = Arc::new((0..args.keys).map(|i| format!("client-{i}")).collect());
    let duration = Duration::from_secs_f64(args.duration_secs);
    println!(
        "## Decisions/s per process ({} keys drawn uniformly, {:.1} s per run, window 1 s, no burst)\n",
        args.keys, args.duration_secs
    );
    println!("| backend | limit/s per key | tasks | decisions/s | p50 µs | p99 µs | allowed |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut backends: Vec<(&str, u32)> = vec![("embedded", args.embedded_limit)];
    if !args.skip_redis {
        backends.push(("redis", args.redis_limit));
    }
    for (backend, limit) in backends {
        for &tasks in &args.tasks {
            // A fresh policy name per run, so no run inherits another's logs.
            let name = format!("load-{tasks}");
            let policy = Policy::new(&name, limit, Duration::from_secs(1))?;
            let warm = Policy::new("warm", 1_000, Duration::from_secs(1))?;
            let limiter: Arc<dyn RateLimitBackend> = if backend == "redis" {
                Arc::new(
                    RedisLimiter::connect(&args.redis_url, prefix)
                        .await
                        .with_context(|| format!("connecting to {}", args.redis_url))?,
                )
            } else {
                Arc::new(LocalLimiter::new())
            };
            let limiter = RateLimiter::new(limiter, [policy, warm])?;
            // Warm-up: loads the script on Redis, warms the allocator.
            for i in 0..200 {
                limiter
                    .check("warm", &keys[i % keys.len()])
                    .await
                    .context("warm-up decision")?;
            }
            eprintln!("load: {backend}, {tasks} task(s)");
            let r = load_run(
                &limiter,
                &name,
                &keys,
                tasks,
                duration,
                backend == "embedded",
            )
            .await?;
            println!(
                "| {backend} | {limit} | {tasks} | {:.0} | {:.1} | {:.1} | {:.1}% |",
                r.decisions as f64 / r.elapsed.as_secs_f64(),
                r.p50_us,
                r.p99_us,
                100.0 * r.allowed as f64 / r.decisions.max(1) as f64
            );
        }
    }
    println!();
    Ok(())
}

async fn load_run(
    limiter: &RateLimiter,
    policy: &str,
    keys: &Arc<Vec<String>>,
    tasks: usize,
    duration: Duration,
    yield_now: bool,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = JoinSet::new();
    for t in 0..tasks {
        let limiter = limiter.clone();
        let policy = policy.to_owned();
        let keys = keys.clone();
        set.spawn(async move {
            let mut rng = SmallRng::seed_from_u64(t as u64);
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut allowed = 0u64;
            let mut n = 0u32;
            loop {
                let key = &keys[rng.random_range(0..keys.len())];
                let t0 = Instant::now();
                let decision = limiter
                    .check(&policy, key)
                    .await
                    .context("rate-limit decision")?;
                let t1 = Instant::now();
                latencies.push((t1 - t0).as_nanos().min(u128::from(u32::MAX)) as u32);
                allowed += u64::from(decision.allowed);
                if t1 >= deadline {
                    break;
                }
                n += 1;
                if yield_now && n.is_multiple_of(YIELD_EVERY) {
                    tokio::task::yield_now().await;
                }
            }
            anyhow::Ok((latencies, allowed, Instant::now()))
        });
    }
    let mut latencies = Vec::new();
    let mut allowed = 0;
    let mut end = start;
    while let Some(done) = set.join_next().await {
        let (l, a, at) = done.context("load task")??;
        latencies.extend(l);
        allowed += a;
        end = end.max(at);
    }
    let decisions = latencies.len() as u64;
    ensure!(decisions > 0, "no decision was made");
    let p50_us = percentile(&mut latencies, 0.50) as f64 / 1000.0;
    let p99_us = percentile(&mut latencies, 0.99) as f64 / 1000.0;
    Ok(LoadResult {
        decisions,
        allowed,
        elapsed: end - start,
        p50_us,
        p99_us,
    })
}

/// The `q` quantile (nearest rank) of non-empty `values`.
fn percentile<T: Ord + Copy>(values: &mut [T], q: f64) -> T {
    let idx = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
    *values.select_nth_unstable(idx).1
}

// ------------------------------------------------------------ accuracy

/// What one replay recorded.
struct Replay {
    outcomes: Vec<Outcome>,
    /// How late each request was sent against its trace offset.
    lag: Vec<Duration>,
}

async fn accuracy(args: &Args, prefix: &str) -> anyhow::Result<()> {
    let window = Duration::from_millis(args.trace_window_ms);
    let policy =
        Policy::new(TRACE_POLICY, args.trace_limit, window)?.with_burst(args.trace_burst)?;
    let cap = u64::from(policy.capacity());
    let window_ms = args.trace_window_ms as i64;
    let trace = Arc::new(Trace::generate(args.seed, args.trace_secs, args.replayers));
    let classes = |key: u32| trace.class_of(key).index();
    let nkeys = trace.keys.len();

    println!(
        "## Accuracy on a {} s trace (policy {} / {} ms, burst {}: capacity {cap})\n",
        args.trace_secs, args.trace_limit, args.trace_window_ms, args.trace_burst
    );
    let mut per_class = [(0usize, 0u64); 3];
    for e in &trace.events {
        per_class[trace.class_of(e.key).index()].1 += 1;
    }
    for (_, c) in &trace.keys {
        per_class[c.index()].0 += 1;
    }
    println!(
        "trace: seed {}, {} requests from {} keys, fingerprint {:016x}; {} replayers, each request sent by one of them at random\n",
        args.seed,
        trace.events.len(),
        nkeys,
        trace.fingerprint(),
        args.replayers
    );

    let mut rows = Vec::new();
    let mut verdicts = Vec::new();
    let mut backends = vec!["embedded"];
    if !args.skip_redis {
        backends.push("redis");
    }
    for backend in backends {
        let mut limiters = Vec::new();
        if backend == "redis" {
            for _ in 0..args.replayers {
                let handle = RedisLimiter::connect(&args.redis_url, prefix)
                    .await
                    .with_context(|| format!("connecting to {}", args.redis_url))?;
                limiters.push(RateLimiter::new(Arc::new(handle), [policy.clone()])?);
            }
        } else {
            let shared = RateLimiter::new(Arc::new(LocalLimiter::new()), [policy.clone()])?;
            limiters = vec![shared; args.replayers];
        }
        // Warm-up on a key outside the trace (loads the script on Redis).
        for limiter in &limiters {
            limiter
                .check(TRACE_POLICY, "warm-up")
                .await
                .context("warm-up decision")?;
        }
        eprintln!(
            "accuracy: replaying {} requests on {backend} in real time",
            trace.events.len()
        );
        let mut replay = replay(&trace, limiters).await?;
        let v = judge::judge(&replay.outcomes, classes, nkeys, window_ms, cap);
        let lag_p99 = percentile(&mut replay.lag, 0.99);
        let lag_max = replay.lag.iter().max().copied().unwrap_or_default();
        rows.push(format!(
            "| {backend} | {} | {} | {} | **{}** | **{}** ({:.3}%) | {} | {} | {:.1} / {:.1} |",
            if backend == "redis" {
                format!("{} connections", args.replayers)
            } else {
                "1 shared `LocalLimiter`".to_owned()
            },
            v.requests,
            v.allowed,
            v.total_wrongly_allowed(),
            v.total_wrongly_rejected(),
            100.0 * v.total_wrongly_rejected() as f64 / v.requests.max(1) as f64,
            v.max_in_window,
            v.keys_over_capacity,
            lag_p99.as_secs_f64() * 1000.0,
            lag_max.as_secs_f64() * 1000.0,
        ));
        verdicts.push((backend, v));
    }
    println!(
        "| backend | replayers | requests | allowed | wrongly allowed | wrongly rejected | max admitted in any {} ms window (cap {cap}) | keys over cap | send lag p99 / max ms |",
        args.trace_window_ms
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!("{row}");
    }
    println!();

    println!("Per client class (allowed / requests, wrongly allowed, wrongly rejected):\n");
    let mut header = "| class | keys | requests |".to_owned();
    for (backend, _) in &verdicts {
        header.push_str(&format!(" {backend} |"));
    }
    println!("{header}");
    println!("|---|---:|---:|{}", "---|".repeat(verdicts.len()));
    for class in Class::ALL {
        let i = class.index();
        let mut line = format!(
            "| {} | {} | {} |",
            class.name(),
            per_class[i].0,
            per_class[i].1
        );
        for (_, v) in &verdicts {
            line.push_str(&format!(
                " {} ({:.1}%), {}, {} |",
                v.class_allowed[i],
                100.0 * v.class_allowed[i] as f64 / v.class_requests[i].max(1) as f64,
                v.wrongly_allowed[i],
                v.wrongly_rejected[i]
            ));
        }
        println!("{line}");
    }
    println!();

    // The approximations, simulated on the trace's own timestamps.
    let requests: Vec<Request> = trace
        .events
        .iter()
        .map(|e| (e.key, (e.at_us / 1000) as i64))
        .collect();
    println!(
        "### Same trace, simulated in process on its own timestamps (ms from the trace's start; fixed windows aligned to it)\n"
    );
    println!(
        "| algorithm | allowed | wrongly allowed | wrongly rejected | of which steady clients | max admitted in any {} ms window (cap {cap}) | keys over cap |",
        args.trace_window_ms
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let sims: [(&str, Vec<Outcome>); 3] = [
        (
            "exact sliding log (reference)",
            judge::simulate_exact(&requests, nkeys, window_ms, cap),
        ),
        (
            "fixed-window counter",
            judge::simulate_fixed(&requests, nkeys, window_ms, cap),
        ),
        (
            "sliding-window counter (weighted previous window)",
            judge::simulate_sliding_counter(&requests, nkeys, window_ms, cap),
        ),
    ];
    for (name, outcomes) in sims {
        let v: Verdict = judge::judge(&outcomes, classes, nkeys, window_ms, cap);
        println!(
            "| {name} | {} | {} | {} ({:.2}%) | {} | {} | {} |",
            v.allowed,
            v.total_wrongly_allowed(),
            v.total_wrongly_rejected(),
            100.0 * v.total_wrongly_rejected() as f64 / v.requests.max(1) as f64,
            v.wrongly_rejected[Class::Steady.index()],
            v.max_in_window,
            v.keys_over_capacity
        );
    }
    println!();
    Ok(())
}

/// Replays the trace in real time: replayer `i` sends the events assigned
/// to it through `limiters[i]`, one at a time, each at its offset.
async fn replay(trace: &Arc<Trace>, limiters: Vec<RateLimiter>) -> anyhow::Result<Replay> {
    // Start together, a moment from now, so every replayer is ready.
    let start = Instant::now() + Duration::from_millis(200);
    let mut set = JoinSet::new();
    for (i, limiter) in limiters.into_iter().enumerate() {
        let trace = trace.clone();
        set.spawn(async move {
            let mine: Vec<_> = trace
                .events
                .iter()
                .filter(|e| usize::from(e.replayer) == i)
                .copied()
                .collect();
            let mut outcomes = Vec::with_capacity(mine.len());
            let mut lag = Vec::with_capacity(mine.len());
            for e in mine {
                let due = start + Duration::from_micros(e.at_us);
                if Instant::now() < due {
                    tokio::time::sleep_until(due.into()).await;
                }
                lag.push(Instant::now().saturating_duration_since(due));
                let key = &trace.keys[e.key as usize].0;
                let d = limiter
                    .check(TRACE_POLICY, key)
                    .await
                    .with_context(|| format!("replayer {i}: decision for {key}"))?;
                outcomes.push(Outcome {
                    key: e.key,
                    at_ms: d.decided_at,
                    allowed: d.allowed,
                });
            }
            anyhow::Ok((outcomes, lag))
        });
    }
    let mut replay = Replay {
        outcomes: Vec::new(),
        lag: Vec::new(),
    };
    while let Some(done) = set.join_next().await {
        let (outcomes, lag) = done.context("replayer task")??;
        replay.outcomes.extend(outcomes);
        replay.lag.extend(lag);
    }
    ensure!(!replay.lag.is_empty(), "the trace is empty");
    Ok(replay)
}
