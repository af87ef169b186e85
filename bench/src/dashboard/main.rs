//! `switchyard-dashboard-bench`: how the dashboard holds up against a big
//! queue on Redis. The goal it checks (figures in `docs/PERFORMANCE.md`):
//! with 1,000,000 waiting and 100,000 failed jobs in one queue, the queue
//! page and the failed table render with p99 under 50 ms, the live hub's
//! tick costs the same as with an empty queue, and one server process holds
//! 500 live (server-sent events) clients in under 200 MB of RSS.
//!
//! Run it with `bench/dashboard` (builds the release binaries first), or:
//!
//! ```sh
//! cargo build --release -p server -p switchyard-bench
//! target/release/switchyard-dashboard-bench   # the defaults are the goal's sizes
//! ```
//!
//! What it does, on a fresh Redis key prefix (`bench-dash-<pid>-<time>`,
//! deleted at the end unless `--keep`):
//!
//! 1. `ticks`: starts a live hub in this process (`server::live::Hub`, the
//!    one the server runs), keeps it ticking by enqueueing a job into a
//!    second, small queue every 100 ms, and records each snapshot's `took`
//!    (health check plus every queue's counts): first with the big queue
//!    empty, then again after the fill. Each tick also times rendering the
//!    overview and queues regions and reloading and rendering the failed
//!    table, which is what the live streams do per tick.
//! 2. fill: enqueues `--failed` jobs with one attempt each, fails them with
//!    a worker (so they carry a real failed reason and history), then
//!    enqueues `--waiting` jobs; about 200 bytes of JSON data each.
//! 3. `pages`: starts the release server (`switchyard serve`) as a child
//!    process and times `--requests` sequential GETs of each page from a
//!    minimal HTTP/1.1 client (new connection per request), then the two
//!    big pages from `--parallel` concurrent clients.
//! 4. `sse`: opens `--sse-clients` event streams on the same server (40%
//!    overview, 30% queues table, 30% the big queue's failed table), then
//!    for `--sse-seconds` completes jobs in the small queue and fails a few
//!    jobs of the big one (so every stream has something to show) while
//!    timing the two big pages every 100 ms. Reports the server's RSS from
//!    `/proc` before, during and after, its CPU time, and the `swap` events
//!    each client received.
//!
//! Rounds that run on their own: `scale`, `listing`, `schedules`, and
//! `redis-page` (the Redis page's commands on Redis with 0, 1 and 100 open
//! pages, on a private redis-server; see `redis_page.rs`).
//!
//! The report (markdown) goes to stdout, progress to stderr. This is a
//! benchmark, not a test: it prints the figures and whether each goal was
//! met, and fails only when something did not work.

mod fill;
mod http;
#[path = "../schedules/idle.rs"]
mod idle;
#[path = "../keys.rs"]
mod keys;
mod listing;
mod procfs;
mod redis_page;
mod scale;
mod schedules;
mod stats;

use keys::{Removal, delete_prefix};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use coord::queue::redis::RedisBackend;
use coord::queue::{JobError, QueueName, Queues};
use serde_json::Value;
use server::live::Hub;
use server::queues::figures::Thresholds;
use server::queues::vm::{QueuePageParams, listing, queue_page};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::http::{StreamControl, StreamStats};
use crate::procfs::{Memory, cpu_seconds, listen_overflows, mib};
use crate::stats::{Summary, ms, spread};

/// The big queue.
const BIG: &str = "emails";
/// The small queue whose activity keeps the hub ticking.
const SMALL: &str = "webhooks";
/// The goals, as the issue states them.
const PAGE_P99_GOAL: Duration = Duration::from_millis(50);
const RSS_GOAL_MIB: f64 = 200.0;
/// Snapshots taken before the measured ones (connections warming up).
const TICK_WARMUP: u64 = 2;
/// How long to wait for the hub's next snapshot before giving up.
const TICK_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measure {
    Ticks,
    Pages,
    Sse,
    /// Thousands of small queues (`--scale-queues`), on their own: the
    /// other rounds' big queue is not filled for it.
    Scale,
    /// Listings of big jobs (`--listing-jobs` of `--listing-kib`), on
    /// their own.
    Listing,
    /// `--schedules` idle schedules, on their own: the idle server's CPU
    /// and the schedules page and API.
    Schedules,
    /// The Redis page's cost on Redis with 0, 1 and 100 open pages, on a
    /// private redis-server of its own (`--redis` is not used).
    RedisPage,
}

/// Dashboard benchmark: page latency, live tick cost and memory per live
/// client, against one queue of 1.1 million jobs on Redis.
#[derive(Debug, Parser)]
#[command(name = "switchyard-dashboard-bench", version)]
struct Args {
    /// Redis URL.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// The server binary [default: `switchyard` next to this binary].
    #[arg(long, value_name = "PATH")]
    server: Option<PathBuf>,
    /// Waiting jobs in the big queue.
    #[arg(long, default_value_t = 1_000_000)]
    waiting: u64,
    /// Failed jobs in the big queue.
    #[arg(long, default_value_t = 100_000)]
    failed: u64,
    /// Timed sequential requests per page.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// Untimed requests per page first.
    #[arg(long, default_value_t = 30)]
    warmup: usize,
    /// Concurrent clients of the parallel page round (0: skip it).
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Hub snapshots measured per tick round.
    #[arg(long, default_value_t = 100)]
    ticks: usize,
    /// Live (server-sent events) clients.
    #[arg(long, default_value_t = 500)]
    sse_clients: usize,
    /// Seconds of queue activity with the live clients connected.
    #[arg(long, default_value_t = 30)]
    sse_seconds: u64,
    /// Which measurements to take (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ticks,pages,sse"
    )]
    measure: Vec<Measure>,
    /// Use this key prefix; if its big queue already holds jobs (from an
    /// earlier `--keep` run), skip the fill and the empty-queue tick round.
    #[arg(long)]
    prefix: Option<String>,
    /// Leave the data in Redis at the end (to rerun with `--prefix`).
    #[arg(long)]
    keep: bool,
    /// Queues of the `scale` round (one waiting job each).
    #[arg(long, default_value_t = 10_000)]
    scale_queues: usize,
    /// BullMQ queues of the `scale` round (a `meta` hash and one waiting
    /// job id each, as BullMQ lays them out, under `<prefix>-bull`),
    /// watched by the server with `--bullmq`; 0 for none.
    #[arg(long, default_value_t = 0)]
    scale_bullmq_queues: usize,
    /// Seconds the `scale` round measures the idle server's CPU over (the
    /// `schedules` round too, before and after writing them).
    #[arg(long, default_value_t = 60)]
    scale_idle_seconds: u64,
    /// Jobs of the `listing` round.
    #[arg(long, default_value_t = 300)]
    listing_jobs: u64,
    /// KiB of data per job of the `listing` round.
    #[arg(long, default_value_t = 1024)]
    listing_kib: usize,
    /// Idle schedules of the `schedules` round.
    #[arg(long, default_value_t = 10_000)]
    schedules: usize,
    /// Open Redis pages (`/events/redis` streams) in each phase of the
    /// `redis-page` round, in order.
    #[arg(long, value_delimiter = ',', default_value = "0,1,100")]
    redis_page_clients: Vec<usize>,
    /// Seconds each phase of the `redis-page` round is measured over
    /// (the key space is sampled every 60 s).
    #[arg(long, default_value_t = 120)]
    redis_page_seconds: u64,
    /// Keys the `redis-page` round writes to its private Redis first.
    #[arg(long, default_value_t = 100_000)]
    redis_page_keys: usize,
}

/// Markdown report, printed section by section as each is measured.
fn section(text: &str) {
    println!("{text}");
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The thresholds the server uses by default.
fn thresholds() -> Thresholds {
    Thresholds {
        busy_active: 100,
        warning_failure_rate: 5.0,
    }
}

fn page_query(state: &str) -> anyhow::Result<server::queues::vm::QueuePageQuery> {
    QueuePageParams {
        state: Some(state.into()),
        ..QueuePageParams::default()
    }
    .parse()
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// What one tick round measured, one sample per snapshot.
#[derive(Default)]
struct Ticks {
    took: Vec<Duration>,
    overview_render: Vec<Duration>,
    queues_render: Vec<Duration>,
    failed_reload: Vec<Duration>,
    failed_render: Vec<Duration>,
    /// Snapshots taken while this round was busy with the previous one.
    missed: u64,
}

/// Runs a hub on `queues` until it has taken `count` snapshots (after a
/// warm-up), keeping it busy with one enqueue into the small queue every
/// 100 ms, so it ticks at its fastest (every 500 ms).
async fn measure_ticks(queues: &Queues, count: usize) -> anyhow::Result<Ticks> {
    let big = QueueName::new(BIG)?;
    let small = QueueName::new(SMALL)?;
    let hub = Hub::start(queues.clone(), thresholds());
    let mut snapshots = hub.subscribe();
    let (stop, mut stopped) = watch::channel(false);
    let producer = {
        let queues = queues.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            let mut every = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => return Ok::<_, anyhow::Error>(()),
                    _ = every.tick() => {}
                }
                queues.enqueue(&small, fill::email(i)).await?;
                i += 1;
            }
        })
    };
    let query = page_query("failed")?;
    let mut ticks = Ticks::default();
    let mut last_seq = 0;
    let outcome = async {
        while ticks.took.len() < count {
            tokio::time::timeout(TICK_TIMEOUT, snapshots.changed())
                .await
                .context("the hub took no snapshot for 15 s")?
                .context("the hub stopped")?;
            let snapshot = snapshots.borrow_and_update().clone();
            if snapshot.seq <= TICK_WARMUP {
                last_seq = snapshot.seq;
                continue;
            }
            ticks.missed += snapshot.seq.saturating_sub(last_seq + 1);
            last_seq = snapshot.seq;
            ensure!(
                snapshot.backend.reachable,
                "the hub sees the backend down: {:?}",
                snapshot.backend.problem
            );
            ticks.took.push(snapshot.took);
            let t = Instant::now();
            app::overview_fragments(&server::queues::vm::overview(&snapshot));
            ticks.overview_render.push(t.elapsed());
            let t = Instant::now();
            app::queues_fragments(&server::queues::vm::queues_page(
                &snapshot,
                &app::QueuesQuery::default(),
            ));
            ticks.queues_render.push(t.elapsed());
            let t = Instant::now();
            let found = listing(
                queues,
                &big,
                &query,
                server::queues::vm::DEFAULT_LISTING_VALUE_BYTES,
            )
            .await?;
            ticks.failed_reload.push(t.elapsed());
            let figures = snapshot
                .queue(BIG)
                .cloned()
                .with_context(|| format!("the snapshot has no row for {BIG}"))?;
            let vm = queue_page(&figures, &query, found, &snapshot);
            let t = Instant::now();
            let fragments = app::queue_fragments(&vm, snapshot.taken_at);
            ticks.failed_render.push(t.elapsed());
            ensure!(!fragments.is_empty(), "the queue page rendered no regions");
        }
        Ok(())
    }
    .await;
    let _ = stop.send(true);
    producer.await.context("the tick producer panicked")??;
    outcome?;
    Ok(ticks)
}

fn tick_rows(label: &str, t: &Ticks) -> String {
    let row = |what: &str, samples: &[Duration]| {
        let s = Summary::of(samples);
        format!(
            "| {label} | {what} | {} | {} | {} | {} | {} |\n",
            s.n,
            ms(s.p50),
            ms(s.p95),
            ms(s.p99),
            ms(s.max)
        )
    };
    let mut out = String::new();
    out += &row("tick (`Snapshot::took`)", &t.took);
    out += &row("render overview regions", &t.overview_render);
    out += &row("render queues regions", &t.queues_render);
    out += &row("reload failed table (50 rows)", &t.failed_reload);
    out += &row("render queue page regions", &t.failed_render);
    out
}

const TICK_HEADER: &str = "| big queue | per snapshot | n | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---:|---:|---:|---:|---:|";

/// The release server, run as a child process on port 0.
struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
}

/// The password of the admin the benchmark's server starts with.
const BENCH_PASSWORD: &str = "bench admin passphrase 2026";

impl Server {
    async fn start(
        bin: &Path,
        redis: &str,
        prefix: &str,
        dir: &Path,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let db = dir.join("server.db");
        let db = db.to_str().context("temp path is not UTF-8")?;
        let mut child = Command::new(bin)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(["--redis", redis])
            .args(["--redis-prefix", prefix])
            .args(["--database-url", &format!("sqlite://{db}?mode=rwc")])
            .args(["--log", "warn"])
            // Every simulated client comes from 127.0.0.1: one address's
            // page limit would refuse most of them. The limit layer's own
            // cost is measured by switchyard-ratelimit-bench.
            .args(["--rate-limit-pages", "off"])
            .args(["--rate-limit-actions", "off"])
            .args(["--rate-limit-api", "off"])
            // …and its connection cap would close most of the 500 streams.
            .args(["--max-connections-per-address", "0"])
            .args(extra)
            .env_remove("SWITCHYARD_CONFIG")
            // The first admin, to sign in as: pages need a signed-in user.
            .env("SWITCHYARD_ADMIN_PASSWORD", BENCH_PASSWORD)
            .env_remove("SWITCHYARD_ADMIN_USER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the server printed no address within 30 s")??
            .context("the server exited before printing its address")?;
        // "Switchyard serving on http://127.0.0.1:PORT (Redis …)"
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .and_then(|a| a.trim_end_matches('/').parse::<SocketAddr>().ok())
            .with_context(|| format!("no address in the server's line {line:?}"))?;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        eprintln!("# server: pid {pid} on http://{addr}");
        http::sign_in(addr, "admin", BENCH_PASSWORD).await?;
        Ok(Self { child, pid, addr })
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it lingers.
    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                eprintln!("# server did not stop within 10 s of SIGTERM; killing it");
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

/// The server binary: `--server`, or `switchyard` next to this binary.
fn server_binary(args: &Args) -> anyhow::Result<PathBuf> {
    let path = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no directory")?
            .join("switchyard"),
    };
    ensure!(
        path.is_file(),
        "no server binary at {} (build it with `cargo build --release -p server`, or pass --server)",
        path.display()
    );
    Ok(path)
}

/// Times `requests` sequential GETs of each page after `warmup` untimed ones.
async fn measure_pages(
    addr: SocketAddr,
    pages: &[(String, String)],
    requests: usize,
    warmup: usize,
) -> anyhow::Result<String> {
    let mut out = String::from(
        "| page | path | bytes | n | p50 ms | p95 ms | p99 ms | max ms | p99 < 50 ms |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut body = Vec::new();
    for (label, path) in pages {
        eprintln!("# pages: {label} ({path})");
        for _ in 0..warmup {
            http::get(addr, path, &mut body).await?;
        }
        let mut samples = Vec::with_capacity(requests);
        let mut bytes = 0;
        for _ in 0..requests {
            let f = http::get(addr, path, &mut body).await?;
            samples.push(f.took);
            bytes = f.bytes;
        }
        let s = Summary::of(&samples);
        out += &format!(
            "| {label} | `{path}` | {bytes} | {} | {} | {} | {} | {} | {} |\n",
            s.n,
            ms(s.p50),
            ms(s.p95),
            ms(s.p99),
            ms(s.max),
            if s.p99 < PAGE_P99_GOAL {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    Ok(out)
}

/// `clients` concurrent clients, each fetching the pages in turn until
/// `requests` requests per page have been made in all.
async fn measure_parallel(
    addr: SocketAddr,
    pages: &[(String, String)],
    requests: usize,
    clients: usize,
) -> anyhow::Result<String> {
    let per_client = requests.div_ceil(clients);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for c in 0..clients {
        let pages = pages.to_vec();
        tasks.spawn(async move {
            let mut body = Vec::new();
            let mut samples = vec![Vec::with_capacity(per_client); pages.len()];
            for i in 0..per_client {
                for k in 0..pages.len() {
                    // Clients start on different pages.
                    let p = (k + i + c) % pages.len();
                    let f = http::get(addr, &pages[p].1, &mut body).await?;
                    samples[p].push(f.took);
                }
            }
            Ok::<_, anyhow::Error>(samples)
        });
    }
    let mut all = vec![Vec::new(); pages.len()];
    while let Some(done) = tasks.join_next().await {
        for (p, s) in done
            .context("a client task panicked")??
            .into_iter()
            .enumerate()
        {
            all[p].extend(s);
        }
    }
    let wall = started.elapsed();
    let total: usize = all.iter().map(Vec::len).sum();
    let mut out = format!(
        "{clients} concurrent clients, {total} requests in {:.2} s ({:.0} requests/s):\n\n| page | n | p50 ms | p95 ms | p99 ms | max ms | p99 < 50 ms |\n|---|---:|---:|---:|---:|---:|---|\n",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64()
    );
    for ((label, _), samples) in pages.iter().zip(&all) {
        let s = Summary::of(samples);
        out += &format!(
            "| {label} | {} | {} | {} | {} | {} | {} |\n",
            s.n,
            ms(s.p50),
            ms(s.p95),
            ms(s.p99),
            ms(s.max),
            if s.p99 < PAGE_P99_GOAL {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    Ok(out)
}

/// Queue activity for the live window: a worker completing jobs that a
/// producer adds to the small queue (50 a second), and a slow worker
/// failing about four jobs a second of the big queue, so the failed table
/// changes on every tick.
struct Activity {
    stop: watch::Sender<bool>,
    producer: tokio::task::JoinHandle<anyhow::Result<u64>>,
    workers: Vec<coord::queue::WorkerHandle>,
}

impl Activity {
    fn start(queues: &Queues) -> anyhow::Result<Self> {
        let big = QueueName::new(BIG)?;
        let small = QueueName::new(SMALL)?;
        let completer = queues
            .worker(small.clone())
            .concurrency(10)
            .start(|_job| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Value::Null)
            })?;
        let failer = queues.worker(big).concurrency(1).start(|job| async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let to = job
                .data
                .get("to")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            Err::<Value, _>(JobError::fatal(format!(
                "SMTP 421 4.7.0 <{to}>: try again later, closing connection"
            )))
        })?;
        let (stop, mut stopped) = watch::channel(false);
        let producer = {
            let queues = queues.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_millis(100));
                let mut added = 0u64;
                loop {
                    tokio::select! {
                        _ = stopped.wait_for(|s| *s) => return Ok(added),
                        _ = every.tick() => {}
                    }
                    let jobs = (0..5)
                        .map(|k| fill::email(10_000_000 + added + k))
                        .collect();
                    queues.enqueue_bulk(&small, jobs).await?;
                    added += 5;
                }
            })
        };
        Ok(Self {
            stop,
            producer,
            workers: vec![completer, failer],
        })
    }

    /// Stops it; returns (jobs added, jobs completed, jobs failed).
    async fn stop(self) -> anyhow::Result<(u64, u64, u64)> {
        let _ = self.stop.send(true);
        let added = self.producer.await.context("the producer panicked")??;
        let mut done = [0u64; 2];
        for (i, w) in self.workers.into_iter().enumerate() {
            let stats = w.shutdown(Duration::from_secs(2)).await;
            done[i] = if i == 0 {
                stats.completed
            } else {
                stats.failed
            };
        }
        Ok((added, done[0], done[1]))
    }
}

/// The live-client measurement; returns its report section.
async fn measure_sse(
    server: &Server,
    queues: &Queues,
    clients: usize,
    seconds: u64,
    pages: &[(String, String)],
) -> anyhow::Result<String> {
    let pid = server.pid;
    let addr = server.addr;
    let scopes = [
        ("overview", "/events/overview".to_string(), 40),
        ("queues table", "/events/queues".to_string(), 30),
        (
            "failed table of `emails`",
            format!("/events/queues/{BIG}?state=failed"),
            30,
        ),
    ];
    let idle = Memory::of(pid)?;
    let overflows_before = listen_overflows()?;
    let control = Arc::new(StreamControl::default());
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let connecting = Instant::now();
    let mut per_scope = [0usize; 3];
    for i in 0..clients {
        // 40/30/30 in whole clients: 200/150/150 of 500.
        let scope = if i < clients * 40 / 100 {
            0
        } else if i < clients * 70 / 100 {
            1
        } else {
            2
        };
        per_scope[scope] += 1;
        let path = scopes[scope].1.clone();
        let control = control.clone();
        let stopped = stopped.clone();
        tasks.spawn(async move {
            (
                scope,
                http::event_stream(addr, path, control, stopped).await,
            )
        });
    }
    eprintln!("# sse: {clients} clients connecting");
    let ready_by = Instant::now() + Duration::from_secs(60);
    while control.ready.load(Ordering::Relaxed) < clients && Instant::now() < ready_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_ready = connecting.elapsed();
    let ready = control.ready.load(Ordering::Relaxed);
    ensure!(
        ready == clients,
        "only {ready} of {clients} live clients got their first event within 60 s"
    );
    let overflows = listen_overflows()?.saturating_sub(overflows_before);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = Memory::of(pid)?;

    eprintln!("# sse: all connected in {all_ready:?}; {seconds} s of activity");
    let cpu_before = cpu_seconds(pid)?;
    let window_started = Instant::now();
    control.window.store(true, Ordering::Relaxed);
    let activity = Activity::start(queues)?;
    // The two big pages timed in turn, one request every 100 ms, while the
    // streams are busy.
    let window = Duration::from_secs(seconds);
    let mut page_samples = vec![Vec::new(); pages.len()];
    let mut peak = connected;
    let mut body = Vec::new();
    let mut next_memory = Instant::now();
    let mut k = 0;
    while window_started.elapsed() < window {
        let p = k % pages.len();
        k += 1;
        let f = http::get(addr, &pages[p].1, &mut body).await?;
        page_samples[p].push(f.took);
        if Instant::now() >= next_memory {
            next_memory += Duration::from_secs(1);
            let m = Memory::of(pid)?;
            if m.rss_kib > peak.rss_kib {
                peak = m;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    control.window.store(false, Ordering::Relaxed);
    let wall = window_started.elapsed();
    let cpu = cpu_seconds(pid)? - cpu_before;
    let end = Memory::of(pid)?;
    let (added, completed, failed) = activity.stop().await?;

    let _ = stop.send(true);
    let mut results: Vec<(usize, StreamStats)> = Vec::with_capacity(clients);
    while let Some(done) = tasks.join_next().await {
        results.push(done.context("a live client panicked")?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let closed = Memory::of(pid)?;
    let errors: Vec<&String> = results
        .iter()
        .filter_map(|(_, s)| s.error.as_ref())
        .collect();

    let mut out = String::new();
    out += &format!(
        "{clients} clients ({} overview, {} queues table, {} failed table); all had their first `swap` event {:.2} s after the first connect.\n\n",
        per_scope[0],
        per_scope[1],
        per_scope[2],
        all_ready.as_secs_f64()
    );
    out += "| server process | VmRSS MiB | VmHWM MiB | threads |\n|---|---:|---:|---:|\n";
    for (label, m) in [
        ("before the clients connect", idle),
        ("all clients connected", connected),
        ("highest sample in the window (1/s)", peak),
        ("end of the window", end),
        ("2 s after the clients closed", closed),
    ] {
        out += &format!(
            "| {label} | {} | {} | {} |\n",
            mib(m.rss_kib),
            mib(m.hwm_kib),
            m.threads
        );
    }
    let worst = [idle, connected, peak, end]
        .iter()
        .map(|m| m.hwm_kib)
        .max()
        .unwrap_or(0);
    out += &format!(
        "\nRSS goal (< {RSS_GOAL_MIB} MB with {clients} clients): {} (high-water mark {} MiB).\n\n",
        if (worst as f64 / 1024.0) < RSS_GOAL_MIB {
            "met"
        } else {
            "**missed**"
        },
        mib(worst)
    );
    out += &format!(
        "Activity over {:.1} s: {added} jobs added to `{SMALL}` and {completed} completed (with those the tick rounds left there), {failed} jobs of `{BIG}` failed. Server CPU {cpu:.2} s = {:.0}% of one core.\n\n",
        wall.as_secs_f64(),
        100.0 * cpu / wall.as_secs_f64()
    );
    out += "| stream | clients | `swap` events in the window: min | median | max | all events, median | body KiB, median |\n|---|---:|---:|---:|---:|---:|---:|\n";
    for (s, (label, path, _)) in scopes.iter().enumerate() {
        let of: Vec<&StreamStats> = results
            .iter()
            .filter(|(scope, _)| *scope == s)
            .map(|(_, st)| st)
            .collect();
        let window: Vec<u64> = of.iter().map(|st| st.swaps_in_window).collect();
        let all: Vec<u64> = of.iter().map(|st| st.swaps).collect();
        let bytes: Vec<u64> = of.iter().map(|st| st.bytes / 1024).collect();
        let (min, median, max) = spread(&window);
        out += &format!(
            "| {label} (`{path}`) | {} | {min} | {median} | {max} | {} | {} |\n",
            of.len(),
            spread(&all).1,
            spread(&bytes).1
        );
    }
    let first: Vec<Duration> = results.iter().filter_map(|(_, s)| s.first_swap).collect();
    let fs = Summary::of(&first);
    // A connection whose SYN was dropped is retried by the kernel after
    // about a second.
    let slow = first
        .iter()
        .filter(|d| **d >= Duration::from_secs(1))
        .count();
    out += &format!(
        "\nFirst `swap` event after connecting: p50 {} ms, p99 {} ms, max {} ms; {slow} clients waited 1 s or more. Listen-queue overflows while connecting (system-wide `ListenOverflows`): {overflows}. Streams that ended early or failed: {}{}.\n\n",
        ms(fs.p50),
        ms(fs.p99),
        ms(fs.max),
        errors.len(),
        errors
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    out += "Pages timed during the window (one request every 100 ms, alternating):\n\n| page | n | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n";
    for ((label, _), samples) in pages.iter().zip(&page_samples) {
        let s = Summary::of(samples);
        out += &format!(
            "| {label} | {} | {} | {} | {} | {} |\n",
            s.n,
            ms(s.p50),
            ms(s.p95),
            ms(s.p99),
            ms(s.max)
        );
    }
    Ok(out)
}

/// Redis's `used_memory_human` and the number of keys under the prefix.
async fn redis_memory(url: &str) -> anyhow::Result<String> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await?;
    Ok(info
        .lines()
        .find_map(|l| l.trim().strip_prefix("used_memory_human:"))
        .unwrap_or("?")
        .to_string())
}

async fn run(args: &Args, prefix: &str, dir: &Path) -> anyhow::Result<()> {
    if args.measure.contains(&Measure::RedisPage) {
        ensure!(
            args.measure.len() == 1,
            "--measure redis-page runs on its own"
        );
        ensure!(
            args.redis_page_seconds > 0,
            "--redis-page-seconds must be positive"
        );
        let bin = server_binary(args)?;
        let report = redis_page::measure(
            &bin,
            dir,
            &redis_page::RedisPageArgs {
                clients: args.redis_page_clients.clone(),
                seconds: args.redis_page_seconds,
                keys: args.redis_page_keys,
            },
        )
        .await?;
        section(&format!("### The Redis page's cost on Redis\n\n{report}"));
        return Ok(());
    }
    let backend = RedisBackend::connect(&args.redis, prefix)
        .await
        .with_context(|| format!("connecting to Redis at {}", args.redis))?;
    let queues = Queues::new(Arc::new(backend));
    let big = QueueName::new(BIG)?;
    let small = QueueName::new(SMALL)?;
    if args.measure.contains(&Measure::Listing) {
        ensure!(args.measure.len() == 1, "--measure listing runs on its own");
        let bytes = args.listing_kib * 1024;
        eprintln!(
            "# listing: {} jobs of {} KiB",
            args.listing_jobs, args.listing_kib
        );
        let took = listing::fill(&queues, args.listing_jobs, bytes).await?;
        eprintln!("# listing: filled in {:.1} s", took.as_secs_f64());
        let bin = server_binary(args)?;
        let server = Server::start(&bin, &args.redis, prefix, dir, &[]).await?;
        let report = listing::report(&server, args.listing_jobs, bytes).await;
        let stopped = server.stop().await;
        section(&format!(
            "### Listings of big jobs

{}",
            report?
        ));
        return stopped;
    }
    if args.measure.contains(&Measure::Schedules) {
        ensure!(
            args.measure.len() == 1,
            "--measure schedules runs on its own"
        );
        ensure!(args.schedules > 0, "--schedules must be positive");
        let bin = server_binary(args)?;
        let server = Server::start(&bin, &args.redis, prefix, dir, &[]).await?;
        let report = schedules::measure(
            &server,
            &queues,
            &schedules::SchedulesArgs {
                schedules: args.schedules,
                idle_seconds: args.scale_idle_seconds,
                requests: args.requests,
            },
        )
        .await;
        let stopped = server.stop().await;
        section(&format!(
            "### {} schedules\n\n{}",
            app::format_count(args.schedules as u64),
            report?
        ));
        return stopped;
    }
    if args.measure.contains(&Measure::Scale) {
        ensure!(
            args.measure.len() == 1,
            "--measure scale runs on its own (it needs a prefix without the big queue)"
        );
        ensure!(args.scale_queues > 10, "--scale-queues must be above 10");
        eprintln!("# scale: creating {} queues", args.scale_queues);
        let took = scale::fill_queues(&queues, args.scale_queues).await?;
        eprintln!("# scale: created in {:.1} s", took.as_secs_f64());
        let bull_prefix = format!("{prefix}-bull");
        let mut extra = Vec::new();
        if args.scale_bullmq_queues > 0 {
            eprintln!(
                "# scale: creating {} BullMQ queues",
                args.scale_bullmq_queues
            );
            scale::fill_bullmq(&args.redis, &bull_prefix, args.scale_bullmq_queues).await?;
            extra = vec![
                "--bullmq".to_string(),
                args.redis.clone(),
                "--bullmq-prefix".to_string(),
                bull_prefix.clone(),
            ];
        }
        let bin = server_binary(args)?;
        let server = Server::start(&bin, &args.redis, prefix, dir, &extra).await?;
        let report = scale::measure(
            &server,
            &queues,
            &scale::ScaleArgs {
                queues: args.scale_queues,
                bullmq_queues: args.scale_bullmq_queues,
                idle_seconds: args.scale_idle_seconds,
                live_seconds: args.sse_seconds,
                requests: args.requests,
            },
        )
        .await;
        let stopped = server.stop().await;
        section(&format!(
            "### {} queues

{}",
            app::format_count(args.scale_queues as u64),
            report?
        ));
        return stopped;
    }
    let existing = queues.counts(&big).await.ok();
    let reuse = existing.is_some_and(|c| c.waiting + c.failed > 0);

    if reuse {
        eprintln!("# reusing the data under {prefix}: skipping the fill");
    } else {
        // Both queues exist and are empty: the empty round sees the same
        // number of queues as the full one.
        for q in [&big, &small] {
            let id = queues.enqueue(q, fill::email(0)).await?;
            queues.remove(q, &id).await?;
        }
        if args.measure.contains(&Measure::Ticks) {
            eprintln!("# ticks: {} snapshots with {BIG} empty", args.ticks);
            let empty = measure_ticks(&queues, args.ticks).await?;
            section(&format!(
                "### Live hub tick, `{BIG}` empty\n\n{TICK_HEADER}\n{}\nSnapshots missed while measuring: {}.\n",
                tick_rows("empty", &empty),
                empty.missed
            ));
        }
        let times = fill::fill(&queues, &big, args.waiting, args.failed).await?;
        section(&format!(
            "### Fill\n\n| step | jobs | seconds | jobs/s |\n|---|---:|---:|---:|\n| enqueue (1 attempt each) | {f} | {:.1} | {:.0} |\n| fail them (worker, concurrency 200) | {f} | {:.1} | {:.0} |\n| enqueue waiting | {w} | {:.1} | {:.0} |\n\nRedis `used_memory` after the fill: {}.\n",
            times.enqueue_failed.as_secs_f64(),
            args.failed as f64 / times.enqueue_failed.as_secs_f64(),
            times.fail.as_secs_f64(),
            args.failed as f64 / times.fail.as_secs_f64(),
            times.enqueue_waiting.as_secs_f64(),
            args.waiting as f64 / times.enqueue_waiting.as_secs_f64(),
            redis_memory(&args.redis).await?,
            f = args.failed,
            w = args.waiting,
        ));
    }
    let counts = queues.counts(&big).await?;
    let label = format!(
        "{} waiting + {} failed",
        app::format_count(counts.waiting),
        app::format_count(counts.failed)
    );
    if args.measure.contains(&Measure::Ticks) {
        eprintln!("# ticks: {} snapshots with {label}", args.ticks);
        let full = measure_ticks(&queues, args.ticks).await?;
        section(&format!(
            "### Live hub tick, `{BIG}` with {label}\n\n{TICK_HEADER}\n{}\nSnapshots missed while measuring: {}.\n",
            tick_rows(&label, &full),
            full.missed
        ));
    }

    if !(args.measure.contains(&Measure::Pages) || args.measure.contains(&Measure::Sse)) {
        return Ok(());
    }
    let bin = server_binary(args)?;
    let server = Server::start(&bin, &args.redis, prefix, dir, &[]).await?;
    let outcome = async {
        let last_waiting = counts.waiting.saturating_sub(50);
        let last_failed = counts.failed.saturating_sub(50);
        let big_pages = vec![
            (
                "queue page, waiting".to_string(),
                format!("/queues/{BIG}?state=waiting"),
            ),
            (
                "failed table".to_string(),
                format!("/queues/{BIG}?state=failed"),
            ),
        ];
        // A page shows what it claims: the big queue's counts.
        let mut body = Vec::new();
        http::get(server.addr, &big_pages[0].1, &mut body).await?;
        let shown = app::format_count(counts.waiting);
        ensure!(
            String::from_utf8_lossy(&body).contains(&shown),
            "the queue page does not show {shown} waiting jobs"
        );
        if args.measure.contains(&Measure::Pages) {
            let mut pages = big_pages.clone();
            pages.extend([
                (
                    "waiting, last page".to_string(),
                    format!("/queues/{BIG}?state=waiting&offset={last_waiting}"),
                ),
                (
                    "failed, last page".to_string(),
                    format!("/queues/{BIG}?state=failed&offset={last_failed}"),
                ),
                ("queues table".to_string(), "/queues".to_string()),
                ("overview".to_string(), "/".to_string()),
            ]);
            let memory = Memory::of(server.pid)?;
            let sequential = measure_pages(server.addr, &pages, args.requests, args.warmup).await?;
            section(&format!(
                "### Pages, `{BIG}` with {label}\n\nOne client, one request at a time, a new connection each; {} requests per page after {} untimed. Server RSS before: {} MiB.\n\n{sequential}",
                args.requests,
                args.warmup,
                mib(memory.rss_kib)
            ));
            if args.parallel > 0 {
                eprintln!("# pages: {} concurrent clients", args.parallel);
                let parallel =
                    measure_parallel(server.addr, &big_pages, args.requests, args.parallel)
                        .await?;
                section(&parallel);
            }
        }
        if args.measure.contains(&Measure::Sse) {
            let report =
                measure_sse(&server, &queues, args.sse_clients, args.sse_seconds, &big_pages)
                    .await?;
            section(&format!(
                "### {} live clients on one server\n\n{report}",
                args.sse_clients
            ));
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let stopped = server.stop().await;
    outcome?;
    stopped
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
    ensure!(args.requests > 0, "--requests must be positive");
    ensure!(args.ticks > 0, "--ticks must be positive");
    ensure!(args.sse_clients > 0, "--sse-clients must be positive");
    let prefix = args.prefix.clone().unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!(
            "bench-dash-{}-{}{nanos:09}",
            std::process::id(),
            unix_seconds()
        )
    });
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let command: Vec<String> = std::env::args().collect();
    section(&format!(
        "## Dashboard benchmark run\n\n`{}` — prefix `{prefix}`, started at unix time {}, {} cores, load average {}.\n",
        command.join(" "),
        unix_seconds(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    ));
    let outcome = run(&args, &prefix, &dir).await;
    section(&format!("Load average at the end: {}.", load_average()));

    let mut cleanup = Ok(());
    if args.keep {
        eprintln!("# --keep: the data stays under {prefix}: (rerun with --prefix {prefix})");
    } else {
        match delete_prefix(&args.redis, &prefix, Removal::Unlink).await {
            Ok(n) => eprintln!("# cleanup: unlinked {n} Redis keys under {prefix}:"),
            Err(e) => cleanup = Err(e.context(format!("deleting the keys under {prefix}:"))),
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("# cleanup: cannot remove {}: {e}", dir.display());
    }
    if let Err(e) = outcome {
        bail!("{e:#}");
    }
    cleanup
}
