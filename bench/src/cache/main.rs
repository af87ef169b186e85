//! `switchyard-cache-bench`: what `coord::cache` costs on its hit path and
//! how fast an invalidation reaches the other instances.
//!
//! Two measurements, each on a fresh namespace and, on Redis, a fresh key
//! prefix (`bench-cache-<pid>-<nanos>`, deleted at the end):
//!
//! - **hit** (`--measure hit`): reads/s of `Cache::get_or_load` per
//!   process, with `--concurrency` tasks (1, 8, 64 by default) reading in
//!   a loop for `--seconds` after `--warmup-ms`, every read timed:
//!   - the **local tier**: `--keys` keys, loaded once, so every read is a
//!     hit in the in-process tier (moka); the shared tier is never asked,
//!     so this is measured once, on the embedded deployment;
//!   - the **shared tier** (embedded `LocalShared`, Redis, the cluster):
//!     a writer instance stores `--shared-keys` keys; a reader instance,
//!     with its own connection, opened with the smallest local bound
//!     (`LocalBound::Entries(1)`), walks them in order, so nearly every
//!     read misses its local tier and is answered by the shared tier (the
//!     report gives the exact split from the reader's counters). A read
//!     that would call the loader fails the run.
//!
//!   Every run is paired with a baseline of the same shape: for a local
//!   or embedded hit, a direct call of a trivial loader (an in-memory
//!   record cloned: what the caller would pay without a cache); for a
//!   Redis hit, a plain `GET` of the same stored text on the same kind of
//!   connection (a connection manager, or the cluster client), run in
//!   `--slices` slices alternating with the cache's, so that a burst of
//!   load on a shared machine hits both alike. "Added" is the cache's
//!   percentile minus the baseline's.
//! - **invalidation** (`--measure invalidation`): three instances A, B and
//!   C of one namespace, each with its own shared-tier connection and bus
//!   handle (`RedisBus`, its own connections, on Redis and the cluster;
//!   one in-process `LocalBus` embedded). Per round, B and C read the key
//!   (so they hold it locally), then A writes it: `set`, then on the next
//!   round `invalidate`. The bench polls B's and C's
//!   `stats().invalidations_received` every 50 µs (from the main thread,
//!   not a runtime worker) and notes when each moves: coord counts an invalidation once
//!   it has dropped the local copy, so that instant is when the old value
//!   is gone there. Reported from the start of A's call and from its
//!   return.
//!
//! The report (markdown) goes to stdout, progress to stderr. This is a
//! benchmark, not a test: speed figures live here and in
//! `docs/PERFORMANCE.md`, never in the timed test suite.

#[path = "../keys.rs"]
mod keys;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use clap::{Parser, ValueEnum};
use coord::cache::{
    Cache, CacheOptions, CacheStats, LocalBound, LocalShared, RedisShared, SharedTier,
};
use coord::channels::{ChannelBus, LocalBus, RedisBus};
use coord::instance::InstanceId;
use hdrhistogram::Histogram;
use keys::{Removal, delete_prefix};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

/// Time to live of every entry: far longer than a run.
const TTL: Duration = Duration::from_secs(3600);
/// A follower that has not applied an invalidation after this long has
/// missed it.
const APPLY_LIMIT: Duration = Duration::from_secs(5);
/// Pause between two polls of B's and C's counters: the figures'
/// resolution, with the poll itself (a few µs).
const POLL_PAUSE: Duration = Duration::from_micros(50);
/// Reads between two yields of a reading task, so that tasks whose reads
/// never wait (local hits) still take turns on the runtime's threads.
const YIELD_EVERY: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measure {
    Hit,
    Invalidation,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Embedded,
    Redis,
    Cluster,
    All,
}

/// Command line of the benchmark.
#[derive(Debug, Parser)]
#[command(
    name = "switchyard-cache-bench",
    about = "Hit-path reads/s and latency of coord::cache, and invalidation propagation"
)]
struct Args {
    /// Measurement(s) to take.
    #[arg(long, value_enum, default_value = "all")]
    measure: Measure,
    /// Deployment(s) of the shared tier and bus.
    #[arg(long, value_enum, default_value = "all")]
    backend: Backend,
    /// Redis URL.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Redis Cluster URL (`redis+cluster://h:p,…`; `scripts/cluster url`
    /// prints the local one); needed for the cluster backend.
    #[arg(long)]
    cluster: Option<String>,
    /// Reading tasks per hit run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    concurrency: Vec<usize>,
    /// Timed seconds per hit run (cache and baseline each).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Slices the timed seconds are cut into, cache and baseline
    /// alternating.
    #[arg(long, default_value_t = 3)]
    slices: u32,
    /// Untimed reads before each slice, in ms.
    #[arg(long, default_value_t = 300)]
    warmup_ms: u64,
    /// Keys of the local-tier runs (all cached locally).
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Keys of the shared-tier runs (walked in order by a reader whose
    /// local tier holds one entry).
    #[arg(long, default_value_t = 10_000)]
    shared_keys: usize,
    /// Timed writes of the invalidation measurement (half `set`, half
    /// `invalidate`).
    #[arg(long, default_value_t = 1000)]
    invalidations: usize,
    /// Untimed writes before them.
    #[arg(long, default_value_t = 100)]
    invalidation_warmup: usize,
    /// Pause between two invalidation rounds, in ms.
    #[arg(long, default_value_t = 2)]
    spacing_ms: u64,
}

/// The cached value: a small user record, about 150 bytes of JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
    active: bool,
}

fn record(i: usize) -> Record {
    Record {
        id: i as u64,
        name: format!("User number {i}"),
        email: format!("user{i}@example.com"),
        roles: vec!["viewer".into(), "operator".into()],
        active: !i.is_multiple_of(7),
    }
}

fn key(i: usize) -> String {
    format!("user:{i:06}")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-cache-{tag}-{}-{nanos}", std::process::id())
}

/// One deployment: where the shared tier and the bus live.
#[derive(Clone)]
enum World {
    Embedded { shared: LocalShared, bus: LocalBus },
    Redis { url: String, prefix: String },
}

impl World {
    fn name(&self) -> &'static str {
        match self {
            World::Embedded { .. } => "embedded",
            World::Redis { url, .. } if url.starts_with("redis+cluster://") => "cluster",
            World::Redis { .. } => "redis",
        }
    }

    /// One instance's shared tier and bus: its own connections on Redis,
    /// like a separate process.
    async fn parts(&self) -> anyhow::Result<(Arc<dyn SharedTier>, Arc<dyn ChannelBus>)> {
        Ok(match self {
            World::Embedded { shared, bus } => (Arc::new(shared.clone()), Arc::new(bus.clone())),
            World::Redis { url, prefix } => (
                Arc::new(
                    RedisShared::connect(url, prefix)
                        .await
                        .with_context(|| format!("connecting the cache to {url}"))?,
                ),
                Arc::new(
                    RedisBus::connect(url, prefix)
                        .await
                        .with_context(|| format!("connecting the bus to {url}"))?,
                ),
            ),
        })
    }

    async fn instance(
        &self,
        ns: &str,
        name: &str,
        options: CacheOptions,
        with_bus: bool,
    ) -> anyhow::Result<Cache<Record>> {
        let (shared, bus) = self.parts().await?;
        Ok(Cache::open(
            ns,
            options,
            shared,
            InstanceId::new(name)?,
            with_bus.then_some(bus),
        )
        .await?)
    }

    async fn cleanup(&self) {
        if let World::Redis { url, prefix } = self {
            match delete_prefix(url, prefix, Removal::Del).await {
                Ok(n) => eprintln!("# cleanup: deleted {n} keys under {prefix}: on {url}"),
                Err(e) => eprintln!("# cleanup: keys under {prefix}: left on {url}: {e:#}"),
            }
        }
    }
}

/// A plain Redis connection of the kind coord uses, for the `GET`
/// baseline.
#[derive(Clone)]
enum Raw {
    Single(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Raw {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(if url.starts_with("redis+cluster://") {
            let client = redis::cluster::ClusterClient::new(keys::nodes(url))?;
            Raw::Cluster(client.get_async_connection().await?)
        } else {
            let client = redis::Client::open(url)?;
            Raw::Single(redis::aio::ConnectionManager::new(client).await?)
        })
    }

    async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        let cmd = redis::cmd("GET").arg(key).clone();
        Ok(match self {
            Raw::Single(c) => cmd.query_async(&mut c.clone()).await?,
            Raw::Cluster(c) => cmd.query_async(&mut c.clone()).await?,
        })
    }
}

/// What a hit run reads through.
enum Target {
    /// `get_or_load` with a loader that must not run.
    Cache(Cache<Record>),
    /// The trivial loader, called directly.
    Loader(Vec<Record>),
    /// A plain `GET` of these Redis keys.
    Get(Raw, Vec<String>),
}

impl Target {
    async fn read(&self, i: usize, keys: &[String]) -> anyhow::Result<()> {
        match self {
            Target::Cache(cache) => {
                let found = cache
                    .get_or_load(&keys[i], || async {
                        Err::<Option<Record>, _>(std::io::Error::other(
                            "a benchmark read reached the loader: the key was not cached",
                        ))
                    })
                    .await?;
                ensure!(found.is_some(), "{} read as absent", keys[i]);
                std::hint::black_box(found);
            }
            Target::Loader(records) => {
                let loader =
                    || async { Ok::<_, std::io::Error>(Some(records[i % records.len()].clone())) };
                std::hint::black_box(loader().await?);
            }
            Target::Get(raw, redis_keys) => {
                let found = raw.get(&redis_keys[i]).await?;
                ensure!(found.is_some(), "GET {} found nothing", redis_keys[i]);
                std::hint::black_box(found);
            }
        }
        Ok(())
    }
}

/// One hit run's figures.
struct Run {
    ops: u64,
    window: Duration,
    /// Nanoseconds per read.
    hist: Histogram<u64>,
}

impl Run {
    fn empty() -> anyhow::Result<Self> {
        Ok(Self {
            ops: 0,
            window: Duration::ZERO,
            hist: histogram()?,
        })
    }

    fn absorb(&mut self, other: Run) -> anyhow::Result<()> {
        self.ops += other.ops;
        self.window += other.window;
        self.hist.add(&other.hist)?;
        Ok(())
    }

    fn per_second(&self) -> f64 {
        self.ops as f64 / self.window.as_secs_f64()
    }

    fn us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

/// `tasks` tasks read through `target` in a loop, each walking `keys` in
/// order from its own offset; only reads inside the window (after the
/// warm-up) are counted. A plain thread keeps the time, so that the flags
/// move on time however busy the runtime's threads are.
async fn drive(
    target: Arc<Target>,
    keys: Arc<Vec<String>>,
    tasks: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Run> {
    let recording = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut set = JoinSet::new();
    for t in 0..tasks {
        let (target, keys) = (target.clone(), keys.clone());
        let (recording, stop) = (recording.clone(), stop.clone());
        set.spawn(async move {
            let mut hist = histogram()?;
            let mut ops = 0u64;
            let mut i = t * keys.len() / tasks;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                target.read(i, &keys).await?;
                let took = started.elapsed();
                if recording.load(Ordering::Relaxed) {
                    hist.record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1))?;
                    ops += 1;
                }
                i = (i + 1) % keys.len();
                n += 1;
                if n.is_multiple_of(YIELD_EVERY) {
                    tokio::task::yield_now().await;
                }
            }
            Ok::<_, anyhow::Error>((ops, hist))
        });
    }
    let clock = {
        let (recording, stop) = (recording.clone(), stop.clone());
        std::thread::spawn(move || {
            std::thread::sleep(warmup);
            recording.store(true, Ordering::Relaxed);
            let started = Instant::now();
            std::thread::sleep(window);
            stop.store(true, Ordering::Relaxed);
            started.elapsed()
        })
    };
    let mut run = Run {
        ops: 0,
        window,
        hist: histogram()?,
    };
    let mut failed = None;
    while let Some(done) = set.join_next().await {
        match done.context("a reading task panicked")? {
            Ok((ops, hist)) => {
                run.ops += ops;
                run.hist.add(&hist)?;
            }
            Err(e) => {
                // Stop the others, then report the first failure.
                stop.store(true, Ordering::Relaxed);
                failed.get_or_insert(e);
            }
        }
    }
    run.window = tokio::task::spawn_blocking(move || clock.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the clock thread panicked"))?;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(run)
}

/// Differences of the counters a hit run moves.
fn served(before: &CacheStats, after: &CacheStats) -> (u64, u64, u64) {
    (
        after.hits_local - before.hits_local,
        after.hits_shared - before.hits_shared,
        after.loads - before.loads,
    )
}

const HIT_HEADER: &str = "| tier | shared tier | tasks | reads/s | p50 µs | p99 µs | baseline | baseline reads/s | baseline p50 µs | baseline p99 µs | added p50 µs | added p99 µs | local / shared hits |\n|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|";

fn hit_row(
    tier: &str,
    backend: &str,
    tasks: usize,
    cache: &Run,
    baseline_name: &str,
    baseline: &Run,
    split: (u64, u64, u64),
) -> String {
    let (local, shared, loads) = split;
    let all = (local + shared).max(1) as f64;
    let loads = if loads > 0 {
        format!(", **{loads} loads**")
    } else {
        String::new()
    };
    format!(
        "| {tier} | {backend} | {tasks} | {:.0} | {:.2} | {:.2} | {baseline_name} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}% / {:.2}%{loads} |",
        cache.per_second(),
        cache.us(0.5),
        cache.us(0.99),
        baseline.per_second(),
        baseline.us(0.5),
        baseline.us(0.99),
        cache.us(0.5) - baseline.us(0.5),
        cache.us(0.99) - baseline.us(0.99),
        local as f64 / all * 100.0,
        shared as f64 / all * 100.0,
    )
}

/// Local-tier hits: one instance, every key loaded once.
async fn hit_local(args: &Args) -> anyhow::Result<Vec<String>> {
    let world = World::Embedded {
        shared: LocalShared::new(),
        bus: LocalBus::new(),
    };
    let ns = unique("local");
    let cache = world
        .instance(&ns, "bench-reader", CacheOptions::new(TTL), true)
        .await?;
    let keys: Vec<String> = (0..args.keys).map(key).collect();
    for (i, k) in keys.iter().enumerate() {
        cache
            .get_or_load(k, || async { Ok::<_, std::io::Error>(Some(record(i))) })
            .await?;
    }
    let keys = Arc::new(keys);
    let cached = Arc::new(Target::Cache(cache.clone()));
    let loader = Arc::new(Target::Loader((0..args.keys).map(record).collect()));
    let mut rows = Vec::new();
    for &tasks in &args.concurrency {
        eprintln!("# hit: local tier, {tasks} tasks (load {})", load_average());
        let (run, base, split) = paired(args, &cache, &cached, &loader, &keys, tasks).await?;
        rows.push(hit_row(
            "local (moka)",
            "any (not asked)",
            tasks,
            &run,
            "trivial loader",
            &base,
            split,
        ));
    }
    Ok(rows)
}

/// Shared-tier hits: a writer stores the keys, a reader whose local tier
/// holds one entry reads them.
async fn hit_shared(args: &Args, world: &World) -> anyhow::Result<Vec<String>> {
    let ns = unique("shared");
    let writer = world
        .instance(&ns, "bench-writer", CacheOptions::new(TTL), false)
        .await?;
    eprintln!("# hit: {}: writing {} keys", world.name(), args.shared_keys);
    let keys: Vec<String> = (0..args.shared_keys).map(key).collect();
    let mut writes = JoinSet::new();
    for part in 0..16usize {
        let (writer, keys) = (writer.clone(), keys.clone());
        writes.spawn(async move {
            for i in (part..keys.len()).step_by(16) {
                writer.set(&keys[i], &record(i)).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = writes.join_next().await {
        done.context("a writing task panicked")??;
    }
    let reader = world
        .instance(
            &ns,
            "bench-reader",
            CacheOptions::new(TTL).bound(LocalBound::Entries(1)),
            false,
        )
        .await?;
    let (baseline_name, baseline) = match world {
        World::Embedded { .. } => (
            "trivial loader",
            Target::Loader((0..args.shared_keys).map(record).collect()),
        ),
        World::Redis { url, prefix } => (
            "plain GET",
            Target::Get(
                Raw::connect(url).await?,
                // The key the cache stores each entry under (see
                // coord::cache's Redis tier).
                keys.iter()
                    .map(|k| format!("{prefix}:cache:{{{ns}}}:{k}"))
                    .collect(),
            ),
        ),
    };
    let keys = Arc::new(keys);
    let cached = Arc::new(Target::Cache(reader.clone()));
    let baseline = Arc::new(baseline);
    let mut rows = Vec::new();
    for &tasks in &args.concurrency {
        eprintln!(
            "# hit: shared tier on {}, {tasks} tasks (load {})",
            world.name(),
            load_average()
        );
        let (run, base, split) = paired(args, &reader, &cached, &baseline, &keys, tasks).await?;
        rows.push(hit_row(
            "shared (local bound 1)",
            world.name(),
            tasks,
            &run,
            baseline_name,
            &base,
            split,
        ));
    }
    Ok(rows)
}

/// The cache and its baseline in `--slices` alternating slices, so that a
/// burst of load on the shared machine weighs on both alike; with the
/// split of the cache's reads between its tiers.
async fn paired(
    args: &Args,
    cache: &Cache<Record>,
    cached: &Arc<Target>,
    baseline: &Arc<Target>,
    keys: &Arc<Vec<String>>,
    tasks: usize,
) -> anyhow::Result<(Run, Run, (u64, u64, u64))> {
    let warmup = Duration::from_millis(args.warmup_ms);
    let slice = Duration::from_secs_f64(args.seconds / args.slices as f64);
    let (mut run, mut base) = (Run::empty()?, Run::empty()?);
    let before = cache.stats().await;
    for _ in 0..args.slices {
        run.absorb(drive(cached.clone(), keys.clone(), tasks, warmup, slice).await?)?;
        base.absorb(drive(baseline.clone(), keys.clone(), tasks, warmup, slice).await?)?;
    }
    let split = served(&before, &cache.stats().await);
    Ok((run, base, split))
}

/// Microsecond percentiles of a set of timings.
fn percentiles(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| {
        if sorted.is_empty() {
            return 0.0;
        }
        let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index].as_secs_f64() * 1e6
    };
    format!(
        "{} | {:.0} | {:.0} | {:.0} | {:.0}",
        sorted.len(),
        at(0.5),
        at(0.95),
        at(0.99),
        at(1.0)
    )
}

/// Waits until `cache` has applied more than `seen` invalidations; the
/// instant it saw it move.
async fn applied(cache: &Cache<Record>, seen: u64, deadline: Instant) -> Option<Instant> {
    loop {
        if cache.stats().await.invalidations_received > seen {
            return Some(Instant::now());
        }
        if Instant::now() > deadline {
            return None;
        }
        // A short blocking pause of the thread that polls (the main
        // thread, not one of the runtime's workers, which run the
        // listeners): spinning would take a whole core from them on this
        // two-core machine, and the timer's 1 ms would hide sub-ms
        // propagation.
        std::thread::sleep(POLL_PAUSE);
    }
}

/// Invalidation propagation across three instances.
async fn invalidation(args: &Args, world: &World) -> anyhow::Result<String> {
    let ns = unique("inv");
    let options = CacheOptions::new(TTL);
    let a = world
        .instance(&ns, "bench-a", options.clone(), true)
        .await?;
    let b = world
        .instance(&ns, "bench-b", options.clone(), true)
        .await?;
    let c = world.instance(&ns, "bench-c", options, true).await?;
    let k = key(0);
    // Per write kind (set, invalidate): the call, B and C from its start,
    // B and C after its return.
    let mut call: [Vec<Duration>; 2] = Default::default();
    let mut from_start: [Vec<Duration>; 2] = Default::default();
    let mut after_return: [Vec<Duration>; 2] = Default::default();
    let mut missed = 0u64;
    let rounds = args.invalidation_warmup + args.invalidations;
    eprintln!(
        "# invalidation: {}: {rounds} writes (load {})",
        world.name(),
        load_average()
    );
    for round in 0..rounds {
        let kind = round % 2;
        if kind == 1 {
            // B and C hold the value A set in the round before.
            ensure!(b.get(&k).await?.is_some(), "B did not find the key");
            ensure!(c.get(&k).await?.is_some(), "C did not find the key");
        } else {
            // After an invalidation, the key is gone everywhere: B and C
            // hold nothing, so the set's message has nothing to drop but
            // is still applied and counted.
            b.get(&k).await?;
            c.get(&k).await?;
        }
        let seen_b = b.stats().await.invalidations_received;
        let seen_c = c.stats().await.invalidations_received;
        let started = Instant::now();
        if kind == 0 {
            a.set(&k, &record(round)).await?;
        } else {
            a.invalidate(&k).await?;
        }
        let returned = Instant::now();
        let deadline = returned + APPLY_LIMIT;
        let (at_b, at_c) =
            tokio::join!(applied(&b, seen_b, deadline), applied(&c, seen_c, deadline));
        if round >= args.invalidation_warmup {
            call[kind].push(returned - started);
            for at in [at_b, at_c] {
                match at {
                    Some(at) => {
                        from_start[kind].push(at - started);
                        after_return[kind].push(at.saturating_duration_since(returned));
                    }
                    None => missed += 1,
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(args.spacing_ms)).await;
    }
    let (sa, sb, sc) = (a.stats().await, b.stats().await, c.stats().await);
    let mut out = format!(
        "#### Invalidation propagation, {} ({} timed writes, B and C together)\n\n\
         | write | measure | n | p50 µs | p95 µs | p99 µs | max µs |\n|---|---|---:|---:|---:|---:|---:|\n",
        world.name(),
        args.invalidations
    );
    for (kind, name) in [(0, "`set`"), (1, "`invalidate`")] {
        out += &format!("| {name} | A's call | {} |\n", percentiles(&call[kind]));
        out += &format!(
            "| {name} | B, C applied, from the call's start | {} |\n",
            percentiles(&from_start[kind])
        );
        out += &format!(
            "| {name} | B, C applied, after the call returned | {} |\n",
            percentiles(&after_return[kind])
        );
    }
    out += &format!(
        "\nMissed (not applied within {APPLY_LIMIT:?}): {missed}. Counters: A sent {} and received {} \
         (self-skip); B received {}, C received {} (of {rounds} writes); publish errors {}.\n",
        sa.invalidations_sent,
        sa.invalidations_received,
        sb.invalidations_received,
        sc.invalidations_received,
        sa.publish_errors + sb.publish_errors + sc.publish_errors
    );
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.concurrency.iter().all(|&n| n > 0),
        "--concurrency must be positive"
    );
    ensure!(
        args.keys > 0 && args.shared_keys > 0,
        "--keys must be positive"
    );
    ensure!(args.seconds > 0.0, "--seconds must be positive");
    ensure!(args.slices > 0, "--slices must be positive");
    let mut worlds = Vec::new();
    let wanted = |b: Backend| args.backend == b || args.backend == Backend::All;
    if wanted(Backend::Embedded) {
        worlds.push(World::Embedded {
            shared: LocalShared::new(),
            bus: LocalBus::new(),
        });
    }
    if wanted(Backend::Redis) {
        worlds.push(World::Redis {
            url: args.redis.clone(),
            prefix: unique("redis"),
        });
    }
    if wanted(Backend::Cluster) {
        let url = args
            .cluster
            .clone()
            .context("--cluster URL is needed (scripts/cluster url prints it)")?;
        worlds.push(World::Redis {
            url,
            prefix: unique("cluster"),
        });
    }
    let command: Vec<String> = std::env::args().collect();
    println!(
        "### switchyard-cache-bench\n\n`{}`: {} cores, load average {} at the start.\n",
        command.join(" "),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let outcome = async {
        if matches!(args.measure, Measure::Hit | Measure::All) {
            let mut rows = hit_local(&args).await?;
            for world in &worlds {
                rows.extend(hit_shared(&args, world).await?);
            }
            println!(
                "#### Hit path ({} s per run in {} slices alternating with the baseline, each after {} ms of warm-up; every read timed)\n\n{HIT_HEADER}\n{}\n",
                args.seconds,
                args.slices,
                args.warmup_ms,
                rows.join("\n")
            );
        }
        if matches!(args.measure, Measure::Invalidation | Measure::All) {
            for world in &worlds {
                println!("{}", invalidation(&args, world).await?);
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    println!("Load average at the end: {}.", load_average());
    for world in &worlds {
        world.cleanup().await;
    }
    outcome
}
