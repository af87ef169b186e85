//! `--measure scale`: the dashboard with thousands of native queues. The
//! goals (issue 16, on this 2-core machine): overview HTML ≤ 150 KB with
//! p99 < 50 ms, the queues page's first page ≤ 100 KB, an idle server (no
//! client) under 5% of a core, one overview live client receiving under
//! 10 KB/s while jobs run, `/metrics` ≤ 1 MB, alert evaluation p99 < 100 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use coord::queue::{QueueName, Queues};
use tokio::sync::watch;

use crate::http::{self, StreamControl};
use crate::procfs::{Memory, cpu_seconds, mib};
use crate::{Activity, Server, fill, measure_pages};

/// Queues created at once while filling.
const FILL_CONCURRENCY: usize = 64;

/// What the scale round is asked for.
pub struct ScaleArgs {
    /// Queues to create (one waiting job each).
    pub queues: usize,
    /// BullMQ queues created beside them (0: BullMQ not watched).
    pub bullmq_queues: usize,
    /// Seconds the idle server's CPU is measured over (a hub sweep of
    /// every queue falls once a minute: measure at least that long).
    pub idle_seconds: u64,
    /// Seconds the live clients are measured over, with jobs running.
    pub live_seconds: u64,
    /// Timed requests per page.
    pub requests: usize,
}

/// The queue names of the round: `tenant-00000`….
fn name(i: usize) -> anyhow::Result<QueueName> {
    Ok(QueueName::new(format!("tenant-{i:05}"))?)
}

/// Creates the queues (skipping those that exist from a `--keep` run).
pub async fn fill_queues(queues: &Queues, n: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let existing = queues.queues().await?.len();
    if existing >= n {
        return Ok(started.elapsed());
    }
    let mut work = tokio::task::JoinSet::new();
    for i in 0..n {
        if work.len() >= FILL_CONCURRENCY
            && let Some(done) = work.join_next().await
        {
            done.context("a fill task panicked")??;
        }
        let (queues, q) = (queues.clone(), name(i)?);
        work.spawn(async move {
            queues.enqueue(&q, fill::email(i as u64)).await?;
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = work.join_next().await {
        done.context("a fill task panicked")??;
    }
    Ok(started.elapsed())
}

/// Lays out `n` BullMQ queues as BullMQ 5 does (a `meta` hash with the
/// events cap, one job id in `wait`), pipelined: what discovery finds and
/// counts, without running Node for 10,000 queues.
pub async fn fill_bullmq(redis_url: &str, prefix: &str, n: usize) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    for start in (0..n).step_by(1_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 1_000).min(n) {
            let base = format!("{prefix}:bull-{i:05}");
            pipe.hset(format!("{base}:meta"), "opts.maxLenEvents", 10_000)
                .ignore()
                .lpush(format!("{base}:wait"), "1")
                .ignore();
        }
        let () = pipe.query_async(&mut conn).await?;
    }
    Ok(())
}

/// Runs the round against a server started on the filled queues; returns
/// its report section.
pub async fn measure(server: &Server, queues: &Queues, args: &ScaleArgs) -> anyhow::Result<String> {
    let addr = server.addr;
    let mut body = Vec::new();
    // The hub has listed every queue once the overview counts them.
    let expected = format!(
        "and {} more queues",
        app::format_count(args.queues as u64 - 10)
    );
    let ready_by = Instant::now() + Duration::from_secs(120);
    loop {
        http::get(addr, "/", &mut body).await?;
        if String::from_utf8_lossy(&body).contains(&expected) {
            break;
        }
        ensure!(
            Instant::now() < ready_by,
            "the overview did not count {} queues within 120 s",
            args.queues
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    if args.bullmq_queues > 0 {
        http::wait_for_total(
            addr,
            "/api/bullmq?limit=1",
            args.bullmq_queues,
            Duration::from_secs(120),
            &format!("{} BullMQ queues", args.bullmq_queues),
        )
        .await?;
    }
    eprintln!("# scale: idle server for {} s", args.idle_seconds);
    let before = cpu_seconds(server.pid)?;
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let idle_cpu = (cpu_seconds(server.pid)? - before) / args.idle_seconds as f64 * 100.0;
    let idle_rss = Memory::of(server.pid)?;

    let pages = vec![
        ("overview".to_string(), "/".to_string()),
        ("queues, first page".to_string(), "/queues".to_string()),
        (
            "queues by failures".to_string(),
            "/queues?sort=failures".to_string(),
        ),
        (
            "queues filtered".to_string(),
            "/queues?q=tenant-0999".to_string(),
        ),
        ("API, first 100".to_string(), "/api/queues".to_string()),
        ("metrics".to_string(), "/metrics".to_string()),
        ("alerts".to_string(), "/alerts".to_string()),
    ];
    let mut pages = pages;
    if args.bullmq_queues > 0 {
        pages.extend([
            ("BullMQ, first page".to_string(), "/bullmq".to_string()),
            (
                "BullMQ API, first 100".to_string(),
                "/api/bullmq".to_string(),
            ),
        ]);
    }
    let page_table = measure_pages(addr, &pages, args.requests, args.requests / 10).await?;

    eprintln!("# scale: live clients for {} s", args.live_seconds);
    let control = Arc::new(StreamControl::default());
    let (stop, stopped) = watch::channel(false);
    let scopes = [
        "/events/overview",
        "/events/queues",
        "/events/queues?sort=failures",
    ];
    let clients: Vec<_> = scopes
        .iter()
        .map(|path| {
            tokio::spawn(http::event_stream(
                addr,
                path.to_string(),
                control.clone(),
                stopped.clone(),
            ))
        })
        .collect();
    let ready_by = Instant::now() + Duration::from_secs(30);
    while control.ready.load(std::sync::atomic::Ordering::Relaxed) < scopes.len() {
        ensure!(
            Instant::now() < ready_by,
            "the live clients got no first update within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Counted from here: the first full page each client got is not a
    // rate.
    tokio::time::sleep(Duration::from_secs(1)).await;
    control
        .window
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let activity = Activity::start(queues)?;
    let cpu_before = cpu_seconds(server.pid)?;
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.live_seconds)).await;
    let seconds = window.elapsed().as_secs_f64();
    let live_cpu = (cpu_seconds(server.pid)? - cpu_before) / seconds * 100.0;
    let (added, completed, failed) = activity.stop().await?;
    let _ = stop.send(true);
    let mut rows = String::new();
    for (path, client) in scopes.iter().zip(clients) {
        let stats = client.await.context("a live client panicked")?;
        if let Some(err) = &stats.error {
            anyhow::bail!("the live client of {path} failed: {err}");
        }
        let rate = (stats.bytes - stats.bytes_before_window) as f64 / seconds / 1024.0;
        rows += &format!(
            "| `{path}` | {} | {} | {:.1} | {} |\n",
            stats.bytes_before_window,
            stats.swaps_in_window,
            rate,
            if *path == "/events/overview" {
                if rate < 10.0 { "yes" } else { "**no**" }
            } else {
                "–"
            }
        );
    }
    let evaluation = alert_evaluation(addr, &mut body).await?;
    Ok(format!(
        "{n} native queues (one waiting job each){bull} on Redis; the server started after the fill.\n\n\
         Idle (no client, {idle}s): **{idle_cpu:.1}% of a core** (goal < 5%: {idle_ok}); RSS {rss} MiB.\n\n\
         {page_table}\n\
         Live clients over {seconds:.0} s while a worker completed {completed} and failed {failed} jobs ({added} added): server CPU {live_cpu:.1}% of a core.\n\n\
         | stream | first update bytes | swaps in window | KB/s in window | < 10 KB/s |\n|---|---:|---:|---:|---|\n{rows}\n\
         {evaluation}\n",
        n = app::format_count(args.queues as u64),
        bull = if args.bullmq_queues > 0 {
            format!(
                " and {} BullMQ queues (one waiting job id each, watched with `--bullmq`)",
                app::format_count(args.bullmq_queues as u64)
            )
        } else {
            String::new()
        },
        idle = args.idle_seconds,
        idle_ok = if idle_cpu < 5.0 { "yes" } else { "**no**" },
        rss = mib(idle_rss.rss_kib),
    ))
}

/// The server's own figure for alert evaluation (the
/// `switchyard_alert_evaluation_seconds` summary of `/metrics`, over the
/// default rules, whose `*` targets cover every queue), as a sentence with
/// the goal (p99 < 100 ms).
async fn alert_evaluation(
    addr: std::net::SocketAddr,
    body: &mut Vec<u8>,
) -> anyhow::Result<String> {
    http::get(addr, "/metrics", body).await?;
    let text = String::from_utf8_lossy(body);
    let value = |series: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
    };
    let name = "switchyard_alert_evaluation_seconds";
    let (Some(count), Some(p50), Some(p99)) = (
        value(&format!("{name}_count ")),
        value(&format!("{name}{{quantile=\"0.5\"}} ")),
        value(&format!("{name}{{quantile=\"0.99\"}} ")),
    ) else {
        anyhow::bail!("/metrics has no {name} summary");
    };
    Ok(format!(
        "Alert evaluation (the default rules, `*` targets over every queue; the server's own \
         `{name}` summary after the rounds above, {count} evaluations): p50 {:.1} ms, \
         **p99 {:.1} ms** (goal < 100 ms: {}).",
        p50 * 1000.0,
        p99 * 1000.0,
        if p99 < 0.1 { "yes" } else { "**no**" },
    ))
}
