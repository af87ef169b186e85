//! The Cache page and `/api/cache`: services' caches reported through
//! their heartbeats, on the deployment's registry, shared tier and bus,
//! embedded and on Redis; and the operator's invalidations reaching every
//! instance.

use std::time::Duration;

use coord::cache::{Cache, CacheOptions, CacheSet};
use coord::instance::InstanceId;
use coord::instances::{Heartbeat, HeartbeatConfig, ReportSource, SyncReport};
use serde_json::Value;

use crate::helpers::{TestApp, assert_redirect, eventually};

/// An instance of a service with one cache namespace, heartbeating every
/// 100 ms into the server's registry (as a service sharing the
/// deployment would).
async fn instance(app: &TestApp, name: &str, ns: &str) -> (Cache<String>, Heartbeat) {
    let state = &app.app.state;
    let id = InstanceId::new(name).expect("id");
    let cache = Cache::open(
        ns,
        CacheOptions::new(Duration::from_secs(60)),
        state.caches.shared(),
        id.clone(),
        Some(state.channels.bus.clone()),
    )
    .await
    .expect("cache");
    let set = CacheSet::new();
    set.add(&cache);
    let heartbeat = Heartbeat::start_with_caches(
        state.instances.registry.clone(),
        HeartbeatConfig::new(id, "api", "1").with_interval(Duration::from_millis(100)),
        ReportSource::fixed(SyncReport::default()),
        set,
    )
    .expect("heartbeat");
    (cache, heartbeat)
}

async fn read(cache: &Cache<String>, key: &str, value: &str) {
    let value = value.to_owned();
    cache
        .get_or_load(key, || async move { Ok::<_, std::io::Error>(Some(value)) })
        .await
        .expect("read");
}

/// `/api/cache/{ns}`, or why not (404 until an instance reports it).
async fn namespace(app: &TestApp, ns: &str) -> Result<Value, String> {
    let response = app.get(&format!("/api/cache/{ns}")).await;
    if response.status == 200 {
        Ok(response.json())
    } else {
        Err(format!("{}: {}", response.status, response.body))
    }
}

async fn caches_are_shown_compared_and_invalidated(app: TestApp) {
    let empty = app.get("/cache").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(
        empty.body.contains(r#"data-test-id="cache-empty""#),
        "{}",
        empty.body
    );

    let (a, a_beat) = instance(&app, "svc-a", "users").await;
    let (b, b_beat) = instance(&app, "svc-b", "users").await;
    for cache in [&a, &b] {
        for key in ["u1", "u2", "<u3>"] {
            read(cache, key, "v").await;
        }
        read(cache, "u1", "v").await;
    }
    let ns = eventually("both instances to report users", async || {
        let ns = namespace(&app, "users").await?;
        match ns["instanceFigures"].as_array().map(Vec::len) {
            Some(2) if ns["entries"] == 6 => Ok(ns),
            _ => Err(ns.to_string()),
        }
    })
    .await;
    assert_eq!(ns["agreement"]["state"], "matches", "{ns}");
    assert_eq!(ns["agreement"]["compared"], 2, "{ns}");
    // a loaded three keys; b found them in the shared tier; each re-read
    // u1 from its own local tier.
    let hits_shared: u64 = ns["instanceFigures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["stats"]["hitsShared"].as_u64().unwrap())
        .sum();
    assert_eq!(hits_shared, 3, "{ns}");
    assert_eq!(ns["hitRatio"], 5.0 / 8.0, "{ns}");

    let list = app.get("/api/cache").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["total"], 1, "{}", list.body);
    assert_eq!(app.get("/api/cache/nobody").await.status, 404);

    let page = app.get("/cache?ns=users&range=24h").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for id in [
        "cache-ns-users",
        "cache-chart",
        "cache-instance-svc-a",
        "cache-invalidate-key-form",
    ] {
        assert!(
            page.body.contains(&format!(r#"data-test-id="{id}"#)),
            "{id}: {}",
            page.body
        );
    }
    assert_eq!(app.get("/cache?range=2y").await.status, 400);
    let one = app.get("/cache?ns=users&instance=svc-a").await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert!(one.body.contains("instance svc-a of users"), "{}", one.body);
    assert!(one.body.contains(r#"data-test-id="cache-chart-namespace""#));

    // The operator drops one key: gone from the shared tier and from both
    // local tiers, and audited.
    let done = app
        .post_form(
            "/cache/users/invalidate",
            &[("key", "<u3>"), ("back", "/cache?ns=users")],
        )
        .await;
    assert_redirect(&done, "/cache?ns=users");
    eventually("both to drop <u3>", async || {
        let (sa, sb) = (a.stats().await, b.stats().await);
        if sa.entries == 2 && sb.entries == 2 {
            Ok(())
        } else {
            Err(format!("{} and {} entries", sa.entries, sb.entries))
        }
    })
    .await;
    let audit = app.get("/api/audit?action=cache.invalidate").await;
    assert_eq!(
        audit.json()["entries"][0]["target"],
        "users/<u3>",
        "{}",
        audit.body
    );

    // A drifted instance: b misses an invalidation (its own write stays
    // local while the shared tier is changed behind its back).
    a.set("u1", &"new".to_owned()).await.expect("set");
    eventually("b to drop u1", async || {
        let stats = b.stats().await;
        if stats.invalidations_received >= 2 {
            Ok(())
        } else {
            Err(format!("{stats:?}"))
        }
    })
    .await;
    read(&b, "u1", "unused").await;

    // The namespace, through the API: every entry everywhere.
    let all = app.post("/api/cache/users/invalidate-all").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert!(
        all.json()["done"].as_str().unwrap().contains("2 entries"),
        "{}",
        all.body
    );
    eventually("both to empty", async || {
        let (sa, sb) = (a.stats().await, b.stats().await);
        if sa.entries == 0 && sb.entries == 0 {
            Ok(())
        } else {
            Err(format!("{sa:?} {sb:?}"))
        }
    })
    .await;

    // Bad input is refused with the reason and changes nothing.
    let bad = app.post("/api/cache/bad%20ns/invalidate-all").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let empty_key = app
        .post_form("/cache/users/invalidate", &[("key", "")])
        .await;
    assert_eq!(empty_key.status, 400, "{}", empty_key.body);

    a_beat.shutdown().await.expect("leave");
    b_beat.shutdown().await.expect("leave");
    app.stop().await;
}

#[tokio::test]
async fn embedded_caches_are_shown_compared_and_invalidated() {
    caches_are_shown_compared_and_invalidated(TestApp::spawn().await).await;
}

#[tokio::test]
async fn redis_caches_are_shown_compared_and_invalidated() {
    caches_are_shown_compared_and_invalidated(TestApp::spawn_redis().await).await;
}

/// Three instances holding the same keys, one with another value: it
/// missed an invalidation. The page and the API name it.
#[tokio::test]
async fn an_instance_holding_a_stale_value_shows_as_drifted() {
    let app = TestApp::spawn_with(|s| s.alerts.interval = Duration::from_millis(200)).await;
    let saved = app
        .post_json(
            "/api/alerts/rules",
            &serde_json::json!({
                "name": "orders-drift",
                "kind": "cache_drift",
                "target": "orders",
                "threshold": 0,
                "forSecs": 0,
            }),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let (a, _a_beat) = instance(&app, "svc-a", "orders").await;
    // b hears nothing: its cache has no bus.
    let state = &app.app.state;
    let b: Cache<String> = Cache::open(
        "orders",
        CacheOptions::new(Duration::from_secs(60)),
        state.caches.shared(),
        InstanceId::new("svc-b").unwrap(),
        None,
    )
    .await
    .unwrap();
    let set = CacheSet::new();
    set.add(&b);
    let _b_beat = Heartbeat::start_with_caches(
        state.instances.registry.clone(),
        HeartbeatConfig::new(InstanceId::new("svc-b").unwrap(), "api", "1")
            .with_interval(Duration::from_millis(100)),
        ReportSource::fixed(SyncReport::default()),
        set,
    )
    .unwrap();
    let (c, _c_beat) = instance(&app, "svc-c", "orders").await;
    read(&a, "o1", "old").await;
    read(&b, "o1", "old").await;
    a.set("o1", &"new".to_owned()).await.unwrap();
    eventually("c to hear of the write", async || {
        let stats = c.stats().await;
        if stats.invalidations_received == 1 {
            Ok(())
        } else {
            Err(format!("{stats:?}"))
        }
    })
    .await;
    read(&c, "o1", "unused").await;
    let ns = eventually("b to show as drifted", async || {
        let ns = namespace(&app, "orders").await?;
        if ns["agreement"]["state"] == "drifted" {
            Ok(ns)
        } else {
            Err(ns.to_string())
        }
    })
    .await;
    assert_eq!(
        ns["agreement"]["instances"],
        serde_json::json!(["svc-b"]),
        "{ns}"
    );
    let page = app.get("/cache?ns=orders").await;
    assert!(page.body.contains("drifted"), "{}", page.body);
    let alert = eventually("the drift alert to fire", async || {
        let body = app.get("/api/alerts").await.json();
        body["active"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["rule"] == "orders-drift").cloned())
            .filter(|a| a["status"] == "firing")
            .ok_or_else(|| body.to_string())
    })
    .await;
    assert_eq!(alert["subject"], "orders", "{alert}");
    assert!(
        alert["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("svc-b holds the same keys"),
        "{alert}"
    );
    // The Instances page compares the same hashes: each instance links to
    // the namespace, b with its drifted badge, a and c matching.
    let instances = eventually("the Instances page to show b drifted", async || {
        let page = app.get("/instances").await;
        match instance_row(&page.body, "svc-b") {
            Some(row) if row.contains(">drifted<") => Ok(page.body),
            _ => Err(page.body),
        }
    })
    .await;
    for (id, badge) in [
        ("svc-a", "matches"),
        ("svc-b", "drifted"),
        ("svc-c", "matches"),
    ] {
        let row = instance_row(&instances, id).unwrap_or_default();
        let caches = row
            .split(r#"data-test-id="instance-caches""#)
            .nth(1)
            .unwrap_or_default();
        assert!(
            caches.contains(r#"<a href="/cache?ns=orders">orders</a>"#),
            "{id}: {row}"
        );
        assert!(
            caches.contains(&format!(
                r#"<span data-health="known" class="badge {badge}">{badge}</span>"#
            )),
            "{id}: {row}"
        );
    }
    app.stop().await;
}

/// The Instances page's row of one instance (up to its end).
fn instance_row<'a>(body: &'a str, id: &str) -> Option<&'a str> {
    let start = body.find(&format!(r#"data-test-id="instance-row-{id}""#))?;
    let row = &body[start..];
    Some(&row[..row.find("</tr>")?])
}

/// `/metrics` carries the reads by namespace and result.
#[tokio::test]
async fn metrics_count_cache_reads_by_namespace_and_result() {
    let app = TestApp::spawn().await;
    let (a, _beat) = instance(&app, "svc-a", "people").await;
    // The tracker counts what happens after the first heartbeat it sees.
    eventually("the namespace to be seen", async || {
        namespace(&app, "people").await.map(|_| ())
    })
    .await;
    read(&a, "p1", "v").await;
    read(&a, "p1", "v").await;
    read(&a, "p2", "v").await;
    eventually("the reads on /metrics", async || {
        let body = app.get("/metrics").await.body;
        let hit = r#"switchyard_cache_requests_total{namespace="people",result="hit_local"} 1"#;
        let miss = r#"switchyard_cache_requests_total{namespace="people",result="miss"} 2"#;
        if body.contains(hit) && body.contains(miss) {
            Ok(())
        } else {
            Err(body)
        }
    })
    .await;
    app.stop().await;
}
