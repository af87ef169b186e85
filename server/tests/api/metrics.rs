//! Metrics: the Prometheus exposition (rendered from a hand-made snapshot,
//! and over HTTP on a real server), the per-minute history in SQL on real
//! SQLite and PostgreSQL (a schema of the test's own, dropped afterwards),
//! the history endpoint, and the sampler's lifetime; job wait and run times
//! as histograms and as percentile history.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use coord::instance::InstanceId;
use coord::instances::{InstanceReport, InstanceStatus, InstanceView, SyncReport, Thresholds};
use coord::queue::latency::Percentiles;
use coord::queue::{Job, NewJob, QueueCounts};
use coord::ratelimit::{LimiterStatus, MinuteCount, Policy, PolicyUsage};
use coord::time::now_ms;
use server::channels::ChannelFigures;
use server::channels::traffic::ChannelStats;
use server::config::secret::SecretUrl;
use server::db::Database;
use server::instances::{InstanceFacts, InstanceFigures};
use server::live::Snapshot;
use server::metrics::history::{self, Range, Sample, Series, minute_of};
use server::metrics::prometheus::{self, Extras, QueueTotals};
use server::metrics::{self as metrics, Rejections};
use server::queues::figures::{MinutePoint, QueueFigures};
use server::ratelimits::LimitSpec;
use server::ratelimits::RateLimitFigures;
use server::workers::WorkerFigures;
use server::workers::latency::{BUCKETS_SECS, Cumulative, LatencyBook, QueueLatency, SETTLE_MS};
use test_support::TempDir;
use test_support::http::url_encode;
use tokio::sync::watch;

use crate::helpers::{TestApp, WAIT, each_migrated_database, eventually, qn};

fn queue(name: &str, counts: QueueCounts) -> QueueFigures {
    QueueFigures {
        name: name.to_owned(),
        counts,
        ..QueueFigures::default()
    }
}

fn instance(id: &str, status: InstanceStatus) -> InstanceFacts {
    InstanceFacts {
        view: InstanceView {
            report: InstanceReport {
                id: InstanceId::new(id).expect("id"),
                role: "api".into(),
                version: "1".into(),
                started_at: 0,
                heartbeat_at: 0,
                sync: SyncReport::default(),
                caches: Vec::new(),
            },
            status,
            heartbeat_age_ms: 0,
        },
        uptime_ms: 0,
        lag_changes: None,
        lag_ms: None,
        hash_matches: None,
    }
}

/// Two queues (one with a name needing escapes), a channel and instances.
fn two_queue_snapshot() -> Snapshot {
    let mut emails = queue(
        "emails",
        QueueCounts {
            waiting: 3,
            active: 1,
            delayed: 2,
            completed: 40,
            failed: 4,
            paused: true,
            ..QueueCounts::default()
        },
    );
    emails.minutes = Arc::new(vec![
        MinutePoint {
            minute_ms: 999 * 60_000,
            completed: 9,
            failed: 2,
        },
        MinutePoint {
            minute_ms: 1_000 * 60_000,
            completed: 1,
            failed: 0,
        },
    ]);
    let mut s = Snapshot {
        seq: 7,
        taken_at: 1_000 * 60_000 + 5_000,
        queues: vec![
            Arc::new(emails),
            Arc::new(queue("we\"ird\\q\nname", QueueCounts::default())),
        ],
        ..Snapshot::default()
    };
    s.backend.reachable = true;
    s.backend.latency_ms = Some(12.5);
    s.channels = Some(ChannelFigures {
        channels: vec![ChannelStats {
            name: "orders\"\\\n".into(),
            total: 17,
            per_minute: vec![(999 * 60_000, 5), (1_000 * 60_000, 1)],
            ..ChannelStats::default()
        }],
        ..ChannelFigures::default()
    });
    s.instances = Some(InstanceFigures {
        instances: vec![
            instance("api-1", InstanceStatus::Live),
            instance("api-2", InstanceStatus::Stale),
        ],
        ..InstanceFigures::default()
    });
    s
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[test]
fn the_exposition_of_two_queues_has_exact_lines_and_one_header_per_family() {
    let totals = vec![
        QueueTotals {
            queue: "emails".into(),
            completed: 120,
            failed: 9,
        },
        QueueTotals {
            queue: "we\"ird\\q\nname".into(),
            completed: 0,
            failed: 0,
        },
    ];
    let rejections = vec![("dashboard.api".to_owned(), 3)];
    let text = prometheus::render(
        &two_queue_snapshot(),
        Extras {
            totals: &totals,
            rejections: &rejections,
            alerts: &[],
            evaluation: None,
        },
        prometheus::DEFAULT_QUEUE_SERIES,
    );
    for line in [
        "# HELP switchyard_queue_jobs Jobs per queue and state, as of the latest snapshot.",
        "# TYPE switchyard_queue_jobs gauge",
        r#"switchyard_queue_jobs{queue="emails",state="waiting"} 3"#,
        r#"switchyard_queue_jobs{queue="emails",state="active"} 1"#,
        r#"switchyard_queue_jobs{queue="emails",state="delayed"} 2"#,
        r#"switchyard_queue_jobs{queue="emails",state="completed"} 40"#,
        r#"switchyard_queue_jobs{queue="emails",state="failed"} 4"#,
        r#"switchyard_queue_jobs{queue="we\"ird\\q\nname",state="waiting"} 0"#,
        r#"switchyard_queue_paused{queue="emails"} 1"#,
        r#"switchyard_queue_paused{queue="we\"ird\\q\nname"} 0"#,
        "# TYPE switchyard_jobs_completed_total counter",
        r#"switchyard_jobs_completed_total{queue="emails"} 120"#,
        r#"switchyard_jobs_failed_total{queue="emails"} 9"#,
        r#"switchyard_channel_messages_total{channel="orders\"\\\n"} 17"#,
        r#"switchyard_ratelimit_rejections_total{policy="dashboard.api"} 3"#,
        r#"switchyard_instance_up{instance="api-1"} 1"#,
        r#"switchyard_instance_up{instance="api-2"} 0"#,
        "switchyard_backend_up 1",
        "switchyard_backend_latency_seconds 0.0125",
    ] {
        assert!(has_line(&text, line), "no line {line:?} in:\n{text}");
    }
    // No alerts plugged in: no alerts family at all.
    assert!(!text.contains("switchyard_alerts"), "{text}");
    // Every family has exactly one HELP and one TYPE, before its samples,
    // and every line is a comment or a sample of the family just declared.
    let mut declared: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().expect("name").to_owned();
            assert!(!declared.contains(&name), "TYPE {name} twice:\n{text}");
            declared.push(name.clone());
            current = name;
        } else if line.starts_with("# HELP ") {
            continue;
        } else {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert_eq!(name, current, "sample outside its family: {line}");
        }
    }
    for family in &declared {
        let helps = text
            .lines()
            .filter(|l| l.starts_with(&format!("# HELP {family} ")))
            .count();
        assert_eq!(helps, 1, "HELP of {family}");
    }
    assert_eq!(
        declared.len(),
        13,
        "every family but the alerts (with the four over every queue): {declared:?}"
    );
    assert!(text.ends_with('\n'));
}

#[test]
fn alerts_are_one_line_per_rule_and_state() {
    let alerts = vec![
        ("QueueFailing".to_owned(), "firing"),
        ("QueueFailing".to_owned(), "firing"),
        ("Backlog".to_owned(), "pending"),
    ];
    let text = prometheus::render(
        &Snapshot::default(),
        Extras {
            alerts: &alerts,
            ..Extras::default()
        },
        prometheus::DEFAULT_QUEUE_SERIES,
    );
    assert!(has_line(&text, "# TYPE switchyard_alerts gauge"), "{text}");
    assert!(has_line(
        &text,
        r#"switchyard_alerts{alertname="QueueFailing",state="firing"} 2"#
    ));
    assert!(has_line(
        &text,
        r#"switchyard_alerts{alertname="Backlog",state="pending"} 1"#
    ));
    // Before the first snapshot the backend's health is unknown, not down.
    assert!(!text.contains("switchyard_backend_up"), "{text}");
}

#[test]
fn alert_evaluation_times_are_a_summary() {
    let times = prometheus::Summary {
        count: 7,
        sum: 0.035,
        quantiles: vec![("0.5", 0.004), ("0.99", 0.0125)],
    };
    let text = prometheus::render(
        &Snapshot::default(),
        Extras {
            evaluation: Some(&times),
            ..Extras::default()
        },
        prometheus::DEFAULT_QUEUE_SERIES,
    );
    for line in [
        "# TYPE switchyard_alert_evaluation_seconds summary",
        r#"switchyard_alert_evaluation_seconds{quantile="0.5"} 0.004"#,
        r#"switchyard_alert_evaluation_seconds{quantile="0.99"} 0.0125"#,
        "switchyard_alert_evaluation_seconds_sum 0.035",
        "switchyard_alert_evaluation_seconds_count 7",
    ] {
        assert!(has_line(&text, line), "no line {line:?} in:\n{text}");
    }
    // No evaluation yet: no family, rather than quantiles of nothing.
    let none = prometheus::Summary::default();
    let text = prometheus::render(
        &Snapshot::default(),
        Extras {
            evaluation: Some(&none),
            ..Extras::default()
        },
        prometheus::DEFAULT_QUEUE_SERIES,
    );
    assert!(!text.contains("switchyard_alert_evaluation"), "{text}");
}

/// The server times its own evaluations: after a few ticks `/metrics`
/// counts them and gives their quantiles (what the scale benchmark reads
/// its alert-evaluation goal from).
#[tokio::test]
async fn metrics_over_http_time_the_alert_evaluations() {
    let app = TestApp::spawn_with(|s| {
        s.alerts.interval = Duration::from_millis(200);
    })
    .await;
    eventually("three evaluations are counted", async || {
        let text = app.get("/metrics").await.body;
        let count = text
            .lines()
            .find_map(|l| l.strip_prefix("switchyard_alert_evaluation_seconds_count "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let p99 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(r#"switchyard_alert_evaluation_seconds{quantile="0.99"} "#)
            })
            .and_then(|v| v.parse::<f64>().ok());
        match p99 {
            Some(p99) if count >= 3 && p99 > 0.0 && p99 < 5.0 => Ok(()),
            _ => Err(format!("count {count}, p99 {p99:?} in:\n{text}")),
        }
    })
    .await;
    app.stop().await;
}

#[test]
fn the_sampler_takes_a_closed_minutes_own_bucket() {
    let snapshot = two_queue_snapshot();
    let samples = metrics::samples_for(&snapshot, &Rejections::default(), 999, 100);
    let find = |series: &str, subject: &str| {
        samples
            .iter()
            .find(|s| s.series == series && s.subject == subject)
            .map(|s| (s.minute, s.value))
    };
    assert_eq!(find("queue_waiting", "emails"), Some((999, 3.0)));
    assert_eq!(find("queue_paused", "emails"), Some((999, 1.0)));
    assert_eq!(find("queue_completed_per_min", "emails"), Some((999, 9.0)));
    assert_eq!(find("queue_failed_per_min", "emails"), Some((999, 2.0)));
    assert_eq!(
        find("channel_messages_per_min", "orders\"\\\n"),
        Some((999, 5.0))
    );
    assert!(samples.iter().all(|s| Series::parse(s.series).is_some()));
}

#[tokio::test]
async fn metrics_over_http_show_counts_totals_and_rejections() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.pages = LimitSpec::Off;
        s.rate_limits.api = LimitSpec::per(2, 60);
    })
    .await;
    app.complete_jobs("emails", 3).await;
    app.make_failed("emails", 2).await;
    app.queues()
        .enqueue(&qn("emails"), NewJob::new("later", serde_json::json!({})))
        .await
        .expect("enqueue");
    // Two API requests allowed, three refused.
    for _ in 0..5 {
        app.get("/api/queues").await;
    }
    let text = eventually("the exposition shows the jobs", async || {
        let response = app.get("/metrics").await;
        if response.status != 200 {
            return Err(format!("{} {}", response.status, response.body));
        }
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let text = response.body.clone();
        for line in [
            r#"switchyard_queue_jobs{queue="emails",state="waiting"} 1"#,
            r#"switchyard_queue_jobs{queue="emails",state="failed"} 2"#,
            r#"switchyard_queue_jobs{queue="emails",state="completed"} 3"#,
            r#"switchyard_jobs_completed_total{queue="emails"} 3"#,
            r#"switchyard_jobs_failed_total{queue="emails"} 2"#,
            r#"switchyard_queue_paused{queue="emails"} 0"#,
            r#"switchyard_ratelimit_rejections_total{policy="dashboard.api"} 3"#,
            "switchyard_backend_up 1",
        ] {
            if !has_line(&text, line) {
                return Err(format!("no {line:?} in:\n{text}"));
            }
        }
        Ok(text)
    })
    .await;
    assert!(text.contains("# TYPE switchyard_backend_latency_seconds gauge"));
    assert!(!text.contains("switchyard_alerts"));
    app.stop().await;
}

/// Writes, upserts, reads every range, and prunes, with explicit minutes.
async fn exercise_history(db: &Database) {
    // The last minute of an hour that starts a 5-minute bucket too.
    let now = 466_667 * 60 + 59;
    let failed = Series::parse("queue_failed_per_min").expect("known");
    let waiting = Series::parse("queue_waiting").expect("known");
    let sample = |series: &'static str, subject: &str, minute: i64, value: f64| Sample {
        series,
        subject: subject.to_owned(),
        minute,
        value,
    };
    let mut samples = Vec::new();
    // Ten minutes of failures, 1..=10 per minute, the newest last.
    for i in 0..10 {
        samples.push(sample(
            "queue_failed_per_min",
            "emails",
            now - 9 + i,
            (i + 1) as f64,
        ));
    }
    // Outside the hour, inside the day; at the edges of the week.
    samples.push(sample("queue_failed_per_min", "emails", now - 60, 100.0));
    samples.push(sample(
        "queue_failed_per_min",
        "emails",
        now - 7 * 1440 + 1,
        1000.0,
    ));
    samples.push(sample(
        "queue_failed_per_min",
        "emails",
        now - 7 * 1440,
        5000.0,
    ));
    // Another subject never mixes in.
    samples.push(sample("queue_failed_per_min", "other", now, 77.0));
    // Levels average.
    samples.push(sample("queue_waiting", "emails", now - 1, 10.0));
    samples.push(sample("queue_waiting", "emails", now, 20.0));
    history::write(db, &samples).await.expect("write");
    // A second writer of the same minute replaces the value, no error.
    history::write(db, &[sample("queue_waiting", "emails", now, 30.0)])
        .await
        .expect("upsert");

    let hour = history::history(db, failed, "emails", Range::Hour, now)
        .await
        .expect("1h");
    let expected: Vec<(i64, f64)> = (0..10).map(|i| (now - 9 + i, (i + 1) as f64)).collect();
    assert_eq!(hour, expected, "per-minute points of the last hour");

    let day = history::history(db, failed, "emails", Range::Day, now)
        .await
        .expect("24h");
    // Buckets are aligned to multiples of 5 minutes; the ten minutes fill
    // the last two: 1..=5 and 6..=10.
    assert_eq!(
        day,
        vec![
            ((now - 60) / 5 * 5, 100.0),
            (now - 9, 15.0),
            (now - 4, 40.0)
        ],
        "5-minute sums"
    );

    let week = history::history(db, failed, "emails", Range::Week, now)
        .await
        .expect("7d");
    let hour_start = now - 59;
    assert_eq!(
        week,
        vec![
            ((now - 7 * 1440 + 1) / 60 * 60, 1000.0),
            (hour_start - 60, 100.0),
            (hour_start, 55.0),
        ],
        "hourly sums, the minute a week back excluded"
    );

    let levels = history::history(db, waiting, "emails", Range::Day, now)
        .await
        .expect("levels");
    assert_eq!(levels, vec![(now - 4, 20.0)], "average of 10 and 30");

    // Retention: everything before the hour goes, in batches of 2.
    let deleted = history::prune(db, now - 59, 2).await.expect("prune");
    assert_eq!(deleted, 3);
    let week = history::history(db, failed, "emails", Range::Week, now)
        .await
        .expect("7d after pruning");
    assert_eq!(week, vec![(hour_start, 55.0)]);
    assert_eq!(history::prune(db, now - 59, 2).await.expect("again"), 0);
}

#[tokio::test]
async fn history_on_each_database_writes_reads_aggregates_and_prunes() {
    each_migrated_database(async |db| exercise_history(db).await).await;
}

#[tokio::test]
async fn the_history_endpoint_answers_points_and_400s_with_reasons() {
    let app = TestApp::spawn().await;
    let now = minute_of(now_ms());
    history::write(
        &app.app.state.db,
        &[
            Sample {
                series: "queue_failed_per_min",
                subject: "emails".into(),
                minute: now - 1,
                value: 4.0,
            },
            Sample {
                series: "queue_failed_per_min",
                subject: "emails".into(),
                minute: now - 2,
                value: 2.0,
            },
        ],
    )
    .await
    .expect("write");
    let response = app
        .get("/api/metrics/history?series=queue_failed_per_min&subject=emails&range=1h")
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body["series"], "queue_failed_per_min");
    assert_eq!(body["subject"], "emails");
    assert_eq!(body["range"], "1h");
    assert_eq!(
        body["points"],
        serde_json::json!([
            { "minute": now - 2, "value": 2.0 },
            { "minute": now - 1, "value": 4.0 },
        ])
    );
    let day = app
        .get("/api/metrics/history?series=queue_failed_per_min&subject=emails&range=24h")
        .await;
    assert_eq!(day.status, 200, "{}", day.body);
    let total: f64 = day.json()["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["value"].as_f64().expect("value"))
        .sum();
    assert_eq!(total, 6.0);

    for (query, reason) in [
        (
            "series=nope&subject=emails&range=1h",
            "unknown series \"nope\"",
        ),
        (
            "series=queue_waiting&subject=emails&range=2h",
            "unknown range \"2h\"",
        ),
        ("subject=emails", "missing series"),
        ("series=queue_waiting", "missing subject"),
    ] {
        let response = app.get(&format!("/api/metrics/history?{query}")).await;
        assert_eq!(response.status, 400, "{query}: {}", response.body);
        let error = response.json()["error"].as_str().expect("error").to_owned();
        assert!(error.contains(reason), "{query}: {error}");
    }
    let subject = url_encode("a b");
    let empty = app
        .get(&format!(
            "/api/metrics/history?series=queue_waiting&subject={subject}&range=7d"
        ))
        .await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["points"], serde_json::json!([]));
    app.stop().await;
}

#[tokio::test]
async fn the_sampler_ends_when_the_hub_closes() {
    let app = TestApp::spawn().await;
    let sampler = metrics::start(
        app.app.state.db.clone(),
        &app.app.state.hub,
        metrics::DEFAULT_RETENTION,
        100,
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!sampler.is_finished(), "runs while the hub is open");
    app.stop().await;
    tokio::time::timeout(WAIT, sampler)
        .await
        .expect("ends after the hub closed")
        .expect("never panics");
}

/// [`two_queue_snapshot`] taken a second into `minute`, with throughput and
/// traffic in the minute before.
fn snapshot_at(seq: u64, minute: i64) -> Arc<Snapshot> {
    let mut s = two_queue_snapshot();
    s.seq = seq;
    s.taken_at = minute * 60_000 + 1_000;
    let emails = Arc::make_mut(&mut s.queues[0]);
    let minutes = Arc::make_mut(&mut emails.minutes);
    minutes[0].minute_ms = (minute - 1) * 60_000;
    minutes[1].minute_ms = minute * 60_000;
    if let Some(channels) = &mut s.channels {
        channels.channels[0].per_minute = vec![((minute - 1) * 60_000, 5), (minute * 60_000, 1)];
    }
    s.ratelimits = Some(RateLimitFigures {
        status: LimiterStatus::healthy("in-process"),
        policies: vec![(
            Policy::new("dashboard.api", 10, Duration::from_secs(60)).expect("policy"),
            PolicyUsage {
                minutes: vec![MinuteCount {
                    minute: minute * 60_000,
                    allowed: 0,
                    rejected: 4,
                }],
                ..PolicyUsage::default()
            },
        )],
        problem: None,
        now: s.taken_at,
    });
    Arc::new(s)
}

#[tokio::test]
async fn the_sampler_writes_each_closed_minute_prunes_and_survives_database_errors() {
    let dir = TempDir::new("sampler");
    let url = SecretUrl::new(format!(
        "sqlite://{}?mode=rwc",
        dir.0.join("s.db").display()
    ));
    let db = Database::connect(&url).await.expect("connect");
    db.migrate().await.expect("migrate");
    let base = 29_000_000;
    let old = Sample {
        series: "queue_waiting",
        subject: "emails".into(),
        minute: base - 120,
        value: 1.0,
    };
    history::write(&db, &[old])
        .await
        .expect("write an old sample");
    let (snapshots, rx) = watch::channel(Arc::new(Snapshot::default()));
    let (close, closed) = watch::channel(false);
    let task = tokio::spawn(metrics::run(
        db.clone(),
        rx,
        closed,
        Duration::from_secs(3600),
        100,
    ));
    let pause = || tokio::time::sleep(Duration::from_millis(100));
    // The first minute seen is partial: never written.
    snapshots.send_replace(snapshot_at(1, base));
    pause().await;
    snapshots.send_replace(snapshot_at(2, base + 1));
    pause().await;
    // The first snapshot of base + 2 writes base + 1, once.
    snapshots.send_replace(snapshot_at(3, base + 2));
    pause().await;
    snapshots.send_replace(snapshot_at(4, base + 2));
    let read = |series: &str, range: Range| {
        let db = db.clone();
        let series = Series::parse(series).expect("known");
        async move {
            history::history(&db, series, "emails", range, base + 2)
                .await
                .expect("read")
        }
    };
    eventually("the closed minute is written", async || {
        let failed = read("queue_failed_per_min", Range::Hour).await;
        if failed == vec![(base + 1, 2.0)] {
            Ok(())
        } else {
            Err(format!("{failed:?}"))
        }
    })
    .await;
    assert_eq!(
        read("queue_waiting", Range::Hour).await,
        vec![(base + 1, 3.0)]
    );
    assert_eq!(
        read("queue_waiting", Range::Week).await,
        vec![((base + 1) / 60 * 60, 3.0)],
        "the sample two hours old is pruned (retention 1 h)"
    );
    assert_eq!(
        read("queue_completed_per_min", Range::Hour).await,
        vec![(base + 1, 9.0)]
    );
    let channel = history::history(
        &db,
        Series::parse("channel_messages_per_min").expect("known"),
        "orders\"\\\n",
        Range::Hour,
        base + 2,
    )
    .await
    .expect("read channel");
    assert_eq!(channel, vec![(base + 1, 5.0)]);
    let rejections = history::history(
        &db,
        Series::parse("ratelimit_rejections_per_min").expect("known"),
        "dashboard.api",
        Range::Hour,
        base + 2,
    )
    .await
    .expect("read rejections");
    assert_eq!(rejections, vec![(base + 1, 4.0)]);

    // A database that fails is logged and skipped, never the end.
    db.close().await;
    snapshots.send_replace(snapshot_at(5, base + 3));
    pause().await;
    snapshots.send_replace(snapshot_at(6, base + 4));
    pause().await;
    assert!(!task.is_finished(), "the sampler survives database errors");
    close.send_replace(true);
    tokio::time::timeout(WAIT, task)
        .await
        .expect("ends when closed")
        .expect("never panics");
}

/// Thousands of queues must not make every scrape megabytes: per-queue
/// series for the busiest `--metrics-queues` only, totals over all, and
/// the number left out said.
#[tokio::test]
async fn per_queue_series_are_capped_to_the_busiest_queues() {
    let app = TestApp::spawn_with(|s| s.metrics_queues = 3).await;
    for i in 1..=6 {
        for _ in 0..i {
            app.enqueue(&format!("q{i}"), &serde_json::json!({ "name": "a" }))
                .await;
        }
    }
    // Every job counted, not only every queue: with a queue still short of
    // its jobs the busiest three may not be the ones asserted below.
    let body = eventually(
        "all six queues and their 21 jobs in the snapshot",
        async || {
            let body = app.get_as(None, "/metrics").await.body;
            if body.contains(r#"switchyard_queues{series="omitted"} 3"#)
                && body.contains(r#"switchyard_all_queues_jobs{state="waiting"} 21"#)
            {
                Ok(body)
            } else {
                Err(body)
            }
        },
    )
    .await;
    assert!(
        body.contains(r#"switchyard_queues{series="shown"} 3"#),
        "{body}"
    );
    for i in 1..=6 {
        let line = format!(r#"switchyard_queue_paused{{queue="q{i}"}}"#);
        assert_eq!(body.contains(&line), i > 3, "q{i}: {body}");
    }
    assert!(
        body.contains(r#"switchyard_all_queues_jobs{state="waiting"} 21"#),
        "{body}"
    );
    let series = body
        .lines()
        .filter(|l| l.starts_with("switchyard_queue_jobs{"))
        .count();
    assert_eq!(
        series,
        3 * coord::queue::JobState::ALL.len(),
        "three queues, each state: {body}"
    );
    app.stop().await;
}

#[test]
fn the_history_keeps_series_for_the_busiest_queues_only() {
    let mut snapshot = two_queue_snapshot();
    let idle = |i: usize| Arc::new(queue(&format!("idle-{i:05}"), QueueCounts::default()));
    snapshot.queues.extend((0..10_000).map(idle));
    snapshot.queues.sort_by(|a, b| a.name.cmp(&b.name));
    let samples = metrics::samples_for(&snapshot, &Rejections::default(), 999, 1);
    let subjects: std::collections::BTreeSet<&str> = samples
        .iter()
        .filter(|s| s.series.starts_with("queue_"))
        .map(|s| s.subject.as_str())
        .collect();
    // The busiest by load (`--metrics-queues 1`) and the busiest of the
    // hour (charted on the overview, at most eight): not 10,002 queues.
    assert!(subjects.contains("emails"), "{subjects:?}");
    assert!(subjects.len() <= 1 + 8, "{} queues sampled", subjects.len());
}

/// Latency figures of one queue as the workers' book merges them: the
/// cumulative buckets by hand, the rest left empty.
fn latency_of(wait: Cumulative, run: Cumulative) -> Arc<QueueLatency> {
    let mut latency = QueueLatency::default();
    latency.wait_total = wait;
    latency.run_total = run;
    Arc::new(latency)
}

fn with_latency(snapshot: &mut Snapshot, figures: Vec<(&str, Arc<QueueLatency>)>) {
    let latency: HashMap<String, Arc<QueueLatency>> = figures
        .into_iter()
        .map(|(queue, l)| (queue.to_owned(), l))
        .collect();
    snapshot.workers = Some(Arc::new(WorkerFigures {
        latency: Arc::new(latency),
        ..WorkerFigures::default()
    }));
}

#[test]
fn wait_and_run_times_are_histograms_of_the_shown_queues() {
    let mut snapshot = two_queue_snapshot();
    // 3 waits: 4 ms, 40 ms, 2 s; 3 runs: 300 ms each.
    let mut wait = Cumulative {
        count: 3,
        sum_ms: 2_044,
        ..Cumulative::default()
    };
    for (bucket, secs) in wait.buckets.iter_mut().zip(BUCKETS_SECS) {
        *bucket = [0.004, 0.04, 2.0].iter().filter(|&&t| t <= secs).count() as u64;
    }
    let mut run = Cumulative {
        count: 3,
        sum_ms: 900,
        ..Cumulative::default()
    };
    for (bucket, secs) in run.buckets.iter_mut().zip(BUCKETS_SECS) {
        *bucket = if secs >= 0.5 { 3 } else { 0 };
    }
    let weird = "we\"ird\\q\nname";
    with_latency(
        &mut snapshot,
        vec![
            ("emails", latency_of(wait.clone(), run.clone())),
            (weird, latency_of(wait, run)),
            // Latency for a queue the snapshot does not list: never shown.
            (
                "ghost",
                latency_of(Cumulative::default(), Cumulative::default()),
            ),
        ],
    );
    let text = prometheus::render(&snapshot, Extras::default(), 100);
    for line in [
        "# HELP switchyard_job_wait_seconds How long attempts waited to start once they could run (enqueued, delay over or previous attempt ended), as native workers report them, since this dashboard started.",
        "# TYPE switchyard_job_wait_seconds histogram",
        r#"switchyard_job_wait_seconds_bucket{queue="emails",le="0.005"} 1"#,
        r#"switchyard_job_wait_seconds_bucket{queue="emails",le="0.01"} 1"#,
        r#"switchyard_job_wait_seconds_bucket{queue="emails",le="0.05"} 2"#,
        r#"switchyard_job_wait_seconds_bucket{queue="emails",le="1"} 2"#,
        r#"switchyard_job_wait_seconds_bucket{queue="emails",le="2.5"} 3"#,
        r#"switchyard_job_wait_seconds_bucket{queue="emails",le="1800"} 3"#,
        r#"switchyard_job_wait_seconds_bucket{queue="emails",le="+Inf"} 3"#,
        r#"switchyard_job_wait_seconds_sum{queue="emails"} 2.044"#,
        r#"switchyard_job_wait_seconds_count{queue="emails"} 3"#,
        "# TYPE switchyard_job_run_seconds histogram",
        r#"switchyard_job_run_seconds_bucket{queue="emails",le="0.25"} 0"#,
        r#"switchyard_job_run_seconds_bucket{queue="emails",le="0.5"} 3"#,
        r#"switchyard_job_run_seconds_bucket{queue="emails",le="+Inf"} 3"#,
        r#"switchyard_job_run_seconds_sum{queue="emails"} 0.9"#,
        r#"switchyard_job_run_seconds_count{queue="emails"} 3"#,
        r#"switchyard_job_run_seconds_count{queue="we\"ird\\q\nname"} 3"#,
    ] {
        assert!(has_line(&text, line), "no {line:?} in:\n{text}");
    }
    // Per queue and kind: every bound, +Inf, _sum and _count.
    let per_queue = BUCKETS_SECS.len() + 3;
    assert_eq!(
        lines_of(&text, "switchyard_job_wait_seconds"),
        2 * per_queue,
        "{text}"
    );
    assert_eq!(
        lines_of(&text, "switchyard_job_run_seconds"),
        2 * per_queue,
        "{text}"
    );
    assert_eq!(
        text.matches("# TYPE switchyard_job_wait_seconds").count(),
        1
    );
    assert!(!text.contains("ghost"), "{text}");
    // Bounded like every per-queue family: `--metrics-queues 1` keeps the
    // busier queue's histograms only.
    let capped = prometheus::render(&snapshot, Extras::default(), 1);
    assert_eq!(lines_of(&capped, "switchyard_job_wait_seconds"), per_queue);
    assert!(!capped.contains(r#"switchyard_job_wait_seconds_count{queue="we"#));
    // No worker figures (or none with latency): no family at all.
    let mut none = two_queue_snapshot();
    assert!(!prometheus::render(&none, Extras::default(), 100).contains("switchyard_job_"));
    with_latency(&mut none, vec![]);
    assert!(!prometheus::render(&none, Extras::default(), 100).contains("switchyard_job_"));
}

fn lines_of(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

/// The real path but for the clock: a coord worker runs jobs and ships its
/// histograms in its registry reports; the workers' book merges what the
/// registry lists, told the minutes are over (instead of waiting up to 75 s
/// for them to settle); the exposition shows the result.
#[tokio::test]
async fn a_workers_reported_times_reach_the_exposition() {
    let app = TestApp::spawn().await;
    let worker = app
        .queues()
        .worker(qn("timed"))
        .concurrency(4)
        .heartbeat(Duration::from_millis(100))
        .poll_interval(Duration::from_millis(20))
        .start(|_job: Job| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(serde_json::Value::Null)
        })
        .expect("worker");
    for i in 0..4 {
        app.queues()
            .enqueue(
                &qn("timed"),
                NewJob::new("t", serde_json::json!({ "i": i })),
            )
            .await
            .expect("enqueue");
    }
    let thresholds = Thresholds::for_interval(Duration::from_millis(100));
    let views = eventually("the worker to report four runs", async || {
        let views = app
            .queues()
            .workers(now_ms(), &thresholds)
            .await
            .map_err(|e| e.to_string())?;
        let runs: u64 = views
            .iter()
            .filter(|v| v.report.queue.as_str() == "timed")
            .flat_map(|v| &v.report.latency)
            .flat_map(|m| &m.run)
            .map(|(_, n)| n)
            .sum();
        if runs == 4 {
            Ok(views)
        } else {
            Err(format!("{runs} runs reported"))
        }
    })
    .await;
    worker.shutdown(Duration::from_secs(5)).await;
    let minutes: Vec<i64> = views
        .iter()
        .flat_map(|v| v.report.latency.iter().map(|m| m.minute))
        .collect();
    let (first, last) = (
        *minutes.iter().min().expect("a minute"),
        *minutes.iter().max().expect("a minute"),
    );
    let mut book = LatencyBook::default();
    // Read while the minutes are open, then once they have settled.
    book.update(&views, first);
    let figures = book.update(&[], last + 60_000 + SETTLE_MS);
    assert!(figures.contains_key("timed"), "{figures:?}");
    let mut snapshot = Snapshot {
        seq: 1,
        queues: vec![Arc::new(queue(
            "timed",
            QueueCounts {
                completed: 4,
                ..QueueCounts::default()
            },
        ))],
        ..Snapshot::default()
    };
    snapshot.workers = Some(Arc::new(WorkerFigures {
        latency: figures,
        ..WorkerFigures::default()
    }));
    let text = prometheus::render(&snapshot, Extras::default(), 100);
    for line in [
        "# TYPE switchyard_job_wait_seconds histogram",
        "# TYPE switchyard_job_run_seconds histogram",
        r#"switchyard_job_wait_seconds_count{queue="timed"} 4"#,
        r#"switchyard_job_wait_seconds_bucket{queue="timed",le="+Inf"} 4"#,
        // Taken within a poll or two: far under 30 s.
        r#"switchyard_job_wait_seconds_bucket{queue="timed",le="30"} 4"#,
        r#"switchyard_job_run_seconds_count{queue="timed"} 4"#,
        // Each slept 300 ms: none within 0.25 s.
        r#"switchyard_job_run_seconds_bucket{queue="timed",le="0.25"} 0"#,
        r#"switchyard_job_run_seconds_bucket{queue="timed",le="30"} 4"#,
    ] {
        assert!(has_line(&text, line), "no {line:?} in:\n{text}");
    }
    let run_sum: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"switchyard_job_run_seconds_sum{queue="timed"} "#))
        .and_then(|v| v.parse().ok())
        .expect("a run sum");
    assert!((1.2..30.0).contains(&run_sum), "{run_sum}");
    app.stop().await;
}

fn is_latency(series: &str) -> bool {
    series.starts_with("queue_wait_p") || series.starts_with("queue_run_p")
}

#[test]
fn the_sampler_writes_a_queues_newest_latency_minute_under_its_own_minute() {
    let mut snapshot = two_queue_snapshot();
    let mut emails = QueueLatency::default();
    let wait = Percentiles {
        count: 10,
        p50: 40,
        p95: 950,
        p99: 1_200,
        max: 1_300,
        sum: 2_000,
    };
    // Merged after the sampled minute 999 began: the minute before.
    emails.last = Some((998 * 60_000, wait, Percentiles::default()));
    // Idle for long: its last minute was written back then.
    let mut idle = QueueLatency::default();
    idle.last = Some((900 * 60_000, wait, wait));
    with_latency(
        &mut snapshot,
        vec![
            ("emails", Arc::new(emails)),
            ("we\"ird\\q\nname", Arc::new(idle)),
        ],
    );
    let samples = metrics::samples_for(&snapshot, &Rejections::default(), 999, 100);
    let latency: Vec<(&str, &str, i64, f64)> = samples
        .iter()
        .filter(|s| is_latency(s.series))
        .map(|s| (s.series, s.subject.as_str(), s.minute, s.value))
        .collect();
    // Run recorded nothing: no run series rather than zeros.
    assert_eq!(
        latency,
        [
            ("queue_wait_p50_ms", "emails", 998, 40.0),
            ("queue_wait_p95_ms", "emails", 998, 950.0),
            ("queue_wait_p99_ms", "emails", 998, 1_200.0),
        ]
    );
    for s in &samples {
        let series = Series::parse(s.series).expect("a known series");
        if is_latency(s.series) {
            assert_eq!(series.aggregate(), history::Aggregate::Max);
        }
    }
    // A queue left out of the kept ones gets no latency series either.
    let capped = metrics::samples_for(&snapshot, &Rejections::default(), 999, 0);
    assert!(
        capped
            .iter()
            .all(|s| !is_latency(s.series) || s.subject == "emails"),
        "{capped:?}"
    );
}

/// A percentile series' buckets are their worst minute, per subject too.
async fn exercise_max(db: &Database) {
    let now = 466_667 * 60 + 59;
    let p95 = Series::parse("queue_wait_p95_ms").expect("known");
    let mut samples = Vec::new();
    for (i, value) in [120.0, 900.0, 80.0, 300.0, 50.0, 10.0]
        .into_iter()
        .enumerate()
    {
        samples.push(Sample {
            series: "queue_wait_p95_ms",
            subject: "emails".into(),
            minute: now - 5 + i as i64,
            value,
        });
    }
    samples.push(Sample {
        series: "queue_wait_p95_ms",
        subject: "other".into(),
        minute: now,
        value: 5_000.0,
    });
    history::write(db, &samples).await.expect("write");
    let hour = history::history(db, p95, "emails", Range::Hour, now)
        .await
        .expect("1h");
    assert_eq!(hour.len(), 6, "one point per minute: {hour:?}");
    // `now` is the last minute of a 5-minute bucket: now - 5 is alone in
    // the one before.
    let day = history::history(db, p95, "emails", Range::Day, now)
        .await
        .expect("24h");
    assert_eq!(
        day,
        vec![(now - 9, 120.0), (now - 4, 900.0)],
        "worst minutes"
    );
    let week = history::history(db, p95, "emails", Range::Week, now)
        .await
        .expect("7d");
    assert_eq!(week, vec![(now - 59, 900.0)]);
    let all = history::by_subject(db, p95, Range::Day, now)
        .await
        .expect("by subject");
    assert_eq!(
        all,
        vec![
            ("emails".to_owned(), now - 9, 120.0),
            ("emails".to_owned(), now - 4, 900.0),
            ("other".to_owned(), now - 4, 5_000.0),
        ]
    );
}

#[tokio::test]
async fn percentile_history_takes_the_worst_minute_on_each_database() {
    each_migrated_database(async |db| exercise_max(db).await).await;
}

#[tokio::test]
async fn the_history_endpoint_serves_the_percentile_series() {
    let app = TestApp::spawn().await;
    let now = minute_of(now_ms());
    let sample = |series: &'static str, minute: i64, value: f64| Sample {
        series,
        subject: "emails".into(),
        minute,
        value,
    };
    history::write(
        &app.app.state.db,
        &[
            sample("queue_wait_p95_ms", now - 2, 700.0),
            sample("queue_wait_p95_ms", now - 1, 300.0),
            sample("queue_run_p99_ms", now - 1, 42.0),
        ],
    )
    .await
    .expect("write");
    for series in history::SERIES.iter().map(|(name, _)| *name) {
        let response = app
            .get(&format!(
                "/api/metrics/history?series={series}&subject=emails&range=1h"
            ))
            .await;
        assert_eq!(response.status, 200, "{series}: {}", response.body);
    }
    let hour = app
        .get("/api/metrics/history?series=queue_wait_p95_ms&subject=emails&range=1h")
        .await
        .json();
    assert_eq!(
        hour["points"],
        serde_json::json!([
            { "minute": now - 2, "value": 700.0 },
            { "minute": now - 1, "value": 300.0 },
        ])
    );
    let week = app
        .get("/api/metrics/history?series=queue_wait_p95_ms&subject=emails&range=7d")
        .await
        .json();
    let values: Vec<f64> = week["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["value"].as_f64().expect("value"))
        .collect();
    // Both minutes in one hour: 700; across an hour's edge: each its own.
    assert!(values == [700.0] || values == [700.0, 300.0], "{values:?}");
    app.stop().await;
}

/// With Redis configured, `/metrics` carries the hub's read of it: one
/// series per node under `node`, gauges and `INFO`'s counters.
#[tokio::test]
async fn metrics_over_http_show_the_configured_redis() {
    let app = TestApp::spawn_redis().await;
    let text = eventually("the exposition shows Redis", async || {
        let text = app.get("/metrics").await.body;
        if has_line(&text, r#"switchyard_redis_up{node="127.0.0.1:6379"} 1"#) {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    for family in [
        "switchyard_redis_memory_used_bytes",
        "switchyard_redis_memory_max_bytes",
        "switchyard_redis_connected_clients",
        "switchyard_redis_blocked_clients",
        "switchyard_redis_ops_per_second",
        "switchyard_redis_evicted_keys_total",
        "switchyard_redis_expired_keys_total",
    ] {
        let prefix = format!(r#"{family}{{node="127.0.0.1:6379"}} "#);
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse::<f64>().ok());
        assert!(value.is_some_and(|v| v >= 0.0), "no {family} in:\n{text}");
    }
    let clients = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"switchyard_redis_connected_clients{node="127.0.0.1:6379"} "#)
        })
        .and_then(|v| v.parse::<u64>().ok());
    assert!(clients.is_some_and(|n| n >= 1), "the dashboard is a client");
    assert!(text.contains("# TYPE switchyard_redis_evicted_keys_total counter"));
    assert!(text.contains("# TYPE switchyard_redis_memory_used_bytes gauge"));
    // A single server: no replica, so no lag series.
    assert!(!text.contains("switchyard_redis_replication_lag_seconds"));
    app.stop().await;
}

/// Without Redis, no `switchyard_redis_*` family at all.
#[tokio::test]
async fn metrics_without_redis_have_no_redis_series() {
    let app = TestApp::spawn().await;
    let text = eventually("the first snapshot", async || {
        let text = app.get("/metrics").await.body;
        if has_line(&text, "switchyard_backend_up 1") {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    assert!(!text.contains("switchyard_redis_"), "{text}");
    app.stop().await;
}
