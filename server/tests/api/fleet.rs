//! The channels and instances pages: traffic observed on the deployment's
//! bus and instances heartbeating into its registry, embedded and on Redis.

use std::time::Duration;

use coord::channels::ChannelName;
use coord::debounce::DebounceConfig;
use coord::instance::InstanceId;
use coord::instances::{Heartbeat, HeartbeatConfig, ReportSource, SyncReport};
use coord::sync::{Replica, ReplicaConfig, StateKey};
use serde_json::json;

use crate::helpers::{TestApp, eventually};

/// An instance of a service, in the test process, on the server's own bus,
/// store and registry (as a service sharing the deployment would be).
async fn instance(
    app: &TestApp,
    name: &str,
    channel: &str,
) -> (std::sync::Arc<Replica>, Heartbeat) {
    let state = &app.app.state;
    let id = InstanceId::new(name).expect("id");
    let mut config = ReplicaConfig::new(ChannelName::new(channel).expect("channel"));
    config.debounce = DebounceConfig::immediate();
    let replica = std::sync::Arc::new(
        Replica::start(
            state.instances.store.clone(),
            Some(state.channels.bus.clone()),
            id.clone(),
            config,
        )
        .await
        .expect("replica"),
    );
    let source = {
        let replica = replica.clone();
        ReportSource::from_fn(move || SyncReport::from(replica.status()))
    };
    let heartbeat = Heartbeat::start(
        state.instances.registry.clone(),
        HeartbeatConfig::new(id, "api", "1.2.3").with_interval(Duration::from_millis(200)),
        source,
    )
    .expect("heartbeat");
    (replica, heartbeat)
}

async fn pages_show_traffic_and_instances(app: TestApp) {
    let empty = app.get("/channels").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    let (a, a_beat) = instance(&app, "svc-a", "settings").await;
    let (b, b_beat) = instance(&app, "svc-b", "settings").await;
    a.put(
        &StateKey::new("flags/<b>x</b>").expect("key"),
        &json!({"html": "<script>alert(1)</script>"}),
        "enabled",
    )
    .await
    .expect("put");
    let channels = eventually("the change shows on the channels page", async || {
        let page = app.get("/channels").await;
        if page.body.contains("svc-a") {
            Ok(page)
        } else {
            Err(page.body)
        }
    })
    .await;
    assert_eq!(channels.status, 200);
    assert!(channels.body.contains("settings"), "{}", channels.body);
    assert!(
        !channels.body.contains("<script>alert"),
        "{}",
        channels.body
    );
    assert!(channels.body.contains(r#"data-live="/events/channels""#));

    eventually("b applies a's change", async || {
        if b.applied_version() == a.applied_version() {
            Ok(())
        } else {
            Err(format!(
                "{} vs {}",
                b.applied_version(),
                a.applied_version()
            ))
        }
    })
    .await;
    a_beat.beat_now();
    b_beat.beat_now();
    let instances = eventually(
        "both instances are listed as live and in sync",
        async || {
            let page = app.get("/instances").await;
            let ok = page.body.contains(r#"data-test-id="instance-row-svc-a""#)
                && page.body.contains(r#"data-test-id="instance-row-svc-b""#)
                && page.body.matches("Live").count() >= 2
                && !page.body.contains("drifted");
            if ok { Ok(page) } else { Err(page.body) }
        },
    )
    .await;
    assert_eq!(instances.status, 200);
    assert!(instances.body.contains(r#"data-live="/events/instances""#));

    // The stream starts from the hub's latest snapshot and follows the
    // registry at the hub's heartbeat (at most 5 s).
    let mut stream = app.sse("/events/instances").await;
    let swap = stream
        .swap_until(Duration::from_secs(15), |e| {
            e.region() == Some("instances") && e.data.contains("svc-b")
        })
        .await;
    assert!(swap.data.contains("svc-a"), "{}", swap.data);

    a_beat.shutdown().await.expect("leave");
    eventually("a graceful leave removes the instance", async || {
        let page = app.get("/instances").await;
        if page.body.contains("instance-row-svc-a") {
            Err(page.body)
        } else {
            Ok(())
        }
    })
    .await;
    b_beat.shutdown().await.expect("leave");
    drop((a, b));
    app.stop().await;
}

#[tokio::test]
async fn embedded_pages_show_channel_traffic_and_instances() {
    pages_show_traffic_and_instances(TestApp::spawn().await).await;
}

#[tokio::test]
async fn redis_pages_show_channel_traffic_and_instances() {
    pages_show_traffic_and_instances(TestApp::spawn_redis().await).await;
}

#[tokio::test]
async fn channels_of_services_not_using_coord_show_as_malformed_text() {
    let app = TestApp::spawn_redis().await;
    let prefix = app.app.state.settings.redis_prefix.clone();
    let client = redis::Client::open("redis://127.0.0.1:6379").expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let channel = format!("{prefix}:notifications:legacy.cache");
    eventually("the foreign message is observed", async || {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg("<img src=x onerror=alert(1)> reload")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let page = app.get("/channels").await;
        if page.body.contains("legacy.cache") {
            Ok(page)
        } else {
            Err(page.body)
        }
    })
    .await
    .body
    .contains("&lt;img")
    .then_some(())
    .expect("the payload is shown as escaped text");
    app.stop().await;
}
