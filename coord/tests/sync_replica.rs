//! Three instances following one synced state: on the in-process bus, on
//! the shared Redis, and on a private Redis that is stopped mid-burst.
//! The store is one SQLite file, as three processes of a service would
//! share one database.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coord::channels::{ChannelBus, ChannelName, LocalBus, RedisBus};
use coord::debounce::DebounceConfig;
use coord::instance::InstanceId;
use coord::queue::sql::SqlBackend;
use coord::sync::{Replica, ReplicaConfig, StateKey, StateStore};
use serde_json::json;

use common::{REDIS_URL, delete_prefix, eventually, remove_sqlite, temp_db_path, unique};
use test_support::redis::{PrivateRedis, free_port};

struct Fleet {
    store: StateStore,
    replicas: Vec<Replica>,
    db: std::path::PathBuf,
    prefix: Option<String>,
}

impl Fleet {
    fn a(&self) -> &Replica {
        &self.replicas[0]
    }

    async fn cleanup(self) {
        for replica in self.replicas {
            replica.shutdown().await;
        }
        if let Some(prefix) = self.prefix {
            delete_prefix(&prefix).await;
        }
        remove_sqlite(&self.db);
    }

    /// Every instance holds what the database holds.
    async fn converged(&self) -> bool {
        let latest = self.store.latest_version().await.expect("latest");
        let hash = self.store.state_hash().await.expect("hash");
        self.replicas
            .iter()
            .all(|r| r.applied_version() == latest && r.state_hash() == hash)
    }
}

/// The replicas' bound on how long a notification waits for its reload
/// while notifications keep coming.
const MAX_WAIT: Duration = Duration::from_secs(2);

fn config(tag: &str) -> ReplicaConfig {
    let mut config = ReplicaConfig::new(ChannelName::new(format!("state-{tag}")).expect("name"));
    config.debounce = DebounceConfig::new(Duration::from_millis(100)).with_max_wait(MAX_WAIT);
    config.poll_interval = Duration::from_millis(200);
    config
}

async fn store(tag: &str) -> (StateStore, std::path::PathBuf) {
    let db = temp_db_path(tag);
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let backend = SqlBackend::open(&url).await.expect("sqlite opens");
    let store = StateStore::sqlite(backend.pool().clone())
        .await
        .expect("store migrates");
    (store, db)
}

/// Three instances, each with its own bus handle (its own Redis
/// connections when on Redis), like three processes.
async fn fleet(
    tag: &str,
    buses: Vec<Option<Arc<dyn ChannelBus>>>,
    prefix: Option<String>,
) -> Fleet {
    let (store, db) = store(tag).await;
    let mut replicas = Vec::new();
    for (i, bus) in buses.into_iter().enumerate() {
        let id = InstanceId::new(format!("{tag}-{}", ["a", "b", "c"][i])).expect("id");
        let replica = Replica::start(store.clone(), bus, id, config(tag))
            .await
            .expect("replica starts");
        replicas.push(replica);
    }
    Fleet {
        store,
        replicas,
        db,
        prefix,
    }
}

async fn local_fleet(tag: &str) -> Fleet {
    let bus: Arc<dyn ChannelBus> = Arc::new(LocalBus::new());
    fleet(
        tag,
        vec![Some(bus.clone()), Some(bus.clone()), Some(bus)],
        None,
    )
    .await
}

async fn redis_fleet_at(tag: &str, url: &str) -> Fleet {
    let prefix = unique(tag);
    let mut buses: Vec<Option<Arc<dyn ChannelBus>>> = Vec::new();
    for _ in 0..3 {
        let bus = RedisBus::connect(url, &prefix).await.expect("redis bus");
        buses.push(Some(Arc::new(bus)));
    }
    fleet(tag, buses, Some(prefix)).await
}

async fn redis_fleet(tag: &str) -> Fleet {
    redis_fleet_at(tag, REDIS_URL).await
}

fn key(name: &str) -> StateKey {
    StateKey::new(name).expect("key")
}

async fn a_change_reaches_every_other_instance_once(fleet: Fleet) {
    let mut b_applied = fleet.replicas[1].watch_applied();
    let entry = fleet
        .a()
        .put(&key("search/param"), &json!({"url": "http://x"}), "enabled")
        .await
        .expect("put");
    eventually("b and c apply the change", || async {
        fleet.replicas[1..]
            .iter()
            .all(|r| r.get(&key("search/param")).is_some())
    })
    .await;
    assert_eq!(*b_applied.borrow_and_update(), entry.version);
    for r in &fleet.replicas[1..] {
        assert_eq!(r.applied_version(), entry.version);
        assert_eq!(
            r.get(&key("search/param")).expect("applied").status,
            "enabled"
        );
    }
    // Nobody republishes what they applied: give a loop time to show.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        fleet.store.latest_version().await.expect("latest"),
        entry.version
    );
    let a = fleet.a().status();
    assert_eq!(a.skipped_self, 1, "{a:?}");
    assert_eq!(a.processed, 0, "{a:?}");
    for r in &fleet.replicas[1..] {
        let s = r.status();
        assert_eq!(
            (s.received, s.processed, s.skipped_self),
            (1, 1, 0),
            "{s:?}"
        );
        assert!(s.bus_connected, "{s:?}");
        assert!(!s.polling, "{s:?}");
        assert_eq!(s.malformed, 0);
    }
    assert!(fleet.converged().await);
    fleet.cleanup().await;
}

/// While changes keep coming faster than the debounce delay, a replica
/// reloads at most once per `MAX_WAIT` window (the debouncer's contract),
/// plus the run after the burst and one for a notification that arrived
/// during a run. The bound is taken from how long the burst really took,
/// so a slow machine (which stretches the burst) does not fail the test,
/// while a debouncer that stopped collapsing (hundreds of reloads) does.
async fn a_burst_costs_a_handful_of_reloads(fleet: Fleet) {
    let writer = fleet.a();
    let started = std::time::Instant::now();
    for i in 0..1000 {
        writer
            .put(&key(&format!("k{}", i % 50)), &json!(i), "enabled")
            .await
            .expect("put");
    }
    let burst = started.elapsed();
    let windows =
        u64::try_from(burst.as_millis().div_ceil(MAX_WAIT.as_millis())).unwrap_or(u64::MAX);
    let allowed = windows.saturating_add(4);
    eventually("every instance converges", || fleet.converged()).await;
    for r in &fleet.replicas[1..] {
        let s = r.status();
        assert_eq!(s.processed, 1000, "{s:?}");
        assert!(
            s.reloads <= allowed,
            "1,000 changes in {burst:?} caused {} reloads (at most {allowed}): {s:?}",
            s.reloads
        );
        assert!(s.batches >= 1, "{s:?}");
    }
    fleet.cleanup().await;
}

async fn malformed_messages_are_counted_and_skipped(
    fleet: Fleet,
    bus: Arc<dyn ChannelBus>,
    tag: &str,
) {
    let channel = ChannelName::new(format!("state-{tag}")).expect("name");
    bus.publish(&channel, "not json at all")
        .await
        .expect("publish");
    bus.publish(
        &channel,
        &json!({
            "instanceId": "someone-else",
            "timestamp": 1,
            "changeType": "updated",
            "keys": [],
            "source": "api",
            "payload": {"unexpected": true},
        })
        .to_string(),
    )
    .await
    .expect("publish");
    eventually("b counts both as malformed", || async {
        fleet.replicas[1].status().malformed == 2
    })
    .await;
    fleet
        .a()
        .put(&key("after"), &json!(1), "enabled")
        .await
        .expect("put");
    eventually("good messages still arrive", || async {
        fleet.replicas[1].get(&key("after")).is_some()
    })
    .await;
    assert_eq!(fleet.replicas[1].status().processed, 1);
    fleet.cleanup().await;
}

#[tokio::test]
async fn local_bus_change_reaches_every_other_instance_once() {
    a_change_reaches_every_other_instance_once(local_fleet("rep-local-once").await).await;
}

#[tokio::test]
async fn redis_change_reaches_every_other_instance_once() {
    a_change_reaches_every_other_instance_once(redis_fleet("rep-redis-once").await).await;
}

#[tokio::test]
async fn cluster_change_reaches_every_other_instance_once() {
    let url = test_support::redis::cluster_url();
    a_change_reaches_every_other_instance_once(redis_fleet_at("rep-cluster-once", &url).await)
        .await;
}

#[tokio::test]
async fn cluster_burst_costs_a_handful_of_reloads() {
    let url = test_support::redis::cluster_url();
    a_burst_costs_a_handful_of_reloads(redis_fleet_at("rep-cluster-burst", &url).await).await;
}

#[tokio::test]
async fn cluster_malformed_messages_are_counted_and_skipped() {
    let url = test_support::redis::cluster_url();
    let tag = "rep-cluster-bad";
    let fleet = redis_fleet_at(tag, &url).await;
    let prefix = fleet.prefix.clone().expect("prefix");
    let bus: Arc<dyn ChannelBus> = Arc::new(RedisBus::connect(&url, &prefix).await.expect("bus"));
    malformed_messages_are_counted_and_skipped(fleet, bus, tag).await;
}

#[tokio::test]
async fn local_bus_burst_costs_a_handful_of_reloads() {
    a_burst_costs_a_handful_of_reloads(local_fleet("rep-local-burst").await).await;
}

#[tokio::test]
async fn redis_burst_costs_a_handful_of_reloads() {
    a_burst_costs_a_handful_of_reloads(redis_fleet("rep-redis-burst").await).await;
}

#[tokio::test]
async fn local_bus_malformed_messages_are_counted_and_skipped() {
    let bus: Arc<dyn ChannelBus> = Arc::new(LocalBus::new());
    let tag = "rep-local-bad";
    let fleet = fleet(
        tag,
        vec![Some(bus.clone()), Some(bus.clone()), Some(bus.clone())],
        None,
    )
    .await;
    malformed_messages_are_counted_and_skipped(fleet, bus, tag).await;
}

#[tokio::test]
async fn redis_malformed_messages_are_counted_and_skipped() {
    let tag = "rep-redis-bad";
    let fleet = redis_fleet(tag).await;
    let prefix = fleet.prefix.clone().expect("prefix");
    let bus: Arc<dyn ChannelBus> =
        Arc::new(RedisBus::connect(REDIS_URL, &prefix).await.expect("bus"));
    malformed_messages_are_counted_and_skipped(fleet, bus, tag).await;
}

#[tokio::test]
async fn without_a_bus_instances_follow_by_polling() {
    let fleet = fleet("rep-poll", vec![None, None, None], None).await;
    fleet
        .a()
        .put(&key("polled"), &json!("x"), "enabled")
        .await
        .expect("put");
    eventually("b and c poll the change in", || fleet.converged()).await;
    let s = fleet.replicas[1].status();
    assert!(s.polling && !s.bus_connected, "{s:?}");
    fleet.cleanup().await;
}

#[tokio::test]
async fn a_failed_write_publishes_nothing() {
    let fleet = local_fleet("rep-nowrite").await;
    let err = fleet
        .a()
        .put(&key("k"), &json!(1), "")
        .await
        .expect_err("empty status is refused");
    assert!(err.is_bad_input(), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for r in &fleet.replicas {
        let s = r.status();
        assert_eq!((s.received, s.applied_version), (0, 0), "{s:?}");
    }
    fleet.cleanup().await;
}

#[tokio::test]
async fn instances_converge_when_redis_stops_mid_burst_and_comes_back() {
    let port = free_port();
    let mut server = PrivateRedis::start(port);
    server.ready().await;
    let url = server.url();
    let fleet = redis_fleet_at("rep-outage", &url).await;
    for i in 0..100 {
        fleet
            .a()
            .put(&key(&format!("k{i}")), &json!(i), "enabled")
            .await
            .expect("put");
    }
    server.stop();
    // Writes go on while the bus is down: the database is the source of
    // truth, and the publish failures are reported, not fatal.
    let started = std::time::Instant::now();
    for i in 100..120 {
        fleet
            .a()
            .put(&key(&format!("k{i}")), &json!(i), "enabled")
            .await
            .expect("put without a bus");
    }
    eprintln!("20 writes with Redis down took {:?}", started.elapsed());
    eventually("b and c notice and poll the database", || async {
        fleet.replicas[1..].iter().all(|r| r.status().polling)
    })
    .await;
    eventually("every instance converges while Redis is down", || {
        fleet.converged()
    })
    .await;
    assert!(fleet.a().status().last_error.is_some());
    let mut server = PrivateRedis::start(port);
    server.ready().await;
    eventually("every instance reconnects", || async {
        fleet.replicas.iter().all(|r| r.status().bus_connected)
    })
    .await;
    fleet
        .a()
        .put(&key("after"), &json!("back"), "enabled")
        .await
        .expect("put");
    eventually("notifications flow again", || async {
        fleet.replicas[1..]
            .iter()
            .all(|r| r.get(&key("after")).is_some())
    })
    .await;
    assert!(fleet.converged().await);
    fleet.cleanup().await;
    server.stop();
}
