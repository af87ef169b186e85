//! Conformance suite of the cache, written once and run on the embedded
//! shared tier, on Redis and on the Redis Cluster; plus the outage tests on
//! a private Redis.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coord::cache::{
    Cache, CacheAdmin, CacheError, CacheOptions, CacheSet, LocalBound, LocalShared, RedisShared,
    SharedTier,
};
use coord::channels::{ChannelBus, LocalBus, RawEvent, RedisBus};
use coord::instance::InstanceId;
use tokio::time::Instant;

use common::{REDIS_URL, eventually, unique};
use test_support::redis::PrivateRedis;

/// One deployment: what its instances share, and how to clean it up.
struct World {
    /// The Redis (or cluster) URL and key prefix, or `None` embedded.
    redis: Option<(String, String)>,
    local: LocalShared,
    bus: LocalBus,
    /// A namespace unique to the test.
    ns: String,
}

impl World {
    fn embedded() -> Self {
        Self {
            redis: None,
            local: LocalShared::new(),
            bus: LocalBus::new(),
            ns: unique("ns"),
        }
    }

    fn redis(url: &str) -> Self {
        Self {
            redis: Some((url.to_owned(), unique("sycache"))),
            ..Self::embedded()
        }
    }

    /// One instance's shared tier and bus: its own connections on Redis.
    async fn parts(&self) -> (Arc<dyn SharedTier>, Arc<dyn ChannelBus>) {
        match &self.redis {
            None => (Arc::new(self.local.clone()), Arc::new(self.bus.clone())),
            Some((url, prefix)) => (
                Arc::new(RedisShared::connect(url, prefix).await.unwrap()),
                Arc::new(RedisBus::connect(url, prefix).await.unwrap()),
            ),
        }
    }

    /// Instance `name` of the namespace, told of the others' writes.
    async fn instance(&self, name: &str, options: CacheOptions) -> Cache<String> {
        self.instance_in(&self.ns, name, options, true).await
    }

    async fn instance_in(
        &self,
        ns: &str,
        name: &str,
        options: CacheOptions,
        with_bus: bool,
    ) -> Cache<String> {
        let (shared, bus) = self.parts().await;
        Cache::open(
            ns,
            options,
            shared,
            InstanceId::new(name).unwrap(),
            with_bus.then_some(bus),
        )
        .await
        .unwrap()
    }

    /// A bus that sees every message, to count them.
    async fn observer_bus(&self) -> Arc<dyn ChannelBus> {
        self.parts().await.1
    }

    async fn cleanup(self) {
        if let Some((url, prefix)) = self.redis {
            common::delete_prefix_at(&url, &prefix).await;
        }
    }
}

common::world_suite!(
    ttl_expires_entries_per_namespace_and_per_entry,
    one_load_for_100_concurrent_gets_on_one_handle,
    one_load_for_100_concurrent_gets_across_3_instances,
    invalidation_reaches_the_other_instances_once,
    negative_caching_is_optional_and_shorter,
    local_tier_is_bounded,
    load_errors_are_reported_and_not_cached,
    content_hash_agrees_and_shows_drift,
    a_slow_load_never_overwrites_a_write,
    a_stuck_loader_delays_readers_only_for_the_wait,
    an_operator_invalidates_a_key_or_the_namespace_everywhere,
    the_heartbeat_carries_each_open_cache,
);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Loaded = Result<Option<String>, std::io::Error>;

/// A loader that counts its calls and answers `value` after `delay`.
fn counting(
    calls: &Arc<AtomicUsize>,
    value: Option<&str>,
    delay: Duration,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Loaded> + Send>> + Send + use<> {
    let calls = calls.clone();
    let value = value.map(str::to_owned);
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            Ok(value)
        })
    }
}

async fn ttl_expires_entries_per_namespace_and_per_entry(world: &World) {
    let a = world.instance("a", CacheOptions::new(ms(1_000))).await;
    let b = world.instance("b", CacheOptions::new(ms(1_000))).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let load = || counting(&calls, Some("v1"), Duration::ZERO);
    assert_eq!(
        a.get_or_load("k", load()).await.unwrap().as_deref(),
        Some("v1")
    );
    assert_eq!(
        a.get_or_load("k", load()).await.unwrap().as_deref(),
        Some("v1")
    );
    // Another instance reads the shared tier.
    assert_eq!(
        b.get_or_load("k", load()).await.unwrap().as_deref(),
        Some("v1")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let (sa, sb) = (a.stats().await, b.stats().await);
    assert_eq!((sa.loads, sa.hits_local, sa.misses), (1, 1, 1), "{sa:?}");
    assert_eq!((sb.loads, sb.hits_shared), (0, 1), "{sb:?}");

    tokio::time::sleep(ms(1_300)).await;
    assert_eq!(a.get("k").await.unwrap(), None, "expired in both tiers");
    a.get_or_load("k", load()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // An entry's own time to live wins over the namespace's.
    let ns = format!("{}-long", world.ns);
    let a = world
        .instance_in(&ns, "a", CacheOptions::new(Duration::from_secs(60)), true)
        .await;
    let b = world
        .instance_in(&ns, "b", CacheOptions::new(Duration::from_secs(60)), true)
        .await;
    a.set_for("short", &"s".to_owned(), ms(1_000))
        .await
        .unwrap();
    a.set("long", &"l".to_owned()).await.unwrap();
    assert_eq!(b.get("short").await.unwrap().as_deref(), Some("s"));
    tokio::time::sleep(ms(1_300)).await;
    assert_eq!(a.get("short").await.unwrap(), None);
    assert_eq!(b.get("short").await.unwrap(), None);
    assert_eq!(b.get("long").await.unwrap().as_deref(), Some("l"));
}

async fn one_load_for_100_concurrent_gets_on_one_handle(world: &World) {
    let a = world
        .instance("a", CacheOptions::new(Duration::from_secs(60)))
        .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (a, load) = (a.clone(), counting(&calls, Some("v"), ms(100)));
        tasks.push(tokio::spawn(
            async move { a.get_or_load("hot", load).await },
        ));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().as_deref(), Some("v"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let stats = a.stats().await;
    assert_eq!(stats.loads, 1);
    assert_eq!(stats.hits_local + stats.misses, 100, "{stats:?}");
}

async fn one_load_for_100_concurrent_gets_across_3_instances(world: &World) {
    let options = CacheOptions::new(Duration::from_secs(60));
    let instances = [
        world.instance("a", options.clone()).await,
        world.instance("b", options.clone()).await,
        world.instance("c", options).await,
    ];
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (cache, load) = (
            instances[i % 3].clone(),
            counting(&calls, Some("v"), ms(150)),
        );
        tasks.push(tokio::spawn(
            async move { cache.get_or_load("hot", load).await },
        ));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().as_deref(), Some("v"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let mut loads = 0;
    for cache in &instances {
        loads += cache.stats().await.loads;
    }
    assert_eq!(loads, 1);
}

/// Counts the messages of the namespace's channel seen by `observer`
/// until `quiet` passes without one.
async fn count_messages(
    observer: &mut coord::channels::RawSubscription,
    ns: &str,
    quiet: Duration,
) -> usize {
    let channel = format!("cache.{ns}");
    let mut n = 0;
    while let Ok(Some(event)) = tokio::time::timeout(quiet, observer.recv()).await {
        if let RawEvent::Message(msg) = event
            && *msg.channel == *channel
        {
            n += 1;
        }
    }
    n
}

async fn invalidation_reaches_the_other_instances_once(world: &World) {
    let observer_bus = world.observer_bus().await;
    let mut observer = observer_bus.observe().await.unwrap();
    let options = CacheOptions::new(Duration::from_secs(60));
    let a = world.instance("a", options.clone()).await;
    let b = world.instance("b", options.clone()).await;
    let c = world.instance("c", options).await;
    let calls = Arc::new(AtomicUsize::new(0));
    for cache in [&a, &b, &c] {
        let v = cache
            .get_or_load("k", counting(&calls, Some("old"), Duration::ZERO))
            .await;
        assert_eq!(v.unwrap().as_deref(), Some("old"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    a.invalidate("k").await.unwrap();
    eventually("b and c to hear of the invalidation", || async {
        b.stats().await.invalidations_received == 1 && c.stats().await.invalidations_received == 1
    })
    .await;
    for cache in [&b, &c] {
        let v = cache
            .get_or_load("k", counting(&calls, Some("new"), Duration::ZERO))
            .await;
        assert_eq!(
            v.unwrap().as_deref(),
            Some("new"),
            "dropped locally, reloaded"
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one reload between b and c"
    );

    // A write invalidates the others' copies too.
    b.set("k", &"written".to_owned()).await.unwrap();
    eventually("c to drop its copy", || async {
        c.get("k").await.unwrap().as_deref() == Some("written")
    })
    .await;
    // And a whole-namespace drop.
    c.set("other", &"x".to_owned()).await.unwrap();
    c.invalidate_all().await.unwrap();
    eventually("a and b to drop the namespace", || async {
        a.get("other").await.unwrap().is_none() && b.get("k").await.unwrap().is_none()
    })
    .await;

    // Four writes (invalidate, set, set, invalidate_all): four messages,
    // nobody echoed one.
    assert_eq!(count_messages(&mut observer, &world.ns, ms(300)).await, 4);
    let (sa, sb, sc) = (a.stats().await, b.stats().await, c.stats().await);
    assert_eq!(
        (
            sa.invalidations_sent,
            sb.invalidations_sent,
            sc.invalidations_sent
        ),
        (1, 1, 2)
    );
    assert_eq!(
        (
            sa.invalidations_received,
            sb.invalidations_received,
            sc.invalidations_received
        ),
        (3, 3, 2)
    );
}

async fn negative_caching_is_optional_and_shorter(world: &World) {
    let ttl = Duration::from_secs(60);
    let a = world
        .instance("a", CacheOptions::new(ttl).negative(ms(1_000)))
        .await;
    let b = world
        .instance("b", CacheOptions::new(ttl).negative(ms(1_000)))
        .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let none = || counting(&calls, None, Duration::ZERO);
    assert_eq!(a.get_or_load("missing", none()).await.unwrap(), None);
    assert_eq!(a.get_or_load("missing", none()).await.unwrap(), None);
    assert_eq!(b.get_or_load("missing", none()).await.unwrap(), None);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the absence is cached in both tiers"
    );
    tokio::time::sleep(ms(1_300)).await;
    assert_eq!(a.get_or_load("missing", none()).await.unwrap(), None);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "but for the shorter time");

    let ns = format!("{}-noneg", world.ns);
    let plain = world
        .instance_in(&ns, "a", CacheOptions::new(ttl), true)
        .await;
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let v = plain
            .get_or_load("missing", counting(&calls, None, Duration::ZERO))
            .await;
        assert_eq!(v.unwrap(), None);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "absences are not cached by default"
    );
}

async fn local_tier_is_bounded(world: &World) {
    let options = CacheOptions::new(Duration::from_secs(60)).bound(LocalBound::Entries(10));
    let a = world.instance("a", options).await;
    for i in 0..200 {
        a.set(&format!("k{i}"), &format!("value {i}"))
            .await
            .unwrap();
    }
    let stats = a.stats().await;
    assert!(stats.entries <= 10, "{stats:?}");
    assert!(stats.evictions >= 190, "{stats:?}");
    assert!(stats.bytes > 0 && stats.bytes < 10 * 200, "{stats:?}");

    let ns = format!("{}-bytes", world.ns);
    let options = CacheOptions::new(Duration::from_secs(60)).bound(LocalBound::Bytes(2_000));
    let b = world.instance_in(&ns, "b", options, true).await;
    for i in 0..200 {
        b.set(&format!("k{i}"), &"x".repeat(100)).await.unwrap();
    }
    let stats = b.stats().await;
    assert!(stats.bytes <= 2_000, "{stats:?}");
    assert!(stats.evictions > 0, "{stats:?}");
    // The shared tier still holds what the local one let go.
    assert_eq!(b.get("k0").await.unwrap().map(|v| v.len()), Some(100));
}

async fn load_errors_are_reported_and_not_cached(world: &World) {
    let a = world
        .instance("a", CacheOptions::new(Duration::from_secs(60)))
        .await;
    let failing = || async { Err::<Option<String>, _>(std::io::Error::other("database down")) };
    let err = a.get_or_load("k", failing).await.unwrap_err();
    assert!(
        matches!(&err, CacheError::Load { key, .. } if key == "k"),
        "{err:?}"
    );
    assert!(err.to_string().contains("database down"));
    let calls = Arc::new(AtomicUsize::new(0));
    let v = a
        .get_or_load("k", counting(&calls, Some("v"), Duration::ZERO))
        .await;
    assert_eq!(v.unwrap().as_deref(), Some("v"));
    let stats = a.stats().await;
    assert_eq!((stats.loads, stats.load_errors), (2, 1));
    assert_eq!(stats.load_ms.count, 2);
    assert!(matches!(
        a.get("").await,
        Err(CacheError::InvalidKey { .. })
    ));
}

async fn content_hash_agrees_and_shows_drift(world: &World) {
    let options = CacheOptions::new(Duration::from_secs(60));
    let a = world.instance("a", options.clone()).await;
    let b = world.instance("b", options.clone()).await;
    // An instance that misses the others' invalidations (its bus is off).
    let deaf = world.instance_in(&world.ns, "c", options, false).await;
    let calls = Arc::new(AtomicUsize::new(0));
    for i in 0..5 {
        for cache in [&a, &b, &deaf] {
            let value = format!("v{i}");
            let load = counting(&calls, Some(&value), Duration::ZERO);
            cache.get_or_load(&format!("k{i}"), load).await.unwrap();
        }
    }
    let hash = |s: coord::cache::CacheStats| (s.entries, s.content_hash);
    let first = hash(a.stats().await);
    assert_eq!(first.0, 5);
    assert_ne!(first.1, "0000000000000000");
    assert_eq!(hash(b.stats().await), first);
    assert_eq!(hash(deaf.stats().await), first);

    a.set("k3", &"changed".to_owned()).await.unwrap();
    eventually("b to drop k3", || async {
        b.stats().await.invalidations_received == 1
    })
    .await;
    b.get("k3").await.unwrap();
    let (ha, hb, hc) = (a.stats().await, b.stats().await, deaf.stats().await);
    assert_eq!(hash(ha.clone()), hash(hb));
    assert_ne!(ha.content_hash, first.1, "the hash follows the value");
    assert_eq!(hc.entries, 5);
    assert_ne!(
        hc.content_hash, ha.content_hash,
        "the stale instance drifted"
    );
    assert_eq!(hc.keys_hash, ha.keys_hash, "over the same keys");
    assert_eq!(deaf.get("k3").await.unwrap().as_deref(), Some("v3"));

    // Once it drops the stale entry and re-reads, it agrees again.
    deaf.invalidate("k3").await.unwrap();
    a.set("k3", &"changed".to_owned()).await.unwrap();
    eventually("b to drop k3 again", || async {
        b.stats().await.invalidations_received == 2
    })
    .await;
    for cache in [&b, &deaf] {
        assert_eq!(cache.get("k3").await.unwrap().as_deref(), Some("changed"));
    }
    let agreed = a.stats().await.content_hash;
    assert_eq!(b.stats().await.content_hash, agreed);
    assert_eq!(deaf.stats().await.content_hash, agreed);
}

/// Two instances on a private Redis (and an in-process bus, so only the
/// shared tier goes away).
async fn on_private_redis(server: &PrivateRedis) -> (Cache<String>, Cache<String>) {
    let bus: Arc<dyn ChannelBus> = Arc::new(LocalBus::new());
    let mut caches = Vec::new();
    for name in ["a", "b"] {
        let shared = RedisShared::connect(&server.url(), "fo").await.unwrap();
        let cache = Cache::open(
            "fo",
            CacheOptions::new(Duration::from_secs(60)),
            Arc::new(shared),
            InstanceId::new(name).unwrap(),
            Some(bus.clone()),
        )
        .await
        .unwrap();
        caches.push(cache);
    }
    let b = caches.pop().unwrap();
    (caches.pop().unwrap(), b)
}

/// Redis goes away: reads go on from the local tier and the loader, writes
/// stay local, without errors and without waiting on Redis after the first
/// failure; when Redis is back the cache uses it again (starting from an
/// empty local tier).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_falls_back_to_the_local_tier_and_recovers() {
    let mut server = PrivateRedis::started().await;
    let (a, b) = on_private_redis(&server).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let load = |v: &str| counting(&calls, Some(v), Duration::ZERO);
    assert_eq!(
        a.get_or_load("k", load("v")).await.unwrap().as_deref(),
        Some("v")
    );
    assert!(a.stats().await.degraded_since.is_none());

    server.stop();
    // Held locally: answered without Redis.
    assert_eq!(
        a.get_or_load("k", load("x")).await.unwrap().as_deref(),
        Some("v")
    );
    // Not held: the loader answers (the first failure notices the outage).
    assert_eq!(
        b.get_or_load("k", load("w")).await.unwrap().as_deref(),
        Some("w")
    );
    let stats = b.stats().await;
    assert!(stats.degraded_since.is_some(), "{stats:?}");
    assert!(stats.degraded_reason.is_some_and(|r| !r.is_empty()));
    assert_eq!(stats.outages, 1);
    let started = Instant::now();
    b.set("s", &"local".to_owned()).await.unwrap();
    assert_eq!(b.get("s").await.unwrap().as_deref(), Some("local"));
    assert_eq!(
        b.get_or_load("n", load("n")).await.unwrap().as_deref(),
        Some("n")
    );
    b.invalidate("n").await.unwrap();
    assert!(started.elapsed() < ms(200), "no waiting on a dead Redis");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let back = PrivateRedis::start(server.port());
    back.ready().await;
    eventually("both caches to recover", || async {
        a.stats().await.degraded_since.is_none() && b.stats().await.degraded_since.is_none()
    })
    .await;
    assert_eq!(b.stats().await.entries, 0, "the local tier starts afresh");
    // `a` never needed Redis during the outage, so it never noticed it:
    // its entry stays until its time to live or an invalidation.
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some("v"));
    // Shared again: one load, the other instance reads it from Redis.
    assert_eq!(
        b.get_or_load("k2", load("fresh")).await.unwrap().as_deref(),
        Some("fresh")
    );
    assert_eq!(
        a.get_or_load("k2", load("again")).await.unwrap().as_deref(),
        Some("fresh")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(a.stats().await.hits_shared, 1);
}

#[tokio::test]
async fn namespaces_and_options_are_checked() {
    let shared: Arc<dyn SharedTier> = Arc::new(LocalShared::new());
    let me = InstanceId::new("a").unwrap();
    for bad in ["", "a b", "a{b}", "a:b", &"n".repeat(65)] {
        let err = Cache::<String>::open(
            bad,
            CacheOptions::new(ms(10)),
            shared.clone(),
            me.clone(),
            None,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, CacheError::InvalidNamespace { .. }),
            "{bad:?}"
        );
    }
    let err = Cache::<String>::open(
        "ok",
        CacheOptions::new(Duration::ZERO),
        shared.clone(),
        me.clone(),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CacheError::InvalidOptions(_)));
    let err = RedisShared::connect(REDIS_URL, "a{b").await.unwrap_err();
    assert!(
        matches!(err, coord::CoordError::InvalidOptions(_)),
        "{err:?}"
    );
}

/// Invalidations published while the bus is down are lost; once it is
/// back, each instance empties its local tier rather than keep what may be
/// stale, and invalidations flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_outage_empties_the_local_tier_on_reconnect() {
    let mut server = PrivateRedis::started().await;
    let shared = LocalShared::new();
    let mut caches = Vec::new();
    for name in ["a", "b"] {
        let bus = RedisBus::connect(&server.url(), "bo").await.unwrap();
        let cache: Cache<String> = Cache::open(
            "bo",
            CacheOptions::new(Duration::from_secs(60)),
            Arc::new(shared.clone()),
            InstanceId::new(name).unwrap(),
            Some(Arc::new(bus)),
        )
        .await
        .unwrap();
        caches.push(cache);
    }
    let (a, b) = (&caches[0], &caches[1]);
    a.set("k", &"old".to_owned()).await.unwrap();
    eventually("b to hear of the first write", || async {
        b.stats().await.invalidations_received == 1
    })
    .await;
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("old"));

    server.stop();
    // Lost: b is not told.
    a.set("k", &"new".to_owned()).await.unwrap();
    assert_eq!(a.stats().await.publish_errors, 1);
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("old"));

    let back = PrivateRedis::start(server.port());
    back.ready().await;
    eventually("b to empty its local tier once resubscribed", || async {
        b.stats().await.entries == 0
    })
    .await;
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("new"));
    a.set("k", &"newer".to_owned()).await.unwrap();
    eventually("invalidations to flow again", || async {
        b.get("k").await.unwrap().as_deref() == Some("newer")
    })
    .await;
}

async fn a_slow_load_never_overwrites_a_write(world: &World) {
    let options = CacheOptions::new(Duration::from_secs(60));
    let a = world.instance("a", options.clone()).await;
    let b = world.instance("b", options).await;
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let slow = {
        let b = b.clone();
        tokio::spawn(async move {
            b.get_or_load("k", || async move {
                let _ = released.await;
                Ok::<_, std::io::Error>(Some("old".to_owned()))
            })
            .await
        })
    };
    eventually("b's loader to start", || async {
        b.stats().await.loads == 1
    })
    .await;
    a.set("k", &"new".to_owned()).await.unwrap();
    eventually("b to hear of the write", || async {
        b.stats().await.invalidations_received == 1
    })
    .await;
    let _ = release.send(());
    assert_eq!(slow.await.unwrap().unwrap().as_deref(), Some("new"));
    for cache in [&a, &b] {
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("new"));
    }
}

async fn a_stuck_loader_delays_readers_only_for_the_wait(world: &World) {
    let options = CacheOptions::new(Duration::from_secs(60)).lock(Duration::from_secs(30), ms(300));
    let a = world.instance("a", options).await;
    // Another instance took the lock and died without storing anything.
    let (shared, _) = world.parts().await;
    let ns = coord::cache::Namespace::new(world.ns.clone()).unwrap();
    assert!(
        shared
            .try_lock(&ns, "k", "crashed", Duration::from_secs(30))
            .await
            .unwrap()
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let v = a
        .get_or_load("k", counting(&calls, Some("v"), Duration::ZERO))
        .await;
    assert_eq!(v.unwrap().as_deref(), Some("v"));
    assert!(started.elapsed() >= ms(300), "waited for the other loader");
    assert!(
        started.elapsed() < ms(3_000),
        "but not for its lock's lifetime"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Its unlock leaves the lock it does not hold alone.
    shared.unlock(&ns, "k", "someone else").await.unwrap();
    assert!(
        !shared
            .try_lock(&ns, "k", "x", Duration::from_secs(1))
            .await
            .unwrap()
    );
    shared.unlock(&ns, "k", "crashed").await.unwrap();
    assert!(
        shared
            .try_lock(&ns, "k", "x", Duration::from_secs(1))
            .await
            .unwrap()
    );
}

/// The dashboard's "invalidate" knows no value type: it drops the shared
/// entry and tells every instance, as a write by one of them would.
async fn an_operator_invalidates_a_key_or_the_namespace_everywhere(world: &World) {
    let options = CacheOptions::new(Duration::from_secs(60));
    let a = world.instance("a", options.clone()).await;
    let b = world.instance("b", options).await;
    let calls = Arc::new(AtomicUsize::new(0));
    for cache in [&a, &b] {
        for key in ["k1", "k2"] {
            let load = counting(&calls, Some("v"), Duration::ZERO);
            cache.get_or_load(key, load).await.unwrap();
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "b read a's loads");
    let (shared, bus) = world.parts().await;
    let admin = CacheAdmin::new(shared, Some(bus), InstanceId::new("dashboard").unwrap());

    admin.invalidate(&world.ns, "k1").await.unwrap();
    eventually("both to drop k1", || async {
        a.stats().await.entries == 1 && b.stats().await.entries == 1
    })
    .await;
    let load = counting(&calls, Some("v2"), Duration::ZERO);
    assert_eq!(
        a.get_or_load("k1", load).await.unwrap().as_deref(),
        Some("v2")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3, "the shared entry went too");

    let removed = admin.invalidate_all(&world.ns).await.unwrap();
    assert_eq!(removed, 2);
    eventually("both to empty", || async {
        a.stats().await.entries == 0 && b.stats().await.entries == 0
    })
    .await;
    assert_eq!(b.get("k2").await.unwrap(), None);

    assert!(matches!(
        admin.invalidate("bad ns", "k").await,
        Err(CacheError::InvalidNamespace { .. })
    ));
    assert!(matches!(
        admin.invalidate(&world.ns, "").await,
        Err(CacheError::InvalidKey { .. })
    ));
}

/// Each beat carries the figures of the caches still open, so the
/// dashboard sees them per instance; a dropped cache is no longer reported.
async fn the_heartbeat_carries_each_open_cache(world: &World) {
    use coord::instances::{
        Heartbeat, HeartbeatConfig, InstanceRegistry, LocalRegistry, ReportSource, SyncReport,
        Thresholds,
    };
    use coord::time::now_ms;
    let options = CacheOptions::new(Duration::from_secs(60));
    let users = world
        .instance_in(&world.ns, "a", options.clone(), true)
        .await;
    let other_ns = format!("{}-b", world.ns);
    let orders = world.instance_in(&other_ns, "a", options, true).await;
    let set = CacheSet::new();
    set.add(&users);
    set.add(&orders);
    set.add(&users.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    users
        .get_or_load("k", counting(&calls, Some("v"), Duration::ZERO))
        .await
        .unwrap();
    users.get("k").await.unwrap();

    let registry: Arc<dyn InstanceRegistry> = Arc::new(LocalRegistry::new());
    let id = InstanceId::new("cache-beat").unwrap();
    let heartbeat = Heartbeat::start_with_caches(
        registry.clone(),
        HeartbeatConfig::new(id.clone(), "api", "1").with_interval(ms(50)),
        ReportSource::fixed(SyncReport::default()),
        set.clone(),
    )
    .unwrap();
    let report = |registry: Arc<dyn InstanceRegistry>| async move {
        let thresholds = Thresholds::for_interval(ms(50));
        registry.list(now_ms(), &thresholds).await.unwrap()
    };
    eventually("a report with both caches", || async {
        report(registry.clone())
            .await
            .iter()
            .any(|v| v.report.caches.len() == 2)
    })
    .await;
    let views = report(registry.clone()).await;
    let caches = &views[0].report.caches;
    let mut names = vec![world.ns.clone(), other_ns.clone()];
    names.sort();
    assert_eq!(
        caches
            .iter()
            .map(|c| c.namespace.clone())
            .collect::<Vec<_>>(),
        names,
        "one row per namespace, even when added twice"
    );
    let mine = caches.iter().find(|c| c.namespace == world.ns).unwrap();
    assert_eq!((mine.misses, mine.hits_local, mine.entries), (1, 1, 1));

    drop(orders);
    eventually("the dropped cache to leave the report", || async {
        report(registry.clone())
            .await
            .iter()
            .any(|v| v.report.caches.len() == 1)
    })
    .await;
    assert_eq!(set.len(), 1);
    heartbeat.shutdown().await.unwrap();
}
