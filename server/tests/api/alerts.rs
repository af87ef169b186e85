//! Alerting end to end: a rule's condition becomes true, the alert fires,
//! shows on every page and reaches real webhook receivers (Alertmanager and
//! chat payloads), then resolves; operators acknowledge, silence and edit
//! rules; with two dashboard instances only one evaluates and each
//! transition is delivered once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as AxumPath, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use server::alerts::runner::WebhookTarget;
use server::alerts::webhook::WebhookFormat;
use server::config::Settings;
use server::config::secret::SecretUrl;
use test_support::postgres::PgSchema;
use test_support::redis::{PrivateCluster, PrivateRedis, REDIS_URL, free_port};

use crate::helpers::{TestApp, assert_redirect, eventually, notice_cookie};

/// An HTTP receiver on port 0 that records what is posted to it; posts to
/// `/fail/…` answer 500.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(String, Value)>>>,
    url: String,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let receiver = Receiver {
            received: Arc::default(),
            url,
        };
        let app = axum::Router::new()
            .route(
                "/{*path}",
                axum::routing::post(
                    |State(r): State<Receiver>,
                     AxumPath(path): AxumPath<String>,
                     body: axum::Json<Value>| async move {
                        r.received.lock().unwrap().push((path.clone(), body.0));
                        if path.starts_with("fail") {
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            StatusCode::OK
                        }
                    },
                ),
            )
            .with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        receiver
    }

    fn target(&self, path: &str, format: WebhookFormat) -> WebhookTarget {
        WebhookTarget {
            url: SecretUrl::new(format!("{}/{path}", self.url)),
            format,
        }
    }

    /// Bodies posted to `path`.
    fn bodies(&self, path: &str) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

/// Fast evaluation and the given receivers.
fn alerting(receivers: Vec<WebhookTarget>) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| {
        s.alerts.interval = Duration::from_millis(200);
        s.alerts.webhooks = receivers;
        s.alerts.external_url = "https://switchyard.example".into();
    }
}

/// A failure-rate rule on one queue that fires at once. The queue is
/// created first and the hub has seen it: throughput counts what finishes
/// after a queue's first sample (earlier totals have no time to go with).
async fn failure_rule(app: &TestApp, queue: &str) {
    app.complete_jobs(queue, 1).await;
    eventually("the hub to see the queue", async || {
        app.app
            .state
            .hub
            .current()
            .queue(queue)
            .map(|_| ())
            .ok_or("not yet".to_owned())
    })
    .await;
    let saved = app
        .post_json(
            "/api/alerts/rules",
            &json!({
                "name": "q-failures",
                "kind": "failure_rate",
                "target": queue,
                "threshold": 20,
                "windowSecs": 300,
                "forSecs": 0,
                "severity": "critical",
            }),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
}

/// The rule's alert in `/api/alerts`, once it has `status`.
async fn alert_with_status(app: &TestApp, status: &str) -> Value {
    eventually(&format!("the alert to be {status}"), async || {
        let body = app.get("/api/alerts").await.json();
        body["active"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["rule"] == "q-failures").cloned())
            .filter(|a| a["status"] == status)
            .ok_or_else(|| body["active"].to_string())
    })
    .await
}

#[tokio::test]
async fn a_failure_rate_alert_fires_reaches_the_webhooks_and_resolves() {
    let hooks = Receiver::start().await;
    let app = TestApp::spawn_with(alerting(vec![
        hooks.target("am", WebhookFormat::Alertmanager),
        hooks.target("chat", WebhookFormat::Chat),
    ]))
    .await;
    failure_rule(&app, "billing").await;
    app.make_failed("billing", 3).await;

    let firing = alert_with_status(&app, "firing").await;
    assert_eq!(firing["queue"], "billing");
    assert_eq!(firing["severity"], "critical");
    assert_eq!(firing["value"], 100.0);
    let fingerprint = firing["fingerprint"].as_str().unwrap().to_owned();

    // Both receivers get the firing message, in their formats.
    let am = eventually("the Alertmanager message", async || {
        hooks.bodies("am").first().cloned().ok_or("none".to_owned())
    })
    .await;
    assert_eq!(am["version"], "4");
    assert_eq!(am["status"], "firing");
    assert_eq!(am["externalURL"], "https://switchyard.example");
    let alert = &am["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["alertname"], "q-failures");
    assert_eq!(alert["labels"]["queue"], "billing");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["fingerprint"], fingerprint.as_str());
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("billing")
    );
    let chat = eventually("the chat message", async || {
        hooks
            .bodies("chat")
            .first()
            .cloned()
            .ok_or("none".to_owned())
    })
    .await;
    assert!(
        chat["text"].as_str().unwrap().starts_with("[FIRING]"),
        "{chat}"
    );

    // Every page shows the banner; the Alerts page lists it as firing.
    let overview = app.get("/").await.body;
    assert!(overview.contains(&format!(r#"data-fingerprint="{fingerprint}""#)));
    let page = app.get("/alerts").await.body;
    assert!(page.contains(r#"data-status="firing""#), "{page}");

    // Successes dilute the rate below 20%: it resolves, and receivers hear.
    app.complete_jobs("billing", 40).await;
    eventually("the alert to resolve", async || {
        let body = app.get("/api/alerts/history").await.json();
        body["alerts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["rule"] == "q-failures").cloned())
            .ok_or_else(|| body.to_string())
    })
    .await;
    let resolved = eventually("the resolved message", async || {
        hooks
            .bodies("am")
            .into_iter()
            .find(|b| b["status"] == "resolved")
            .ok_or("none".to_owned())
    })
    .await;
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    // Each transition was told once per receiver, however many ticks ran.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(hooks.bodies("am").len(), 2);
    assert_eq!(hooks.bodies("chat").len(), 2);
    let overview = app.get("/").await.body;
    assert!(!overview.contains(&format!(r#"data-fingerprint="{fingerprint}""#)));
    app.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_and_shown() {
    let hooks = Receiver::start().await;
    let app = TestApp::spawn_with(alerting(vec![
        hooks.target("fail/am", WebhookFormat::Alertmanager),
    ]))
    .await;
    failure_rule(&app, "imports").await;
    app.make_failed("imports", 2).await;
    let delivery = eventually("a failed attempt", async || {
        let body = app.get("/api/alerts").await.json();
        body["deliveries"]
            .as_array()
            .and_then(|d| d.first().cloned())
            .filter(|d| d["attempts"].as_i64() >= Some(1))
            .ok_or_else(|| body.to_string())
    })
    .await;
    assert_eq!(delivery["status"], "pending", "retried, not given up");
    assert!(
        delivery["lastError"].as_str().unwrap().contains("500"),
        "{delivery}"
    );
    assert!(delivery["nextAttemptAt"].as_i64().is_some());
    let page = app.get("/alerts").await.body;
    assert!(page.contains(r#"data-test-id="delivery-error""#), "{page}");
    // The second attempt comes after the backoff (1 s), not at every tick.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hooks.bodies("fail/am").len(), 1);
    eventually("the retry", async || {
        (hooks.bodies("fail/am").len() >= 2)
            .then_some(())
            .ok_or("one attempt".to_owned())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn operators_acknowledge_silence_and_edit_rules_from_the_page() {
    let app = TestApp::spawn_with(alerting(vec![])).await;
    failure_rule(&app, "mail").await;
    app.make_failed("mail", 1).await;
    let firing = alert_with_status(&app, "firing").await;
    let fp = firing["fingerprint"].as_str().unwrap().to_owned();

    let done = app
        .post_form(&format!("/alerts/{fp}/ack"), &[("back", "/alerts")])
        .await;
    assert_redirect(&done, "/alerts");
    let page = app
        .get_with_cookie("/alerts", &notice_cookie(&done))
        .await
        .body;
    assert!(page.contains("Acknowledged"), "notice");
    let body = app.get("/api/alerts").await.json();
    let alert = body["active"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["fingerprint"] == fp.as_str())
        .unwrap()
        .clone();
    assert_eq!(alert["acknowledgedBy"], "admin", "the signed-in user");

    let done = app
        .post_form(&format!("/alerts/{fp}/silence"), &[("for", "4h")])
        .await;
    assert_redirect(&done, "/alerts");
    let until = app.get("/api/alerts").await.json()["active"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["fingerprint"] == fp.as_str())
        .unwrap()["silencedUntil"]
        .as_i64()
        .expect("silenced");
    assert!(until > coord::time::now_ms() + 3 * 3600 * 1000);
    let bad = app
        .post_form(&format!("/alerts/{fp}/silence"), &[("for", "forever")])
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("like 1h"), "{}", bad.body);
    app.post_form(&format!("/alerts/{fp}/unsilence"), &[]).await;
    let body = app.get("/api/alerts").await.json();
    assert!(
        body["active"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["silencedUntil"].is_null())
    );
    let gone = app.post_form("/alerts/0000000000000000/ack", &[]).await;
    assert_redirect(&gone, "/alerts");
    let page = app
        .get_with_cookie("/alerts", &notice_cookie(&gone))
        .await
        .body;
    assert!(page.contains("no longer pending or firing"));

    // Rules: create, refuse a duplicate and bad input with the reason,
    // edit, delete.
    let fields = [
        ("name", "big-backlog"),
        ("kind", "queue_backlog"),
        ("target", "mail"),
        ("threshold", "5000"),
        ("window_secs", "300"),
        ("for_secs", "600"),
        ("severity", "warning"),
        ("enabled", "on"),
    ];
    assert_redirect(&app.post_form("/alerts/rules", &fields).await, "/alerts");
    let dup = app.post_form("/alerts/rules", &fields).await;
    assert_eq!(dup.status, 409);
    let mut bad = fields.to_vec();
    bad[3] = ("threshold", "lots");
    let bad = app
        .post_form(
            "/alerts/rules",
            &[&bad[..1], &[("name", "other")], &bad[1..]].concat(),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("threshold"), "{}", bad.body);
    let bad_kind = app
        .post_form("/alerts/rules", &[("name", "x"), ("kind", "vibes")])
        .await;
    assert_eq!(bad_kind.status, 400);
    assert!(bad_kind.body.contains("queue_backlog"), "lists the kinds");

    let saved = app
        .post_form(
            "/alerts/rules/big-backlog",
            &[("target", "*"), ("threshold", "10"), ("for_secs", "0")],
        )
        .await;
    assert_redirect(&saved, "/alerts");
    let rules = app.get("/api/alerts").await.json()["rules"].clone();
    let rule = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "big-backlog")
        .unwrap()
        .clone();
    assert_eq!(rule["threshold"], 10.0);
    assert_eq!(rule["target"], "*");
    assert_eq!(rule["enabled"], false, "an unticked box disables");
    assert_eq!(rule["kind"], "queue_backlog", "the kind stays");
    assert_eq!(
        app.post_form("/alerts/rules/nope", &[("threshold", "1")])
            .await
            .status,
        404
    );
    assert_redirect(
        &app.post_form("/alerts/rules/big-backlog/delete", &[]).await,
        "/alerts",
    );
    assert_eq!(
        app.post_form("/alerts/rules/big-backlog/delete", &[])
            .await
            .status,
        404
    );
    // The shipped defaults are there.
    let rules = app.get("/api/alerts").await.json()["rules"].clone();
    for name in ["failure-rate", "queue-backlog", "backend-unreachable"] {
        assert!(
            rules.as_array().unwrap().iter().any(|r| r["name"] == name),
            "{name}"
        );
    }
    app.stop().await;
}

/// The p95 kinds go through the API like any other: saved, read back with
/// their unit's threshold, and offered by the Alerts page's new-rule form.
#[tokio::test]
async fn a_wait_p95_rule_is_saved_through_the_api_and_read_back() {
    let app = TestApp::spawn_with(alerting(vec![])).await;
    let saved = app
        .post_json(
            "/api/alerts/rules",
            &json!({
                "name": "emails-wait",
                "kind": "wait_p95",
                "target": "emails",
                "threshold": 12.5,
                "forSecs": 120,
            }),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let expected = json!({
        "name": "emails-wait",
        "kind": "wait_p95",
        "target": "emails",
        "threshold": 12.5,
        "windowSecs": 300,
        "forSecs": 120,
        "severity": "warning",
        "enabled": true,
    });
    assert_eq!(saved.json(), expected);
    let rules = app.get("/api/alerts").await.json()["rules"].clone();
    let rule = rules
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["name"] == "emails-wait")
        .cloned();
    assert_eq!(rule, Some(expected));
    let run = app
        .post_json(
            "/api/alerts/rules",
            &json!({ "name": "any-run", "kind": "run_p95", "threshold": 60 }),
        )
        .await;
    assert_eq!(run.status, 200, "{}", run.body);
    assert_eq!(run.json()["target"], "*");
    let page = app.get("/alerts").await.body;
    assert!(
        page.contains(r#"<option value="wait_p95">Wait p95 (s)</option>"#),
        "{page}"
    );
    assert!(page.contains(r#"<option value="run_p95">Run p95 (s)</option>"#));
    let bad = app
        .post_json(
            "/api/alerts/rules",
            &json!({ "name": "neg", "kind": "wait_p95", "threshold": -1 }),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    app.stop().await;
}

/// Two dashboard instances on one Redis and one PostgreSQL schema: one
/// holds the lease and evaluates, both show the same alerts, and each
/// transition reaches the receiver once.
#[tokio::test]
async fn two_instances_evaluate_once_and_notify_once() {
    let hooks = Receiver::start().await;
    let schema = PgSchema::create().await;
    let url = SecretUrl::new(schema.url());
    let target = hooks.target("am", WebhookFormat::Alertmanager);
    let settings = |s: &mut Settings| {
        s.database_url = url.clone();
        alerting(vec![target.clone()])(s);
    };
    let a = TestApp::spawn_redis_with(REDIS_URL, None, settings).await;
    let prefix = a.app.state.settings.redis_prefix.clone();
    let b = TestApp::spawn_redis_with(REDIS_URL, Some(&prefix), settings).await;
    failure_rule(&a, "shared").await;
    a.make_failed("shared", 2).await;
    alert_with_status(&b, "firing").await;
    let evaluator_a = a.get("/api/alerts").await.json()["evaluator"].clone();
    let evaluator_b = b.get("/api/alerts").await.json()["evaluator"].clone();
    assert!(evaluator_a.is_string());
    assert_eq!(evaluator_a, evaluator_b);
    eventually("the firing message", async || {
        (!hooks.bodies("am").is_empty())
            .then_some(())
            .ok_or("none".to_owned())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        hooks.bodies("am").len(),
        1,
        "told once, not once per instance"
    );
    b.stop().await;
    a.stop().await;
    schema.drop().await;
}

/// A Redis rule on a real (private) Redis: `redis_blocked_clients` on the
/// node, created through the API, fires once a client waits in `BLPOP`
/// and resolves once it is served; the Alerts page offers every Redis
/// kind. Private, so nobody else's blocked clients count.
#[tokio::test]
async fn a_redis_blocked_clients_rule_fires_while_a_client_waits_in_blpop() {
    let redis = PrivateRedis::started().await;
    let node = format!("127.0.0.1:{}", redis.port());
    let app = TestApp::spawn_redis_with(&redis.url(), None, alerting(vec![])).await;
    // What the dashboard itself keeps blocked (nothing, today) is the
    // threshold, so only the test's client makes the difference.
    let baseline = eventually("the hub's first Redis read", async || {
        let body = app.get("/api/redis").await.json();
        body["report"]["nodes"][0]["info"]["blockedClients"]
            .as_u64()
            .ok_or_else(|| body.to_string())
    })
    .await;
    let saved = app
        .post_json(
            "/api/alerts/rules",
            &json!({
                "name": "redis-blocked",
                "kind": "redis_blocked_clients",
                "target": node,
                "threshold": baseline,
                "forSecs": 0,
            }),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let client = redis::Client::open(redis.url()).expect("client");
    let mut waiter = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect");
    let blpop = tokio::spawn(async move {
        redis::cmd("BLPOP")
            .arg("switchyard-test-wake")
            .arg(60)
            .query_async::<Option<(String, String)>>(&mut waiter)
            .await
    });
    let alert = eventually("the Redis alert to fire", async || {
        let body = app.get("/api/alerts").await.json();
        body["active"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["rule"] == "redis-blocked").cloned())
            .filter(|a| a["status"] == "firing")
            .ok_or_else(|| body.to_string())
    })
    .await;
    assert_eq!(alert["kind"], "redis_blocked_clients", "{alert}");
    assert_eq!(alert["subject"], node.as_str(), "{alert}");
    assert_eq!(alert["value"], json!((baseline + 1) as f64), "{alert}");
    let summary = alert["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with(&format!("Redis node {node}: ")),
        "{summary}"
    );
    assert!(
        summary.contains("waiting in a blocking command"),
        "{summary}"
    );
    // Served: nobody waits any more, and the alert resolves.
    let mut pusher = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: i64 = redis::cmd("RPUSH")
        .arg("switchyard-test-wake")
        .arg("go")
        .query_async(&mut pusher)
        .await
        .expect("RPUSH");
    let served = blpop.await.expect("the BLPOP task").expect("BLPOP");
    assert_eq!(
        served,
        Some(("switchyard-test-wake".to_owned(), "go".to_owned()))
    );
    eventually("the Redis alert to resolve", async || {
        let body = app.get("/api/alerts").await.json();
        let active = body["active"].as_array().cloned().unwrap_or_default();
        if active.iter().any(|a| a["rule"] == "redis-blocked") {
            Err(body["active"].to_string())
        } else {
            Ok(())
        }
    })
    .await;
    let page = app.get("/alerts").await.body;
    for option in [
        r#"<option value="redis_memory">Redis memory use of maxmemory (%)</option>"#,
        r#"<option value="redis_evictions">Redis evictions (per min)</option>"#,
        r#"<option value="redis_replication_lag">Redis replication lag (s)</option>"#,
        r#"<option value="redis_blocked_clients">Redis blocked clients (clients)</option>"#,
        r#"<option value="redis_no_replica">Redis master without replica</option>"#,
    ] {
        assert!(page.contains(option), "{option} in {page}");
    }
    let bad = app
        .post_json(
            "/api/alerts/rules",
            &json!({ "name": "too-full", "kind": "redis_memory", "threshold": 150 }),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("percentage"), "{}", bad.body);
    app.stop().await;
}

/// The Redis kinds on a real Redis Cluster of three masters with a replica
/// each: replicas have a lag in `/metrics` and nothing fires; once a
/// replica is killed, its master has no replica left and
/// `redis_no_replica` fires naming it, while the killed replica, which no
/// longer answers, fires nothing (its lag is unknown, not large).
#[tokio::test]
async fn a_cluster_master_that_loses_its_replica_fires_redis_no_replica() {
    let mut cluster = PrivateCluster::started(3, 1).await;
    let app = TestApp::spawn_redis_with(&cluster.url(), None, alerting(vec![])).await;
    for (name, kind, threshold) in [
        ("no-replica", "redis_no_replica", 0),
        ("replica-lag", "redis_replication_lag", 5),
    ] {
        let saved = app
            .post_json(
                "/api/alerts/rules",
                &json!({ "name": name, "kind": kind, "threshold": threshold, "forSecs": 0 }),
            )
            .await;
        assert_eq!(saved.status, 200, "{}", saved.body);
    }
    let lag_lines = |text: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix("switchyard_redis_replication_lag_seconds{node=\""))
            .filter_map(|l| l.split_once("\"} "))
            .map(|(node, secs)| (node.to_owned(), secs.parse::<f64>().unwrap_or(f64::NAN)))
            .collect::<Vec<_>>()
    };
    let lags = eventually("every replica's lag in /metrics", async || {
        let text = app.get("/metrics").await.body;
        let lags = lag_lines(&text);
        if lags.len() == 3 && text.matches("switchyard_redis_up{").count() == 6 {
            Ok(lags)
        } else {
            Err(text)
        }
    })
    .await;
    assert!(lags.iter().all(|(_, secs)| *secs <= 5.0), "{lags:?}");
    // A few evaluations on those figures: healthy, so nothing is active.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let redis_rules = |body: &Value| {
        body["active"].as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["rule"] == "no-replica" || a["rule"] == "replica-lag")
        })
    };
    let body = app.get("/api/alerts").await.json();
    assert!(!redis_rules(&body), "{body}");

    // A replica, and its master, as the Redis page reads them.
    let report = app.get("/api/redis").await.json();
    let (killed, master) = report["report"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["role"] == "replica"))
        .and_then(|n| Some((n["address"].as_str()?, n["master"].as_str()?)))
        .map(|(a, m)| (a.to_owned(), m.to_owned()))
        .unwrap_or_else(|| panic!("a replica and its master in {report}"));
    let index = cluster
        .node_urls()
        .iter()
        .position(|u| u.trim_start_matches("redis://") == killed)
        .expect("the replica is one of the cluster's nodes");
    cluster.stop_node(index);
    let alert = eventually("the no-replica alert to fire", async || {
        let body = app.get("/api/alerts").await.json();
        body["active"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["rule"] == "no-replica").cloned())
            .filter(|a| a["status"] == "firing")
            .ok_or_else(|| body.to_string())
    })
    .await;
    assert_eq!(alert["subject"], "*", "{alert}");
    assert_eq!(
        alert["summary"],
        format!("Redis master {master}: no connected replica (its slots have no copy)"),
        "{alert}"
    );
    let body = app.get("/api/alerts").await.json();
    assert!(
        !body["active"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["rule"] == "replica-lag")),
        "an unreachable replica fires no lag: {body}"
    );
    let text = app.get("/metrics").await.body;
    assert!(
        text.lines()
            .any(|l| l == format!(r#"switchyard_redis_up{{node="{killed}"}} 0"#)),
        "{text}"
    );
    app.stop().await;
}

/// `redis_memory` and `redis_evictions` on a private Redis with a small
/// `maxmemory`, filled with expiring keys faster than it holds them: the
/// node nears its limit and evicts, both rules fire on it, and `/metrics`
/// shows the limit and the evictions. `volatile-lru`, so only the test's
/// keys are evicted, never the dashboard's.
#[tokio::test]
async fn a_full_redis_fires_redis_memory_and_redis_evictions() {
    const MAX: u64 = 4 * 1024 * 1024;
    let max = MAX.to_string();
    let redis = PrivateRedis::start_with(
        free_port(),
        &["--maxmemory", &max, "--maxmemory-policy", "volatile-lru"],
        None,
    );
    redis.ready().await;
    let node = format!("127.0.0.1:{}", redis.port());
    let app = TestApp::spawn_redis_with(&redis.url(), None, alerting(vec![])).await;
    for (name, kind, threshold) in [
        ("redis-full", "redis_memory", 50),
        ("redis-evicting", "redis_evictions", 0),
    ] {
        let saved = app
            .post_json(
                "/api/alerts/rules",
                &json!({ "name": name, "kind": kind, "target": node, "threshold": threshold }),
            )
            .await;
        assert_eq!(saved.status, 200, "{}", saved.body);
    }
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    // 10 KiB a key, about 2 MiB a second, until the test ends.
    let filler = tokio::spawn(async move {
        let value = "x".repeat(10 * 1024);
        for i in 0u64.. {
            let _: Result<(), _> = redis::cmd("SET")
                .arg(format!("fill:{i}"))
                .arg(&value)
                .arg("EX")
                .arg(3600)
                .query_async(&mut conn)
                .await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let firing = eventually("both Redis alerts to fire", async || {
        let body = app.get("/api/alerts").await.json();
        let active = body["active"].as_array().cloned().unwrap_or_default();
        let find = |rule: &str| {
            active
                .iter()
                .find(|a| a["rule"] == rule && a["status"] == "firing")
                .cloned()
        };
        match (find("redis-full"), find("redis-evicting")) {
            (Some(full), Some(evicting)) => Ok((full, evicting)),
            _ => Err(body.to_string()),
        }
    })
    .await;
    filler.abort();
    let (full, evicting) = firing;
    assert_eq!(full["subject"], node.as_str(), "{full}");
    let share = full["value"].as_f64().unwrap_or_default();
    assert!(share > 50.0 && share < 150.0, "{full}");
    let summary = full["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with(&format!("Redis node {node}: memory at "))
            && summary.contains("% of maxmemory (")
            && summary.contains("of 4 MiB; threshold 50%)"),
        "{summary}"
    );
    assert!(
        evicting["value"].as_f64().unwrap_or_default() > 0.0,
        "{evicting}"
    );
    let summary = evicting["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("keys evicted per minute (threshold 0)"),
        "{summary}"
    );
    let text = app.get("/metrics").await.body;
    assert!(
        text.lines()
            .any(|l| l == format!(r#"switchyard_redis_memory_max_bytes{{node="{node}"}} {MAX}"#)),
        "{text}"
    );
    let evicted = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                r#"switchyard_redis_evicted_keys_total{{node="{node}"}} "#
            ))
        })
        .and_then(|v| v.parse::<u64>().ok());
    assert!(evicted.is_some_and(|n| n > 0), "{text}");
    app.stop().await;
}
