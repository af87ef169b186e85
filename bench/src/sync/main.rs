//! `switchyard-sync-bench`: how fast notifications and synced state travel
//! between instances.
//!
//! Two measurements, each on a fresh Redis key prefix
//! (`bench-sync-<prop|tput>-<pid>-<nanos>`):
//!
//! - **propagation**: three `coord::sync::Replica`s (A, B, C) share one
//!   temporary SQLite store, each with its own bus handle (on Redis its own
//!   connections, like three processes), debounce 0. A writes one change at
//!   a time (`Replica::put`); a recorder task per follower notes the instant
//!   its `watch_applied()` moves. For each change the report gives the time
//!   of the put itself and, for B and C, the time from the put's return
//!   (committed and published) until the follower applied that version.
//!   Changes are spaced (`--spacing-ms`) so that each is one isolated
//!   change;
//! - **throughput**: one publisher and one (then three) subscribers on one
//!   channel, each with its own bus handle. The publisher sends
//!   `--messages` small envelopes as fast as it can, either typed
//!   (`Channel::publish`, which serializes each envelope) or raw
//!   (`ChannelBus::publish` of prepared text), with sequential awaits or
//!   `--concurrency` publishing tasks. Sent/s is timed until the last
//!   publish returned, received/s (messages the slowest subscriber got)
//!   until the last subscriber got its last message; lost messages (summed
//!   over subscribers) and `lagged` counts are reported.
//!
//! The report is markdown on stdout, progress on stderr. Pub/sub leaves no
//! keys in Redis; the SQLite files are deleted at the end.
//!
//! This is a benchmark, not a test: speed goals live here and in
//! `docs/PERFORMANCE.md`, never in the timed test suite.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use clap::{Parser, ValueEnum};
use coord::channels::{
    ChangeType, Channel, ChannelBus, ChannelName, Envelope, LocalBus, RedisBus, source,
};
use coord::debounce::DebounceConfig;
use coord::instance::InstanceId;
use coord::queue::sql::SqlBackend;
use coord::sync::{Replica, ReplicaConfig, StateKey, StateStore};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinSet;

/// A subscriber that has received nothing new for this long is done.
const IDLE_LIMIT: Duration = Duration::from_secs(5);
/// A follower that has not applied a change after this long has failed.
const APPLY_LIMIT: Duration = Duration::from_secs(5);

/// Which bus the measurements run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Bus {
    Redis,
    Local,
    All,
}

/// Which measurements to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measure {
    Propagation,
    Throughput,
    All,
}

/// Command line of the benchmark.
#[derive(Debug, Parser)]
#[command(about = "Cross-instance propagation latency and channel throughput")]
struct Args {
    /// Redis to run against.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Bus(es) to measure.
    #[arg(long, value_enum, default_value = "redis")]
    bus: Bus,
    /// Measurement(s) to take.
    #[arg(long, value_enum, default_value = "all")]
    measure: Measure,
    /// Timed changes in the propagation measurement.
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Untimed changes before them.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Pause between two changes, in milliseconds.
    #[arg(long, default_value_t = 2)]
    spacing_ms: u64,
    /// Messages per throughput run.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Publishing tasks in the concurrent throughput runs.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let buses: &[Bus] = match args.bus {
        Bus::All => &[Bus::Redis, Bus::Local],
        Bus::Redis => &[Bus::Redis],
        Bus::Local => &[Bus::Local],
    };
    println!("# switchyard-sync-bench\n");
    println!("{}\n", machine());
    for &bus in buses {
        if matches!(args.measure, Measure::Propagation | Measure::All) {
            propagation(&args, bus).await?;
        }
        if matches!(args.measure, Measure::Throughput | Measure::All) {
            throughput(&args, bus).await?;
        }
    }
    println!("{}", machine());
    Ok(())
}

/// Cores and load average, for the report.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("machine: {cores} cores, load average {}", load.join(" "))
}

/// A fresh prefix per run, so runs never see each other's messages.
fn unique_prefix(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-sync-{tag}-{}-{nanos}", std::process::id())
}

/// `count` bus handles: separate connections on Redis, one shared
/// in-process bus otherwise.
async fn buses(
    args: &Args,
    bus: Bus,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<Arc<dyn ChannelBus>>> {
    let mut out: Vec<Arc<dyn ChannelBus>> = Vec::new();
    if bus == Bus::Local {
        let local: Arc<dyn ChannelBus> = Arc::new(LocalBus::new());
        for _ in 0..count {
            out.push(local.clone());
        }
        return Ok(out);
    }
    for _ in 0..count {
        let handle = RedisBus::connect(&args.redis, prefix)
            .await
            .with_context(|| format!("connecting to {}", args.redis))?;
        out.push(Arc::new(handle));
    }
    Ok(out)
}

fn bus_name(bus: Bus) -> &'static str {
    match bus {
        Bus::Redis => "Redis",
        Bus::Local => "LocalBus",
        Bus::All => "all",
    }
}

/// Removes an SQLite database with its WAL files.
fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Instants at which one follower's applied version moved.
type Applied = Arc<Mutex<Vec<(i64, Instant)>>>;

/// Records every move of a follower's applied version with its instant.
fn record(replica: &Replica) -> (Applied, tokio::task::JoinHandle<()>) {
    let log: Applied = Arc::new(Mutex::new(Vec::new()));
    let mut rx = replica.watch_applied();
    let sink = log.clone();
    let task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let version = *rx.borrow_and_update();
            let at = Instant::now();
            if let Ok(mut log) = sink.lock() {
                log.push((version, at));
            }
        }
    });
    (log, task)
}

/// The first instant at which the follower held `version` or newer.
fn reached(log: &Applied, version: i64) -> Option<Instant> {
    let log = log.lock().ok()?;
    log.iter().find(|(v, _)| *v >= version).map(|(_, at)| *at)
}

async fn wait_reached(log: &Applied, version: i64) -> anyhow::Result<Instant> {
    let start = Instant::now();
    loop {
        if let Some(at) = reached(log, version) {
            return Ok(at);
        }
        ensure!(
            start.elapsed() < APPLY_LIMIT,
            "version {version} not applied within {APPLY_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Percentiles of a set of durations, in milliseconds.
struct Summary {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

fn summarize(samples: &mut [Duration]) -> Summary {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| {
        let idx = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        ms(samples[idx])
    };
    let total: Duration = samples.iter().sum();
    Summary {
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        max: samples.last().map_or(0.0, |d| ms(*d)),
        mean: ms(total) / samples.len().max(1) as f64,
    }
}

fn row(name: &str, s: &Summary) -> String {
    format!(
        "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
        s.p50, s.p95, s.p99, s.max, s.mean
    )
}

async fn propagation(args: &Args, bus: Bus) -> anyhow::Result<()> {
    let prefix = unique_prefix("prop");
    let db = std::env::temp_dir().join(format!("{prefix}.db"));
    let result = propagation_on(args, bus, &prefix, &db).await;
    remove_sqlite(&db);
    result
}

async fn propagation_on(args: &Args, bus: Bus, prefix: &str, db: &Path) -> anyhow::Result<()> {
    eprintln!(
        "propagation on {}: {} changes after {} warm-up",
        bus_name(bus),
        args.samples,
        args.warmup
    );
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let backend = SqlBackend::open(&url)
        .await
        .context("opening the SQLite store")?;
    let store = StateStore::sqlite(backend.pool().clone())
        .await
        .context("migrating the state store")?;
    let mut config = ReplicaConfig::new(ChannelName::new("state-bench")?);
    config.debounce = DebounceConfig::immediate();
    let mut replicas = Vec::new();
    for (name, handle) in ["a", "b", "c"]
        .into_iter()
        .zip(buses(args, bus, prefix, 3).await?)
    {
        let id = InstanceId::new(format!("{prefix}-{name}"))?;
        let replica = Replica::start(store.clone(), Some(handle), id, config.clone())
            .await
            .with_context(|| format!("starting replica {name}"))?;
        replicas.push(replica);
    }
    let (b_log, b_task) = record(&replicas[1]);
    let (c_log, c_task) = record(&replicas[2]);
    let keys: Vec<StateKey> = (0..16)
        .map(|i| StateKey::new(format!("bench/k{i}")))
        .collect::<Result<_, _>>()?;

    let mut put = Vec::with_capacity(args.samples);
    let mut b_after = Vec::with_capacity(args.samples);
    let mut c_after = Vec::with_capacity(args.samples);
    let mut b_from_start = Vec::with_capacity(args.samples);
    let mut c_from_start = Vec::with_capacity(args.samples);
    let mut early = [0usize; 2];
    let spacing = Duration::from_millis(args.spacing_ms);
    for i in 0..args.warmup + args.samples {
        tokio::time::sleep(spacing).await;
        let key = &keys[i % keys.len()];
        let start = Instant::now();
        let entry = replicas[0]
            .put(
                key,
                &json!({ "i": i, "url": "http://search.internal" }),
                "enabled",
            )
            .await
            .context("put")?;
        let done = Instant::now();
        let b_at = wait_reached(&b_log, entry.version)
            .await
            .context("replica B")?;
        let c_at = wait_reached(&c_log, entry.version)
            .await
            .context("replica C")?;
        if i < args.warmup {
            continue;
        }
        put.push(done - start);
        for (k, at) in [b_at, c_at].into_iter().enumerate() {
            if at < done {
                early[k] += 1;
            }
        }
        b_after.push(b_at.saturating_duration_since(done));
        c_after.push(c_at.saturating_duration_since(done));
        b_from_start.push(b_at - start);
        c_from_start.push(c_at - start);
    }
    b_task.abort();
    c_task.abort();
    let statuses: Vec<_> = replicas.iter().map(|r| r.status()).collect();
    for replica in replicas {
        replica.shutdown().await;
    }

    println!(
        "## Propagation on {} (debounce 0, SQLite store, {} changes, {} warm-up, {} ms apart)\n",
        bus_name(bus),
        args.samples,
        args.warmup,
        args.spacing_ms
    );
    println!("| ms | p50 | p95 | p99 | max | mean |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!("{}", row("A `put` (write + publish)", &summarize(&mut put)));
    println!(
        "{}",
        row("B applied, after put returned", &summarize(&mut b_after))
    );
    println!(
        "{}",
        row("C applied, after put returned", &summarize(&mut c_after))
    );
    println!(
        "{}",
        row("B applied, from put start", &summarize(&mut b_from_start))
    );
    println!(
        "{}",
        row("C applied, from put start", &summarize(&mut c_from_start))
    );
    println!();
    println!(
        "applied before A's put returned: B {} times, C {} times (counted as 0)",
        early[0], early[1]
    );
    for (name, s) in ["A", "B", "C"].iter().zip(&statuses) {
        println!(
            "replica {name}: received {} skipped_self {} processed {} batches {} reloads {} malformed {} last_error {:?}",
            s.received,
            s.skipped_self,
            s.processed,
            s.batches,
            s.reloads,
            s.malformed,
            s.last_error
        );
    }
    println!();
    Ok(())
}

/// The small payload of a throughput message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tick {
    seq: u64,
}

/// How a throughput run publishes.
#[derive(Debug, Clone, Copy)]
enum Publish {
    Typed,
    Raw,
}

/// What one subscriber saw.
struct Received {
    count: u64,
    lagged: u64,
    last: Option<Instant>,
}

async fn throughput(args: &Args, bus: Bus) -> anyhow::Result<()> {
    println!(
        "## Throughput of one channel on {} ({} messages per run)\n",
        bus_name(bus),
        args.messages
    );
    println!("| publish | tasks | subscribers | sent/s | received/s | lost | lagged | bytes/msg |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for subscribers in [1usize, 3] {
        for mode in [Publish::Typed, Publish::Raw] {
            for tasks in [1usize, args.concurrency] {
                throughput_run(args, bus, subscribers, mode, tasks).await?;
            }
        }
    }
    println!();
    Ok(())
}

async fn throughput_run(
    args: &Args,
    bus: Bus,
    subscribers: usize,
    mode: Publish,
    tasks: usize,
) -> anyhow::Result<()> {
    let prefix = unique_prefix("tput");
    eprintln!(
        "throughput on {}: {:?}, {tasks} task(s), {subscribers} subscriber(s)",
        bus_name(bus),
        mode
    );
    let name = ChannelName::new("tput")?;
    let handles = buses(args, bus, &prefix, subscribers + 1).await?;
    let publisher_id = InstanceId::new(format!("{prefix}-pub"))?;
    let publisher: Channel<Tick> =
        Channel::new(handles[0].clone(), name.clone(), publisher_id.clone());

    let expected = args.messages;
    let mut receivers = JoinSet::new();
    for (i, handle) in handles[1..].iter().enumerate() {
        let id = InstanceId::new(format!("{prefix}-sub{i}"))?;
        let channel: Channel<Tick> = Channel::new(handle.clone(), name.clone(), id);
        let mut sub = channel.subscribe().await.context("subscribing")?;
        let stats = sub.stats();
        receivers.spawn(async move {
            let mut last = None;
            let mut count = 0u64;
            while count < expected {
                match tokio::time::timeout(IDLE_LIMIT, sub.recv()).await {
                    Ok(Some(_)) => {
                        count += 1;
                        last = Some(Instant::now());
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            Received {
                count,
                lagged: stats.snapshot().lagged,
                last,
            }
        });
    }

    let sample = Envelope {
        instance_id: publisher_id.clone(),
        timestamp: 0,
        change_type: ChangeType::Updated,
        keys: vec!["bench/k".to_owned()],
        source: source::API.to_owned(),
        payload: Tick { seq: expected },
    };
    let raw_text: Arc<str> = serde_json::to_string(&sample)?.into();
    let bytes = raw_text.len();

    let start = Instant::now();
    let mut publishers = JoinSet::new();
    for t in 0..tasks as u64 {
        let channel = publisher.clone();
        let raw_bus = handles[0].clone();
        let name = name.clone();
        let text = raw_text.clone();
        publishers.spawn(async move {
            let mut seq = t;
            while seq < expected {
                match mode {
                    Publish::Typed => {
                        channel
                            .publish(
                                ChangeType::Updated,
                                vec!["bench/k".to_owned()],
                                source::API,
                                &Tick { seq },
                            )
                            .await?
                    }
                    Publish::Raw => raw_bus.publish(&name, &text).await?,
                }
                seq += tasks as u64;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = publishers.join_next().await {
        done.context("publisher task")??;
    }
    let sent_in = start.elapsed();
    let mut lost = 0u64;
    let mut lagged = 0u64;
    let mut least = expected;
    let mut last_at = start;
    while let Some(done) = receivers.join_next().await {
        let received = done.context("subscriber task")?;
        lost += expected - received.count;
        least = least.min(received.count);
        lagged += received.lagged;
        if let Some(at) = received.last {
            last_at = last_at.max(at);
        }
    }
    let received_in = last_at - start;
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(f64::EPSILON);
    println!(
        "| {} | {tasks} | {subscribers} | {:.0} | {:.0} | {lost} | {lagged} | {bytes} |",
        match mode {
            Publish::Typed => "typed `Channel::publish`",
            Publish::Raw => "raw `ChannelBus::publish`",
        },
        rate(expected, sent_in),
        rate(least, received_in),
    );
    // Let the subscriptions' connections close before the next run.
    drop(handles);
    Ok(())
}
