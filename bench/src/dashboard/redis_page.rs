//! `--measure redis-page`: what the Redis page costs the Redis it shows,
//! with 0, 1 and 100 open pages (`--redis-page-clients`).
//!
//! The hub reads Redis once per `READ_EVERY` (5 s) for every viewer: one
//! `PING`, then `INFO`, `SLOWLOG GET`, `LATENCY LATEST` in one pipeline,
//! and every `SAMPLE_EVERY` (60 s) a key-space sample (`DBSIZE`, `SCAN`s,
//! `MEMORY USAGE` in pipelines). So the cost should not move with the
//! number of pages. The round checks it on a private `redis-server` (free
//! loopback port, no persistence, stopped at the end), filled with
//! `--redis-page-keys` keys under five prefixes so that the sample reaches
//! its bound, and a release server pointed at it. Per phase (a number of
//! `/events/redis` streams held open, signed in) it counts, over
//! `--redis-page-seconds`:
//!
//! - every command Redis executed, from `INFO commandstats` before and
//!   after (the bench's own `INFO` subtracted; commands that scripts run
//!   count too, as Redis counts them);
//! - the Redis page's own commands, from a `MONITOR` connection: every
//!   command of the connection(s) that sent a bare `INFO` (only the Redis
//!   page's reader does; the health checks ask `INFO memory` or `INFO
//!   cluster`; its key-space sample runs on the same connection), between
//!   the bench's two `INFO commandstats` as seen in the same feed, so the
//!   window is exact. `MONITOR` does not show `SLOWLOG` and `LATENCY`
//!   (admin commands): only the page sends them, so their
//!   `commandstats` deltas are added.

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Server;
use crate::http::{self, StreamControl};
use crate::procfs::cpu_seconds;
use crate::stats::spread;

/// What the round is asked for.
pub struct RedisPageArgs {
    /// Open pages per phase, in order.
    pub clients: Vec<usize>,
    /// Seconds each phase is measured over.
    pub seconds: u64,
    /// Keys written to the private Redis before the server starts.
    pub keys: usize,
}

/// The prefixes of the filled keys, with their share of the keys (in
/// tenths) and value size: the sample should find all five.
const FILL: [(&str, usize, usize); 5] = [
    ("orders", 4, 400),
    ("sessions", 3, 120),
    ("users", 1, 250),
    ("cache", 1, 2_000),
    ("ratelimit", 1, 16),
];

/// A `redis-server` of the round's own, on a free loopback port.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    async fn start() -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (is it installed?)")?;
        let redis = Self { child, port };
        for _ in 0..200 {
            if let Ok(mut conn) = redis.connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return Ok(redis);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the private redis-server on port {port} did not answer within 10 s")
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn connection(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        Ok(redis::Client::open(self.url())?
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    async fn stop(mut self) {
        if let Err(e) = self.child.kill().await {
            eprintln!("# redis-page: could not stop the private redis-server: {e}");
        }
    }
}

/// `--redis-page-keys` keys under the five prefixes, 1,000 a pipeline.
async fn fill(conn: &mut redis::aio::MultiplexedConnection, keys: usize) -> anyhow::Result<()> {
    let mut pipe = redis::pipe();
    let mut queued = 0;
    for i in 0..keys {
        // Tenth by tenth, so every prefix is spread over the key space.
        let mut tenth = i % 10;
        let (prefix, _, size) = FILL
            .iter()
            .find(|(_, share, _)| {
                if tenth < *share {
                    true
                } else {
                    tenth -= share;
                    false
                }
            })
            .copied()
            .unwrap_or(FILL[0]);
        pipe.cmd("SET")
            .arg(format!("{prefix}:{i:08}"))
            .arg(vec![b'x'; size])
            .ignore();
        queued += 1;
        if queued == 1000 {
            pipe.query_async::<()>(conn).await?;
            pipe = redis::pipe();
            queued = 0;
        }
    }
    if queued > 0 {
        pipe.query_async::<()>(conn).await?;
    }
    Ok(())
}

/// One command as `MONITOR` showed it.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    /// The client's address, or `lua` for a command a script ran.
    client: String,
    /// The command, upper case, with its first argument for `INFO`,
    /// `MEMORY` and `CLIENT` (`MEMORY USAGE`).
    command: String,
}

/// Parses `+1700000000.123456 [0 127.0.0.1:5000] "INFO" "commandstats"`.
fn parse_monitor(line: &str, at: Instant) -> Option<Seen> {
    let rest = line.strip_prefix('+')?;
    let open = rest.find('[')?;
    let close = rest[open..].find(']')? + open;
    let client = rest[open + 1..close].split_whitespace().nth(1)?.to_owned();
    let mut words = rest[close + 1..].split('"').skip(1).step_by(2);
    let first = words.next()?.to_ascii_uppercase();
    let command = match first.as_str() {
        "INFO" | "MEMORY" | "CLIENT" => match words.next() {
            Some(arg) => format!("{first} {}", arg.to_ascii_uppercase()),
            None => first,
        },
        _ => first,
    };
    Some(Seen {
        at,
        client,
        command,
    })
}

/// Follows `MONITOR` on its own connection until dropped.
fn monitor(port: u16, log: Arc<Mutex<Vec<Seen>>>) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"MONITOR\r\n").await?;
        let mut lines = BufReader::new(stream).lines();
        while let Some(line) = lines.next_line().await? {
            let at = Instant::now();
            if let Some(seen) = parse_monitor(&line, at) {
                log.lock()
                    .map_err(|_| anyhow::anyhow!("monitor log poisoned"))?
                    .push(seen);
            }
        }
        Ok(())
    })
}

/// `INFO commandstats` as command → calls.
async fn commandstats(
    conn: &mut redis::aio::MultiplexedConnection,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    let mut calls = BTreeMap::new();
    for line in text.lines() {
        let Some((name, fields)) = line.trim().split_once(':') else {
            continue;
        };
        let Some(name) = name.strip_prefix("cmdstat_") else {
            continue;
        };
        let count = fields
            .split(',')
            .find_map(|f| f.strip_prefix("calls="))
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("no calls in {line:?}"))?;
        calls.insert(name.replace('|', " ").to_ascii_uppercase(), count);
    }
    Ok(calls)
}

/// What one phase measured.
struct Phase {
    clients: usize,
    window: Duration,
    /// Every command Redis executed, bench's own excluded.
    executed: BTreeMap<String, u64>,
    /// The Redis page's commands by name.
    page: BTreeMap<String, u64>,
    reads: u64,
    samples: u64,
    /// Per key-space sample: (commands, first to last command).
    sample_costs: Vec<(u64, Duration)>,
    /// `swap` events per client in the window.
    swaps: Vec<u64>,
    cpu_percent: f64,
}

fn per_minute(count: u64, window: Duration) -> f64 {
    count as f64 * 60.0 / window.as_secs_f64()
}

/// Runs the round; returns its report section.
pub async fn measure(bin: &Path, dir: &Path, args: &RedisPageArgs) -> anyhow::Result<String> {
    let redis = PrivateRedis::start().await?;
    eprintln!("# redis-page: private redis-server on port {}", redis.port);
    let outcome = async {
        let mut control = redis.connection().await?;
        eprintln!("# redis-page: writing {} keys", args.keys);
        fill(&mut control, args.keys).await?;
        let info: String = redis::cmd("CLIENT")
            .arg("INFO")
            .query_async(&mut control)
            .await?;
        let me = info
            .split_whitespace()
            .find_map(|f| f.strip_prefix("addr="))
            .context("CLIENT INFO without addr")?
            .to_owned();
        let log = Arc::new(Mutex::new(Vec::new()));
        let follower = monitor(redis.port, log.clone());
        let server = Server::start(bin, &redis.url(), "bench-redis-page", dir, &[]).await?;
        let phases = async {
            // The first read (and its sample) happen at start-up; wait for
            // the page's reader to show up in the feed.
            let ready_by = Instant::now() + Duration::from_secs(30);
            while !log
                .lock()
                .map_err(|_| anyhow::anyhow!("monitor log poisoned"))?
                .iter()
                .any(|s| s.command == "INFO")
            {
                ensure!(
                    Instant::now() < ready_by,
                    "the server did not read Redis within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut phases = Vec::new();
            for &clients in &args.clients {
                phases.push(phase(&server, &mut control, &me, &log, clients, args.seconds).await?);
            }
            Ok::<_, anyhow::Error>(phases)
        }
        .await;
        let stopped = server.stop().await;
        follower.abort();
        let phases = phases?;
        stopped?;
        Ok::<_, anyhow::Error>(report(&phases, args))
    }
    .await;
    redis.stop().await;
    outcome
}

async fn phase(
    server: &Server,
    control: &mut redis::aio::MultiplexedConnection,
    me: &str,
    log: &Arc<Mutex<Vec<Seen>>>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Phase> {
    let stream = Arc::new(StreamControl::default());
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let (stream, stopped) = (stream.clone(), stopped.clone());
        let addr: SocketAddr = server.addr;
        tasks.spawn(http::event_stream(
            addr,
            app::REDIS_EVENTS.to_string(),
            stream,
            stopped,
        ));
    }
    let ready_by = Instant::now() + Duration::from_secs(60);
    while stream.ready.load(Ordering::Relaxed) < clients && Instant::now() < ready_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = stream.ready.load(Ordering::Relaxed);
    ensure!(
        ready == clients,
        "only {ready} of {clients} Redis pages got their first event within 60 s"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!(
        "# redis-page: {clients} open pages, {seconds} s (load {})",
        crate::load_average()
    );
    stream.window.store(true, Ordering::Relaxed);
    let cpu_before = cpu_seconds(server.pid)?;
    let before = commandstats(control).await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = commandstats(control).await?;
    let window = started.elapsed();
    let cpu = cpu_seconds(server.pid)? - cpu_before;
    stream.window.store(false, Ordering::Relaxed);
    let _ = stop.send(true);
    let mut swaps = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let stats = done.context("a page stream panicked")?;
        if let Some(e) = stats.error {
            bail!("a Redis page stream failed: {e}");
        }
        swaps.push(stats.swaps_in_window);
    }
    // Let the feed catch up with the closing INFO.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut executed = BTreeMap::new();
    for (name, calls) in &after {
        let delta = calls - before.get(name).copied().unwrap_or(0);
        if delta > 0 {
            executed.insert(name.clone(), delta);
        }
    }
    // The opening INFO commandstats is counted by the closing one.
    if let Some(info) = executed.get_mut("INFO") {
        *info -= 1;
    }
    executed.retain(|_, n| *n > 0);

    let log = log
        .lock()
        .map_err(|_| anyhow::anyhow!("monitor log poisoned"))?
        .clone();
    let page_clients: HashSet<&str> = log
        .iter()
        .filter(|s| s.command == "INFO")
        .map(|s| s.client.as_str())
        .collect();
    let marks: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, s)| s.client == me && s.command == "INFO COMMANDSTATS")
        .map(|(i, _)| i)
        .collect();
    let [.., open, close] = marks[..] else {
        bail!("the monitor feed lacks the window's two INFO commandstats");
    };
    let mut page = BTreeMap::new();
    let (mut reads, mut samples) = (0, 0);
    let mut sample_costs: Vec<(u64, Duration)> = Vec::new();
    let mut sample: Option<(u64, Instant, Instant)> = None;
    for seen in &log[open + 1..close] {
        if !page_clients.contains(seen.client.as_str()) {
            continue;
        }
        *page.entry(seen.command.clone()).or_insert(0u64) += 1;
        match seen.command.as_str() {
            "INFO" => reads += 1,
            "DBSIZE" => {
                samples += 1;
                if let Some((n, first, last)) = sample.take() {
                    sample_costs.push((n, last - first));
                }
                sample = Some((1, seen.at, seen.at));
            }
            "SCAN" | "MEMORY USAGE" => {
                if let Some((n, _, last)) = &mut sample {
                    *n += 1;
                    *last = seen.at;
                }
            }
            _ => {
                if let Some((n, first, last)) = sample.take() {
                    sample_costs.push((n, last - first));
                }
            }
        }
    }
    if let Some((n, first, last)) = sample {
        sample_costs.push((n, last - first));
    }
    // Hidden from MONITOR, sent by the page's reader alone.
    for hidden in ["SLOWLOG GET", "LATENCY LATEST"] {
        if let Some(&n) = executed.get(hidden) {
            page.insert(hidden.to_owned(), n);
        }
    }
    Ok(Phase {
        clients,
        window,
        executed,
        page,
        reads,
        samples,
        sample_costs,
        swaps,
        cpu_percent: cpu / window.as_secs_f64() * 100.0,
    })
}

fn report(phases: &[Phase], args: &RedisPageArgs) -> String {
    let mut out = format!(
        "A private redis-server holding {} keys (five prefixes), the release server pointed at \
         it, {} s per phase.\n\n\
         | open pages | reads (ticks) | page commands / read | key-space samples | commands / sample | \
         page commands / min | all commands / min (commandstats) | server CPU % | swaps per page (min / median / max) |\n\
         |---:|---:|---:|---:|---|---:|---:|---:|---|\n",
        app::format_count(args.keys as u64),
        args.seconds
    );
    for p in phases {
        let page_total: u64 = p.page.values().sum();
        let sample_cmds: u64 = p.sample_costs.iter().map(|(n, _)| n).sum();
        let per_read = (page_total - sample_cmds) as f64 / p.reads.max(1) as f64;
        let costs = p
            .sample_costs
            .iter()
            .map(|(n, took)| format!("{n} in {:.0} ms", took.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ");
        let (min, median, max) = spread(&p.swaps);
        out += &format!(
            "| {} | {} | {per_read:.2} | {} | {} | {:.1} | {:.1} | {:.2} | {} |\n",
            p.clients,
            p.reads,
            p.samples,
            if costs.is_empty() {
                "–".into()
            } else {
                costs
            },
            per_minute(page_total, p.window),
            per_minute(p.executed.values().sum(), p.window),
            p.cpu_percent,
            if p.swaps.is_empty() {
                "–".to_string()
            } else {
                format!("{min} / {median} / {max}")
            },
        );
    }
    out += &command_table(
        "The Redis page's commands by name, per phase (calls in the window)",
        phases,
        |p| &p.page,
        |_, n| n.to_string(),
    );
    out += &command_table(
        "Every command Redis executed, per phase (per minute; `INFO commandstats` deltas, the bench's own `INFO` removed)",
        phases,
        |p| &p.executed,
        |p, n| format!("{:.1}", per_minute(n, p.window)),
    );
    out
}

/// A Markdown table of commands by name (rows) and phase (columns), each
/// cell `cell` of the phase and the command's count in `counts` (0 when
/// the phase did not run it).
fn command_table(
    title: &str,
    phases: &[Phase],
    counts: impl Fn(&Phase) -> &BTreeMap<String, u64>,
    cell: impl Fn(&Phase, u64) -> String,
) -> String {
    let mut out = format!("\n{title}:\n\n| command |");
    for p in phases {
        out += &format!(" {} pages |", p.clients);
    }
    out += "\n|---|";
    out += &"---:|".repeat(phases.len());
    out += "\n";
    let names: std::collections::BTreeSet<&String> =
        phases.iter().flat_map(|p| counts(p).keys()).collect();
    for name in names {
        out += &format!("| `{name}` |");
        for p in phases {
            out += &format!(" {} |", cell(p, counts(p).get(name).copied().unwrap_or(0)));
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines() {
        let at = Instant::now();
        let seen = parse_monitor(
            r#"+1700000000.123456 [0 127.0.0.1:5000] "MEMORY" "usage" "orders:00000001""#,
            at,
        )
        .expect("parsed");
        assert_eq!(seen.client, "127.0.0.1:5000");
        assert_eq!(seen.command, "MEMORY USAGE");
        let lua = parse_monitor(r#"+1700000000.1 [0 lua] "hget" "k" "f""#, at).expect("parsed");
        assert_eq!((lua.client.as_str(), lua.command.as_str()), ("lua", "HGET"));
        assert!(parse_monitor("+OK", at).is_none());
    }
}
