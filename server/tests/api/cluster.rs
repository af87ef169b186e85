//! The scale-out deployment on Redis Cluster (the shared test cluster:
//! three masters with a replica each): every capability the dashboard
//! uses works there, the Overview shows the topology, and a plain URL to
//! a cluster node fails readiness with the reason.

use std::time::Duration;

use serde_json::json;
use server::bullmq::settings::BullSettings;
use server::config::secret::SecretUrl;
use test_support::html::{row, text_of};
use test_support::redis::{cluster_url, raw};

use crate::helpers::{TestApp, eventually};

/// The master serving `key`, asked of the cluster itself (`CLUSTER
/// KEYSLOT`, `CLUSTER SLOTS`), not computed the way the server does.
async fn master_of(url: &str, key: &str) -> String {
    let mut conn = raw(url).await;
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("CLUSTER KEYSLOT");
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut conn)
        .await
        .expect("CLUSTER SLOTS");
    for range in ranges {
        let redis::Value::Array(parts) = range else {
            continue;
        };
        let mut parts = parts.into_iter();
        let (Some(from), Some(to), Some(redis::Value::Array(master))) =
            (parts.next(), parts.next(), parts.next())
        else {
            panic!("a slot range");
        };
        let from: i64 = redis::from_redis_value(from).expect("first slot");
        let to: i64 = redis::from_redis_value(to).expect("last slot");
        let mut master = master.into_iter();
        let host: String = redis::from_redis_value(master.next().expect("host")).expect("host");
        let port: i64 = redis::from_redis_value(master.next().expect("port")).expect("port");
        if (from..=to).contains(&slot) {
            return format!("{host}:{port}");
        }
    }
    panic!("no master serves slot {slot}");
}

#[tokio::test]
async fn the_dashboard_works_on_a_redis_cluster_and_shows_its_topology() {
    let url = cluster_url();
    let bull_prefix = format!("{{sy-bull-{:08x}}}", rand::random::<u32>());
    let bull = BullSettings {
        url: SecretUrl::new(url.as_str()),
        prefix: bull_prefix.clone(),
        queues: Vec::new(),
        discover_every: Duration::from_millis(200),
    };
    let app = TestApp::spawn_redis_with(&url, None, move |s| s.bullmq = Some(bull)).await;

    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let checks = &ready.json()["checks"];
    for name in ["queues", "ratelimits", "bullmq"] {
        assert_eq!(checks[name]["status"], "ok", "{name}: {checks}");
    }

    for queue in ["emails", "reports", "thumbnails"] {
        app.enqueue(queue, &json!({ "name": "job", "data": {} }))
            .await;
    }
    app.make_failed("reports", 2).await;
    let response = app.post("/api/queues/reports/retry-failed").await;
    assert_eq!(response.json()["retried"], 2, "{}", response.body);

    // The queues each master holds add up to every queue.
    let queues_on_masters = |html: &str| -> u64 {
        html.match_indices(r#"data-test-id="cluster-queues""#)
            .map(|(at, _)| {
                let rest = &html[at..];
                let rest = &rest[rest.find('>').expect("tag end") + 1..];
                rest[..rest.find('<').expect("cell end")]
                    .trim()
                    .parse::<u64>()
                    .expect("a count")
            })
            .sum()
    };
    let html = eventually(
        "the overview shows the cluster and its queues",
        async || {
            let body = app.get("/").await.body;
            if queues_on_masters(&body) == 3 {
                Ok(body)
            } else {
                Err(body)
            }
        },
    )
    .await;
    assert_eq!(
        text_of(&html, "cluster-summary"),
        "3 masters, 3 replicas; 16,384 of 16,384 slots served"
    );

    let html = app.get("/queues").await.body;
    let prefix = app.app.state.settings.redis_prefix.clone();
    for queue in ["emails", "reports", "thumbnails"] {
        let expected = master_of(&url, &format!("{prefix}:{{{queue}}}:meta")).await;
        let line = row(&html, &format!("queue-row-{queue}")).expect("row");
        assert!(
            line.contains(&format!(r#"data-test-id="queue-node">{expected}<"#)),
            "{queue} should show {expected}: {line}"
        );
    }

    // BullMQ queues under a hash-tagged prefix are found on the cluster.
    crate::bullmq::run(
        "produce.mjs",
        &[url.as_str(), bull_prefix.as_str(), "mailer", "2"],
    )
    .await;
    eventually("the BullMQ page lists the queue", async || {
        let body = app.get("/bullmq").await.body;
        match row(&body, "queue-row-mailer") {
            Some(line) if line.contains(">2<") => Ok(()),
            _ => Err(body),
        }
    })
    .await;
    app.stop().await;
}

/// A plain `redis://` URL naming one node of a cluster starts (the node
/// answers PING), but its commands would be redirected: readiness fails
/// with the reason and what to do.
#[tokio::test]
async fn readiness_fails_on_a_cluster_node_reached_with_a_plain_url() {
    let url = cluster_url();
    let first = url
        .trim_start_matches("redis+cluster://")
        .split(',')
        .next()
        .expect("a seed")
        .to_owned();
    let app = TestApp::spawn_redis_at(&format!("redis://{first}")).await;
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    let queues = &ready.json()["checks"]["queues"];
    assert_eq!(queues["status"], "down", "{queues}");
    let detail = queues["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("redis+cluster://"), "{detail}");
    let ratelimits = &ready.json()["checks"]["ratelimits"];
    assert_eq!(ratelimits["status"], "down", "{ratelimits}");
    app.stop().await;
}

/// A Redis Cluster with a password and TLS (clients, the cluster bus and
/// replication): reached with `rediss+cluster://:password@…`, the
/// dashboard works and is ready; a wrong password stops the start without
/// echoing it.
#[tokio::test]
async fn a_cluster_with_tls_and_a_password_is_reached_with_rediss_cluster() {
    use test_support::redis::{ClusterSecurity, PrivateCluster, self_signed_certificate};

    let dir = test_support::TempDir::new("cluster-tls");
    let security = ClusterSecurity {
        password: Some("cluster-pw-9".into()),
        tls: Some(self_signed_certificate(&dir.0)),
    };
    let cluster = PrivateCluster::started_with(3, 0, security).await;
    let url = cluster.url();
    assert!(url.starts_with("rediss+cluster://:cluster-pw-9@"), "{url}");
    let app = TestApp::spawn_redis_at(&url).await;
    app.enqueue("emails", &json!({ "name": "over-tls" })).await;
    assert_eq!(app.counts("emails").await.waiting, 1);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let config = app.get("/config").await.body;
    assert!(!config.contains("cluster-pw-9"), "password shown");
    app.stop().await;

    let wrong = url.replace("cluster-pw-9", "wrong-pw-7");
    let settings = server::config::Settings {
        redis_url: Some(SecretUrl::new(wrong)),
        ..crate::helpers::embedded_settings(&dir)
    };
    let err = match server::startup::spawn_app(&settings).await {
        Ok(_) => panic!("started with a wrong cluster password"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("cannot reach Redis"), "{err}");
    assert!(!err.contains("wrong-pw-7"), "password leaked: {err}");
}
