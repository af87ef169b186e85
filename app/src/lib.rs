//! Switchyard's pages, rendered on the server with leptos (SSR only: no
//! WASM, no hydration), from the view models in [`vm`].
//!
//! Each `render_*_page` function returns a complete HTML document. Each
//! `*_fragments` function renders the live regions of the same page, alone,
//! with the same components: the server pushes them over server-sent events
//! and the page script swaps each in by its id. A page and its live updates
//! therefore cannot disagree on markup.
//!
//! The crate is laid out by what changes together: `pages` holds one
//! module per page, `widgets` the parts pages share (the shell, the pager,
//! tables, forms, charts), [`vm`] the view models by capability and
//! [`format`] how values read on every page.

#![warn(missing_docs)]
// A page's view is one nested type, a component boundary one more level of
// it; the default limit (128) is short of the deepest pages.
#![recursion_limit = "256"]

pub mod format;
mod pages;
pub mod vm;
mod widgets;

pub use pages::alerts::{ALERTS_EVENTS, alerts_fragments, render_alerts_page};
pub use pages::audit::render_audit_page;
pub use pages::bull_job::{bull_job_events, bull_job_fragments, render_bull_job_page};
pub use pages::bull_queue::{bull_queue_events, bull_queue_fragments, render_bull_queue_page};
pub use pages::bullmq::{BULLMQ_EVENTS, bullmq_fragments, render_bullmq_page};
pub use pages::channels::{CHANNELS_EVENTS, channels_fragments, render_channels_page};
pub use pages::config::render_config_page;
pub use pages::error::render_error_page;
pub use pages::instances::{INSTANCES_EVENTS, instances_fragments, render_instances_page};
pub use pages::job::{job_fragments, job_gone_fragments, render_job_page};
pub use pages::login::render_login_page;
pub use pages::overview::{
    OVERVIEW_EVENTS, overview_events, overview_fragments, render_overview_page,
};
pub use pages::queue::{queue_fragments, render_queue_page};
pub use pages::queues::{QUEUES_EVENTS, queues_fragments, render_queues_page};
pub use pages::ratelimits::{RATELIMITS_EVENTS, ratelimits_fragments, render_ratelimits_page};
pub use pages::users::render_users_page;
pub use widgets::banner::banner_fragment;
pub use widgets::shell::Fragment;

/// The page script: opens the page's event stream and swaps the regions it
/// receives; pages work without it (forms post and redirect back).
pub const LIVE_SCRIPT: &str = include_str!("live.js");

// Old path, kept until the server moves to the new one.
pub use format::{encode_query, format_age, format_count, format_timestamp, format_window};
// Old path, kept until the server moves to the new one.
pub use vm::alerts::{AlertBannerVm, AlertRow, AlertsVm, DeliveryRow, RuleRow};
// Old path, kept until the server moves to the new one.
pub use vm::audit::{AuditFilterVm, AuditRow, AuditVm};
// Old path, kept until the server moves to the new one.
pub use vm::bullmq::{
    BULL_STATES, BullJobPageVm, BullJobRow, BullQueuePageVm, BullQueueRow, BullQueuesVm,
    CLEAN_AGES, bull_job_actions, bull_job_path, bull_queue_path, encode_segment,
};
// Old path, kept until the server moves to the new one.
pub use vm::channels::{ChannelRow, ChannelsVm, MessageRow};
// Old path, kept until the server moves to the new one.
pub use vm::config::{ConfigEntry, ConfigVm};
// Old path, kept until the server moves to the new one.
pub use vm::instances::{InstanceRow, InstanceState, InstancesVm};
// Old path, kept until the server moves to the new one.
pub use vm::queues::{
    AttemptVm, BulkProgressVm, ChartRange, DependencyVm, HealthVm, JobFilterVm, JobPageVm, JobRow,
    MinutePoint, OverviewVm, QueueHealth, QueuePageVm, QueueRow, QueuesVm, STATES, StateCounts,
    ThroughputVm,
};
// Old path, kept until the server moves to the new one.
pub use vm::ratelimits::{
    BlockedRow, KeyUsageRow, LimiterStatusVm, PolicyRow, RateLimitsVm, RateMinute,
};
// Old path, kept until the server moves to the new one.
pub use vm::session::{LoginVm, PageCtx, UserVm};
// Old path, kept until the server moves to the new one.
pub use vm::users::{ROLES, UserRow, UsersVm};

// Old path, kept until the server moves to the new one.
/// The Alerts page's view models: see [`vm::alerts`].
pub mod alerts {
    pub use crate::vm::alerts::*;
}

// Old path, kept until the server moves to the new one.
/// The Audit page's view models: see [`vm::audit`].
pub mod audit {
    pub use crate::vm::audit::*;
}

// Old path, kept until the server moves to the new one.
/// The BullMQ pages' view models: see [`vm::bullmq`].
pub mod bullmq {
    pub use crate::vm::bullmq::*;
}

// Old path, kept until the server moves to the new one.
/// The channels and instances pages' view models: see [`vm::channels`]
/// and [`vm::instances`].
pub mod fleet {
    pub use crate::vm::channels::*;
    pub use crate::vm::instances::*;
}

// Old path, kept until the server moves to the new one.
/// The rate limits page's view models: see [`vm::ratelimits`].
pub mod ratelimits {
    pub use crate::vm::ratelimits::*;
}

// Old path, kept until the server moves to the new one.
/// Who is signed in, and the sign-in page's model: see [`vm::session`].
pub mod session {
    pub use crate::vm::session::*;
}

// Old path, kept until the server moves to the new one.
/// The Users page's view models: see [`vm::users`].
pub mod users {
    pub use crate::vm::users::*;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages with nothing firing: the banner is an empty region.
    const NO_ALERTS: AlertBannerVm = AlertBannerVm {
        firing: Vec::new(),
        now: 0,
    };

    /// A page for nobody in particular, with nothing firing.
    const PAGE: PageCtx = PageCtx {
        user: None,
        csrf_token: String::new(),
        banner: NO_ALERTS,
    };

    fn row(name: &str, failed: u64, paused: bool) -> QueueRow {
        QueueRow {
            name: name.into(),
            counts: StateCounts {
                waiting: 3,
                active: 1,
                delayed: 0,
                completed: 42,
                failed,
            },
            paused,
            jobs_per_min: Some(12.5),
            failure_rate: Some(0.25),
            health: if failed > 0 {
                QueueHealth::Warning
            } else {
                QueueHealth::Healthy
            },
        }
    }

    fn health(ok: bool) -> HealthVm {
        HealthVm {
            backend: "redis".into(),
            backend_ok: ok,
            latency_ms: ok.then_some(0.4),
            memory_bytes: ok.then_some(3 * 1024 * 1024),
            problem: (!ok).then(|| "connection refused".into()),
            stale: false,
            dependencies: Vec::new(),
        }
    }

    fn queues_vm(queues: Vec<QueueRow>, ok: bool) -> QueuesVm {
        QueuesVm {
            health: health(ok),
            queues,
            busy_active: 100,
            warning_failure_rate: 5.0,
            notice: None,
            bullmq: None,
        }
    }

    #[test]
    fn bullmq_queues_show_next_to_the_native_ones_when_monitored() {
        let plain = render_queues_page(&queues_vm(vec![row("emails", 0, false)], true), &PAGE);
        assert!(!plain.contains("bullmq-next"), "{plain}");
        let mut vm = queues_vm(vec![row("emails", 0, false)], true);
        vm.bullmq = Some(bull_queues_vm(vec![BullQueueRow {
            name: "mailer<x>".into(),
            counts: vec![("failed".into(), 3)],
            paused: true,
        }]));
        let html = render_queues_page(&vm, &PAGE);
        let native = html.find(r#"id="queues""#).expect("native table");
        let bull = html
            .find(r#"data-test-id="bullmq-next""#)
            .expect("BullMQ section");
        assert!(native < bull, "{html}");
        assert!(html.contains("mailer&lt;x&gt;"), "{html}");
        assert!(html.contains(r#"href="/bullmq""#), "{html}");
    }

    #[test]
    fn queues_page_is_a_full_live_document() {
        let html = render_queues_page(
            &queues_vm(vec![row("emails", 2, false), row("reports", 0, true)], true),
            &PAGE,
        );
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Queues · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/queues""#), "{html}");
        assert!(html.contains(r#"http-equiv="refresh""#), "{html}");
        assert!(html.contains(r#"src="/app.js""#), "{html}");
        assert!(html.contains(r#"href="/style.css""#), "{html}");
        assert!(html.contains(r#"data-test-id="queue-row-emails""#));
        assert!(html.contains(r#"data-test-id="queue-row-reports""#));
        assert!(html.contains(r#"data-test-id="count-failed""#));
        assert!(
            html.contains(r#"action="/queues/reports/resume""#),
            "{html}"
        );
        assert!(html.contains(r#"action="/queues/emails/pause""#), "{html}");
        assert!(html.contains("Warning"), "{html}");
        assert!(html.contains("12.5"), "{html}");
        assert!(html.contains("25.0%"), "{html}");
        assert!(
            html.contains("Backend redis: reachable, 0.4 ms, 3.0 MB used"),
            "{html}"
        );
        for header in [
            "Queue",
            "Health",
            "Waiting",
            "Active",
            "Delayed",
            "Completed",
            "Failed",
            "Jobs/min",
            "State",
        ] {
            assert!(
                html.contains(&format!(">{header}</th>")),
                "{header} missing: {html}"
            );
        }
    }

    #[test]
    fn queues_page_without_queues_says_how_to_get_one() {
        let html = render_queues_page(&queues_vm(vec![], true), &PAGE);
        assert!(
            html.contains("No queues yet — enqueue a job or run"),
            "{html}"
        );
        assert!(html.contains("<code>switchyard demo</code>"), "{html}");
    }

    #[test]
    fn backend_down_does_not_claim_there_are_no_queues() {
        let html = render_queues_page(&queues_vm(vec![], false), &PAGE);
        assert!(!html.contains("No queues yet"), "{html}");
        assert!(
            html.contains("unavailable until the backend answers"),
            "{html}"
        );
        assert!(
            html.contains("Backend redis: unreachable: connection refused"),
            "{html}"
        );
    }

    #[test]
    fn dependencies_that_are_not_ok_get_a_line_each() {
        let mut vm = queues_vm(vec![], true);
        vm.health.dependencies = vec![
            DependencyVm {
                name: "database".into(),
                down: true,
                detail: "postgres: the schema is missing <b>".into(),
            },
            DependencyVm {
                name: "ratelimits".into(),
                down: false,
                detail: "Redis unreachable; deciding with the local fallback".into(),
            },
        ];
        let html = render_queues_page(&vm, &PAGE);
        assert!(
            html.contains("Database down: postgres: the schema is missing &lt;b&gt;"),
            "{html}"
        );
        assert!(
            html.contains(
                r#"data-test-id="dependency-status" data-dependency="database" class="status down""#
            ),
            "{html}"
        );
        assert!(
            html.contains("Rate limiter degraded: Redis unreachable"),
            "{html}"
        );
        assert!(html.contains(r#"class="status degraded""#), "{html}");
        let healthy = render_queues_page(&queues_vm(vec![], true), &PAGE);
        assert!(!healthy.contains("dependency-status"), "{healthy}");
    }

    #[test]
    fn fragments_are_the_regions_of_the_page() {
        let vm = queues_vm(vec![row("emails", 2, false)], true);
        let page = render_queues_page(&vm, &PAGE);
        let fragments = queues_fragments(&vm);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["health", "queues"]
        );
        for f in &fragments {
            assert!(
                f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                "{}",
                f.html
            );
            assert!(page.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn overview_shows_totals_alerts_slot_and_charts() {
        let vm = OverviewVm {
            health: health(true),
            totals: StateCounts {
                waiting: 1_000_000,
                failed: 7,
                ..StateCounts::default()
            },
            queue_count: 2,
            warnings: vec!["emails".into()],
            charts: vec![ThroughputVm {
                queue: "emails".into(),
                points: (0..60)
                    .map(|i| MinutePoint {
                        minute_ms: 1_795_430_040_000 + i * 60_000,
                        completed: i as u64,
                        failed: 1,
                    })
                    .collect(),
            }],
            range: ChartRange::Hour,
        };
        let html = render_overview_page(&vm, &PAGE);
        assert!(html.contains(r#"data-live="/events/overview""#), "{html}");
        assert!(html.contains("1,000,000"), "{html}");
        assert!(html.contains(r#"data-test-id="alerts""#), "{html}");
        assert!(html.contains(r#"data-test-id="chart-emails""#), "{html}");
        assert!(html.contains("<svg"), "{html}");
        assert_eq!(html.matches("<rect").count(), 120, "{html}");
        assert!(html.contains("1,770 completed · 60 failed"), "{html}");
        assert!(html.contains("Failure rate above threshold"), "{html}");
        // Awkward ratios round without overflowing the chart.
        let odd = ThroughputVm {
            queue: "odd".into(),
            points: vec![
                MinutePoint {
                    minute_ms: 0,
                    completed: 1,
                    failed: 1,
                },
                MinutePoint {
                    minute_ms: 60_000,
                    completed: 2,
                    failed: 1,
                },
            ],
        };
        let odd_html = render_overview_page(
            &OverviewVm {
                charts: vec![odd],
                ..vm.clone()
            },
            &PAGE,
        );
        assert!(
            odd_html.contains(r#"data-test-id="chart-odd""#),
            "{odd_html}"
        );
        for f in overview_fragments(&vm) {
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    /// The start tag of the element with `data-test-id="<id>"`.
    fn tag_with_test_id<'a>(html: &'a str, id: &str) -> &'a str {
        let marker = format!(r#"data-test-id="{id}""#);
        let at = html
            .find(&marker)
            .unwrap_or_else(|| panic!("no {id} in {html}"));
        let open = html[..at].rfind('<').expect("tag start");
        let close = at + html[at..].find('>').expect("tag end");
        &html[open..=close]
    }

    /// An overview over `range` charting one queue with `points`.
    fn range_overview(range: ChartRange, queue: &str, points: Vec<MinutePoint>) -> OverviewVm {
        OverviewVm {
            health: health(true),
            queue_count: 1,
            charts: vec![ThroughputVm {
                queue: queue.into(),
                points,
            }],
            range,
            ..OverviewVm::default()
        }
    }

    #[test]
    fn the_range_selector_links_every_range_and_marks_the_current_one() {
        for current in ChartRange::ALL {
            let html = render_overview_page(&range_overview(current, "emails", vec![]), &PAGE);
            for range in ChartRange::ALL {
                let tag = tag_with_test_id(&html, &format!("range-{}", range.as_str()));
                assert!(tag.starts_with("<a "), "{tag}");
                assert!(
                    tag.contains(&format!(r#"href="/?range={}""#, range.as_str())),
                    "{tag}"
                );
                assert_eq!(
                    tag.contains(r#"aria-current="page""#),
                    range == current,
                    "{tag}"
                );
            }
            assert_eq!(
                html.matches(r#"aria-current="page""#).count(),
                2,
                "nav + range"
            );
            assert!(
                html.contains(&format!("Throughput, {}", current.title())),
                "{html}"
            );
        }
    }

    #[test]
    fn longer_ranges_stream_without_the_charts() {
        let hour = range_overview(ChartRange::Hour, "emails", vec![]);
        let html = render_overview_page(&hour, &PAGE);
        assert!(html.contains(r#"data-live="/events/overview""#), "{html}");
        assert!(
            overview_fragments(&hour)
                .iter()
                .any(|f| f.id == "throughput")
        );
        for range in [ChartRange::Day, ChartRange::Week] {
            let vm = range_overview(range, "emails", vec![]);
            let html = render_overview_page(&vm, &PAGE);
            assert!(
                html.contains(&format!(
                    r#"data-live="/events/overview?range={}""#,
                    range.as_str()
                )),
                "{html}"
            );
            let fragments = overview_fragments(&vm);
            assert_eq!(
                fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
                ["health", "totals"]
            );
            for f in &fragments {
                assert!(html.contains(&f.html), "page lacks region {}", f.id);
            }
        }
    }

    #[test]
    fn a_day_chart_has_a_bar_per_five_minutes_labelled_with_times() {
        // 2026-11-22 10:35 to 2026-11-23 10:30 UTC.
        let last = 1_795_429_800_000;
        let first = last - 287 * 300_000;
        let points: Vec<MinutePoint> = (0..288)
            .map(|i| MinutePoint {
                minute_ms: first + i * 300_000,
                completed: if i == 287 { 40 } else { 1 },
                failed: u64::from(i == 0) * 3,
            })
            .collect();
        let html = render_overview_page(&range_overview(ChartRange::Day, "emails", points), &PAGE);
        let chart = &html[html.find(r#"data-test-id="chart-emails""#).expect("chart")..];
        assert_eq!(chart.matches("<g>").count(), 288, "{chart}");
        assert_eq!(chart.matches("<rect").count(), 576);
        assert!(chart.contains(r#"viewBox="0 0 1440 60""#), "{chart}");
        assert!(
            chart.contains("<title>Sun 22 Nov 10:35–10:40: 1 completed, 3 failed</title>"),
            "{chart}"
        );
        assert!(
            chart.contains("<title>Mon 23 Nov 10:30–10:35: 40 completed, 0 failed</title>"),
            "{chart}"
        );
        assert!(
            chart.contains(r#"<div class="axis"><span>10:35</span><span>10:30</span></div>"#),
            "{chart}"
        );
        assert!(
            chart.contains("327 completed · 3 failed · peak 40/5 min"),
            "{chart}"
        );
        assert!(chart.contains("in the last 24 hours"), "{chart}");
    }

    #[test]
    fn a_week_chart_has_a_bar_per_hour_labelled_with_days() {
        // 2026-11-16 11:00 to 2026-11-23 10:00 UTC.
        let last = 1_795_428_000_000;
        let first = last - 167 * 3_600_000;
        let points: Vec<MinutePoint> = (0..168)
            .map(|i| MinutePoint {
                minute_ms: first + i * 3_600_000,
                completed: 1_000,
                failed: 0,
            })
            .collect();
        let html = render_overview_page(&range_overview(ChartRange::Week, "emails", points), &PAGE);
        let chart = &html[html.find(r#"data-test-id="chart-emails""#).expect("chart")..];
        assert_eq!(chart.matches("<g>").count(), 168, "{chart}");
        assert!(
            chart.contains("<title>Mon 16 Nov 11:00–12:00: 1,000 completed, 0 failed</title>"),
            "{chart}"
        );
        assert!(
            chart.contains("<title>Mon 23 Nov 10:00–11:00: 1,000 completed, 0 failed</title>"),
            "{chart}"
        );
        assert!(
            chart.contains(
                r#"<div class="axis"><span>Mon 16 Nov</span><span>Mon 23 Nov</span></div>"#
            ),
            "{chart}"
        );
        assert!(
            chart.contains("168,000 completed · 0 failed · peak 1,000/h"),
            "{chart}"
        );
    }

    #[test]
    fn range_charts_escape_queue_names() {
        let evil = r#"<img src=x onerror="alert(1)">&"#;
        for range in ChartRange::ALL {
            let points = vec![MinutePoint {
                minute_ms: 0,
                completed: 1,
                failed: 0,
            }];
            let html = render_overview_page(&range_overview(range, evil, points), &PAGE);
            // No element from the name; in attributes its quotes are
            // escaped too, so it cannot end one.
            assert!(!html.contains("<img"), "{html}");
            assert!(
                html.contains(
                    r#"data-test-id="chart-&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;""#
                ),
                "{html}"
            );
            assert!(
                html.contains(r#">&lt;img src=x onerror="alert(1)"&gt;&amp;</a>"#),
                "{html}"
            );
            assert!(
                html.contains(r#"aria-label="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;: 1 completed"#),
                "{html}"
            );
        }
    }

    fn failed_job(id: &str) -> JobRow {
        JobRow {
            id: id.into(),
            name: "<script>alert(1)</script>".into(),
            data_preview: r#"{"html":"<img src=x onerror=alert(1)>"}"#.into(),
            attempts_made: 3,
            attempts: 3,
            priority: 0,
            created_at: 1_000,
            finished_at: Some(6_000),
            failed_reason: Some("<b>boom</b>".into()),
        }
    }

    fn failed_page() -> QueuePageVm {
        QueuePageVm {
            queue: row("emails", 1, false),
            state: "failed".into(),
            jobs: vec![failed_job("7")],
            total: 1,
            offset: 0,
            limit: 50,
            ..QueuePageVm::default()
        }
    }

    #[test]
    fn failed_table_has_row_and_bulk_actions_and_escapes_text() {
        let vm = failed_page();
        let html = render_queue_page(&vm, 10_000, &PAGE);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;boom&lt;/b&gt;"), "{html}");
        assert!(html.contains("emails · Switchyard"), "{html}");
        assert!(html.contains("1–1 of 1"), "{html}");
        assert!(
            html.contains(r#"action="/queues/emails/jobs/7/retry""#),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/queues/emails/jobs/7/remove""#),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/queues/emails/retry-selected""#),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/queues/emails/retry-failed""#),
            "{html}"
        );
        assert!(html.contains(r#"form="selection""#), "{html}");
        assert!(
            html.contains(r#"name="back" value="/queues/emails?state=failed&amp;limit=50""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-live="/events/queues/emails?state=failed&amp;limit=50""#),
            "{html}"
        );
        assert!(html.contains("4 s ago"), "failed 4 s before now: {html}");
        assert!(
            !html.contains("http-equiv"),
            "a page with a selection must not reload itself: {html}"
        );
        for f in queue_fragments(&vm, 10_000) {
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn pager_reaches_both_ends_of_a_million_jobs() {
        let mut vm = failed_page();
        vm.total = 1_000_000;
        vm.offset = 500;
        let html = render_queue_page(&vm, 0, &PAGE);
        assert!(html.contains("501–501 of 1,000,000"), "{html}");
        assert!(
            html.contains("limit=50&amp;offset=999950"),
            "oldest page: {html}"
        );
        assert!(
            html.contains("limit=50&amp;offset=450"),
            "newer page: {html}"
        );
        assert!(
            html.contains("limit=50&amp;offset=501"),
            "older page: {html}"
        );
        assert!(html.contains(r#"data-test-id="page-newest""#), "{html}");
    }

    #[test]
    fn progress_reads_running_then_done() {
        let mut vm = failed_page();
        vm.progress = Some(BulkProgressVm {
            done: 1_500,
            total: 10_000,
            finished: false,
            error: None,
        });
        let html = render_queue_page(&vm, 0, &PAGE);
        assert!(
            html.contains("Retrying failed jobs: 1,500 of 10,000…"),
            "{html}"
        );
        vm.progress = Some(BulkProgressVm {
            done: 10_000,
            total: 10_000,
            finished: true,
            error: None,
        });
        let frags = queue_fragments(&vm, 0);
        let progress = frags.iter().find(|f| f.id == "progress").expect("region");
        assert!(
            progress.html.contains("Retried 10,000 failed jobs."),
            "{}",
            progress.html
        );
        assert!(
            progress.html.contains(r#"data-finished="true""#),
            "{}",
            progress.html
        );
    }

    #[test]
    fn filtered_empty_page_says_nothing_matched_and_keeps_the_filter() {
        let mut vm = failed_page();
        vm.jobs.clear();
        vm.total = 0;
        vm.filter = JobFilterVm {
            name: "x\"><script>".into(),
            text: String::new(),
        };
        vm.search_note = Some("Searched all 1 failed jobs: 0 match.".into());
        let html = render_queue_page(&vm, 0, &PAGE);
        assert!(html.contains("No failed jobs match the filter."), "{html}");
        assert!(html.contains("Searched all 1 failed jobs"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("name=x%22%3E%3Cscript%3E"), "{html}");
    }

    #[test]
    fn job_page_shows_everything_escaped() {
        let vm = JobPageVm {
            queue: "emails".into(),
            id: "42".into(),
            name: "send".into(),
            state: "failed".into(),
            data_pretty: "{\n  \"x\": \"<script>alert(1)</script>\"\n}".into(),
            options_pretty: "{\n  \"attempts\": 3\n}".into(),
            return_value_pretty: None,
            attempts_made: 3,
            attempts: 3,
            stalled_count: 1,
            failed_reason: Some("SMTP 421".into()),
            stacktrace: vec!["SMTP 421".into(), "connection reset".into()],
            history: vec![AttemptVm {
                attempt: 1,
                started_at: 1_000,
                finished_at: 2_500,
                error: Some("SMTP 421".into()),
                chain: vec!["connection reset".into()],
            }],
            created_at: 500,
            processed_at: Some(1_000),
            finished_at: Some(2_500),
            run_at: None,
            logs: vec![],
            notice: Some("Job 42 was retried.".into()),
        };
        let html = render_job_page(&vm, &PAGE);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("connection reset"), "{html}");
        assert!(html.contains("1.5 s"), "{html}");
        assert!(html.contains("1970-01-01 00:00:00 UTC"), "{html}");
        assert!(
            html.contains(r#"action="/queues/emails/jobs/42/retry""#),
            "{html}"
        );
        assert!(html.contains("stalled 1 time"), "{html}");
        assert!(html.contains("Job 42 was retried."), "{html}");
        assert!(
            html.contains(r#"data-live="/events/queues/emails/jobs/42""#),
            "{html}"
        );
        for f in job_fragments(&vm) {
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn config_page_lists_settings() {
        let html = render_config_page(
            &ConfigVm {
                version: "0.1.0".into(),
                deployment: "redis".into(),
                entries: vec![ConfigEntry {
                    flag: "--redis".into(),
                    value: "redis://:***@cache:6379".into(),
                    help: "Redis for scale-out".into(),
                }],
            },
            &PAGE,
        );
        assert!(html.contains(r#"data-test-id="config-redis""#), "{html}");
        assert!(html.contains("redis://:***@cache:6379"), "{html}");
        assert!(!html.contains("data-live"), "{html}");
    }

    #[test]
    fn error_page_escapes_the_message() {
        let html = render_error_page(404, "Not Found", "queue <x> not found", &PAGE);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("404 Not Found"), "{html}");
        assert!(html.contains("queue &lt;x&gt; not found"), "{html}");
        assert!(
            !html.contains("data-live"),
            "error pages are static: {html}"
        );
    }

    const HOSTILE: &str = "<script>alert(1)</script>";

    fn channel(name: &str, malformed: u64) -> ChannelRow {
        ChannelRow {
            name: name.into(),
            per_second: 12.345,
            total: 1_234_567,
            malformed,
            subscribers: Some(3),
            by_instance: (0..7)
                .map(|i| (format!("api-{i}"), 100 - i as u64))
                .collect(),
            per_minute: (0..60)
                .map(|i| (1_795_430_040_000 + i * 60_000, i as u64))
                .collect(),
            last_messages: vec![
                MessageRow {
                    at: 1_795_433_640_000,
                    instance: Some("api-1".into()),
                    change_type: Some("updated".into()),
                    preview: r#"{"keys":["flags"]}"#.into(),
                    malformed: false,
                },
                MessageRow {
                    at: 1_795_433_639_000,
                    instance: None,
                    change_type: None,
                    preview: HOSTILE.into(),
                    malformed: true,
                },
            ],
        }
    }

    fn channels_vm(channels: Vec<ChannelRow>, connected: bool) -> ChannelsVm {
        ChannelsVm {
            bus: "redis".into(),
            connected,
            channels,
        }
    }

    #[test]
    fn channels_page_is_a_full_live_document() {
        let vm = channels_vm(
            vec![
                channel("sw:notifications:config.flags", 0),
                channel("jobs", 2),
            ],
            true,
        );
        let html = render_channels_page(&vm, &PAGE);
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Channels · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/channels""#), "{html}");
        assert!(html.contains(r#"http-equiv="refresh""#), "{html}");
        assert!(html.contains(r#"aria-current="page""#), "{html}");
        assert!(html.contains(r#"href="/channels""#), "{html}");
        assert!(html.contains(r#"href="/instances""#), "{html}");
        assert!(html.contains("Bus redis: connected"), "{html}");
        assert!(
            html.contains(r#"data-test-id="channel-sw:notifications:config.flags""#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="channel-jobs""#), "{html}");
        assert!(
            html.contains(r#"<dd data-test-id="channel-rate">12.3</dd>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<dd data-test-id="channel-total">1,234,567</dd>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<dd data-test-id="channel-subscribers">3</dd>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="channel-messages""#),
            "{html}"
        );
        // Malformed is flagged only where there are some.
        assert_eq!(html.matches(r#"class="stat flagged""#).count(), 1, "{html}");
        // 60 bars per channel, top 5 senders and the rest summed up.
        assert_eq!(html.matches("<rect").count(), 120, "{html}");
        assert!(html.contains("api-4"), "{html}");
        assert!(!html.contains("api-5"), "{html}");
        assert!(html.contains("+2 more (189 messages)"), "{html}");
        assert!(
            html.contains("Last hour: 1,770 messages · peak 59/min"),
            "{html}"
        );
        // Messages: time, sender, change type, malformed mark.
        assert!(html.contains(r#"datetime="2026-11-23T"#), "{html}");
        assert!(html.contains("updated"), "{html}");
        assert!(html.contains("unknown sender"), "{html}");
        assert!(html.contains(r#"class="msg malformed""#), "{html}");
        assert!(
            html.contains(r#"data-test-id="message-malformed""#),
            "{html}"
        );
        let fragments = channels_fragments(&vm);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["channels"]
        );
        for f in &fragments {
            assert!(
                f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                "{}",
                f.html
            );
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn channels_page_escapes_foreign_names_and_payloads() {
        let mut hostile = channel(HOSTILE, 1);
        hostile.by_instance = vec![(HOSTILE.into(), 1)];
        hostile.last_messages[0].instance = Some(HOSTILE.into());
        hostile.last_messages[0].change_type = Some(HOSTILE.into());
        hostile.subscribers = None;
        hostile.per_second = f64::NAN;
        let html = render_channels_page(&channels_vm(vec![hostile], false), &PAGE);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("Bus redis: not connected"), "{html}");
        assert!(
            html.contains(r#"<dd data-test-id="channel-subscribers">–</dd>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<dd data-test-id="channel-rate">–</dd>"#),
            "{html}"
        );
    }

    #[test]
    fn channels_page_without_traffic_says_where_it_comes_from() {
        let html = render_channels_page(&channels_vm(vec![], true), &PAGE);
        assert!(html.contains("No channel traffic yet"), "{html}");
        assert!(
            html.contains("<code>&lt;prefix&gt;:notifications:&lt;channel&gt;</code>"),
            "{html}"
        );
        assert!(html.contains(r#"<div id="channels""#), "{html}");
        let down = render_channels_page(&channels_vm(vec![], false), &PAGE);
        assert!(!down.contains("No channel traffic yet"), "{down}");
        assert!(down.contains("until the dashboard reconnects"), "{down}");
    }

    fn instance(id: &str, state: InstanceState, hash_matches: Option<bool>) -> InstanceRow {
        InstanceRow {
            id: id.into(),
            role: "api".into(),
            version: "0.1.0".into(),
            state,
            heartbeat_age_ms: 4_000,
            uptime_ms: 3 * 3_600_000 + 5 * 60_000,
            applied_version: 40,
            lag_changes: Some(2),
            lag_ms: Some(4_200),
            state_hash: "0123456789abcdef".into(),
            hash_matches,
            received: 1_204,
            skipped_self: 12,
            processed: 1_192,
            malformed: 0,
            batches: 7,
            last_reload_ms: Some(1.25),
            last_error: None,
            bus_connected: true,
            polling: false,
        }
    }

    fn instances_vm(instances: Vec<InstanceRow>) -> InstancesVm {
        InstancesVm {
            latest_version: Some(42),
            latest_hash: Some("fedcba9876543210".into()),
            stale_after_ms: 15_000,
            instances,
        }
    }

    #[test]
    fn instances_page_is_a_full_live_document() {
        let mut synced = instance("api-1", InstanceState::Live, Some(true));
        synced.applied_version = 42;
        synced.lag_changes = Some(0);
        synced.lag_ms = None;
        let vm = instances_vm(vec![synced, instance("api-2", InstanceState::Live, None)]);
        let html = render_instances_page(&vm, &PAGE);
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Instances · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/instances""#), "{html}");
        assert!(html.contains(r#"http-equiv="refresh""#), "{html}");
        assert!(
            html.contains("Database at version 42, hash fedcba98"),
            "{html}"
        );
        assert!(
            html.contains("Stale after 15 s without a heartbeat"),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="instance-row-api-1""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="instance-row-api-2""#),
            "{html}"
        );
        assert!(html.contains(r#"class="badge live""#), "{html}");
        assert!(html.contains(">42 / 42<"), "{html}");
        assert!(html.contains(">40 / 42<"), "{html}");
        assert!(html.contains(">up to date<"), "{html}");
        assert!(html.contains(">2 changes · 4.2 s<"), "{html}");
        assert!(html.contains(">01234567<"), "{html}");
        assert!(!html.contains(">0123456789abcdef<"), "{html}");
        assert!(html.contains(">matches<"), "{html}");
        assert!(html.contains(">behind<"), "{html}");
        assert!(html.contains("1,204"), "{html}");
        assert!(
            html.contains(r#"data-test-id="instance-counters""#),
            "{html}"
        );
        assert!(html.contains(">3 h 5 min<"), "{html}");
        assert!(html.contains(">4 s ago<"), "{html}");
        assert!(
            html.contains(">1.2 ms<") || html.contains(">1.3 ms<"),
            "{html}"
        );
        assert!(html.contains(">connected<"), "{html}");
        assert!(!html.contains("attention"), "all healthy: {html}");
        let fragments = instances_fragments(&vm);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["instances"]
        );
        for f in &fragments {
            assert!(
                f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                "{}",
                f.html
            );
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn stale_gone_and_drifted_instances_are_highlighted() {
        let mut polling = instance("api-4", InstanceState::Live, Some(true));
        polling.bus_connected = false;
        polling.polling = true;
        let html = render_instances_page(
            &instances_vm(vec![
                instance("api-1", InstanceState::Stale, None),
                instance("api-2", InstanceState::Live, Some(false)),
                instance("api-3", InstanceState::Gone, None),
                polling,
            ]),
            &PAGE,
        );
        assert_eq!(html.matches(r#"class="attention""#).count(), 3, "{html}");
        assert!(
            html.contains(r#"<tr data-test-id="instance-row-api-4" class="">"#),
            "{html}"
        );
        assert!(html.contains(r#"class="badge stale""#), "{html}");
        assert!(html.contains(r#"class="badge gone""#), "{html}");
        assert!(html.contains(r#"class="badge drifted""#), "{html}");
        assert!(html.contains(">Stale<"), "{html}");
        assert!(html.contains(">Gone<"), "{html}");
        assert!(html.contains(">drifted<"), "{html}");
        assert!(html.contains(">polling<"), "{html}");
    }

    #[test]
    fn instances_page_escapes_ids_and_errors_and_truncates_errors() {
        let mut row = instance(HOSTILE, InstanceState::Live, Some(true));
        row.last_error = Some(format!("{HOSTILE}{}", "x".repeat(200)));
        row.malformed = 3;
        let html = render_instances_page(&instances_vm(vec![row]), &PAGE);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("…</span>"), "{html}");
        assert!(!html.contains(&format!("{}<", "x".repeat(200))), "{html}");
        assert!(html.contains(r#"class="counter flagged""#), "{html}");
    }

    #[test]
    fn instances_page_without_instances_or_database() {
        let html = render_instances_page(&instances_vm(vec![]), &PAGE);
        assert!(html.contains("No instances heartbeat yet"), "{html}");
        assert!(html.contains(r#"<div id="instances""#), "{html}");
        let vm = InstancesVm {
            latest_version: None,
            latest_hash: None,
            stale_after_ms: 1_500,
            instances: vec![instance("api-1", InstanceState::Live, None)],
        };
        let html = render_instances_page(&vm, &PAGE);
        assert!(html.contains("Database unreachable"), "{html}");
        assert!(html.contains(">40 / ?<"), "{html}");
        assert!(html.contains(">unknown<"), "{html}");
        assert!(html.contains("Stale after 1.5 s"), "{html}");
    }

    const MINUTE0: i64 = 1_795_430_040_000;
    const NOW: i64 = MINUTE0 + 60 * 60_000;

    fn limiter(backend: &str, fallback: &str, degraded: bool) -> LimiterStatusVm {
        LimiterStatusVm {
            backend: backend.into(),
            fallback: fallback.into(),
            degraded,
            degraded_since: degraded.then_some(NOW - 4 * 60_000),
            reason: degraded.then(|| "connection refused".into()),
            fallback_decisions: if degraded { 1_234 } else { 0 },
        }
    }

    fn policy(name: &str) -> PolicyRow {
        PolicyRow {
            name: name.into(),
            limit: 100,
            burst: 20,
            window_ms: 60_000,
            block: Some("10 rejections in 1 min → blocked 5 min".into()),
            active_keys: 3,
            blocked_keys: 1,
            allowed_this_minute: 1_500,
            rejected_this_minute: 7,
        }
    }

    fn usage(policy: &str, key: &str, percent: f64, blocked: bool) -> KeyUsageRow {
        KeyUsageRow {
            policy: policy.into(),
            key: key.into(),
            count: 142,
            capacity: 120,
            percent,
            blocked_until: blocked.then_some(NOW + 4 * 60_000),
        }
    }

    fn blocked(policy: &str, key: &str) -> BlockedRow {
        BlockedRow {
            policy: policy.into(),
            key: key.into(),
            until: NOW + 4 * 60_000 + 30_000,
        }
    }

    fn ratelimits_vm() -> RateLimitsVm {
        RateLimitsVm {
            status: limiter("redis", "local", false),
            policies: vec![policy("api"), policy("login")],
            top_keys: vec![
                usage("api", "client-1", 142.0, true),
                usage("login", "10.0.0.7", 42.5, false),
            ],
            blocked: vec![blocked("api", "client-1")],
            per_minute: (0..60)
                .map(|i| RateMinute {
                    minute: MINUTE0 + i * 60_000,
                    allowed: 100 + i as u64,
                    rejected: i as u64 % 3,
                })
                .collect(),
            now: NOW,
        }
    }

    const RATELIMIT_REGIONS: [&str; 5] = [
        "ratelimit-status",
        "ratelimit-policies",
        "ratelimit-chart",
        "ratelimit-top",
        "ratelimit-blocked",
    ];

    #[test]
    fn ratelimits_page_is_a_full_live_document() {
        let vm = ratelimits_vm();
        let html = render_ratelimits_page(
            &vm,
            Some("Unblocked client-1.".into()),
            "/ratelimits",
            &PAGE,
        );
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Rate limits · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/ratelimits""#), "{html}");
        assert!(
            html.contains(
                r#"<a href="/ratelimits" aria-current="page" class="current">Rate limits</a>"#
            ),
            "{html}"
        );
        // The notice sits outside every live region.
        let notice = html.find(r#"data-test-id="notice""#).expect("notice");
        assert!(html[notice..].contains("Unblocked client-1."), "{html}");
        assert!(notice < html.find(r#"id="ratelimit-status""#).expect("status"));
        for id in RATELIMIT_REGIONS {
            assert!(html.contains(&format!(r#"<div id="{id}""#)), "{id}: {html}");
        }
        // Healthy: a quiet line, no banner.
        assert!(
            html.contains("Decisions: redis (shared by every instance)"),
            "{html}"
        );
        assert!(
            html.contains(
                "If redis becomes unreachable: fallback local, decisions are made per instance."
            ),
            "{html}"
        );
        assert!(!html.contains("ratelimit-degraded"), "{html}");
        // Policies.
        assert_eq!(
            html.matches(r#"data-test-id="ratelimit-policy""#).count(),
            2,
            "{html}"
        );
        assert!(html.contains(r#"data-policy="login""#), "{html}");
        assert!(html.contains(">100 / 1 min<"), "{html}");
        assert!(
            html.contains(r#"data-test-id="policy-burst" class="num">20<"#),
            "{html}"
        );
        assert!(
            html.contains("10 rejections in 1 min → blocked 5 min"),
            "{html}"
        );
        assert!(html.contains(">1,500<"), "{html}");
        assert!(
            html.contains(r#"data-test-id="policy-rejected" class="num flagged">7<"#),
            "{html}"
        );
        // Chart: a rejected and an allowed bar per minute, rejections first.
        assert!(html.contains(r#"data-test-id="requests-chart""#), "{html}");
        // (The usage bars' rects have no x.)
        assert_eq!(html.matches("<rect x=").count(), 120, "{html}");
        assert_eq!(
            html.matches(r#"class="bar rejected""#).count(),
            60,
            "{html}"
        );
        assert_eq!(html.matches(r#"class="bar allowed""#).count(), 60, "{html}");
        assert!(html.contains("60 rejected (0.8%)"), "{html}");
        assert!(html.contains("7,770 allowed"), "{html}");
        assert!(
            html.contains("<title>10:35: 1 rejected, 101 allowed</title>"),
            "{html}"
        );
        assert!(
            html.contains(
                r#"aria-label="Requests in the last hour: 60 rejected and 7,770 allowed""#
            ),
            "{html}"
        );
        // Top keys.
        assert_eq!(
            html.matches(r#"data-test-id="ratelimit-row""#).count(),
            2,
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="ratelimit-row" data-policy="api" data-key="client-1""#),
            "{html}"
        );
        assert!(html.contains(">142 / 120<"), "{html}");
        assert_eq!(
            html.matches(r#"data-test-id="key-blocked""#).count(),
            1,
            "{html}"
        );
        assert!(html.contains(">Blocked</span>"), "{html}");
        // Blocked keys: absolute end, then how long to wait.
        assert!(
            html.contains(r#"data-test-id="blocked-row" data-policy="api" data-key="client-1""#),
            "{html}"
        );
        assert!(html.contains("until <time"), "{html}");
        assert!(html.contains("2026-11-23 11:38:30 UTC"), "{html}");
        assert!(html.contains("(in 4 min)"), "{html}");
        assert_eq!(
            html.matches(r#"data-test-id="unblock-button""#).count(),
            1,
            "{html}"
        );
    }

    #[test]
    fn ratelimits_fragments_are_the_regions_of_the_page() {
        for vm in [ratelimits_vm(), RateLimitsVm::default()] {
            let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
            let fragments = ratelimits_fragments(&vm);
            assert_eq!(
                fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
                RATELIMIT_REGIONS
            );
            for f in &fragments {
                assert!(
                    f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                    "{}",
                    f.html
                );
                assert!(html.contains(&f.html), "page lacks region {}", f.id);
                assert!(!f.html.contains("data-test-id=\"notice\""), "{}", f.html);
            }
        }
    }

    #[test]
    fn ratelimits_page_without_data_shows_every_empty_state() {
        let vm = RateLimitsVm {
            status: limiter("in-process", "local", false),
            per_minute: (0..60)
                .map(|i| RateMinute {
                    minute: MINUTE0 + i * 60_000,
                    ..RateMinute::default()
                })
                .collect(),
            now: NOW,
            ..RateLimitsVm::default()
        };
        let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
        assert!(
            html.contains("No rate-limit policies are registered."),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="requests-empty""#), "{html}");
        assert!(!html.contains("<svg"), "all zero: no chart: {html}");
        assert!(
            html.contains("No key has made a request inside its window."),
            "{html}"
        );
        assert!(html.contains("No key is blocked."), "{html}");
        assert!(!html.contains("<form"), "{html}");
        assert!(!html.contains(r#"data-test-id="notice""#), "{html}");
        // In-process cannot fail over: no fallback hint.
        assert!(
            html.contains("Decisions: in-process (each instance on its own)"),
            "{html}"
        );
        assert!(!html.contains("ratelimit-fallback"), "{html}");
        assert!(!html.contains("ratelimit-degraded"), "{html}");
    }

    #[test]
    fn degraded_banner_names_the_fallback_only_while_degraded() {
        for (fallback, effect) in [
            ("local", "decisions are made per instance"),
            ("open", "every request is allowed"),
            ("closed", "every request is refused"),
        ] {
            let vm = RateLimitsVm {
                status: limiter("redis", fallback, true),
                ..ratelimits_vm()
            };
            let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
            assert!(
                html.contains(&format!(
                    r#"data-test-id="ratelimit-degraded" data-fallback="{fallback}" class="degraded-banner fallback-{fallback}""#
                )),
                "{html}"
            );
            assert!(
                html.contains(&format!(
                    "Rate limiting is degraded (redis unreachable): fallback {fallback}, {effect}."
                )),
                "{html}"
            );
            assert!(html.contains("2026-11-23 11:30:00 UTC"), "{html}");
            assert!(html.contains("(4 min ago)"), "{html}");
            assert!(html.contains("connection refused"), "{html}");
            assert!(
                html.contains("1,234 decisions made by the fallback"),
                "{html}"
            );
            assert!(!html.contains("Decisions: redis"), "{html}");
            let status = &ratelimits_fragments(&vm)[0];
            assert!(
                status.html.contains("ratelimit-degraded"),
                "{}",
                status.html
            );
        }
        let healthy = render_ratelimits_page(&ratelimits_vm(), None, "/ratelimits", &PAGE);
        assert!(!healthy.contains("degraded"), "{healthy}");
        // An unknown mode is still named, and its text escaped.
        let vm = RateLimitsVm {
            status: LimiterStatusVm {
                reason: Some(HOSTILE.into()),
                ..limiter("redis", "<b>odd</b>", true)
            },
            ..ratelimits_vm()
        };
        let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
        assert!(html.contains("fallback &lt;b&gt;odd&lt;/b&gt;."), "{html}");
        assert!(html.contains(r#"class="degraded-banner""#), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn ratelimits_page_escapes_keys_and_policy_names() {
        let hostile = format!("{HOSTILE}\"x");
        let escaped_text = "&lt;script&gt;alert(1)&lt;/script&gt;\"x";
        let escaped_attr = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;x";
        let vm = RateLimitsVm {
            policies: vec![policy(&hostile)],
            top_keys: vec![usage(&hostile, &hostile, 50.0, true)],
            blocked: vec![blocked(&hostile, &hostile)],
            ..ratelimits_vm()
        };
        let html = render_ratelimits_page(&vm, Some(hostile.clone()), "/ratelimits", &PAGE);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("\"x\""), "{html}");
        // Table cells.
        assert!(
            html.contains(&format!(
                r#"<code data-test-id="policy-name">{escaped_text}</code>"#
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                r#"<code data-test-id="key-name">{escaped_text}</code>"#
            )),
            "{html}"
        );
        // Blocked list.
        assert!(
            html.contains(&format!(
                r#"<code data-test-id="blocked-key">{escaped_text}</code>"#
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                r#"<td data-test-id="blocked-policy">{escaped_text}</td>"#
            )),
            "{html}"
        );
        // Attributes and hidden inputs.
        assert!(
            html.contains(&format!(
                r#"data-test-id="ratelimit-row" data-policy="{escaped_attr}" data-key="{escaped_attr}""#
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                r#"<input type="hidden" name="policy" value="{escaped_attr}">"#
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                r#"<input type="hidden" name="key" value="{escaped_attr}">"#
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                r#"data-confirm="Unblock {escaped_attr} under {escaped_attr}?""#
            )),
            "{html}"
        );
    }

    #[test]
    fn usage_over_100_percent_is_shown_with_the_bar_capped() {
        let vm = RateLimitsVm {
            top_keys: vec![
                usage("api", "burst", 250.0, false),
                usage("api", "near", 85.0, false),
                usage("api", "calm", 42.5, false),
                usage("api", "odd", f64::NAN, false),
            ],
            ..ratelimits_vm()
        };
        let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
        let row = |key: &str| {
            let start = html
                .find(&format!(r#"data-key="{key}""#))
                .unwrap_or_else(|| panic!("no row {key}: {html}"));
            let end = start + html[start..].find("</tr>").expect("row end");
            html[start..end].to_string()
        };
        let burst = row("burst");
        assert!(burst.contains(">250%<"), "{burst}");
        assert!(
            burst.contains(r#"<rect width="100.0" height="1">"#),
            "{burst}"
        );
        assert!(burst.contains(r#"class="usage over""#), "{burst}");
        let near = row("near");
        assert!(near.contains(r#"<rect width="85.0" height="1">"#), "{near}");
        assert!(near.contains(r#"class="usage near""#), "{near}");
        let calm = row("calm");
        assert!(calm.contains(">43%<") || calm.contains(">42%<"), "{calm}");
        assert!(calm.contains(r#"<rect width="42.5" height="1">"#), "{calm}");
        assert!(calm.contains(r#"class="usage""#), "{calm}");
        let odd = row("odd");
        assert!(odd.contains(">–<"), "{odd}");
        assert!(odd.contains(r#"<rect width="0.0" height="1">"#), "{odd}");
        assert!(!html.contains("NaN"), "{html}");
    }

    #[test]
    fn unblock_posts_policy_key_and_back() {
        let html = render_ratelimits_page(&ratelimits_vm(), None, "/ratelimits?x=1", &PAGE);
        let start = html.find("<form").expect("form");
        let form = &html[start..start + html[start..].find("</form>").expect("end")];
        assert!(form.contains(r#"method="post""#), "{form}");
        assert!(form.contains(r#"action="/ratelimits/unblock""#), "{form}");
        assert!(
            form.contains(r#"<input type="hidden" name="policy" value="api">"#),
            "{form}"
        );
        assert!(
            form.contains(r#"<input type="hidden" name="key" value="client-1">"#),
            "{form}"
        );
        assert!(
            form.contains(r#"<input type="hidden" name="back" value="/ratelimits?x=1">"#),
            "{form}"
        );
        assert!(
            form.contains(r#"data-confirm="Unblock client-1 under api?""#),
            "{form}"
        );
        assert!(
            form.contains(r#"data-test-id="unblock-button" class="button">Unblock</button>"#),
            "{form}"
        );
        // Live updates come back to the page itself.
        let fragments = ratelimits_fragments(&ratelimits_vm());
        let region = fragments
            .iter()
            .find(|f| f.id == "ratelimit-blocked")
            .expect("region");
        assert!(
            region
                .html
                .contains(r#"<input type="hidden" name="back" value="/ratelimits">"#),
            "{}",
            region.html
        );
    }

    #[test]
    fn rate_limits_sit_between_instances_and_configuration_in_the_nav() {
        let html = render_config_page(&ConfigVm::default(), &admin_page());
        let instances = html.find(r#"href="/instances""#).expect("instances");
        let limits = html.find(r#"href="/ratelimits""#).expect("rate limits");
        let config = html.find(r#"href="/config""#).expect("config");
        assert!(instances < limits && limits < config, "{html}");
        assert!(html.contains(">Rate limits</a>"), "{html}");
        assert!(
            !html.contains(r#"<a href="/ratelimits" aria-current"#),
            "{html}"
        );
    }

    #[test]
    fn stacked_bars_stay_in_bounds_and_keep_rejections_visible() {
        // Stacks round as a whole: never taller than the chart, and the
        // series on the baseline stays visible beside a large one.
        let vm = RateLimitsVm {
            per_minute: vec![
                RateMinute {
                    minute: MINUTE0,
                    allowed: 1_000_000,
                    rejected: 1,
                },
                RateMinute {
                    minute: MINUTE0 + 60_000,
                    allowed: 1,
                    rejected: 1,
                },
            ],
            ..ratelimits_vm()
        };
        let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
        assert!(
            html.contains(r#"<rect x="0" y="59" width="4" height="1" class="bar rejected">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<rect x="0" y="0" width="4" height="59" class="bar allowed">"#),
            "{html}"
        );
        assert!(
            html.contains("<title>10:34: 1 rejected, 1,000,000 allowed</title>"),
            "{html}"
        );
    }

    const T0: i64 = 1_795_430_000_000;

    fn alert(fingerprint: &str, status: &str, severity: &str) -> AlertRow {
        AlertRow {
            fingerprint: fingerprint.into(),
            rule: "emails-failing".into(),
            kind: "failure_rate".into(),
            subject_label: "queue".into(),
            subject: "emails".into(),
            status: status.into(),
            severity: severity.into(),
            value: 12.5,
            unit: "%".into(),
            summary: "emails: 12.5% of jobs failed in the last 5 min".into(),
            pending_since: T0 - 6 * 60_000,
            firing_since: (status != "pending").then_some(T0 - 4 * 60_000),
            resolved_at: (status == "resolved").then_some(T0 - 60_000),
            ..AlertRow::default()
        }
    }

    fn rule_row(name: &str, kind: &str, uses_window: bool, uses_threshold: bool) -> RuleRow {
        RuleRow {
            name: name.into(),
            kind: kind.into(),
            kind_label: "Failure rate".into(),
            subject_label: "queue".into(),
            target: "*".into(),
            threshold: 5.5,
            unit: "%".into(),
            window_secs: 300,
            for_secs: 60,
            severity: "critical".into(),
            enabled: true,
            uses_window,
            uses_threshold,
        }
    }

    fn delivery(id: i64, status: &str) -> DeliveryRow {
        DeliveryRow {
            id,
            fingerprint: "fp1".into(),
            rule: "emails-failing".into(),
            event: "firing".into(),
            receiver: "https://hooks.example.com/alerts".into(),
            status: status.into(),
            attempts: if status == "failed" { 5 } else { 1 },
            last_error: (status != "sent").then(|| "HTTP 502 Bad Gateway".into()),
            next_attempt_at: (status == "pending").then_some(T0 + 30_000),
            created_at: T0 - 4 * 60_000,
            sent_at: (status == "sent").then_some(T0 - 3 * 60_000),
        }
    }

    fn alerts_vm() -> AlertsVm {
        AlertsVm {
            active: vec![
                alert("fp1", "firing", "critical"),
                alert("fp2", "pending", "warning"),
            ],
            rules: vec![
                rule_row("emails-failing", "failure_rate", true, true),
                rule_row("backend-down", "backend_unreachable", false, false),
            ],
            history: vec![alert("fp0", "resolved", "warning")],
            history_offset: 0,
            history_total: 1,
            history_limit: 50,
            deliveries: vec![
                delivery(3, "failed"),
                delivery(2, "pending"),
                delivery(1, "sent"),
            ],
            receivers: vec!["https://hooks.example.com/alerts".into()],
            evaluator: Some("api-1".into()),
            now: T0,
            kinds: vec![
                ("failure_rate".into(), "Failure rate".into(), "%".into()),
                (
                    "backend_unreachable".into(),
                    "Backend unreachable".into(),
                    String::new(),
                ),
            ],
        }
    }

    fn firing_banner() -> AlertBannerVm {
        AlertBannerVm {
            firing: vec![alert("fp1", "firing", "critical")],
            now: T0,
        }
    }

    /// A page for a signed-in admin named ada, with a CSRF token.
    pub(crate) fn admin_page() -> PageCtx {
        signed_in("ada", "admin")
    }

    pub(crate) fn signed_in(name: &str, role: &str) -> PageCtx {
        PageCtx {
            user: Some(UserVm {
                name: name.into(),
                role: role.into(),
                can_sign_out: true,
            }),
            csrf_token: "tok-123".into(),
            ..PageCtx::default()
        }
    }

    #[test]
    fn the_shell_shows_who_is_signed_in_and_carries_the_csrf_token() {
        let html = render_queue_page(&failed_page(), 0, &signed_in("olga", "operator"));
        assert!(
            html.contains(r#"<meta name="csrf-token" content="tok-123">"#),
            "{html}"
        );
        assert!(html.contains(r#"data-role="operator""#), "{html}");
        assert!(
            html.contains(r#"<span data-test-id="user-name">olga</span>"#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="sign-out""#), "{html}");
        // Every form that posts carries the token; forms that only GET
        // (filters, search) do not need it.
        let posts = html.matches(r#"method="post""#).count();
        assert!(posts > 3, "{html}");
        assert_eq!(
            html.matches(r#"<input type="hidden" name="csrf_token" value="tok-123">"#)
                .count(),
            posts,
            "{html}"
        );
        // Users and settings are the admin's: no links for an operator.
        assert!(!html.contains(r#"href="/config""#), "{html}");
        assert!(!html.contains(r#"href="/users""#), "{html}");
        let admin = render_queue_page(&failed_page(), 0, &admin_page());
        assert!(admin.contains(r#"href="/config""#), "{admin}");
        assert!(admin.contains(r#"href="/users""#), "{admin}");
        // Buttons say which role they need, so the stylesheet hides them
        // from a viewer.
        assert!(html.contains("needs-operator"), "{html}");
        // A live region is shared by every open page: its forms carry an
        // empty token that the page script fills in.
        let region = queue_fragments(&failed_page(), 0)
            .into_iter()
            .find(|f| f.id == "jobs")
            .expect("jobs region");
        assert!(
            region
                .html
                .contains(r#"<input type="hidden" name="csrf_token" value="">"#),
            "{}",
            region.html
        );
        // Nobody signed in: no token, no menu.
        let anonymous = render_queue_page(&failed_page(), 0, &PAGE);
        assert!(!anonymous.contains("csrf-token"), "{anonymous}");
        assert!(!anonymous.contains("user-menu"), "{anonymous}");
    }

    #[test]
    fn the_login_page_keeps_the_name_and_where_to_go() {
        let html = render_login_page(
            &LoginVm {
                username: "ada<b>".into(),
                next: "/queues?state=failed".into(),
                error: Some("wrong user name or password".into()),
                notice: None,
            },
            &PAGE,
        );
        assert!(
            html.contains("<title>Sign in · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"value="ada&lt;b&gt;""#), "{html}");
        assert!(
            html.contains(r#"<input type="hidden" name="next" value="/queues?state=failed">"#),
            "{html}"
        );
        assert!(html.contains("wrong user name or password"), "{html}");
        assert!(html.contains(r#"type="password""#), "{html}");
        // No sections to click while signed out.
        assert!(!html.contains(r#"href="/queues""#), "{html}");
    }

    /// A page with [`firing_banner`].
    fn firing_page() -> PageCtx {
        PageCtx {
            banner: firing_banner(),
            ..PageCtx::default()
        }
    }

    /// Every page, rendered with the same banner.
    fn every_page(banner: &PageCtx) -> Vec<(&'static str, String)> {
        vec![
            (
                "overview",
                render_overview_page(&OverviewVm::default(), banner),
            ),
            (
                "queues",
                render_queues_page(&queues_vm(vec![], true), banner),
            ),
            ("queue", render_queue_page(&failed_page(), 0, banner)),
            ("job", render_job_page(&JobPageVm::default(), banner)),
            (
                "channels",
                render_channels_page(&ChannelsVm::default(), banner),
            ),
            (
                "instances",
                render_instances_page(&InstancesVm::default(), banner),
            ),
            (
                "ratelimits",
                render_ratelimits_page(&RateLimitsVm::default(), None, "/ratelimits", banner),
            ),
            ("config", render_config_page(&ConfigVm::default(), banner)),
            ("alerts", render_alerts_page(&alerts_vm(), None, banner)),
            ("error", render_error_page(404, "Not Found", "gone", banner)),
        ]
    }

    /// The HTML of the first element carrying `marker`, up to its `end`.
    fn element<'a>(html: &'a str, marker: &str, end: &str) -> &'a str {
        let at = html
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker}: {html}"));
        let start = html[..at].rfind('<').expect("element start");
        let stop = at + html[at..].find(end).expect("element end") + end.len();
        &html[start..stop]
    }

    const ALERT_REGIONS: [&str; 3] = ["alerts-active", "alerts-deliveries", "alerts-history"];

    #[test]
    fn alerts_page_renders_every_region() {
        let html = render_alerts_page(
            &alerts_vm(),
            Some("Rule emails-failing saved.".into()),
            &firing_page(),
        );
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Alerts · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/alerts""#), "{html}");
        assert!(
            !html.contains("http-equiv"),
            "a page with forms being typed in must not reload itself: {html}"
        );
        assert!(
            html.contains(r#"<a href="/alerts" aria-current="page" class="current">Alerts</a>"#),
            "{html}"
        );
        for id in ALERT_REGIONS {
            assert!(html.contains(&format!(r#"<div id="{id}""#)), "{id}: {html}");
        }
        assert!(html.contains("Rule emails-failing saved."), "{html}");
        // Active alerts: status, severity, value with unit, since and age.
        assert_eq!(
            html.matches(r#"data-test-id="alert-row""#).count(),
            2,
            "{html}"
        );
        assert!(
            html.contains(
                r#"id="alert-fp1" data-test-id="alert-row" data-fingerprint="fp1" data-rule="emails-failing" data-status="firing" data-severity="critical""#
            ),
            "{html}"
        );
        assert!(html.contains(r#"data-status="pending""#), "{html}");
        assert!(
            html.contains(r#"class="badge status-firing">Firing<"#),
            "{html}"
        );
        assert!(
            html.contains(r#"class="badge severity sev-critical">Critical<"#),
            "{html}"
        );
        assert!(html.contains(r#"class="num">12.5%</td>"#), "{html}");
        assert!(html.contains("(4 min)"), "{html}");
        assert!(
            html.contains("(6 min)"),
            "pending counts from its start: {html}"
        );
        assert!(
            html.contains("Rules are evaluated by <code>api-1</code>"),
            "{html}"
        );
        // Rules, outside the live regions.
        assert_eq!(
            html.matches(r#"data-test-id="rule-row""#).count(),
            2,
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="new-rule-form""#), "{html}");
        assert!(
            html.contains(r#"<option value="failure_rate">Failure rate (%)</option>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<option value="backend_unreachable">Backend unreachable</option>"#),
            "{html}"
        );
        // Deliveries: failed ones flagged, pending ones with their next try.
        assert_eq!(
            html.matches(r#"data-test-id="delivery-row""#).count(),
            3,
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="delivery-row" data-status="failed" data-id="3" data-fingerprint="fp1" class="delivery failed-delivery""#),
            "{html}"
        );
        assert_eq!(html.matches("failed-delivery").count(), 1, "{html}");
        assert!(html.contains("HTTP 502 Bad Gateway"), "{html}");
        assert!(html.contains("(in 30 s)"), "{html}");
        assert!(
            html.contains(r#"data-test-id="delivery-sent">sent "#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="alert-receiver">https://hooks.example.com/alerts<"#),
            "{html}"
        );
        // History: times, never-fired, how long it lasted, pager.
        assert_eq!(
            html.matches(r#"data-test-id="history-row""#).count(),
            1,
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="history-lasted" class="num">3 min<"#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="history-pager""#), "{html}");
        assert!(html.contains("1–1 of 1"), "{html}");
        assert!(!html.contains("history-older"), "{html}");
    }

    #[test]
    fn alerts_page_without_data_shows_every_empty_state() {
        let vm = AlertsVm {
            now: T0,
            history_limit: 50,
            ..AlertsVm::default()
        };
        let html = render_alerts_page(&vm, None, &PAGE);
        assert!(html.contains("Nothing is pending or firing."), "{html}");
        assert!(html.contains("No webhook is configured."), "{html}");
        assert!(html.contains("No alert has resolved yet."), "{html}");
        assert!(html.contains(r#"data-test-id="rules-empty""#), "{html}");
        assert!(
            html.contains("No instance holds the evaluation lease"),
            "{html}"
        );
        assert!(!html.contains("<table"), "{html}");
        assert!(!html.contains("history-pager"), "{html}");
        assert!(!html.contains(r#"data-test-id="notice""#), "{html}");
        assert!(!html.contains("ack-button"), "{html}");
        let with_webhook = render_alerts_page(
            &AlertsVm {
                receivers: vec!["https://hooks.example.com/x".into()],
                ..vm
            },
            None,
            &PAGE,
        );
        assert!(
            with_webhook.contains("Nothing has been sent yet."),
            "{with_webhook}"
        );
        assert!(
            !with_webhook.contains("No webhook is configured."),
            "{with_webhook}"
        );
    }

    #[test]
    fn alerts_fragments_are_the_regions_of_the_page() {
        for vm in [alerts_vm(), AlertsVm::default()] {
            let html = render_alerts_page(&vm, Some("done".into()), &firing_page());
            let fragments = alerts_fragments(&vm);
            assert_eq!(
                fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
                ALERT_REGIONS
            );
            for f in &fragments {
                assert!(
                    f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                    "{}",
                    f.html
                );
                assert!(html.contains(&f.html), "page lacks region {}", f.id);
                assert!(!f.html.contains(r#"data-test-id="notice""#), "{}", f.html);
                // The rules editor is never swapped under the operator.
                assert!(!f.html.contains("rule-save"), "{}", f.html);
                assert!(!f.html.contains(r#"name="target""#), "{}", f.html);
                assert!(!f.html.contains("new-rule"), "{}", f.html);
            }
            let banner = banner_fragment(&firing_banner());
            assert_eq!(banner.id, "alert-banner");
            assert!(html.contains(&banner.html), "{html}");
        }
    }

    #[test]
    fn banner_is_on_every_page() {
        let firing = firing_banner();
        let region = banner_fragment(&firing);
        assert!(
            region
                .html
                .starts_with(r#"<div id="alert-banner" data-test-id="alert-banner" role="alert""#),
            "{}",
            region.html
        );
        let quiet = banner_fragment(&NO_ALERTS);
        assert_eq!(
            quiet.html,
            r#"<div id="alert-banner" data-test-id="alert-banner" class="alert-banner"><!></div>"#
        );
        for (page, html) in every_page(&firing_page()) {
            assert!(html.contains(&region.html), "{page}: {html}");
            assert_eq!(
                html.matches(r#"<div id="alert-banner""#).count(),
                1,
                "{page}"
            );
            assert!(html.contains(r#"role="alert""#), "{page}: {html}");
            assert!(
                html.contains(r#"href="/alerts#alert-fp1""#),
                "{page}: {html}"
            );
            // At the top: before the page's own heading.
            let banner_at = html.find(r#"<div id="alert-banner""#).expect("banner");
            assert!(banner_at < html.find("<h1").expect("h1"), "{page}: {html}");
            // Every page links to the Alerts page from the navigation.
            assert!(html.contains(r#"href="/alerts""#), "{page}: {html}");
        }
        for (page, html) in every_page(&PAGE) {
            assert!(html.contains(&quiet.html), "{page}: {html}");
            assert!(!html.contains(r#"role="alert""#), "{page}: {html}");
            assert!(!html.contains("banner-alert"), "{page}: {html}");
        }
    }

    #[test]
    fn banner_says_how_bad_since_when_and_who_is_on_it() {
        let html = banner_fragment(&firing_banner()).html;
        assert!(
            html.contains(r#"class="alert-banner firing sev-critical""#),
            "{html}"
        );
        assert!(html.contains("1 alert is firing"), "{html}");
        assert!(
            html.contains(r#"data-test-id="banner-alert" data-fingerprint="fp1" data-severity="critical" class="alert-line sev-critical""#),
            "{html}"
        );
        assert!(html.contains(">Critical</span>"), "{html}");
        assert!(
            html.contains("emails: 12.5% of jobs failed in the last 5 min"),
            "{html}"
        );
        assert!(
            html.contains(r#"since <time datetime="2026-11-23T10:29:20Z""#),
            "{html}"
        );
        assert!(
            html.contains("2026-11-23 10:29:20 UTC</time> (4 min)"),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/alerts#alert-fp1" data-test-id="banner-link">Alerts</a>"#),
            "{html}"
        );
        assert!(!html.contains("alert-acked"), "{html}");
        // Acknowledged and silenced: marked, and a silenced warning is quiet.
        let handled = AlertRow {
            acknowledged_by: Some("dashboard".into()),
            acknowledged_at: Some(T0 - 60_000),
            silenced_until: Some(T0 + 3 * 3_600_000),
            ..alert("fp2", "firing", "warning")
        };
        let html = banner_fragment(&AlertBannerVm {
            firing: vec![handled.clone()],
            now: T0,
        })
        .html;
        assert!(
            html.contains(r#"class="alert-banner firing quiet""#),
            "{html}"
        );
        assert!(
            html.contains(r#"class="alert-line sev-warning silenced""#),
            "{html}"
        );
        assert!(html.contains("Acknowledged by dashboard"), "{html}");
        assert!(html.contains("Silenced (in 3 h)"), "{html}");
        // A silence that ran out is no silence.
        let expired = AlertRow {
            silenced_until: Some(T0 - 1),
            ..handled
        };
        let html = banner_fragment(&AlertBannerVm {
            firing: vec![expired, alert("fp3", "firing", "warning")],
            now: T0,
        })
        .html;
        assert!(
            html.contains(r#"class="alert-banner firing sev-warning""#),
            "{html}"
        );
        assert!(html.contains("2 alerts are firing"), "{html}");
        assert!(!html.contains("silenced"), "{html}");
    }

    #[test]
    fn alert_buttons_post_to_the_alert_and_come_back() {
        let mut vm = alerts_vm();
        vm.active[1].acknowledged_by = Some("dashboard".into());
        vm.active[1].silenced_until = Some(T0 + 60_000);
        let html = render_alerts_page(&vm, None, &PAGE);
        let form =
            |action: &str| element(&html, &format!(r#"action="{action}""#), "</form>").to_string();
        let ack = form("/alerts/fp1/ack");
        assert!(ack.contains(r#"method="post""#), "{ack}");
        assert!(
            ack.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{ack}"
        );
        assert!(
            ack.contains(r#"data-test-id="ack-button" class="button">Acknowledge</button>"#),
            "{ack}"
        );
        let silence = form("/alerts/fp1/silence");
        assert!(silence.contains(r#"method="post""#), "{silence}");
        assert!(
            silence.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{silence}"
        );
        assert!(
            silence.contains(r#"<select name="for" data-test-id="silence-for">"#),
            "{silence}"
        );
        for value in ["1h", "4h", "24h"] {
            assert!(
                silence.contains(&format!(r#"<option value="{value}""#)),
                "{silence}"
            );
        }
        assert!(
            silence.contains(r#"<option value="1h" selected>"#),
            "{silence}"
        );
        assert!(
            silence.contains(r#"data-test-id="silence-button""#),
            "{silence}"
        );
        assert!(
            !html.contains(r#"action="/alerts/fp1/unsilence""#),
            "{html}"
        );
        // Acknowledged and silenced: no second ack, and Unsilence instead.
        assert!(!html.contains(r#"action="/alerts/fp2/ack""#), "{html}");
        assert!(!html.contains(r#"action="/alerts/fp2/silence""#), "{html}");
        let unsilence = form("/alerts/fp2/unsilence");
        assert!(
            unsilence.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{unsilence}"
        );
        assert!(
            unsilence.contains(r#"data-test-id="unsilence-button""#),
            "{unsilence}"
        );
        let row = element(&html, r#"id="alert-fp2""#, "</tr>");
        assert!(
            row.contains(r#"class="alert-row sev-warning silenced""#),
            "{row}"
        );
        assert!(row.contains("Acknowledged by dashboard"), "{row}");
        assert!(row.contains("Silenced (in 1 min)"), "{row}");
        // Live updates carry the same forms.
        let active = &alerts_fragments(&vm)[0];
        assert!(active.html.contains(&ack), "{}", active.html);
    }

    #[test]
    fn rule_forms_post_every_field_by_name() {
        let mut vm = alerts_vm();
        vm.rules[1].enabled = false;
        let html = render_alerts_page(&vm, None, &PAGE);
        let row = element(
            &html,
            r#"data-test-id="rule-row" data-rule="emails-failing""#,
            "</tr>",
        );
        let save = element(row, r#"action="/alerts/rules/emails-failing""#, "</form>");
        assert!(save.contains(r#"method="post""#), "{save}");
        assert!(save.contains(r#"id="rule-form-0""#), "{save}");
        assert!(
            save.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{save}"
        );
        assert!(save.contains(r#"data-test-id="rule-save""#), "{save}");
        for field in [
            r#"<input type="text" name="target" value="*" form="rule-form-0""#,
            r#"<input type="number" step="any" name="threshold" value="5.5" form="rule-form-0""#,
            r#"name="window_secs" value="300" form="rule-form-0""#,
            r#"name="for_secs" value="60" form="rule-form-0""#,
            r#"<select name="severity" form="rule-form-0""#,
            r#"<option value="critical" selected>Critical</option>"#,
            r#"<input type="checkbox" name="enabled" value="on" checked form="rule-form-0""#,
        ] {
            assert!(row.contains(field), "{field}: {row}");
        }
        let delete = element(
            row,
            r#"action="/alerts/rules/emails-failing/delete""#,
            "</form>",
        );
        assert!(
            delete.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{delete}"
        );
        assert!(
            delete.contains("data-confirm=\"Delete rule emails-failing?"),
            "{delete}"
        );
        assert!(
            delete.contains(r#"data-test-id="rule-delete" class="button danger""#),
            "{delete}"
        );
        // A yes/no kind: threshold and window travel hidden, unchanged.
        let row = element(
            &html,
            r#"data-test-id="rule-row" data-rule="backend-down""#,
            "</tr>",
        );
        assert!(row.contains(r#"class="rule disabled""#), "{row}");
        assert!(
            row.contains(
                r#"<input type="hidden" name="threshold" value="5.5" form="rule-form-1">"#
            ),
            "{row}"
        );
        assert!(
            row.contains(
                r#"<input type="hidden" name="window_secs" value="300" form="rule-form-1">"#
            ),
            "{row}"
        );
        assert!(!row.contains("rule-threshold"), "{row}");
        assert!(!row.contains("rule-window"), "{row}");
        assert!(
            row.contains(r#"<input type="checkbox" name="enabled" value="on" form="rule-form-1""#),
            "{row}"
        );
        // New rule.
        let create = element(&html, r#"action="/alerts/rules""#, "</form>");
        assert!(create.contains(r#"method="post""#), "{create}");
        assert!(
            create.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{create}"
        );
        for name in ["name", "target", "threshold", "window_secs", "for_secs"] {
            assert!(
                create.contains(&format!(r#"name="{name}""#)),
                "{name}: {create}"
            );
        }
        assert!(create.contains(r#"<select name="kind""#), "{create}");
        assert!(create.contains(r#"<select name="severity""#), "{create}");
        assert!(
            create.contains(r#"name="enabled" value="on" checked"#),
            "{create}"
        );
        assert!(create.contains(r#"data-test-id="rule-create""#), "{create}");
    }

    #[test]
    fn history_pages_link_both_ways_and_stream_their_own_page() {
        let mut vm = alerts_vm();
        vm.history = (0..50)
            .map(|i| alert(&format!("h{i}"), "resolved", "warning"))
            .collect();
        vm.history_offset = 50;
        vm.history_total = 1_234;
        let html = render_alerts_page(&vm, None, &PAGE);
        assert!(
            html.contains(r#"data-live="/events/alerts?offset=50&amp;limit=50""#),
            "{html}"
        );
        assert!(html.contains("51–100 of 1,234"), "{html}");
        assert!(
            html.contains(r#"href="/alerts?offset=0&amp;limit=50" data-test-id="history-newest""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/alerts?offset=0&amp;limit=50" rel="prev""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/alerts?offset=100&amp;limit=50" rel="next""#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"href="/alerts?offset=1200&amp;limit=50" data-test-id="history-oldest""#
            ),
            "{html}"
        );
        let history = &alerts_fragments(&vm)[2];
        assert!(history.html.contains("51–100 of 1,234"), "{}", history.html);
        // Past the end: say so, and offer the way back.
        vm.history.clear();
        vm.history_offset = 5_000;
        let html = render_alerts_page(&vm, None, &PAGE);
        assert!(html.contains("No resolved alert on this page."), "{html}");
        assert!(html.contains("history-newest"), "{html}");
    }

    #[test]
    fn alerts_page_escapes_names_subjects_summaries_and_errors() {
        let hostile = format!("{HOSTILE}\"x");
        let escaped_text = "&lt;script&gt;alert(1)&lt;/script&gt;\"x";
        let escaped_attr = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;x";
        let bad = |mut a: AlertRow| {
            a.rule = hostile.clone();
            a.subject = hostile.clone();
            a.summary = hostile.clone();
            a.acknowledged_by = Some(hostile.clone());
            a
        };
        let mut vm = alerts_vm();
        vm.active = vec![bad(alert("fp1", "firing", "critical"))];
        vm.history = vec![bad(alert("fp0", "resolved", "warning"))];
        vm.rules[0].name = hostile.clone();
        vm.rules[0].target = hostile.clone();
        vm.receivers = vec![hostile.clone()];
        for d in &mut vm.deliveries {
            d.rule = hostile.clone();
            d.receiver = hostile.clone();
            d.last_error = Some(hostile.clone());
        }
        vm.evaluator = Some(hostile.clone());
        vm.kinds[0].1 = hostile.clone();
        let banner = PageCtx {
            banner: AlertBannerVm {
                firing: vec![bad(alert("fp1", "firing", "critical"))],
                now: T0,
            },
            user: Some(UserVm {
                name: hostile.clone(),
                role: hostile.clone(),
                can_sign_out: true,
            }),
            csrf_token: hostile.clone(),
        };
        let html = render_alerts_page(&vm, Some(hostile.clone()), &banner);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("\"x\""), "{html}");
        for text in [
            format!(r#"<code data-test-id="alert-rule">{escaped_text}</code>"#),
            format!(r#"<code>{escaped_text}</code>"#),
            format!(r#"data-test-id="alert-summary" class="summary">{escaped_text}</td>"#),
            format!(r#"data-test-id="banner-summary" class="summary">{escaped_text}</span>"#),
            format!(r#"data-test-id="history-summary" class="summary">{escaped_text}</td>"#),
            format!(r#"<code data-test-id="rule-name">{escaped_text}</code>"#),
            format!(r#"<code data-test-id="alert-receiver">{escaped_text}</code>"#),
            format!(r#"<code data-test-id="delivery-receiver">{escaped_text}</code>"#),
            format!(r#"data-test-id="delivery-error" class="error-text">{escaped_text}</span>"#),
            format!("Acknowledged by {escaped_text}"),
            format!(r#"data-test-id="notice" class="notice">{escaped_text}</p>"#),
        ] {
            assert!(html.contains(&text), "{text}: {html}");
        }
        for attr in [
            format!(r#"data-rule="{escaped_attr}" data-status="firing""#),
            format!(r#"data-test-id="rule-row" data-rule="{escaped_attr}""#),
            format!(r#"name="target" value="{escaped_attr}""#),
            format!(r#"aria-label="Target of rule {escaped_attr}""#),
            format!(r#"data-confirm="Delete rule {escaped_attr}?"#),
        ] {
            assert!(html.contains(&attr), "{attr}: {html}");
        }
        // In a path, the name is percent-encoded: no quote, no markup.
        assert!(
            html.contains(r#"action="/alerts/rules/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22x""#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"action="/alerts/rules/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22x/delete""#
            ),
            "{html}"
        );
        // Every page's banner escapes just the same.
        for (page, html) in every_page(&banner) {
            assert!(!html.contains("<script>"), "{page}: {html}");
            assert!(
                html.contains(&format!(r#"class="summary">{escaped_text}</span>"#)),
                "{page}: {html}"
            );
        }
    }

    /// Every tag in `html` as its name (`/name` for a closing tag) and
    /// attribute names, lowercased:
    /// a small scanner that skips text, comments and quoted attribute
    /// values, so escaped markup in text (`&lt;img onerror=…`) never counts.
    fn tags(html: &str) -> Vec<(String, Vec<String>)> {
        let bytes = html.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'<' {
                i += 1;
                continue;
            }
            if html[i..].starts_with("<!--") {
                i += html[i..].find("-->").map_or(bytes.len(), |end| end + 3);
                continue;
            }
            i += 1;
            let closing = bytes.get(i) == Some(&b'/');
            if closing {
                i += 1;
            }
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'-') {
                i += 1;
            }
            if i == start {
                continue; // `<!DOCTYPE …>` or a stray `<`
            }
            let name = html[start..i].to_ascii_lowercase();
            let name = if closing { format!("/{name}") } else { name };
            let mut attrs = Vec::new();
            while i < bytes.len() && bytes[i] != b'>' {
                match bytes[i] {
                    b' ' | b'\n' | b'\t' | b'/' => i += 1,
                    b'"' | b'\'' => {
                        let quote = bytes[i];
                        i += 1;
                        while i < bytes.len() && bytes[i] != quote {
                            i += 1;
                        }
                        i += 1;
                    }
                    b'=' => {
                        i += 1;
                        // An unquoted value runs to a space or the tag end.
                        if !matches!(bytes.get(i), Some(b'"' | b'\'')) {
                            while i < bytes.len() && !matches!(bytes[i], b' ' | b'>') {
                                i += 1;
                            }
                        }
                    }
                    _ => {
                        let at = i;
                        while i < bytes.len() && !matches!(bytes[i], b' ' | b'=' | b'>' | b'/') {
                            i += 1;
                        }
                        attrs.push(html[at..i].to_ascii_lowercase());
                    }
                }
            }
            out.push((name, attrs));
        }
        out
    }

    /// Every page and every live fragment, with data in each region (rows,
    /// charts, usage bars, banners), for the CSP check below.
    fn every_page_populated() -> Vec<(String, String)> {
        let banner = PageCtx {
            user: Some(UserVm {
                name: "ada".into(),
                role: "admin".into(),
                can_sign_out: true,
            }),
            csrf_token: "token".into(),
            ..firing_page()
        };
        let points: Vec<MinutePoint> = (0..60)
            .map(|i| MinutePoint {
                minute_ms: MINUTE0 + i * 60_000,
                completed: i as u64,
                failed: i as u64 % 4,
            })
            .collect();
        let overview = OverviewVm {
            warnings: vec!["emails: 2 failed".into()],
            ..range_overview(ChartRange::Hour, "emails", points)
        };
        let queues = queues_vm(vec![row("emails", 2, false), row("reports", 0, true)], true);
        let channels = channels_vm(vec![channel("flags", 1), channel("users", 0)], true);
        let instances = instances_vm(vec![
            instance("api-1", InstanceState::Live, Some(true)),
            instance("api-2", InstanceState::Stale, Some(false)),
        ]);
        let mut ratelimits = ratelimits_vm();
        ratelimits
            .top_keys
            .push(usage("api", "odd", f64::NAN, false));
        let alerts = alerts_vm();
        let queue = failed_page();
        let job = JobPageVm {
            queue: "emails".into(),
            id: "42".into(),
            name: "send".into(),
            state: "failed".into(),
            data_pretty: "{}".into(),
            failed_reason: Some("SMTP 421".into()),
            stacktrace: vec!["SMTP 421".into()],
            history: vec![AttemptVm {
                attempt: 1,
                started_at: 1_000,
                finished_at: 2_500,
                error: Some("SMTP 421".into()),
                chain: vec!["connection reset".into()],
            }],
            notice: Some("Job 42 was retried.".into()),
            ..JobPageVm::default()
        };
        let config = ConfigVm {
            version: "0.1.0".into(),
            deployment: "redis".into(),
            entries: vec![ConfigEntry {
                flag: "--redis".into(),
                value: "redis://:***@cache:6379".into(),
                help: "Redis for scale-out".into(),
            }],
        };
        let mut pages: Vec<(String, String)> = vec![
            ("overview".into(), render_overview_page(&overview, &banner)),
            ("queues".into(), render_queues_page(&queues, &banner)),
            ("queue".into(), render_queue_page(&queue, 0, &banner)),
            ("job".into(), render_job_page(&job, &banner)),
            ("channels".into(), render_channels_page(&channels, &banner)),
            (
                "instances".into(),
                render_instances_page(&instances, &banner),
            ),
            (
                "ratelimits".into(),
                render_ratelimits_page(
                    &ratelimits,
                    Some("Unblocked.".into()),
                    "/ratelimits",
                    &banner,
                ),
            ),
            ("config".into(), render_config_page(&config, &banner)),
            (
                "audit".into(),
                render_audit_page(
                    &AuditVm {
                        rows: vec![AuditRow::default(), AuditRow::default()],
                        total: 2,
                        limit: 50,
                        ..AuditVm::default()
                    },
                    &banner,
                ),
            ),
            (
                "alerts".into(),
                render_alerts_page(&alerts, Some("Saved.".into()), &banner),
            ),
            (
                "error".into(),
                render_error_page(404, "Not Found", "gone", &banner),
            ),
        ];
        pages.extend(
            every_page(&PAGE)
                .into_iter()
                .map(|(p, h)| (format!("{p} (empty)"), h)),
        );
        let fragments = [
            overview_fragments(&overview),
            queues_fragments(&queues),
            channels_fragments(&channels),
            instances_fragments(&instances),
            ratelimits_fragments(&ratelimits),
            alerts_fragments(&alerts),
            queue_fragments(&queue, 0),
            job_fragments(&job),
            job_gone_fragments("emails", "42"),
            vec![banner_fragment(&banner.banner)],
        ];
        pages.extend(
            fragments
                .into_iter()
                .flatten()
                .map(|f| (format!("fragment {}", f.id), f.html)),
        );
        pages
    }

    /// The server sends a Content-Security-Policy without 'unsafe-inline':
    /// no page may rely on inline script, event handler attributes, `style`
    /// attributes or `<style>` elements.
    #[test]
    fn no_page_needs_inline_script_or_style() {
        for (page, html) in every_page_populated() {
            assert!(!html.contains(r#" style=""#), "{page}: {html}");
            assert!(!html.contains("<style"), "{page}: {html}");
            let mut scripts = 0;
            for (tag, attrs) in tags(&html) {
                assert_ne!(tag, "style", "{page}: {html}");
                for attr in &attrs {
                    assert_ne!(attr, "style", "{page}: <{tag}> {html}");
                    assert!(
                        !(attr.starts_with("on") && attr.len() > 2),
                        "{page}: <{tag} {attr}=…> {html}"
                    );
                }
                if tag == "script" {
                    scripts += 1;
                    assert!(
                        attrs.iter().any(|a| a == "src"),
                        "{page}: inline <script> {html}"
                    );
                }
            }
            if html.starts_with("<!DOCTYPE") {
                // Only the external script.
                assert_eq!(scripts, 1, "{page}: {html}");
                assert!(
                    html.contains(r#"<script src="/app.js" defer></script>"#),
                    "{page}"
                );
            }
        }
    }

    #[test]
    fn the_tag_scanner_sees_attributes_not_text() {
        let found = tags(
            r#"<p class="a" title='x onclick=y'>&lt;img onerror=x&gt; style="" <b data-x=1 onclick="z">t</b></p>"#,
        );
        assert_eq!(
            found,
            vec![
                (
                    "p".to_string(),
                    vec!["class".to_string(), "title".to_string()]
                ),
                (
                    "b".to_string(),
                    vec!["data-x".to_string(), "onclick".to_string()]
                ),
                ("/b".to_string(), vec![]),
                ("/p".to_string(), vec![]),
            ]
        );
    }

    fn users_vm(rows: Vec<UserRow>) -> UsersVm {
        UsersVm { rows, notice: None }
    }

    fn user_row(name: &str, role: &str, disabled: bool, is_self: bool) -> UserRow {
        UserRow {
            name: name.into(),
            role: role.into(),
            created_at: MINUTE0,
            disabled,
            is_self,
        }
    }

    /// An admin's page with a session, so forms carry its token.
    fn users_admin_page() -> PageCtx {
        PageCtx {
            user: Some(UserVm {
                name: "root".into(),
                role: "admin".into(),
                can_sign_out: true,
            }),
            csrf_token: "tok-123".into(),
            banner: NO_ALERTS,
        }
    }

    #[test]
    fn users_page_lists_accounts_with_their_forms() {
        let vm = UsersVm {
            notice: Some("User ada created.".into()),
            ..users_vm(vec![
                user_row("ada", "operator", false, false),
                user_row("bob", "viewer", true, false),
                user_row("root", "admin", false, true),
            ])
        };
        let html = render_users_page(&vm, &users_admin_page());
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(html.contains("<title>Users · Switchyard</title>"), "{html}");
        assert!(
            html.contains(r#"href="/users" aria-current="page""#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="notice""#), "{html}");
        assert!(html.contains("User ada created."), "{html}");
        assert!(
            html.contains(r#"data-test-id="user-row" data-name="ada""#),
            "{html}"
        );
        assert!(html.contains(r#"action="/users/ada/role""#), "{html}");
        assert!(html.contains(r#"action="/users/ada/disable""#), "{html}");
        assert!(html.contains(r#"action="/users/bob/enable""#), "{html}");
        assert!(!html.contains(r#"action="/users/bob/disable""#), "{html}");
        assert!(html.contains(format_timestamp(MINUTE0).as_str()), "{html}");
        // Their own account has no buttons.
        assert!(!html.contains(r#"action="/users/root/"#), "{html}");
        assert!(html.contains(r#"data-test-id="user-self""#), "{html}");
        assert!(html.contains(r#"action="/users""#), "{html}");
        assert!(!html.contains(r#"data-test-id="users-empty""#), "{html}");
    }

    #[test]
    fn users_page_puts_the_csrf_token_and_back_in_every_form() {
        let vm = users_vm(vec![
            user_row("ada", "operator", false, false),
            user_row("bob", "viewer", true, false),
        ]);
        let html = render_users_page(&vm, &users_admin_page());
        let forms: Vec<&str> = html
            .split("<form")
            .skip(1)
            .map(|rest| &rest[..rest.find("</form>").expect("form closes")])
            .collect();
        // Sign out, two per account, and the new user form.
        assert_eq!(forms.len(), 6, "{html}");
        for form in forms {
            assert!(form.contains(r#"method="post""#), "{form}");
            assert!(
                form.contains(r#"<input type="hidden" name="csrf_token" value="tok-123">"#),
                "{form}"
            );
            if !form.contains(r#"action="/logout""#) {
                assert!(
                    form.contains(r#"<input type="hidden" name="back" value="/users">"#),
                    "{form}"
                );
            }
        }
    }

    #[test]
    fn users_page_escapes_names() {
        let vm = users_vm(vec![user_row(
            r#"<script>alert("x")</script>"#,
            "viewer",
            false,
            false,
        )]);
        let html = render_users_page(&vm, &users_admin_page());
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert"), "{html}");
        assert!(!html.contains(r#"data-name="<script"#), "{html}");
        for (tag, attrs) in tags(&html) {
            assert_ne!(tag, "style", "{html}");
            for attr in &attrs {
                assert_ne!(attr, "style", "{html}");
                assert!(!(attr.starts_with("on") && attr.len() > 2), "{attr} {html}");
            }
        }
    }

    #[test]
    fn users_page_without_accounts_says_so() {
        let html = render_users_page(&users_vm(vec![]), &users_admin_page());
        assert!(html.contains(r#"data-test-id="users-empty""#), "{html}");
        assert!(!html.contains(r#"data-test-id="users-table""#), "{html}");
        assert!(html.contains(r#"data-test-id="new-user-form""#), "{html}");
        assert!(!html.contains(r#"data-test-id="notice""#), "{html}");
    }

    fn bull_row(name: &str, paused: bool) -> BullQueueRow {
        BullQueueRow {
            name: name.into(),
            counts: BULL_STATES
                .iter()
                .enumerate()
                .map(|(i, (state, _))| ((*state).to_string(), i as u64 * 1_000))
                .collect(),
            paused,
        }
    }

    fn bull_queues_vm(rows: Vec<BullQueueRow>) -> BullQueuesVm {
        BullQueuesVm {
            prefix: "bull".into(),
            enabled: true,
            rows,
            error: None,
            notice: None,
        }
    }

    fn bull_job(id: &str) -> BullJobRow {
        BullJobRow {
            id: id.into(),
            name: "send".into(),
            timestamp: 1_000,
            processed_on: Some(2_000),
            finished_on: Some(3_000),
            attempts_made: 2,
            failed_reason: Some("SMTP 421".into()),
            data_preview: r#"{"to":"ada@example.com"}"#.into(),
            run_at: Some(70_000),
        }
    }

    fn bull_queue_vm(state: &str) -> BullQueuePageVm {
        BullQueuePageVm {
            prefix: "bull".into(),
            queue: bull_row("emails", false),
            state: state.into(),
            jobs: vec![bull_job("7")],
            offset: 0,
            limit: 50,
            total: 1,
            notice: None,
            error: None,
        }
    }

    fn bull_job_vm(state: &str) -> BullJobPageVm {
        BullJobPageVm {
            prefix: "bull".into(),
            queue: "emails".into(),
            id: "42".into(),
            name: "send".into(),
            state: state.into(),
            data_pretty: "{\n  \"to\": \"ada@example.com\"\n}".into(),
            opts_pretty: "{\n  \"attempts\": 3\n}".into(),
            timestamp: 1_000,
            processed_on: Some(2_000),
            finished_on: Some(3_500),
            attempts_made: 1,
            attempts_started: 2,
            failed_reason: Some("SMTP 421".into()),
            stacktrace: vec!["Error: SMTP 421\n    at send".into(), "Error: reset".into()],
            returnvalue: Some("{\"ok\": true}".into()),
            progress: Some("50".into()),
            logs: vec!["connecting".into(), "sent".into()],
            delay: 60_000,
            priority: 3,
            notice: None,
        }
    }

    /// The `<form …>…</form>` elements of `html`.
    fn forms(html: &str) -> Vec<&str> {
        html.split("<form")
            .skip(1)
            .map(|rest| &rest[..rest.find("</form>").expect("form closes")])
            .collect()
    }

    /// No `style` attribute or element, no event handler attribute, and no
    /// script but the page's external one.
    fn assert_csp_clean(what: &str, html: &str) {
        assert!(!html.contains(" style="), "{what}: {html}");
        let mut scripts = 0;
        for (tag, attrs) in tags(html) {
            assert_ne!(tag, "style", "{what}: {html}");
            for attr in &attrs {
                assert_ne!(attr, "style", "{what}: <{tag}> {html}");
                assert!(
                    !(attr.starts_with("on") && attr.len() > 2),
                    "{what}: <{tag} {attr}=…> {html}"
                );
            }
            if tag == "script" {
                scripts += 1;
                assert!(attrs.iter().any(|a| a == "src"), "{what}: {html}");
            }
        }
        let expected = usize::from(html.starts_with("<!DOCTYPE"));
        assert_eq!(scripts, expected, "{what}: {html}");
    }

    #[test]
    fn bullmq_page_is_a_full_live_document() {
        let vm = BullQueuesVm {
            notice: Some("Queue reports resumed.".into()),
            ..bull_queues_vm(vec![bull_row("emails", false), bull_row("reports", true)])
        };
        let html = render_bullmq_page(&vm, &PAGE);
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>BullMQ · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/bullmq""#), "{html}");
        assert_eq!(BULLMQ_EVENTS, "/events/bullmq");
        assert!(
            html.contains(r#"<a href="/bullmq" aria-current="page" class="current">BullMQ</a>"#),
            "{html}"
        );
        // Right after Queues in the navigation.
        let queues = html.find(r#"href="/queues""#).expect("queues");
        let bull = html.find(r#"href="/bullmq""#).expect("bullmq");
        let channels = html.find(r#"href="/channels""#).expect("channels");
        assert!(queues < bull && bull < channels, "{html}");
        assert!(html.contains("Queue reports resumed."), "{html}");
        assert!(
            html.contains(r#"data-test-id="queue-row-emails""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="queue-row-reports""#),
            "{html}"
        );
        for (state, label) in BULL_STATES {
            assert!(html.contains(&format!(">{label}</th>")), "{label}: {html}");
            assert!(
                html.contains(&format!(r#"href="/bullmq/emails?state={state}""#)),
                "{state}: {html}"
            );
            assert!(
                html.contains(&format!(r#"data-test-id="count-{state}""#)),
                "{state}: {html}"
            );
        }
        assert!(html.contains(">7,000</a>"), "paused count: {html}");
        assert!(html.contains(r#"href="/bullmq/emails" data-test-id="queue-name""#));
        assert!(html.contains(r#"action="/bullmq/emails/pause""#), "{html}");
        assert!(
            html.contains(r#"action="/bullmq/reports/resume""#),
            "{html}"
        );
        assert!(
            !html.contains(r#"action="/bullmq/reports/pause""#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<span data-test-id="queue-paused" class="badge paused">Paused</span>"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"<input type="hidden" name="back" value="/bullmq">"#),
            "{html}"
        );
        assert!(!html.contains(r#"data-test-id="bull-error""#), "{html}");
        let fragments = bullmq_fragments(&vm);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["bull-queues"]
        );
        for f in &fragments {
            assert!(f.html.starts_with(r#"<div id="bull-queues""#), "{}", f.html);
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn bullmq_page_empty_unreachable_and_disabled() {
        let empty = render_bullmq_page(&bull_queues_vm(vec![]), &PAGE);
        assert!(
            empty.contains("No BullMQ queues under prefix <code>bull</code>"),
            "{empty}"
        );
        assert!(!empty.contains("bull-queues-table"), "{empty}");

        // Unreachable: the error, and the last known rows kept.
        let down = BullQueuesVm {
            error: Some("connection refused".into()),
            ..bull_queues_vm(vec![bull_row("emails", false)])
        };
        let html = render_bullmq_page(&down, &PAGE);
        assert!(html.contains(r#"data-test-id="bull-error""#), "{html}");
        assert!(html.contains("connection refused"), "{html}");
        assert!(
            html.contains(r#"data-test-id="queue-row-emails""#),
            "{html}"
        );
        // Unreachable with nothing known does not claim there are no queues.
        let html = render_bullmq_page(
            &BullQueuesVm {
                rows: vec![],
                ..down
            },
            &PAGE,
        );
        assert!(!html.contains("No BullMQ queues"), "{html}");
        assert!(html.contains(r#"data-test-id="backend-down""#), "{html}");
        assert!(html.contains("connection refused"), "{html}");

        // Not configured: how to turn it on, and nothing else.
        let off = BullQueuesVm {
            enabled: false,
            ..bull_queues_vm(vec![])
        };
        let html = render_bullmq_page(&off, &PAGE);
        assert!(html.contains(r#"data-test-id="bullmq-disabled""#), "{html}");
        assert!(
            html.contains("<code>--bullmq &lt;redis-url&gt;</code>"),
            "{html}"
        );
        assert!(html.contains("<code>--redis</code>"), "{html}");
        assert!(!html.contains("No BullMQ queues"), "{html}");
        assert!(html.contains(r#"data-live="/events/bullmq""#), "{html}");
        for f in bullmq_fragments(&off) {
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn bull_queue_page_is_a_full_live_document_with_tabs() {
        let vm = BullQueuePageVm {
            notice: Some("Job 7 retried.".into()),
            ..bull_queue_vm("failed")
        };
        let html = render_bull_queue_page(&vm, 10_000, &PAGE);
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>emails · BullMQ · Switchyard</title>"),
            "{html}"
        );
        assert_eq!(bull_queue_events(&vm), "/events/bullmq/emails?state=failed");
        assert!(
            html.contains(r#"data-live="/events/bullmq/emails?state=failed""#),
            "{html}"
        );
        assert!(
            html.contains(r#"aria-current="page" class="current">BullMQ</a>"#),
            "{html}"
        );
        assert!(html.contains("Job 7 retried."), "{html}");
        assert!(html.contains(r#"data-test-id="bull-prefix""#), "{html}");
        assert!(html.contains("<code>bull</code>"), "{html}");
        assert!(html.contains(r#"action="/bullmq/emails/pause""#), "{html}");
        assert!(!html.contains(r#"data-test-id="paused-badge""#), "{html}");
        for (state, label) in BULL_STATES {
            let tab = tag_with_test_id(&html, &format!("tab-{state}"));
            assert!(
                tab.contains(&format!(r#"href="/bullmq/emails?state={state}""#)),
                "{tab}"
            );
            assert_eq!(
                tab.contains(r#"aria-current="page""#),
                state == "failed",
                "{tab}"
            );
            let whole = element(&html, &format!(r#"data-test-id="tab-{state}""#), "</a>");
            assert!(whole.contains(label), "{whole}");
        }
        assert!(html.contains(r#"<span class="n">6,000</span>"#), "{html}");
        assert!(html.contains(r#"<span class="n zero">0</span>"#), "{html}");
        // The row: link, name, times, attempts, reason, data.
        assert!(
            html.contains(r#"href="/bullmq/emails/jobs/7" data-test-id="job-link""#),
            "{html}"
        );
        assert!(html.contains(">Failed reason</th>"), "{html}");
        assert!(!html.contains(">Runs at</th>"), "{html}");
        assert!(html.contains("SMTP 421"), "{html}");
        assert!(html.contains("9 s ago"), "created 9 s before now: {html}");
        assert!(html.contains("7 s ago"), "finished 7 s before now: {html}");
        assert!(html.contains("ada@example.com"), "{html}");
        assert!(html.contains("1–1 of 1"), "{html}");
        // The page is not paused: its Pause form comes back to it.
        assert!(
            html.contains(
                r#"<input type="hidden" name="back" value="/bullmq/emails?state=failed">"#
            ),
            "{html}"
        );
        let fragments = bull_queue_fragments(&vm, 10_000);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["bull-header", "bull-jobs"]
        );
        for f in &fragments {
            assert!(
                f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                "{}",
                f.html
            );
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
        // Paused: badge and Resume.
        let paused = BullQueuePageVm {
            queue: bull_row("emails", true),
            ..vm
        };
        let html = render_bull_queue_page(&paused, 10_000, &PAGE);
        assert!(html.contains(r#"data-test-id="paused-badge""#), "{html}");
        assert!(html.contains(r#"action="/bullmq/emails/resume""#), "{html}");
        assert!(!html.contains(r#"action="/bullmq/emails/pause""#), "{html}");
    }

    #[test]
    fn bull_queue_page_offers_the_buttons_of_each_state() {
        for (state, _) in BULL_STATES {
            let vm = bull_queue_vm(state);
            let html = render_bull_queue_page(&vm, 100_000, &PAGE);
            let count = |id: &str| html.matches(&format!(r#"data-test-id="{id}""#)).count();
            let (retry, promote, remove) = match state {
                "failed" => (1, 0, 1),
                "delayed" => (0, 1, 1),
                "waiting" | "completed" | "prioritized" | "paused" => (0, 0, 1),
                _ => (0, 0, 0),
            };
            assert_eq!(count("retry-job"), retry, "{state}: {html}");
            assert_eq!(count("promote-job"), promote, "{state}: {html}");
            assert_eq!(count("remove-job"), remove, "{state}: {html}");
            assert_eq!(
                html.contains(">Actions</th>"),
                retry + promote + remove > 0,
                "{state}: {html}"
            );
            for verb in bull_job_actions(state) {
                assert!(
                    html.contains(&format!(r#"action="/bullmq/emails/jobs/7/{verb}""#)),
                    "{state} {verb}: {html}"
                );
            }
            // Retry all failed, with a question, on the failed tab only.
            assert_eq!(
                count("retry-all"),
                usize::from(state == "failed"),
                "{state}"
            );
            assert_eq!(
                html.contains(r#"action="/bullmq/emails/retry-failed""#),
                state == "failed",
                "{state}: {html}"
            );
            if state == "failed" {
                assert!(
                    html.contains(r#"data-confirm="Retry all 6,000 failed jobs of emails?""#),
                    "{html}"
                );
            }
            // Clean on the completed and failed tabs.
            let cleans = matches!(state, "completed" | "failed");
            assert_eq!(count("clean-form"), usize::from(cleans), "{state}: {html}");
            if cleans {
                let form = element(&html, r#"data-test-id="clean-form""#, "</form>");
                assert!(form.contains(r#"action="/bullmq/emails/clean""#), "{form}");
                assert!(form.contains(r#"method="post""#), "{form}");
                assert!(form.contains("data-confirm="), "{form}");
                assert!(
                    form.contains(&format!(
                        r#"<input type="hidden" name="state" value="{state}">"#
                    )),
                    "{form}"
                );
                assert!(
                    form.contains(&format!(
                        r#"<input type="hidden" name="back" value="/bullmq/emails?state={state}">"#
                    )),
                    "{form}"
                );
                assert!(form.contains(r#"<select name="older_than""#), "{form}");
                for (value, label) in CLEAN_AGES {
                    assert!(form.contains(&format!(r#"value="{value}""#)), "{form}");
                    assert!(form.contains(label), "{form}");
                }
                assert!(form.contains(r#"name="csrf_token""#), "{form}");
            }
            // Runs at, on the delayed tab only: a minute after `now`… no,
            // 70 s − 100 s: due.
            assert_eq!(
                html.contains(">Runs at</th>"),
                state == "delayed",
                "{state}"
            );
            assert_eq!(
                html.contains(">Failed reason</th>"),
                state == "failed",
                "{state}"
            );
        }
        // A delayed job in the future says when.
        let html = render_bull_queue_page(&bull_queue_vm("delayed"), 10_000, &PAGE);
        assert!(html.contains("in 1 min"), "{html}");
        // Nothing to clean or retry: no bulk buttons.
        let mut vm = bull_queue_vm("failed");
        vm.queue.counts.clear();
        vm.jobs.clear();
        vm.total = 0;
        let html = render_bull_queue_page(&vm, 0, &PAGE);
        assert!(!html.contains(r#"data-test-id="retry-all""#), "{html}");
        assert!(!html.contains(r#"data-test-id="clean-form""#), "{html}");
    }

    #[test]
    fn bull_queue_page_says_when_a_state_is_empty() {
        for (state, _) in BULL_STATES {
            let vm = BullQueuePageVm {
                jobs: vec![],
                total: 0,
                ..bull_queue_vm(state)
            };
            let html = render_bull_queue_page(&vm, 0, &PAGE);
            assert!(
                html.contains(r#"data-test-id="empty-jobs""#),
                "{state}: {html}"
            );
            assert!(
                !html.contains(r#"data-test-id="jobs-table""#),
                "{state}: {html}"
            );
            assert!(html.contains("0 of 0"), "{state}: {html}");
        }
        let html = render_bull_queue_page(
            &BullQueuePageVm {
                jobs: vec![],
                total: 0,
                ..bull_queue_vm("waiting-children")
            },
            0,
            &PAGE,
        );
        assert!(
            html.contains("No jobs are waiting for their children."),
            "{html}"
        );
    }

    #[test]
    fn bull_queue_page_pages_by_offset_and_streams_its_page() {
        let vm = BullQueuePageVm {
            jobs: (0..50).map(|i| bull_job(&i.to_string())).collect(),
            offset: 50,
            total: 120,
            ..bull_queue_vm("waiting")
        };
        assert_eq!(
            bull_queue_events(&vm),
            "/events/bullmq/emails?state=waiting&offset=50"
        );
        let html = render_bull_queue_page(&vm, 0, &PAGE);
        assert!(
            html.contains(r#"data-live="/events/bullmq/emails?state=waiting&amp;offset=50""#),
            "{html}"
        );
        assert!(html.contains("51–100 of 120"), "{html}");
        let prev = tag_with_test_id(&html, "page-prev");
        assert!(
            prev.contains(r#"href="/bullmq/emails?state=waiting""#),
            "{prev}"
        );
        let next = tag_with_test_id(&html, "page-next");
        assert!(
            next.contains(r#"href="/bullmq/emails?state=waiting&amp;offset=100""#),
            "{next}"
        );
        assert!(
            html.contains(
                r#"<input type="hidden" name="back" value="/bullmq/emails?state=waiting&amp;offset=50">"#
            ),
            "{html}"
        );
        // The last page has no next, the first no previous.
        let last = BullQueuePageVm {
            jobs: (0..20).map(|i| bull_job(&i.to_string())).collect(),
            offset: 100,
            ..vm.clone()
        };
        let html = render_bull_queue_page(&last, 0, &PAGE);
        assert!(html.contains("101–120 of 120"), "{html}");
        assert!(!html.contains(r#"data-test-id="page-next""#), "{html}");
        assert!(html.contains(r#"data-test-id="page-prev""#), "{html}");
        let first = BullQueuePageVm { offset: 0, ..vm };
        let html = render_bull_queue_page(&first, 0, &PAGE);
        assert!(!html.contains(r#"data-test-id="page-prev""#), "{html}");
        assert!(html.contains(r#"data-test-id="page-next""#), "{html}");
    }

    #[test]
    fn bull_queue_page_shows_an_unreachable_redis_and_keeps_the_jobs() {
        let vm = BullQueuePageVm {
            error: Some("READONLY You can't write against a read only replica.".into()),
            ..bull_queue_vm("failed")
        };
        let html = render_bull_queue_page(&vm, 0, &PAGE);
        let header = bull_queue_fragments(&vm, 0)
            .into_iter()
            .find(|f| f.id == "bull-header")
            .expect("header");
        assert!(
            header.html.contains(r#"data-test-id="bull-error""#),
            "{}",
            header.html
        );
        assert!(html.contains("read only replica"), "{html}");
        assert!(html.contains(r#"data-test-id="job-row-7""#), "{html}");
    }

    #[test]
    fn bull_job_page_is_a_full_live_document() {
        let vm = BullJobPageVm {
            notice: Some("Job 42 retried.".into()),
            ..bull_job_vm("failed")
        };
        let html = render_bull_job_page(&vm, &PAGE);
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Job 42 · emails · BullMQ · Switchyard</title>"),
            "{html}"
        );
        assert_eq!(
            bull_job_events("emails", "42"),
            "/events/bullmq/emails/jobs/42"
        );
        assert!(
            html.contains(r#"data-live="/events/bullmq/emails/jobs/42""#),
            "{html}"
        );
        assert!(
            html.contains(r#"aria-current="page" class="current">BullMQ</a>"#),
            "{html}"
        );
        assert!(html.contains("Job 42 retried."), "{html}");
        assert!(
            html.contains(r#"data-test-id="job-state" class="badge state failed">Failed</span>"#),
            "{html}"
        );
        assert!(html.contains("Attempts made 1 · started 2"), "{html}");
        assert!(html.contains("delay 1 min 0 s · priority 3"), "{html}");
        assert!(html.contains("1970-01-01 00:00:01 UTC"), "{html}");
        assert!(html.contains("1970-01-01 00:00:03 UTC"), "{html}");
        assert!(
            html.contains(r#"data-test-id="job-progress">50</dd>"#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="job-returnvalue""#), "{html}");
        assert!(
            html.contains(r#"data-test-id="failed-reason" class="error-text">SMTP 421</p>"#),
            "{html}"
        );
        let traces = element(&html, r#"data-test-id="job-stacktrace""#, "</ol>");
        assert_eq!(
            traces.matches(r#"<pre class="stack">"#).count(),
            2,
            "{traces}"
        );
        assert!(html.contains(r#"data-test-id="job-data""#), "{html}");
        assert!(html.contains(r#"data-test-id="job-options""#), "{html}");
        let logs = element(&html, r#"data-test-id="job-logs""#, "</ol>");
        assert_eq!(logs.matches("<li>").count(), 2, "{logs}");
        assert!(
            html.contains(r#"<a href="/bullmq/emails?state=failed" data-test-id="back-to-queue">Back to the queue</a>"#),
            "{html}"
        );
        // Retry comes back here; Remove to the queue (the job is gone).
        let retry = element(&html, r#"action="/bullmq/emails/jobs/42/retry""#, "</form>");
        assert!(
            retry.contains(r#"name="back" value="/bullmq/emails/jobs/42""#),
            "{retry}"
        );
        let remove = element(
            &html,
            r#"action="/bullmq/emails/jobs/42/remove""#,
            "</form>",
        );
        assert!(
            remove.contains(r#"name="back" value="/bullmq/emails?state=failed""#),
            "{remove}"
        );
        assert!(remove.contains("data-confirm="), "{remove}");
        let fragments = bull_job_fragments(&vm);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["bull-job"]
        );
        for f in &fragments {
            assert!(f.html.starts_with(r#"<div id="bull-job""#), "{}", f.html);
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
        // Buttons by state, as in the table.
        for (state, _) in BULL_STATES {
            let html = render_bull_job_page(&bull_job_vm(state), &PAGE);
            for verb in ["retry", "promote", "remove"] {
                assert_eq!(
                    html.contains(&format!(r#"action="/bullmq/emails/jobs/42/{verb}""#)),
                    bull_job_actions(state).contains(&verb),
                    "{state} {verb}: {html}"
                );
            }
            assert_eq!(
                html.contains(">Runs at</dt>"),
                state == "delayed",
                "{state}"
            );
        }
        // Nothing logged, nothing returned, no error.
        let quiet = BullJobPageVm {
            logs: vec![],
            returnvalue: None,
            failed_reason: None,
            stacktrace: vec![],
            progress: None,
            ..bull_job_vm("active")
        };
        let html = render_bull_job_page(&quiet, &PAGE);
        assert!(html.contains(r#"data-test-id="no-logs""#), "{html}");
        assert!(!html.contains(r#"data-test-id="job-error""#), "{html}");
        assert!(
            !html.contains(r#"data-test-id="job-returnvalue""#),
            "{html}"
        );
        assert!(
            !html.contains("<form method=\"post\" action=\"/bullmq"),
            "{html}"
        );
    }

    #[test]
    fn every_bull_form_posts_with_the_csrf_token_and_back() {
        let page = signed_in("olga", "operator");
        let mut failed = bull_queue_vm("failed");
        failed.offset = 50;
        failed.total = 120;
        let rendered = [
            (
                "bullmq",
                render_bullmq_page(
                    &bull_queues_vm(vec![bull_row("emails", false), bull_row("r", true)]),
                    &page,
                ),
                "/bullmq".to_string(),
            ),
            (
                "failed",
                render_bull_queue_page(&failed, 0, &page),
                "/bullmq/emails?state=failed&amp;offset=50".to_string(),
            ),
            (
                "completed",
                render_bull_queue_page(&bull_queue_vm("completed"), 0, &page),
                "/bullmq/emails?state=completed".to_string(),
            ),
            (
                "delayed",
                render_bull_queue_page(&bull_queue_vm("delayed"), 0, &page),
                "/bullmq/emails?state=delayed".to_string(),
            ),
            (
                "job",
                render_bull_job_page(&bull_job_vm("failed"), &page),
                String::new(),
            ),
        ];
        for (what, html, back) in rendered {
            let posts = html.matches(r#"method="post""#).count();
            // Sign out plus at least the page's own buttons.
            assert!(posts > 2, "{what}: {html}");
            assert_eq!(
                html.matches(r#"<input type="hidden" name="csrf_token" value="tok-123">"#)
                    .count(),
                posts,
                "{what}: {html}"
            );
            for form in forms(&html) {
                assert!(form.contains(r#"method="post""#), "{what}: {form}");
                assert!(
                    form.contains(r#"<input type="hidden" name="csrf_token" value="tok-123">"#),
                    "{what}: {form}"
                );
                if form.contains(r#"action="/logout""#) {
                    continue;
                }
                assert!(form.contains(r#"name="back""#), "{what}: {form}");
                let own = form.contains(&format!(r#"name="back" value="{back}""#));
                let queue_page = what == "job"
                    && form.contains(r#"name="back" value="/bullmq/emails?state=failed""#);
                let job_page =
                    what == "job" && form.contains(r#"name="back" value="/bullmq/emails/jobs/42""#);
                assert!(own || queue_page || job_page, "{what}: {form}");
                // Buttons say which role they need.
                assert!(form.contains("needs-operator"), "{what}: {form}");
            }
        }
        // Live regions are shared by every open page: empty token, filled
        // in by the page script.
        for f in bull_queue_fragments(&bull_queue_vm("failed"), 0)
            .into_iter()
            .chain(bullmq_fragments(&bull_queues_vm(vec![bull_row(
                "e", false,
            )])))
            .chain(bull_job_fragments(&bull_job_vm("failed")))
        {
            for form in forms(&f.html) {
                assert!(
                    form.contains(r#"<input type="hidden" name="csrf_token" value="">"#),
                    "{}: {form}",
                    f.id
                );
            }
        }
    }

    #[test]
    fn bull_pages_escape_hostile_names_ids_reasons_and_data() {
        let evil = r#"<script>alert(1)</script>"q'"#;
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
        let evil_path = "%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22q%27";
        assert_eq!(encode_segment(evil), evil_path);
        let queues = render_bullmq_page(
            &BullQueuesVm {
                prefix: evil.into(),
                error: Some(evil.into()),
                notice: Some(evil.into()),
                ..bull_queues_vm(vec![bull_row(evil, false)])
            },
            &PAGE,
        );
        let empty = render_bullmq_page(
            &BullQueuesVm {
                prefix: evil.into(),
                ..bull_queues_vm(vec![])
            },
            &PAGE,
        );
        let job = BullJobRow {
            id: evil.into(),
            name: evil.into(),
            failed_reason: Some(evil.into()),
            data_preview: format!(r#"{{"html":"{evil}"}}"#),
            ..bull_job("7")
        };
        let queue_vm = BullQueuePageVm {
            prefix: evil.into(),
            queue: bull_row(evil, true),
            jobs: vec![job],
            error: Some(evil.into()),
            notice: Some(evil.into()),
            ..bull_queue_vm("failed")
        };
        let queue = render_bull_queue_page(&queue_vm, 0, &PAGE);
        let job_vm = BullJobPageVm {
            prefix: evil.into(),
            queue: evil.into(),
            id: evil.into(),
            name: evil.into(),
            state: evil.into(),
            data_pretty: evil.into(),
            opts_pretty: evil.into(),
            failed_reason: Some(evil.into()),
            stacktrace: vec![evil.into()],
            returnvalue: Some(evil.into()),
            progress: Some(evil.into()),
            logs: vec![evil.into()],
            notice: Some(evil.into()),
            ..bull_job_vm("failed")
        };
        let job_page = render_bull_job_page(&job_vm, &PAGE);
        for (what, html) in [
            ("queues", &queues),
            ("empty", &empty),
            ("queue", &queue),
            ("job", &job_page),
        ] {
            assert!(!html.contains("<script>alert"), "{what}: {html}");
            assert!(html.contains(escaped), "{what}: {html}");
            // In attributes too: no quote closes one early.
            assert!(!html.contains(r#"="<script"#), "{what}: {html}");
            assert!(!html.contains(r#"-<script"#), "{what}: {html}");
            assert_csp_clean(what, html);
        }
        assert!(
            queues.contains(&format!(r#"href="/bullmq/{evil_path}""#)),
            "{queues}"
        );
        assert!(
            queues.contains(&format!(r#"action="/bullmq/{evil_path}/pause""#)),
            "{queues}"
        );
        assert!(
            queue.contains(&format!(r#"href="/bullmq/{evil_path}/jobs/{evil_path}""#)),
            "{queue}"
        );
        assert!(
            queue.contains(&format!(
                r#"action="/bullmq/{evil_path}/jobs/{evil_path}/retry""#
            )),
            "{queue}"
        );
        assert!(
            queue.contains(&format!(r#"action="/bullmq/{evil_path}/retry-failed""#)),
            "{queue}"
        );
        assert!(
            queue.contains(&format!(r#"action="/bullmq/{evil_path}/clean""#)),
            "{queue}"
        );
        assert!(
            queue.contains(&format!(
                r#"data-live="/events/bullmq/{evil_path}?state=failed""#
            )),
            "{queue}"
        );
        assert!(
            job_page.contains(&format!(
                r#"data-live="/events/bullmq/{evil_path}/jobs/{evil_path}""#
            )),
            "{job_page}"
        );
        // An unknown state is text too, and offers no button.
        assert!(
            !job_page.contains(&format!(r#"action="/bullmq/{evil_path}/jobs/{evil_path}/"#)),
            "{job_page}"
        );
    }

    #[test]
    fn bull_pages_need_no_inline_script_or_style() {
        let queues = bull_queues_vm(vec![bull_row("emails", false), bull_row("r", true)]);
        let off = BullQueuesVm {
            enabled: false,
            ..bull_queues_vm(vec![])
        };
        let mut pages = vec![
            (
                "bullmq".to_string(),
                render_bullmq_page(&queues, &admin_page()),
            ),
            ("bullmq off".to_string(), render_bullmq_page(&off, &PAGE)),
        ];
        for (state, _) in BULL_STATES {
            let vm = bull_queue_vm(state);
            pages.push((
                format!("queue {state}"),
                render_bull_queue_page(&vm, 0, &admin_page()),
            ));
            pages.push((
                format!("job {state}"),
                render_bull_job_page(&bull_job_vm(state), &admin_page()),
            ));
            for f in bull_queue_fragments(&vm, 0)
                .into_iter()
                .chain(bull_job_fragments(&bull_job_vm(state)))
            {
                pages.push((format!("fragment {} {state}", f.id), f.html));
            }
        }
        for f in bullmq_fragments(&queues) {
            pages.push((format!("fragment {}", f.id), f.html));
        }
        for (what, html) in &pages {
            assert_csp_clean(what, html);
        }
    }

    #[test]
    fn bull_paths_encode_every_segment() {
        assert_eq!(encode_segment("emails"), "emails");
        assert_eq!(encode_segment("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode_segment("a/b c?d#e%"), "a%2Fb%20c%3Fd%23e%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(bull_queue_path("a/b"), "/bullmq/a%2Fb");
        assert_eq!(bull_job_path("a/b", "1 2"), "/bullmq/a%2Fb/jobs/1%202");
        assert_eq!(bull_job_events("q", "x/y"), "/events/bullmq/q/jobs/x%2Fy");
        let vm = BullQueuePageVm {
            queue: bull_row("a b", false),
            state: "waiting-children".into(),
            offset: 0,
            ..BullQueuePageVm::default()
        };
        assert_eq!(
            bull_queue_events(&vm),
            "/events/bullmq/a%20b?state=waiting-children"
        );
    }
}
