//! `switchyard-cluster-bench`: aggregate processing throughput with
//! `--queues` queues, one worker of `--concurrency` slots each, on one
//! Redis or on a Redis Cluster (`redis+cluster://…`), where the queues are
//! chosen so that they spread over the masters (a queue lives in the slot
//! of its name). Reports jobs/s over all queues and the CPU seconds each
//! Redis node and this process used, so the scaling shape can be read
//! against the machine's cores.
//!
//! Each run works under a fresh key prefix, deleted afterwards (one key at
//! a time on a cluster, where a multi-key DEL may not cross slots). A
//! benchmark, not a test.

// Cleanup across the nodes, and this process's CPU time, as the other
// benchmarks do them.
#[path = "../keys.rs"]
mod keys;
#[allow(dead_code)]
#[path = "../dashboard/procfs.rs"]
mod procfs;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use clap::Parser;
use coord::queue::redis::{RedisBackend, queue_slot};
use coord::queue::{NewJob, QueueName, Queues};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(about = "Aggregate queue throughput on one Redis or a Redis Cluster")]
struct Args {
    /// Redis or Redis Cluster URL (`redis+cluster://h:p,h:p`; every node
    /// named is sampled for CPU).
    #[arg(long)]
    redis: String,
    /// Queues, each with its own worker.
    #[arg(long, default_value_t = 3)]
    queues: usize,
    /// Jobs per queue.
    #[arg(long, default_value_t = 20_000)]
    jobs: u64,
    /// Slots per worker.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Runs; the median is reported with each run.
    #[arg(long, default_value_t = 3)]
    runs: u32,
}

/// CPU seconds (user + system) of the server at `url`, and its role.
async fn node_cpu(url: &str) -> anyhow::Result<(f64, String)> {
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .arg("replication")
        .query_async(&mut conn)
        .await?;
    let mut cpu = 0.0;
    let mut role = String::new();
    for line in info.lines() {
        if let Some((k, v)) = line.trim().split_once(':') {
            match k {
                "used_cpu_user" | "used_cpu_sys" => cpu += v.parse::<f64>().unwrap_or(0.0),
                "role" => role = v.to_owned(),
                _ => {}
            }
        }
    }
    Ok((cpu, role))
}

/// `n` queue names spread over the masters: on a cluster the next name
/// whose slot a master not yet used serves (round robin), on one server
/// any `n` names.
async fn spread_names(queues: &Queues, n: usize) -> anyhow::Result<Vec<(QueueName, String)>> {
    let topology = queues.health().await?.cluster;
    let masters: Vec<(String, Vec<(u16, u16)>)> = topology
        .as_ref()
        .map(|t| {
            t.masters()
                .map(|m| (m.address.clone(), m.slots.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut names = Vec::new();
    let mut k = 0u32;
    while names.len() < n {
        let name = format!("bench-q{k}");
        k += 1;
        if masters.is_empty() {
            names.push((QueueName::new(name)?, "the server".to_owned()));
            continue;
        }
        let wanted = &masters[names.len() % masters.len()];
        let slot = queue_slot(&name);
        if wanted.1.iter().any(|&(a, b)| (a..=b).contains(&slot)) {
            names.push((QueueName::new(name)?, wanted.0.clone()));
        }
        ensure!(k < 100_000, "no queue name lands on master {}", wanted.0);
    }
    Ok(names)
}

struct Run {
    jobs_per_sec: f64,
    seconds: f64,
    bench_cpu: f64,
    node_cpu: BTreeMap<String, f64>,
    homes: Vec<String>,
}

async fn run_once(args: &Args, run: u32) -> anyhow::Result<Run> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let prefix = format!("swcbench-{}-{nanos}-{run}", std::process::id());
    let backend = RedisBackend::connect(&args.redis, &prefix)
        .await
        .with_context(|| "connecting to Redis")?;
    let queues = Queues::new(Arc::new(backend));
    let names = spread_names(&queues, args.queues).await?;
    for (queue, _) in &names {
        let mut i = 0;
        while i < args.jobs {
            let end = (i + 1000).min(args.jobs);
            queues
                .enqueue_bulk(
                    queue,
                    (i..end)
                        .map(|i| NewJob::new("noop", json!({ "i": i })))
                        .collect(),
                )
                .await?;
            i = end;
        }
    }
    let node_urls = keys::nodes(&args.redis);
    let mut before = BTreeMap::new();
    for node in &node_urls {
        before.insert(node.clone(), node_cpu(node).await?.0);
    }
    let cpu_before = procfs::cpu_seconds(std::process::id())?;
    let started = Instant::now();
    let mut workers = Vec::new();
    for (queue, _) in &names {
        workers.push(
            queues
                .worker(queue.clone())
                .concurrency(args.concurrency)
                .start(|_job| async move { Ok(Value::Null) })?,
        );
    }
    let total = args.jobs * names.len() as u64;
    loop {
        let done: u64 = workers.iter().map(|w| w.stats().completed).sum();
        if done >= total {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(300),
            "only {done} of {total} jobs done after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let bench_cpu = procfs::cpu_seconds(std::process::id())? - cpu_before;
    let mut node_cpu_used = BTreeMap::new();
    for node in &node_urls {
        let (after, role) = node_cpu(node).await?;
        node_cpu_used.insert(
            format!("{} ({role})", node.trim_start_matches("redis://")),
            after - before[node],
        );
    }
    for worker in workers {
        worker.shutdown(Duration::from_secs(5)).await;
    }
    for (queue, _) in &names {
        let counts = queues.counts(queue).await?;
        ensure!(counts.completed == args.jobs, "{queue}: {counts:?}");
    }
    drop(queues);
    let removed = keys::delete_prefix(&args.redis, &prefix, keys::Removal::Del).await?;
    eprintln!("# cleanup: deleted {removed} keys under {prefix}:");
    Ok(Run {
        jobs_per_sec: total as f64 / seconds,
        seconds,
        bench_cpu,
        node_cpu: node_cpu_used,
        homes: names.into_iter().map(|(_, home)| home).collect(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.queues > 0 && args.jobs > 0 && args.runs > 0,
        "nothing to measure"
    );
    let mut runs = Vec::new();
    for run in 1..=args.runs {
        let r = run_once(&args, run).await?;
        eprintln!(
            "# run {run}/{}: {:.0} jobs/s ({:.3} s); bench cpu {:.2} s; redis cpu {}",
            args.runs,
            r.jobs_per_sec,
            r.seconds,
            r.bench_cpu,
            r.node_cpu
                .iter()
                .map(|(n, c)| format!("{n} {c:.2} s"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        runs.push(r);
    }
    runs.sort_by(|a, b| a.jobs_per_sec.total_cmp(&b.jobs_per_sec));
    let median = &runs[runs.len() / 2];
    let busy: Vec<String> = median
        .node_cpu
        .iter()
        .filter(|(_, c)| **c > 0.01)
        .map(|(n, c)| format!("{n}: {:.0}%", 100.0 * c / median.seconds))
        .collect();
    println!(
        "| {} | {} | {} × {} | {:.0} | {:.0}% | {} | {} |",
        if args.redis.contains("+cluster") {
            "cluster"
        } else {
            "one Redis"
        },
        args.queues,
        args.jobs,
        args.concurrency,
        median.jobs_per_sec,
        100.0 * median.bench_cpu / median.seconds,
        busy.join(", "),
        median.homes.join(", ")
    );
    Ok(())
}
