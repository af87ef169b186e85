//! Fixtures and HTML probes the page tests share: view models with data
//! in every region, hostile text, and small scanners that find an element
//! or every tag in rendered HTML without a parser.
//!
//! Tests import what they render from here, by the items' own paths, so
//! they do not lean on the crate root's re-exports.

pub(crate) use crate::format::*;
pub(crate) use crate::vm::{
    alerts::*, audit::*, bullmq::*, channels::*, config::*, glance::*, instances::*, queues::*,
    ratelimits::*, schedules::*, session::*, users::*, workers::*,
};
pub(crate) use crate::{
    alerts_fragments, banner_fragment, bull_job_events, bull_job_fragments, bull_queue_events,
    bull_queue_fragments, channels_fragments, instances_fragments, job_fragments,
    job_gone_fragments, overview_fragments, queue_fragments, queues_fragments,
    ratelimits_fragments, render_alerts_page, render_audit_page, render_bull_job_page,
    render_bull_queue_page, render_channels_page, render_config_page, render_error_page,
    render_instances_page, render_job_page, render_overview_page, render_queue_page,
    render_queues_page, render_ratelimits_page, render_schedule_form_page, render_schedules_page,
    render_workers_page, schedules_fragments, workers_fragments,
};

/// Pages with nothing firing: the banner is an empty region.
pub(crate) const NO_ALERTS: AlertBannerVm = AlertBannerVm {
    firing: Vec::new(),
    now: 0,
};

/// A page for nobody in particular, with nothing firing.
pub(crate) const PAGE: PageCtx = PageCtx {
    user: None,
    csrf_token: String::new(),
    banner: NO_ALERTS,
};

pub(crate) fn row(name: &str, failed: u64, paused: bool) -> QueueRow {
    QueueRow {
        name: name.into(),
        counts: StateCounts {
            waiting: 3,
            active: 1,
            delayed: 0,
            completed: 42,
            failed,
            completed_total: 42,
        },
        paused,
        jobs_per_min: Some(12.5),
        failure_rate: Some(0.25),
        health: if failed > 0 {
            QueueHealth::Warning
        } else {
            QueueHealth::Healthy
        },
        node: None,
        workers: QueueWorkersVm::Unknown,
        wait_p95_ms: None,
    }
}

pub(crate) fn health(ok: bool) -> HealthVm {
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

pub(crate) fn queues_vm(queues: Vec<QueueRow>, ok: bool) -> QueuesVm {
    let total = queues.len() as u64;
    QueuesVm {
        health: health(ok),
        queues,
        query: QueuesQuery::default(),
        matching: total,
        total,
        busy_active: 100,
        warning_failure_rate: 5.0,
        notice: None,
        bullmq: None,
    }
}

/// The start tag of the element with `data-test-id="<id>"`.
pub(crate) fn tag_with_test_id<'a>(html: &'a str, id: &str) -> &'a str {
    let marker = format!(r#"data-test-id="{id}""#);
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in {html}"));
    let open = html[..at].rfind('<').expect("tag start");
    let close = at + html[at..].find('>').expect("tag end");
    &html[open..=close]
}

/// An overview over `range` charting one queue with `points`.
pub(crate) fn range_overview(
    range: ChartRange,
    queue: &str,
    points: Vec<MinutePoint>,
) -> OverviewVm {
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

pub(crate) fn failed_job(id: &str) -> JobRow {
    JobRow {
        id: id.into(),
        name: "<script>alert(1)</script>".into(),
        data_preview: r#"{"html":"<img src=x onerror=alert(1)>"}"#.into(),
        attempts_made: 3,
        attempts: 3,
        priority: 0,
        created_at: 1_000,
        processed_at: Some(2_000),
        finished_at: Some(6_000),
        failed_reason: Some("<b>boom</b>".into()),
        truncated: None,
        run_at: None,
        failure: Some("retries exhausted".into()),
        retrying: false,
    }
}

pub(crate) fn failed_page() -> QueuePageVm {
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

pub(crate) const HOSTILE: &str = "<script>alert(1)</script>";

pub(crate) fn channel(name: &str, malformed: u64) -> ChannelRow {
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

pub(crate) fn channels_vm(channels: Vec<ChannelRow>, connected: bool) -> ChannelsVm {
    ChannelsVm {
        bus: "redis".into(),
        connected,
        channels,
    }
}

pub(crate) fn instance(id: &str, state: InstanceState, hash_matches: Option<bool>) -> InstanceRow {
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
        caches: Vec::new(),
        more_caches: 0,
    }
}

pub(crate) fn instances_vm(instances: Vec<InstanceRow>) -> InstancesVm {
    InstancesVm {
        latest_version: Some(42),
        latest_hash: Some("fedcba9876543210".into()),
        stale_after_ms: 15_000,
        instances,
    }
}

/// A live, running native worker of `queue`, idle.
pub(crate) fn worker(id: &str, queue: &str) -> WorkerRow {
    WorkerRow {
        id: id.into(),
        queue: queue.into(),
        state: WorkerStateVm::Running,
        liveness: InstanceState::Live,
        asked: None,
        busy: 0,
        concurrency: 4,
        running: Vec::new(),
        running_more: 0,
        host: "web-1".into(),
        pid: 4242,
        version: "1.4.0".into(),
        uptime_ms: 3 * 3_600_000 + 5 * 60_000,
        heartbeat_age_ms: 2_000,
        completed: 1_204,
        failed: 3,
    }
}

/// A job `id` of `queue` that has run for `run_ms`.
pub(crate) fn running_job(queue: &str, id: &str, run_ms: i64) -> RunningJobVm {
    RunningJobVm {
        id: id.into(),
        href: format!("/queues/{queue}/jobs/{id}"),
        run_ms,
    }
}

/// Three schedules (active with five next runs and a last job, paused,
/// finished at its limit), and a BullMQ queue's two schedulers.
pub(crate) fn schedules_vm() -> SchedulesVm {
    let active = ScheduleRow {
        id: "emails-digest".into(),
        queue: "emails".into(),
        job_name: "digest".into(),
        repeat: "every 30 s".into(),
        status: ScheduleStatus::Active,
        next_runs: (1..=5).map(|i| MINUTE0 + i * 30_000).collect(),
        last_run_at: Some(MINUTE0),
        last_job: Some((
            "emails-digest:1".into(),
            "/queues/emails/jobs/emails-digest%3A1".into(),
        )),
        runs: 12,
        limit: None,
        missed: "skip",
    };
    let paused = ScheduleRow {
        id: "webhooks-sweep".into(),
        queue: "webhooks".into(),
        status: ScheduleStatus::Paused,
        next_runs: Vec::new(),
        last_job: None,
        last_run_at: None,
        runs: 0,
        ..active.clone()
    };
    let finished = ScheduleRow {
        id: "reports-once".into(),
        status: ScheduleStatus::Finished,
        next_runs: Vec::new(),
        runs: 3,
        limit: Some(3),
        ..active.clone()
    };
    SchedulesVm {
        schedules: vec![active, paused, finished],
        total: 3,
        counts: ScheduleCounts {
            active: 1,
            paused: 1,
            finished: 1,
        },
        fires_here: true,
        now_ms: MINUTE0 + 5_000,
        bull: Some(BullSchedulersVm {
            queues: vec!["mail".into(), "render".into()],
            queue: Some("mail".into()),
            rows: vec![
                BullSchedulerRow {
                    key: "every-minute".into(),
                    kind: "scheduler",
                    name: "tick".into(),
                    repeat: "every 1 min".into(),
                    next_run: Some(MINUTE0 + 60_000),
                    iterations: Some(4),
                    template: "{\"to\":\"a@b\"}".into(),
                },
                BullSchedulerRow {
                    key: "legacy::::*/5 * * * *".into(),
                    kind: "repeatable",
                    name: "old".into(),
                    repeat: "cron */5 * * * *".into(),
                    next_run: None,
                    iterations: None,
                    template: String::new(),
                },
            ],
            total: 2,
            offset: 0,
            problem: None,
        }),
        ..SchedulesVm::default()
    }
}

/// Four workers: two running (one with more busy slots than it names),
/// one quiet, one stale; and two BullMQ connections of sixty.
pub(crate) fn workers_vm() -> WorkersVm {
    let busy = WorkerRow {
        busy: 2,
        running: vec![
            running_job("emails", "17", 4_200),
            running_job("emails", "18", 950),
        ],
        ..worker("web-1-4242-abc123", "emails")
    };
    let full = WorkerRow {
        busy: 5,
        concurrency: 5,
        running: vec![
            running_job("reports", "r1", 65_000),
            running_job("reports", "r2", 3_000),
            running_job("reports", "r3", 10),
        ],
        running_more: 2,
        failed: 0,
        ..worker("web-2-77-def456", "reports")
    };
    let quiet = WorkerRow {
        state: WorkerStateVm::Quiet,
        concurrency: 2,
        ..worker("web-3-9-aaa000", "reports")
    };
    let stale = WorkerRow {
        liveness: InstanceState::Stale,
        heartbeat_age_ms: 40_000,
        ..worker("web-4-10-bbb111", "reports")
    };
    WorkersVm {
        workers: vec![busy, full, quiet, stale],
        total: 4,
        offset: 0,
        queue: None,
        counts: WorkerCounts {
            running: 2,
            quiet: 1,
            stopping: 0,
            stale: 1,
            gone: 0,
            busy: 7,
            slots: 11,
        },
        stale_after_ms: 15_000,
        problem: None,
        bull: vec![
            BullWorkerRow {
                queue: "mailer".into(),
                href: bull_queue_path("mailer"),
                name: Some("mailer-worker".into()),
                addr: "10.0.0.5:51234".into(),
                age_secs: 7_300,
                idle_secs: 4,
                node: None,
            },
            BullWorkerRow {
                queue: "mailer".into(),
                href: bull_queue_path("mailer"),
                name: None,
                addr: "10.0.0.6:40000".into(),
                age_secs: 30,
                idle_secs: 0,
                node: None,
            },
        ],
        bull_total: 60,
        bull_note: None,
        notice: None,
    }
}

pub(crate) const MINUTE0: i64 = 1_795_430_040_000;

pub(crate) const NOW: i64 = MINUTE0 + 60 * 60_000;

pub(crate) fn limiter(backend: &str, fallback: &str, degraded: bool) -> LimiterStatusVm {
    LimiterStatusVm {
        backend: backend.into(),
        fallback: fallback.into(),
        degraded,
        degraded_since: degraded.then_some(NOW - 4 * 60_000),
        reason: degraded.then(|| "connection refused".into()),
        fallback_decisions: if degraded { 1_234 } else { 0 },
    }
}

pub(crate) fn policy(name: &str) -> PolicyRow {
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
        own: false,
    }
}

pub(crate) fn usage(policy: &str, key: &str, percent: f64, blocked: bool) -> KeyUsageRow {
    KeyUsageRow {
        policy: policy.into(),
        key: key.into(),
        count: 142,
        limit: 100,
        capacity: 120,
        percent,
        blocked_until: blocked.then_some(NOW + 4 * 60_000),
    }
}

pub(crate) fn blocked(policy: &str, key: &str) -> BlockedRow {
    BlockedRow {
        policy: policy.into(),
        key: key.into(),
        until: NOW + 4 * 60_000 + 30_000,
    }
}

pub(crate) fn ratelimits_vm() -> RateLimitsVm {
    RateLimitsVm {
        status: limiter("redis", "local", false),
        policies: vec![policy("api"), policy("login")],
        top_keys: vec![
            usage("api", "client-1", 142.0, true),
            usage("login", "10.0.0.7", 42.5, false),
        ],
        own_keys: vec![usage("dashboard.pages", "127.0.0.1", 12.0, false)],
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

pub(crate) const T0: i64 = 1_795_430_000_000;

pub(crate) fn alert(fingerprint: &str, status: &str, severity: &str) -> AlertRow {
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

pub(crate) fn rule_row(name: &str, kind: &str, uses_window: bool, uses_threshold: bool) -> RuleRow {
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

pub(crate) fn delivery(id: i64, status: &str) -> DeliveryRow {
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

pub(crate) fn alerts_vm() -> AlertsVm {
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

pub(crate) fn firing_banner() -> AlertBannerVm {
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

/// A page with [`firing_banner`].
pub(crate) fn firing_page() -> PageCtx {
    PageCtx {
        banner: firing_banner(),
        ..PageCtx::default()
    }
}

/// Every page, rendered with the same banner.
pub(crate) fn every_page(banner: &PageCtx) -> Vec<(&'static str, String)> {
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
        (
            "workers",
            render_workers_page(&WorkersVm::default(), banner),
        ),
        (
            "schedules",
            render_schedules_page(&SchedulesVm::default(), banner),
        ),
        (
            "schedule form",
            render_schedule_form_page(&ScheduleFormVm::default(), banner),
        ),
        ("error", render_error_page(404, "Not Found", "gone", banner)),
    ]
}

/// The HTML of the first element carrying `marker`, up to its `end`.
pub(crate) fn element<'a>(html: &'a str, marker: &str, end: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker}: {html}"));
    let start = html[..at].rfind('<').expect("element start");
    let stop = at + html[at..].find(end).expect("element end") + end.len();
    &html[start..stop]
}

/// Every tag in `html` as its name (`/name` for a closing tag) and
/// attribute names, lowercased:
/// a small scanner that skips text, comments and quoted attribute
/// values, so escaped markup in text (`&lt;img onerror=…`) never counts.
pub(crate) fn tags(html: &str) -> Vec<(String, Vec<String>)> {
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
pub(crate) fn every_page_populated() -> Vec<(String, String)> {
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
    let mut workers = workers_vm();
    workers.notice = Some("Asked web-1-4242-abc123 to go quiet.".into());
    workers.workers[0].asked = Some("stop".into());
    let mut schedules = schedules_vm();
    schedules.notice = Some("Paused emails-digest.".into());
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
        ("workers".into(), render_workers_page(&workers, &banner)),
        (
            "schedules".into(),
            render_schedules_page(&schedules, &banner),
        ),
        (
            "schedule form".into(),
            render_schedule_form_page(
                &ScheduleFormVm {
                    editing: Some("emails-digest".into()),
                    error: Some("bad cron".into()),
                    ..ScheduleFormVm::default()
                },
                &banner,
            ),
        ),
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
        workers_fragments(&workers),
        schedules_fragments(&schedules),
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

pub(crate) fn users_vm(rows: Vec<UserRow>) -> UsersVm {
    UsersVm {
        rows,
        notice: None,
        sessions_problem: None,
    }
}

pub(crate) fn user_row(name: &str, role: &str, disabled: bool, is_self: bool) -> UserRow {
    UserRow {
        name: name.into(),
        role: role.into(),
        created_at: MINUTE0,
        disabled,
        is_self,
        sessions: Vec::new(),
        more_sessions: false,
    }
}

pub(crate) fn session_row(handle: &str, agent: &str, is_current: bool) -> SessionRow {
    SessionRow {
        handle: handle.into(),
        created_at: MINUTE0,
        last_seen_at: MINUTE0 + 60_000,
        expires_at: MINUTE0 + 3_600_000,
        agent: agent.into(),
        is_current,
    }
}

/// An admin's page with a session, so forms carry its token.
pub(crate) fn users_admin_page() -> PageCtx {
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

pub(crate) fn bull_row(name: &str, paused: bool) -> BullQueueRow {
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

pub(crate) fn bull_queues_vm(rows: Vec<BullQueueRow>) -> BullQueuesVm {
    let total = rows.len() as u64;
    BullQueuesVm {
        prefix: "bull".into(),
        enabled: true,
        rows,
        query: QueuesQuery::default(),
        matching: total,
        total,
        page_size: QUEUES_PER_PAGE,
        error: None,
        notice: None,
    }
}

pub(crate) fn bull_job(id: &str) -> BullJobRow {
    BullJobRow {
        id: id.into(),
        name: "send".into(),
        timestamp: 1_000,
        processed_on: Some(2_000),
        finished_on: Some(3_000),
        attempts_made: 2,
        attempts: 2,
        failure: Some("retries exhausted".into()),
        failed_reason: Some("SMTP 421".into()),
        data_preview: r#"{"to":"ada@example.com"}"#.into(),
        run_at: Some(70_000),
        children: None,
    }
}

pub(crate) fn bull_queue_vm(state: &str) -> BullQueuePageVm {
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
        latency: Some(LatencyVm {
            minutes: 2,
            attempts: 40,
            wait: PercentilesVm {
                p50: 12,
                p95: 80,
                p99: 120,
                max: 300,
            },
            run: PercentilesVm {
                p50: 200,
                p95: 240,
                p99: 260,
                max: 900,
            },
            points: vec![(MINUTE0, 70, 230), (MINUTE0 + 60_000, 80, 240)],
        }),
    }
}

pub(crate) fn bull_job_vm(state: &str) -> BullJobPageVm {
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
        attempts: 3,
        failure: None,
        failed_reason: Some("SMTP 421".into()),
        stacktrace: vec!["Error: SMTP 421\n    at send".into(), "Error: reset".into()],
        returnvalue: Some("{\"ok\": true}".into()),
        progress: Some("50".into()),
        logs: vec!["connecting".into(), "sent".into()],
        logs_earlier: 0,
        delay: 60_000,
        priority: 3,
        notice: None,
        flow: None,
    }
}

/// The `<form …>…</form>` elements of `html`.
pub(crate) fn forms(html: &str) -> Vec<&str> {
    html.split("<form")
        .skip(1)
        .map(|rest| &rest[..rest.find("</form>").expect("form closes")])
        .collect()
}

/// No `style` attribute or element, no event handler attribute, and no
/// script but the page's external one.
pub(crate) fn assert_csp_clean(what: &str, html: &str) {
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

mod tests {
    use super::*;

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
}
