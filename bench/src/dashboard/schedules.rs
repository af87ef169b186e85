//! `--measure schedules`: what many stored schedules cost the server. The
//! live hub reads every schedule every 2 s, the server's own scheduler
//! (on by default) every 1 s, and the schedules page and
//! `/api/schedules` read them all again per request (50 rows a page,
//! counts over all). With `--schedules` idle ones (once a year, so nothing
//! fires), written through coord while the server runs: the idle server's
//! CPU before and after, then the page (first and last) and the API.

use std::time::Duration;

use coord::queue::Queues;

use crate::procfs::{Memory, cpu_seconds, mib};
use crate::{Server, http, idle, measure_pages};

/// What the schedules round is asked for.
pub struct SchedulesArgs {
    /// Idle schedules to write.
    pub schedules: usize,
    /// Seconds the idle server's CPU is measured over, before and after.
    pub idle_seconds: u64,
    /// Timed sequential requests per page.
    pub requests: usize,
}

/// The idle server's CPU (% of a core) and RSS (MiB) over `seconds`.
async fn idle(server: &Server, seconds: u64) -> anyhow::Result<(f64, String)> {
    let before = cpu_seconds(server.pid)?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu = (cpu_seconds(server.pid)? - before) / seconds as f64 * 100.0;
    Ok((cpu, mib(Memory::of(server.pid)?.rss_kib)))
}

/// Runs the round against a server started on an empty prefix; returns
/// its report section.
pub async fn measure(
    server: &Server,
    queues: &Queues,
    args: &SchedulesArgs,
) -> anyhow::Result<String> {
    eprintln!(
        "# schedules: idle server, none, for {} s",
        args.idle_seconds
    );
    let (cpu_none, rss_none) = idle(server, args.idle_seconds).await?;
    eprintln!("# schedules: writing {} idle schedules", args.schedules);
    let written = idle::write(queues, args.schedules).await?;
    eprintln!("# schedules: written in {:.1} s", written.as_secs_f64());

    // The API reads the schedules afresh: it counts them all at once.
    http::wait_for_total(
        server.addr,
        "/api/schedules",
        args.schedules,
        Duration::from_secs(30),
        &format!("{} schedules", args.schedules),
    )
    .await?;
    eprintln!(
        "# schedules: idle server, {} schedules, for {} s",
        args.schedules, args.idle_seconds
    );
    let (cpu_full, rss_full) = idle(server, args.idle_seconds).await?;

    let last = args.schedules.saturating_sub(app::SCHEDULES_PER_PAGE);
    let pages = vec![
        (
            "schedules, first page".to_string(),
            "/schedules".to_string(),
        ),
        (
            "schedules, last page".to_string(),
            format!("/schedules?offset={last}"),
        ),
        ("API, first 50".to_string(), "/api/schedules".to_string()),
        (
            "API, last 50".to_string(),
            format!("/api/schedules?offset={last}"),
        ),
    ];
    let table = measure_pages(server.addr, &pages, args.requests, args.requests / 10).await?;
    Ok(format!(
        "{n} idle cron schedules (`{cron}` UTC, one queue) on Redis, written through coord in \
         {w:.1} s while the server ran (its scheduler on, as by default).\n\n\
         | idle server (no client, {s} s) | CPU % of a core | RSS MiB |\n|---|---:|---:|\n\
         | no schedules | {cpu_none:.1} | {rss_none} |\n| {n} schedules | {cpu_full:.1} | {rss_full} |\n\n\
         {table}",
        n = app::format_count(args.schedules as u64),
        cron = idle::CRON,
        w = written.as_secs_f64(),
        s = args.idle_seconds,
    ))
}
