//! The instance registry, run once against each registry: in process
//! (`LocalRegistry`) and on the real Redis at 127.0.0.1:6379
//! (`RedisRegistry`, each test under its own random prefix, deleted after).
//!
//! Self-contained helpers on purpose: the registry tests do not depend on
//! the queue fixtures.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use coord::CoordError;
use coord::instance::InstanceId;
use coord::instances::{
    Heartbeat, HeartbeatConfig, InstanceRegistry, InstanceReport, InstanceStatus, InstanceView,
    LocalRegistry, RedisRegistry, ReportSource, SyncReport, Thresholds,
};
use coord::time::now_ms;
use tokio::sync::watch;

const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// A port nothing listens on: every connection is refused.
const CLOSED_URL: &str = "redis://127.0.0.1:1";
const INTERVAL: Duration = Duration::from_millis(50);

fn unique(tag: &str) -> String {
    format!("{tag}-{:016x}", rand::random::<u64>())
}

fn id(tag: &str) -> InstanceId {
    InstanceId::new(unique(tag)).expect("valid id")
}

/// Polls `check` every 20 ms until it holds; panics with `what` after 15 s.
/// A bound on background work, not a speed assertion.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// One registry under test and what to clean up after it.
enum Fixture {
    Local(LocalRegistry),
    Redis {
        registry: RedisRegistry,
        prefix: String,
        url: String,
    },
}

impl Fixture {
    fn local() -> Self {
        Self::Local(LocalRegistry::new())
    }

    async fn redis(url: &str) -> Self {
        let prefix = unique("test-inst");
        let registry = RedisRegistry::connect(url, &prefix)
            .await
            .expect("connect registry");
        Self::Redis {
            registry,
            prefix,
            url: url.to_owned(),
        }
    }

    fn registry(&self) -> Arc<dyn InstanceRegistry> {
        match self {
            Self::Local(r) => Arc::new(r.clone()),
            Self::Redis { registry, .. } => Arc::new(registry.clone()),
        }
    }

    async fn list(&self, thresholds: &Thresholds) -> Vec<InstanceView> {
        self.registry()
            .list(now_ms(), thresholds)
            .await
            .expect("list instances")
    }

    /// On Redis: whether the live key and the membership field exist, and
    /// the key's remaining time to live.
    async fn redis_entry(&self, id: &InstanceId) -> Option<(bool, bool, i64)> {
        let Self::Redis { registry, url, .. } = self else {
            return None;
        };
        let mut conn = test_support::redis::raw(url).await;
        let key_ttl: i64 = redis::cmd("PTTL")
            .arg(registry.instance_key(id))
            .query_async(&mut conn)
            .await
            .unwrap();
        let member: bool = redis::cmd("HEXISTS")
            .arg(registry.members_key())
            .arg(id.as_str())
            .query_async(&mut conn)
            .await
            .unwrap();
        Some((key_ttl >= 0, member, key_ttl))
    }

    async fn cleanup(self) {
        if let Self::Redis { prefix, url, .. } = self {
            test_support::redis::delete_matching(&url, &format!("{prefix}:*")).await;
        }
    }
}

/// Each scenario once per registry, every test name containing "instances".
macro_rules! on_both_registries {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                let fixture = super::Fixture::local();
                super::$scenario(&fixture).await;
                fixture.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let fixture = super::Fixture::redis(super::REDIS_URL).await;
                super::$scenario(&fixture).await;
                fixture.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                let url = test_support::redis::cluster_url();
                let fixture = super::Fixture::redis(&url).await;
                super::$scenario(&fixture).await;
                fixture.cleanup().await;
            }
        }
    )*};
}

on_both_registries!(
    instances_heartbeat_and_list_live,
    instances_crash_goes_stale_gone_forgotten,
    instances_graceful_shutdown_leaves_at_once,
    instances_invalid_input_rejected,
);

/// A report with every field set to something other than its default, so
/// a field lost in the round trip shows.
fn full_sync(n: i64) -> SyncReport {
    let k = u64::try_from(n).unwrap();
    SyncReport {
        applied_version: 40 + n,
        latest_version: Some(50 + n),
        state_hash: format!("{n:02x}deadbeef"),
        last_sync_at: Some(1_700_000_000_000 + n),
        notifications_received: 100 + k,
        skipped_self: 10 + k,
        processed: 80 + k,
        malformed: 1 + k,
        debounce_batches: 7 + k,
        processing_latency_ms: Some(1.5 + n as f64),
        last_error: Some(format!("boom {n}")),
        bus_connected: n % 2 == 0,
        polling: n % 2 == 1,
    }
}

fn thresholds() -> Thresholds {
    Thresholds {
        stale_after: Duration::from_millis(150),
        forget_after: Duration::from_millis(2000),
    }
}

fn view<'a>(views: &'a [InstanceView], id: &InstanceId) -> Option<&'a InstanceView> {
    views.iter().find(|v| &v.report.id == id)
}

async fn instances_heartbeat_and_list_live(fx: &Fixture) {
    let t = thresholds();
    let ids = [id("api"), id("api"), id("worker")];
    let roles = ["api", "api", "worker"];
    let (tx, rx) = watch::channel(full_sync(0));
    let mut beats = Vec::new();
    for (n, (id, role)) in ids.iter().zip(roles).enumerate() {
        let config = HeartbeatConfig::new(id.clone(), role, format!("1.{n}.0"))
            .with_interval(INTERVAL)
            .with_ttl(Duration::from_secs(5));
        let source = if n == 0 {
            ReportSource::from(rx.clone())
        } else {
            ReportSource::fixed(full_sync(n as i64))
        };
        beats.push(Heartbeat::start(fx.registry(), config, source).expect("start heartbeat"));
    }

    eventually("three live instances", || async {
        let views = fx.list(&t).await;
        views.len() == 3 && views.iter().all(|v| v.status == InstanceStatus::Live)
    })
    .await;
    let views = fx.list(&t).await;
    let mut sorted = ids.to_vec();
    sorted.sort();
    let listed: Vec<_> = views.iter().map(|v| v.report.id.clone()).collect();
    assert_eq!(listed, sorted, "listed by id");
    for (n, (id, role)) in ids.iter().zip(roles).enumerate() {
        let v = view(&views, id).expect("listed");
        assert_eq!(v.report.role, role);
        assert_eq!(v.report.version, format!("1.{n}.0"));
        assert_eq!(
            v.report.sync,
            full_sync(n as i64),
            "every sync field round-trips"
        );
        assert!(v.report.started_at <= v.report.heartbeat_at);
        assert!(v.heartbeat_age_ms >= 0);
    }
    if let Some((key, member, ttl)) = fx.redis_entry(&ids[0]).await {
        assert!(key && member, "live key and membership field exist");
        assert!(ttl > 0 && ttl <= 5000, "the key carries the TTL, got {ttl}");
    }

    // New figures reach the registry on demand.
    tx.send(full_sync(9)).unwrap();
    beats[0].beat_now();
    eventually("the updated figures", || async {
        let views = fx.list(&t).await;
        view(&views, &ids[0]).is_some_and(|v| v.report.sync == full_sync(9))
    })
    .await;
    assert!(beats.iter().all(|b| b.health().last_error.is_none()));
    assert!(beats.iter().all(|b| b.health().written >= 1));

    for beat in beats {
        beat.shutdown().await.expect("leave");
    }
    assert!(fx.list(&t).await.is_empty());
}

async fn instances_crash_goes_stale_gone_forgotten(fx: &Fixture) {
    let t = thresholds();
    let survivor_id = id("survivor");
    let crashed_id = id("crashed");
    let ttl = Duration::from_millis(1000);
    let start = |id: &InstanceId| {
        let config = HeartbeatConfig::new(id.clone(), "worker", "2.0.0")
            .with_interval(INTERVAL)
            .with_ttl(ttl);
        Heartbeat::start(fx.registry(), config, ReportSource::fixed(full_sync(3)))
            .expect("start heartbeat")
    };
    let survivor = start(&survivor_id);
    let crashed = start(&crashed_id);
    eventually("both live", || async {
        let views = fx.list(&t).await;
        views.len() == 2 && views.iter().all(|v| v.status == InstanceStatus::Live)
    })
    .await;

    // Dropping without shutdown stops the beats but leaves the entry, as a
    // crash would.
    drop(crashed);
    let status = |views: Vec<InstanceView>| view(&views, &crashed_id).map(|v| v.status);
    eventually("the crashed instance turns stale", || async {
        status(fx.list(&t).await) == Some(InstanceStatus::Stale)
    })
    .await;
    eventually("the crashed instance is gone after its TTL", || async {
        status(fx.list(&t).await) == Some(InstanceStatus::Gone)
    })
    .await;
    let views = fx.list(&t).await;
    let gone = view(&views, &crashed_id).unwrap();
    assert_eq!(
        gone.report.sync,
        full_sync(3),
        "a gone instance keeps its last report"
    );
    assert!(gone.heartbeat_age_ms >= 900, "gone only after its TTL");
    if let Some((key, member, _)) = fx.redis_entry(&crashed_id).await {
        assert!(!key && member, "the key expired, the membership stays");
    }
    assert!(
        view(&views, &survivor_id).is_some_and(|v| v.status != InstanceStatus::Gone),
        "the survivor is unaffected"
    );

    eventually("the crashed instance is forgotten", || async {
        status(fx.list(&t).await).is_none()
    })
    .await;
    if let Some((key, member, _)) = fx.redis_entry(&crashed_id).await {
        assert!(!key && !member, "the lister removed the membership");
    }
    assert_eq!(fx.list(&t).await.len(), 1);
    survivor.shutdown().await.expect("leave");
}

async fn instances_graceful_shutdown_leaves_at_once(fx: &Fixture) {
    let t = thresholds();
    let (a, b) = (id("leaving"), id("staying"));
    let start = |id: &InstanceId| {
        let config = HeartbeatConfig::new(id.clone(), "api", "3.0.0").with_interval(INTERVAL);
        Heartbeat::start(
            fx.registry(),
            config,
            ReportSource::fixed(SyncReport::default()),
        )
        .expect("start heartbeat")
    };
    let leaving = start(&a);
    let staying = start(&b);
    eventually("both live", || async { fx.list(&t).await.len() == 2 }).await;

    leaving.shutdown().await.expect("leave");
    let views = fx.list(&t).await;
    assert!(view(&views, &a).is_none(), "removed at once, not gone");
    assert_eq!(
        view(&views, &b).map(|v| v.status),
        Some(InstanceStatus::Live)
    );
    if let Some((key, member, _)) = fx.redis_entry(&a).await {
        assert!(!key && !member, "key and membership removed");
    }
    // Leaving twice (or an unknown instance) is harmless.
    fx.registry().leave(&a).await.expect("leave again");
    staying.shutdown().await.expect("leave");
    assert!(fx.list(&t).await.is_empty());
}

async fn instances_invalid_input_rejected(fx: &Fixture) {
    let registry = fx.registry();
    let good = HeartbeatConfig::new(id("bad"), "api", "1.0.0").with_interval(INTERVAL);
    let bad_configs = [
        HeartbeatConfig {
            role: String::new(),
            ..good.clone()
        },
        HeartbeatConfig {
            role: "api server".into(),
            ..good.clone()
        },
        HeartbeatConfig {
            version: "v".repeat(65),
            ..good.clone()
        },
        HeartbeatConfig {
            version: "1\n".into(),
            ..good.clone()
        },
    ];
    for config in bad_configs {
        let err = Heartbeat::start(
            registry.clone(),
            config,
            ReportSource::fixed(SyncReport::default()),
        )
        .expect_err("bad label refused");
        assert!(matches!(err, CoordError::InvalidInstance { .. }), "{err}");
        assert!(err.is_bad_input());
    }
    for config in [
        good.clone().with_interval(Duration::ZERO),
        good.clone().with_ttl(INTERVAL),
    ] {
        let err = Heartbeat::start(
            registry.clone(),
            config,
            ReportSource::fixed(SyncReport::default()),
        )
        .expect_err("bad timing refused");
        assert!(matches!(err, CoordError::InvalidOptions(_)), "{err}");
    }

    // A report written directly is checked too, and nothing is stored.
    let report = InstanceReport {
        id: id("direct"),
        role: "".into(),
        version: "1".into(),
        started_at: 0,
        heartbeat_at: now_ms(),
        sync: SyncReport::default(),
        caches: Vec::new(),
    };
    let err = registry
        .heartbeat(&report, Duration::from_secs(1))
        .await
        .expect_err("empty role refused");
    assert!(matches!(err, CoordError::InvalidInstance { .. }), "{err}");
    assert!(InstanceId::new("a b").is_err());

    let bad = Thresholds {
        stale_after: Duration::ZERO,
        forget_after: Duration::from_secs(1),
    };
    assert!(registry.list(now_ms(), &bad).await.is_err());
    let inverted = Thresholds {
        stale_after: Duration::from_secs(2),
        forget_after: Duration::from_secs(1),
    };
    assert!(registry.list(now_ms(), &inverted).await.is_err());
    assert!(
        fx.list(&thresholds()).await.is_empty(),
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_redis_unreachable_keeps_heartbeat_running() {
    let prefix = unique("test-inst");
    let err = RedisRegistry::connect(CLOSED_URL, &prefix)
        .await
        .expect_err("nothing listens on port 1");
    assert!(err.is_unavailable(), "{err}");

    let registry = RedisRegistry::connect_lazy(CLOSED_URL, &prefix).expect("lazy setup");
    let registry: Arc<dyn InstanceRegistry> = Arc::new(registry);
    let config = HeartbeatConfig::new(id("cut-off"), "api", "1.0.0").with_interval(INTERVAL);
    let beat = Heartbeat::start(
        registry.clone(),
        config,
        ReportSource::fixed(SyncReport::default()),
    )
    .expect("start heartbeat");
    eventually("failed beats recorded", || async {
        let health = beat.health();
        health.failures >= 1 && health.last_error.is_some()
    })
    .await;
    let first = beat.health().failures;
    eventually("the task keeps retrying", || async {
        beat.health().failures > first
    })
    .await;
    let health = beat.health();
    assert_eq!(health.written, 0);
    assert_eq!(health.consecutive_failures, health.failures);
    assert!(
        health.last_error.unwrap().contains("Redis"),
        "the error names the cause"
    );

    let err = registry
        .list(now_ms(), &thresholds())
        .await
        .expect_err("listing needs Redis");
    assert!(err.is_unavailable(), "{err}");
    let err = beat
        .shutdown()
        .await
        .expect_err("the leave cannot be written");
    assert!(err.is_unavailable(), "{err}");
}

#[test]
fn instances_report_json_is_camel_case() {
    let report = InstanceReport {
        id: InstanceId::new("api-1").unwrap(),
        role: "api".into(),
        version: "1.0.0".into(),
        started_at: 1,
        heartbeat_at: 2,
        sync: full_sync(1),
        caches: Vec::new(),
    };
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["id"], "api-1");
    assert_eq!(json["startedAt"], 1);
    assert_eq!(json["heartbeatAt"], 2);
    assert_eq!(json["sync"]["appliedVersion"], 41);
    assert_eq!(json["sync"]["skippedSelf"], 11);
    assert_eq!(json["sync"]["busConnected"], false);
    let back: InstanceReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
    // Figures missing from an older writer's report read as defaults.
    let sync: SyncReport = serde_json::from_str(r#"{"appliedVersion":3}"#).unwrap();
    assert_eq!(sync.applied_version, 3);
    assert_eq!(sync.processed, 0);
}
