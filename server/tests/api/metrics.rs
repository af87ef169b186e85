//! Metrics: the Prometheus exposition (rendered from a hand-made snapshot,
//! and over HTTP on a real server), the per-minute history in SQL on real
//! SQLite and PostgreSQL (a schema of the test's own, dropped afterwards),
//! the history endpoint, and the sampler's lifetime.

use std::sync::Arc;
use std::time::Duration;

use coord::instance::InstanceId;
use coord::instances::{InstanceReport, InstanceStatus, InstanceView, SyncReport};
use coord::queue::{NewJob, QueueCounts};
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
