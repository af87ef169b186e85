//! The overview's throughput charts over the SQL history: the 24 h and 7 d
//! ranges read from `metrics_samples` when the page is rendered, the live
//! hour backfilled from it after a restart, and the range parameter's
//! validation, on SQLite (embedded) and on PostgreSQL (next to Redis).

use std::time::Duration;

use app::ChartRange;
use app::format::format_clock;
use coord::time::now_ms;
use serde_json::json;
use server::config::secret::SecretUrl;
use server::db::Database;
use server::metrics::charts;
use server::metrics::history::{self, Range, Sample, minute_of};
use test_support::html::{attr, element, start_tag, text_of};
use test_support::http::{SseNext, TestResponse};
use test_support::postgres::PgSchema;
use test_support::redis::REDIS_URL;

use crate::helpers::{TestApp, WAIT, each_migrated_database, eventually};

const COMPLETED: &str = "queue_completed_per_min";
const FAILED: &str = "queue_failed_per_min";

fn sample(series: &'static str, subject: &str, minute: i64, value: f64) -> Sample {
    Sample {
        series,
        subject: subject.to_owned(),
        minute,
        value,
    }
}

/// The minutes samples were written for, each the first of a 5-minute
/// bucket so a second minute after it shares its bucket (and its hour).
struct Written {
    hour_ago: i64,
    day_ago: i64,
    week_ago: i64,
}

/// Writes, for queue `emails`: 5 + 6 completed and 1 failed about an hour
/// ago, 20 completed and 3 failed almost a day ago, 300 completed and 40
/// failed six and a half days ago; and what no chart may show: 9,999
/// completed eight days ago, a level series, and a queue that does not
/// exist.
async fn write_history(db: &Database, now_minute: i64) -> Written {
    let aligned = |m: i64| m.div_euclid(5) * 5;
    let w = Written {
        hour_ago: aligned(now_minute - 61),
        day_ago: aligned(now_minute - 23 * 60 - 30),
        week_ago: aligned(now_minute - 6 * 24 * 60 - 12 * 60),
    };
    let samples = vec![
        sample(COMPLETED, "emails", w.hour_ago, 5.0),
        sample(COMPLETED, "emails", w.hour_ago + 1, 6.0),
        sample(FAILED, "emails", w.hour_ago, 1.0),
        sample(COMPLETED, "emails", w.day_ago, 20.0),
        sample(FAILED, "emails", w.day_ago + 2, 3.0),
        sample(COMPLETED, "emails", w.week_ago, 300.0),
        sample(FAILED, "emails", w.week_ago + 1, 40.0),
        sample(COMPLETED, "emails", now_minute - 8 * 24 * 60, 9_999.0),
        sample("queue_completed", "emails", w.hour_ago, 777.0),
        sample(COMPLETED, "ghost", w.hour_ago, 555.0),
    ];
    history::write(db, &samples).await.expect("write history");
    w
}

/// A bar's tooltip on a chart of `range`.
fn title(range: ChartRange, minute: i64, completed: u64, failed: u64) -> String {
    let bucket = minute * 60_000 / range.bucket_ms() * range.bucket_ms();
    format!(
        "<title>{}: {completed} completed, {failed} failed</title>",
        range.bucket_label(bucket)
    )
}

/// The overview at `path` once it charts `queue`.
async fn overview_with(app: &TestApp, path: &str, queue: &str) -> TestResponse {
    let marker = format!(r#"data-test-id="chart-{queue}""#);
    eventually(&format!("{path} charts {queue}"), async || {
        let response = app.get(path).await;
        if response.status == 200 && response.body.contains(&marker) {
            Ok(response)
        } else {
            Err(format!("{} {}", response.status, response.body))
        }
    })
    .await
}

/// Checks the 24 h and 7 d pages of a server whose database holds
/// [`write_history`]'s samples.
async fn check_range_pages(app: &TestApp, w: &Written) {
    let day = overview_with(app, "/?range=24h", "reports").await;
    let html = &day.body;
    assert!(html.contains("Throughput, last 24 hours"), "{html}");
    assert!(
        html.contains(r#"data-live="/events/overview?range=24h""#),
        "{html}"
    );
    assert_eq!(
        attr(
            start_tag(html, "range-24h").expect("24h link"),
            "aria-current"
        ),
        Some("page")
    );
    assert_eq!(
        attr(
            start_tag(html, "range-1h").expect("1h link"),
            "aria-current"
        ),
        None
    );
    let emails = element(html, "chart-emails");
    assert_eq!(emails.matches("<g>").count(), 288, "{emails}");
    assert!(
        emails.contains(&title(ChartRange::Day, w.hour_ago, 11, 1)),
        "{emails}"
    );
    assert!(
        emails.contains(&title(ChartRange::Day, w.day_ago, 20, 3)),
        "{emails}"
    );
    assert!(emails.contains("31 completed · 4 failed"), "{emails}");
    assert!(!emails.contains("300 completed"), "{emails}");
    let reports = element(html, "chart-reports");
    assert_eq!(reports.matches("<g>").count(), 288, "{reports}");
    assert!(reports.contains("0 completed · 0 failed"), "{reports}");
    assert!(!html.contains("chart-ghost"), "{html}");

    let week = overview_with(app, "/?range=7d", "emails").await;
    let html = &week.body;
    assert!(html.contains("Throughput, last 7 days"), "{html}");
    assert_eq!(
        attr(
            start_tag(html, "range-7d").expect("7d link"),
            "aria-current"
        ),
        Some("page")
    );
    let emails = element(html, "chart-emails");
    assert_eq!(emails.matches("<g>").count(), 168, "{emails}");
    for (minute, completed, failed) in [
        (w.hour_ago, 11, 1),
        (w.day_ago, 20, 3),
        (w.week_ago, 300, 40),
    ] {
        assert!(
            emails.contains(&title(ChartRange::Week, minute, completed, failed)),
            "{minute}: {emails}"
        );
    }
    assert!(emails.contains("331 completed · 44 failed"), "{emails}");
    assert!(!emails.contains("9,999"), "{emails}");
    assert!(emails.contains("peak 340/h"), "{emails}");
}

#[tokio::test]
async fn day_and_week_charts_show_the_sql_history() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    app.enqueue("reports", &json!({ "name": "b" })).await;
    let w = write_history(&app.app.state.db, minute_of(now_ms())).await;
    check_range_pages(&app, &w).await;

    // The hour stays the hub's: live, and the history's older samples are
    // not in it.
    for path in ["/", "/?range=1h", "/?range="] {
        let hour = overview_with(&app, path, "emails").await;
        let html = &hour.body;
        assert!(html.contains("Throughput, last hour"), "{html}");
        assert!(html.contains(r#"data-live="/events/overview""#), "{html}");
        assert_eq!(
            attr(
                start_tag(html, "range-1h").expect("1h link"),
                "aria-current"
            ),
            Some("page")
        );
        assert_eq!(element(html, "chart-emails").matches("<g>").count(), 60);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_day_or_week_stream_keeps_the_charts_it_was_rendered_with() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    for range in ["24h", "7d"] {
        let mut stream = app.sse(&format!("/events/overview?range={range}")).await;
        assert_eq!(stream.status, 200);
        let regions = stream.regions(&["health", "totals"], WAIT).await;
        assert!(!regions.contains_key("throughput"), "{range}");
        // Enqueueing changes the totals: they are sent, the charts never.
        app.enqueue("emails", &json!({ "name": "b" })).await;
        stream
            .swap_until(WAIT, |e| {
                assert_ne!(e.region(), Some("throughput"), "{range}: {}", e.data);
                e.region() == Some("totals")
            })
            .await;
        loop {
            match stream.next(Duration::from_millis(700)).await {
                SseNext::Event(e) => assert_ne!(e.region(), Some("throughput"), "{range}"),
                SseNext::Timeout => break,
                SseNext::End => panic!("the stream ended"),
            }
        }
    }
    // The hour's stream still carries them.
    let mut stream = app.sse("/events/overview?range=1h").await;
    let regions = stream.regions(&["throughput"], WAIT).await;
    assert!(regions["throughput"].contains("chart-emails"));
    app.stop().await;
}

#[tokio::test]
async fn a_bad_range_is_a_400_with_the_reason() {
    let app = TestApp::spawn().await;
    for bad in ["2d", "1H", "%3Cb%3Ex%3C%2Fb%3E"] {
        let response = app.get(&format!("/?range={bad}")).await;
        assert_eq!(response.status, 400, "{bad}: {}", response.body);
        assert!(response.is_html(), "{:?}", response.headers);
        assert_eq!(text_of(&response.body, "error-title"), "400 Bad Request");
        let message = text_of(&response.body, "error-message");
        assert!(message.contains("unknown range"), "{message}");
        assert!(message.contains("expected 1h, 24h or 7d"), "{message}");
        assert!(!response.body.contains("<b>x</b>"), "{}", response.body);

        let stream = app.sse(&format!("/events/overview?range={bad}")).await;
        assert_eq!(stream.status, 400, "stream {bad}");
    }
    app.stop().await;
}

#[tokio::test]
async fn after_a_restart_the_last_hour_comes_back_from_sql() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    let now = minute_of(now_ms());
    let samples = vec![
        sample(COMPLETED, "emails", now - 5, 7.0),
        sample(FAILED, "emails", now - 5, 2.0),
        sample(COMPLETED, "emails", now - 30, 4.0),
        // Older than the hour: not in its chart.
        sample(COMPLETED, "emails", now - 90, 50.0),
    ];
    history::write(&app.app.state.db, &samples)
        .await
        .expect("write history");
    let expected = format!(
        "<title>{}: 7 completed, 2 failed</title>",
        format_clock((now - 5) * 60_000)
    );
    // A running hub reads the history only when it starts.
    let before = overview_with(&app, "/", "emails").await;
    assert!(!before.body.contains(&expected), "{}", before.body);

    let app = app.restart().await;
    let after = overview_with(&app, "/", "emails").await;
    let chart = element(&after.body, "chart-emails");
    assert_eq!(chart.matches("<g>").count(), 60, "{chart}");
    assert!(chart.contains(&expected), "{chart}");
    assert!(
        chart.contains(&format!(
            "<title>{}: 4 completed, 0 failed</title>",
            format_clock((now - 30) * 60_000)
        )),
        "{chart}"
    );
    assert!(chart.contains("11 completed · 2 failed"), "{chart}");
    // The live stream sends the same hour.
    let mut stream = app.sse("/events/overview").await;
    let regions = stream.regions(&["throughput"], WAIT).await;
    assert!(regions["throughput"].contains(&expected), "{regions:?}");
    app.stop().await;
}

/// The reads behind the charts, straight on a database.
async fn check_reads(db: &Database) {
    let now = minute_of(now_ms());
    let w = write_history(db, now).await;
    let now_ms = now * 60_000 + 30_000;
    let queues = vec!["emails".to_owned(), "idle".to_owned()];
    let day = charts::throughput(db, &queues, Range::Day, now_ms)
        .await
        .expect("day");
    assert_eq!(day.len(), 2);
    assert_eq!(day[0].queue, "emails");
    assert_eq!(day[0].points.len(), 288);
    let last = day[0].points.last().expect("points").minute_ms;
    assert_eq!(
        last,
        now.div_euclid(5) * 5 * 60_000,
        "ends with now's bucket"
    );
    let hour_bucket = day[0]
        .points
        .iter()
        .find(|p| p.minute_ms == w.hour_ago * 60_000)
        .expect("the hour-ago bucket");
    assert_eq!((hour_bucket.completed, hour_bucket.failed), (11, 1));
    let sum: u64 = day[0].points.iter().map(|p| p.completed).sum();
    assert_eq!(sum, 31);
    assert!(
        day[1]
            .points
            .iter()
            .all(|p| p.completed == 0 && p.failed == 0)
    );

    let week = charts::throughput(db, &queues[..1], Range::Week, now_ms)
        .await
        .expect("week");
    assert_eq!(week[0].points.len(), 168);
    let sum: (u64, u64) = week[0]
        .points
        .iter()
        .fold((0, 0), |(c, f), p| (c + p.completed, f + p.failed));
    assert_eq!(sum, (331, 44));

    // The hour before an hour ago: only what is in it.
    let hour = charts::last_hour(db, (w.hour_ago + 30) * 60_000)
        .await
        .expect("last hour");
    let emails = &hour["emails"];
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert_eq!(emails[0].minute_ms, w.hour_ago * 60_000);
    assert_eq!((emails[0].completed, emails[0].failed), (5, 1));
    assert_eq!((emails[1].completed, emails[1].failed), (6, 0));
    assert_eq!(hour["ghost"][0].completed, 555);
}

#[tokio::test]
async fn chart_reads_on_each_database() {
    each_migrated_database(async |db| check_reads(db).await).await;
}

#[tokio::test]
async fn on_postgres_the_pages_and_the_restart_read_the_history() {
    let schema = PgSchema::create().await;
    let url = SecretUrl::new(schema.url());
    let app = TestApp::spawn_redis_with(REDIS_URL, None, |s| s.database_url = url).await;
    assert_eq!(app.app.state.db.kind(), "postgres");
    app.enqueue("emails", &json!({ "name": "a" })).await;
    app.enqueue("reports", &json!({ "name": "b" })).await;
    let now = minute_of(now_ms());
    let w = write_history(&app.app.state.db, now).await;
    check_range_pages(&app, &w).await;
    history::write(
        &app.app.state.db,
        &[sample(COMPLETED, "emails", now - 3, 8.0)],
    )
    .await
    .expect("write history");

    let app = app.restart().await;
    let after = overview_with(&app, "/", "emails").await;
    let chart = element(&after.body, "chart-emails");
    assert!(
        chart.contains(&format!(
            "<title>{}: 8 completed, 0 failed</title>",
            format_clock((now - 3) * 60_000)
        )),
        "{chart}"
    );
    let db = app.app.state.db.clone();
    app.stop().await;
    db.close().await;
    schema.drop().await;
}
