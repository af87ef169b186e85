//! Conformance suite of the rate limiter, written once and run against both
//! backends (in-process and real Redis), plus Redis-only sharing tests.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coord::CoordError;
use coord::ratelimit::fallback::Failover;
use coord::ratelimit::local::LocalLimiter;
use coord::ratelimit::redis::RedisLimiter;
use coord::ratelimit::{FallbackMode, Policy, RateKey, RateLimitBackend, RateLimiter};
use tokio::time::Instant;

use common::{REDIS_URL, delete_prefix, eventually, keys_under, unique};
use test_support::redis::PrivateRedis;

/// A backend under test and what must be cleaned up after it.
struct Setup {
    backend: Arc<dyn RateLimitBackend>,
    local: Option<Arc<LocalLimiter>>,
    /// The Redis (or cluster) URL and key prefix of a Redis setup.
    prefix: Option<(String, String)>,
}

impl Setup {
    async fn local() -> Self {
        let local = Arc::new(LocalLimiter::new());
        Self {
            backend: local.clone(),
            local: Some(local),
            prefix: None,
        }
    }

    async fn redis(url: &str) -> Self {
        let prefix = unique("syrl");
        let limiter = RedisLimiter::connect(url, &prefix)
            .await
            .expect("connect to the test Redis (or cluster)");
        Self {
            backend: Arc::new(limiter),
            local: None,
            prefix: Some((url.to_owned(), prefix)),
        }
    }

    fn limiter(&self, policies: Vec<Policy>) -> RateLimiter {
        RateLimiter::new(self.backend.clone(), policies).expect("valid policies")
    }

    /// Whether this backend still holds anything about any key (per-key
    /// logs, blocks, or index entries).
    async fn holds_state(&self) -> bool {
        match (&self.local, &self.prefix) {
            (Some(local), _) => {
                local.sweep();
                local.tracked_keys() > 0
            }
            // The per-minute counters stay for an hour by design; nothing
            // else may outlive the window.
            (None, Some((url, prefix))) => {
                { test_support::redis::keys_matching(url, &format!("{prefix}:*")).await }
                    .iter()
                    .any(|k| !k.ends_with(":minutes"))
            }
            (None, None) => unreachable!(),
        }
    }

    async fn cleanup(self) {
        if let Some((url, prefix)) = self.prefix {
            common::delete_prefix_at(&url, &prefix).await;
        }
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Checks until a request is allowed, polling every 10 ms; panics after
/// `within`.
async fn until_allowed(rl: &RateLimiter, policy: &str, key: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if rl.check(policy, key).await.unwrap().allowed {
            return;
        }
        assert!(Instant::now() < deadline, "no slot freed within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// N allowed, N+1 rejected with a retry-after inside the window; a slot
/// frees exactly when the oldest request leaves the window, and only that
/// one slot.
async fn boundary(s: Setup) {
    let rl = s.limiter(vec![Policy::new("api", 3, secs(2)).unwrap()]);
    let start = Instant::now();
    let first = rl.check("api", "client-1").await.unwrap();
    assert!(first.allowed);
    assert_eq!((first.limit, first.remaining), (3, 2));
    assert!(first.retry_after.is_none());
    assert!(first.reset_after <= secs(2) && first.reset_after > Duration::from_millis(1500));
    // The other two a while later, so they stay in the window after the
    // first one has left it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for remaining in [1, 0] {
        let d = rl.check("api", "client-1").await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, remaining);
    }
    let rejected = rl.check("api", "client-1").await.unwrap();
    assert!(!rejected.allowed);
    assert_eq!(rejected.remaining, 0);
    let retry = rejected
        .retry_after
        .expect("a rejection says when to retry");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_millis(1400),
        "{retry:?}"
    );
    assert_eq!(rejected.reset_after, retry);
    assert!(rejected.blocked_until.is_none());
    // Other keys are unaffected.
    assert!(rl.check("api", "client-2").await.unwrap().allowed);

    until_allowed(&rl, "api", "client-1", secs(5)).await;
    let freed = start.elapsed();
    assert!(
        freed >= Duration::from_millis(1950),
        "freed after {freed:?}"
    );
    // Only the first request has left: the window is full again.
    let again = rl.check("api", "client-1").await.unwrap();
    assert!(!again.allowed, "one slot freed, two requests let through");
    s.cleanup().await;
}

/// The burst is extra capacity on top of the limit in the same window.
async fn burst(s: Setup) {
    let policy = Policy::new("bursty", 2, secs(60))
        .unwrap()
        .with_burst(3)
        .unwrap();
    assert_eq!(policy.capacity(), 5);
    let rl = s.limiter(vec![policy]);
    for remaining in (0..5).rev() {
        let d = rl.check("bursty", "k").await.unwrap();
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (5, remaining));
    }
    let d = rl.check("bursty", "k").await.unwrap();
    assert!(!d.allowed);
    assert!(d.retry_after.unwrap() > secs(55));
    s.cleanup().await;
}

/// 16 tasks × 50 checks against a limit of 100: exactly 100 get through.
async fn concurrency(s: Setup) {
    let rl = s.limiter(vec![Policy::new("hot", 100, secs(60)).unwrap()]);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let rl = rl.clone();
        tasks.push(tokio::spawn(async move {
            let mut allowed = 0u32;
            for _ in 0..50 {
                if rl.check("hot", "shared").await.unwrap().allowed {
                    allowed += 1;
                }
            }
            allowed
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 100);
    let after = rl.check("hot", "shared").await.unwrap();
    assert!(!after.allowed);
    assert_eq!(after.remaining, 0);
    s.cleanup().await;
}

/// Repeated rejections block the key; an operator can unblock it; a block
/// ends on its own; reset gives the full quota back.
async fn blocking(s: Setup) {
    let policy = Policy::new("login", 1, secs(60))
        .unwrap()
        .with_block(2, secs(60), secs(1))
        .unwrap();
    let rl = s.limiter(vec![policy]);
    assert!(rl.check("login", "ip").await.unwrap().allowed);
    let first = rl.check("login", "ip").await.unwrap();
    assert!(!first.allowed && first.blocked_until.is_none());
    let second = rl.check("login", "ip").await.unwrap();
    assert!(!second.allowed);
    assert!(second.blocked_until.is_some());
    assert_eq!(second.retry_after, Some(secs(1)));
    let during = rl.check("login", "ip").await.unwrap();
    assert!(!during.allowed);
    assert_eq!(during.blocked_until, second.blocked_until);
    assert!(during.retry_after.unwrap() <= secs(1));

    rl.unblock("login", "ip").await.unwrap();
    let unblocked = rl.check("login", "ip").await.unwrap();
    // Unblocked, but the window is still full: a plain rejection, and the
    // rejection count started afresh.
    assert!(!unblocked.allowed);
    assert!(unblocked.blocked_until.is_none());
    assert!(unblocked.retry_after.unwrap() > secs(50));

    // Blocked again; the block lifts on its own after a second.
    assert!(
        rl.check("login", "ip")
            .await
            .unwrap()
            .blocked_until
            .is_some()
    );
    eventually("the block to end", || async {
        rl.check("login", "ip")
            .await
            .unwrap()
            .blocked_until
            .is_none()
    })
    .await;

    rl.reset("login", "ip").await.unwrap();
    let fresh = rl.check("login", "ip").await.unwrap();
    assert!(fresh.allowed);
    assert_eq!(fresh.remaining, 0);
    s.cleanup().await;
}

/// After being idle for a window, a key is forgotten (no memory held, no
/// Redis keys left) and has its full quota again.
async fn expiry(s: Setup) {
    let rl = s.limiter(vec![Policy::new("short", 2, secs(1)).unwrap()]);
    assert!(rl.check("short", "idle").await.unwrap().allowed);
    assert!(rl.check("short", "idle").await.unwrap().allowed);
    assert!(!rl.check("short", "idle").await.unwrap().allowed);
    assert!(s.holds_state().await);
    eventually("the idle key to be dropped", || async {
        !s.holds_state().await
    })
    .await;
    let d = rl.check("short", "idle").await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 1);
    s.cleanup().await;
}

/// Policies and keys are separate namespaces: pairs that would concatenate
/// to the same text do not share a limit.
async fn isolation(s: Setup) {
    let rl = s.limiter(vec![
        Policy::new("a:b", 1, secs(60)).unwrap(),
        Policy::new("a", 1, secs(60)).unwrap(),
    ]);
    assert!(rl.check("a:b", "c").await.unwrap().allowed);
    assert!(rl.check("a", "b:c").await.unwrap().allowed);
    assert!(rl.check("a", "b|c").await.unwrap().allowed);
    assert!(rl.check("a", "{weird} key ü").await.unwrap().allowed);
    assert!(!rl.check("a:b", "c").await.unwrap().allowed);
    s.cleanup().await;
}

/// Every key a decision writes carries its shard's hash tag (one cluster
/// slot per call) and an expiry, so idle keys vanish without sweeping.
#[tokio::test]
async fn redis_keys_share_a_slot_and_expire() {
    let prefix = unique("syrl");
    let policy = Policy::new("tagged", 1, secs(30))
        .unwrap()
        .with_block(1, secs(60), secs(10))
        .unwrap();
    let backend = RedisLimiter::connect(REDIS_URL, &prefix).await.unwrap();
    let rl = RateLimiter::new(Arc::new(backend), vec![policy]).unwrap();
    assert!(rl.check("tagged", "10.0.0.1").await.unwrap().allowed);
    assert!(!rl.check("tagged", "10.0.0.1").await.unwrap().allowed);
    let mut keys = keys_under(&prefix).await;
    keys.sort();
    let tag_start = format!("{prefix}:rl:{{tagged|");
    let tag = keys[0][..keys[0].find('}').expect("a hash tag") + 1].to_owned();
    assert!(tag.starts_with(&tag_start), "{tag}");
    let mut expected: Vec<String> = [
        "log:10.0.0.1",
        "st:10.0.0.1",
        "active",
        "used",
        "blocked",
        "minutes",
    ]
    .iter()
    .map(|suffix| format!("{tag}:{suffix}"))
    .collect();
    expected.sort();
    assert_eq!(keys, expected);
    let mut conn = common::raw_redis().await;
    for key in &keys {
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 3_660_000, "{key} has TTL {ttl}");
    }
    delete_prefix(&prefix).await;
}

/// A policy's usage without a scan: active and blocked keys, the top keys
/// with their counts now, and per-minute allowed / rejected counts; unblock
/// and reset update it; other policies are not mixed in.
async fn usage(s: Setup) {
    let rl = s.limiter(vec![
        Policy::new("api", 3, secs(60))
            .unwrap()
            .with_block(2, secs(60), secs(60))
            .unwrap(),
        Policy::new("other", 5, secs(60)).unwrap(),
    ]);
    let empty = rl.usage("api", 10).await.unwrap();
    assert_eq!((empty.active_keys, empty.blocked_keys), (0, 0));
    assert!(empty.top.is_empty() && empty.blocked.is_empty());
    assert_eq!(empty.minutes.len(), coord::ratelimit::USAGE_MINUTES);
    assert!(
        empty
            .minutes
            .iter()
            .all(|m| m.allowed == 0 && m.rejected == 0)
    );

    for (key, n) in [("heavy", 5), ("light", 1), ("middle", 2)] {
        for _ in 0..n {
            rl.check("api", key).await.unwrap();
        }
    }
    rl.check("other", "elsewhere").await.unwrap();
    let u = rl.usage("api", 2).await.unwrap();
    assert_eq!(u.active_keys, 3);
    assert_eq!(u.blocked_keys, 1);
    let top: Vec<(&str, u32, bool)> = u
        .top
        .iter()
        .map(|k| (k.key.as_str(), k.count, k.blocked_until.is_some()))
        .collect();
    assert_eq!(top, vec![("heavy", 3, true), ("middle", 2, false)]);
    assert_eq!(u.blocked.len(), 1);
    assert_eq!(u.blocked[0].0.as_str(), "heavy");
    assert!(u.blocked[0].1 > u.now + 50_000, "blocked for a minute");
    // The current minute holds everything (the test may straddle a minute
    // boundary: then the sum of the last two does).
    let recent = &u.minutes[u.minutes.len() - 2..];
    let allowed: u64 = recent.iter().map(|m| m.allowed).sum();
    let rejected: u64 = recent.iter().map(|m| m.rejected).sum();
    assert_eq!((allowed, rejected), (6, 2));
    let last = u.minutes.last().unwrap();
    assert!(last.minute <= u.now && u.now < last.minute + 60_000);
    assert_eq!(u.minutes[0].minute, last.minute - 59 * 60_000);

    // A blocked key's refusals count as rejections too.
    assert!(!rl.check("api", "heavy").await.unwrap().allowed);
    let u = rl.usage("api", 10).await.unwrap();
    let rejected: u64 = u.minutes[u.minutes.len() - 2..]
        .iter()
        .map(|m| m.rejected)
        .sum();
    assert_eq!(rejected, 3);

    rl.unblock("api", "heavy").await.unwrap();
    rl.reset("api", "middle").await.unwrap();
    let u = rl.usage("api", 10).await.unwrap();
    assert_eq!((u.active_keys, u.blocked_keys), (2, 0));
    assert!(u.blocked.is_empty());
    let keys: Vec<&str> = u.top.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, vec!["heavy", "light"]);
    assert!(u.top.iter().all(|k| k.blocked_until.is_none()));

    let other = rl.usage("other", 10).await.unwrap();
    assert_eq!(other.active_keys, 1);
    assert_eq!(other.top[0].key.as_str(), "elsewhere");
    s.cleanup().await;
}

/// Keys leave the usage when their window has passed, without any
/// further request of theirs.
async fn usage_forgets_idle_keys(s: Setup) {
    let rl = s.limiter(vec![Policy::new("short", 5, secs(1)).unwrap()]);
    rl.check("short", "a").await.unwrap();
    rl.check("short", "b").await.unwrap();
    assert_eq!(rl.usage("short", 10).await.unwrap().active_keys, 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    rl.check("short", "b").await.unwrap();
    let u = rl.usage("short", 10).await.unwrap();
    let counts: Vec<(&str, u32)> = u.top.iter().map(|k| (k.key.as_str(), k.count)).collect();
    assert_eq!(counts, vec![("b", 2), ("a", 1)]);
    // a's only request has left; b's first has left, its second not yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let u = rl.usage("short", 10).await.unwrap();
    let counts: Vec<(&str, u32)> = u.top.iter().map(|k| (k.key.as_str(), k.count)).collect();
    assert_eq!(counts, vec![("b", 1)]);
    assert_eq!(u.active_keys, 1);
    eventually("every key to leave", || async {
        rl.usage("short", 10).await.unwrap().active_keys == 0
    })
    .await;
    assert!(rl.usage("short", 10).await.unwrap().top.is_empty());
    s.cleanup().await;
}

/// Policies registered by one process are known to another sharing the
/// backend (a dashboard), which can read their usage and unblock keys.
async fn registry(s: Setup) {
    let service = s.limiter(vec![
        Policy::new("svc.login", 1, secs(60))
            .unwrap()
            .with_burst(1)
            .unwrap()
            .with_block(1, secs(30), secs(120))
            .unwrap(),
    ]);
    service.register().await.unwrap();
    let dashboard = s.limiter(vec![Policy::new("dash", 100, secs(60)).unwrap()]);
    let known = dashboard.known_policies().await.unwrap();
    let names: Vec<&str> = known.iter().map(|p| p.name()).collect();
    assert_eq!(names, vec!["dash", "svc.login"]);
    assert_eq!(&known[1], service.policy("svc.login").unwrap());

    for _ in 0..3 {
        service.check("svc.login", "mallory").await.unwrap();
    }
    let u = dashboard.usage("svc.login", 5).await.unwrap();
    assert_eq!(u.blocked_keys, 1);
    assert_eq!(u.top[0].count, 2);
    dashboard.unblock("svc.login", "mallory").await.unwrap();
    assert_eq!(
        dashboard.usage("svc.login", 5).await.unwrap().blocked_keys,
        0
    );
    assert!(matches!(
        dashboard.usage("nope", 5).await,
        Err(CoordError::UnknownPolicy(_))
    ));
    // The dashboard cannot spend the service's quota by mistake: checks
    // only use its own policies.
    assert!(matches!(
        dashboard.check("svc.login", "x").await,
        Err(CoordError::UnknownPolicy(_))
    ));
    s.cleanup().await;
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                // Several worker threads, so that concurrent checks race for real.
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Setup::local().await).await;
                }
            )*
        }
        mod redis {
            $(
                // Several worker threads, so that concurrent checks race for real.
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Setup::redis(super::REDIS_URL).await).await;
                }
            )*
        }
        mod cluster {
            $(
                // Several worker threads, so that concurrent checks race for real.
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let url = test_support::redis::cluster_url();
                    super::$name(super::Setup::redis(&url).await).await;
                }
            )*
        }
    };
}

conformance!(
    boundary,
    burst,
    concurrency,
    blocking,
    expiry,
    isolation,
    usage,
    usage_forgets_idle_keys,
    registry,
);

#[test]
fn invalid_policies_are_rejected() {
    let bad = |r: coord::Result<Policy>| {
        let err = r.expect_err("invalid policy accepted");
        assert!(matches!(err, CoordError::InvalidPolicy { .. }), "{err}");
        assert!(err.is_bad_input());
    };
    bad(Policy::new("", 1, secs(1)));
    bad(Policy::new("x".repeat(65), 1, secs(1)));
    bad(Policy::new("with space", 1, secs(1)));
    bad(Policy::new("brace{", 1, secs(1)));
    bad(Policy::new("pipe|", 1, secs(1)));
    bad(Policy::new("zero", 0, secs(1)));
    bad(Policy::new("short", 1, Duration::from_millis(999)));
    bad(Policy::new("micro", 1, Duration::from_micros(1_000_500)));
    bad(Policy::new("long", 1, secs(24 * 3600 + 1)));
    bad(Policy::new("huge", 100_001, secs(1)));
    bad(Policy::new("b", 100_000, secs(1)).unwrap().with_burst(1));
    bad(Policy::new("b", 1, secs(1))
        .unwrap()
        .with_block(0, secs(1), secs(1)));
    bad(Policy::new("b", 1, secs(1))
        .unwrap()
        .with_block(1, Duration::ZERO, secs(1)));
    bad(Policy::new("b", 1, secs(1))
        .unwrap()
        .with_block(1, secs(1), Duration::ZERO));
    assert!(Policy::new("role:admin.v1-x_y", 1, secs(1)).is_ok());
    assert!(Policy::new("x".repeat(64), 1, secs(1)).is_ok());
}

#[test]
fn invalid_keys_are_rejected() {
    for key in [
        String::new(),
        "k".repeat(201),
        "a\nb".into(),
        "nul\0".into(),
    ] {
        let err = RateKey::new(key).expect_err("invalid key accepted");
        assert!(matches!(err, CoordError::InvalidRateKey { .. }), "{err}");
        assert!(err.is_bad_input());
    }
    assert!(RateKey::new("ü".repeat(200)).is_ok());
    assert!(RateKey::new("10.0.0.1").is_ok());
}

#[tokio::test]
async fn the_facade_rejects_unknown_policies_and_bad_keys() {
    let backend = Arc::new(LocalLimiter::new());
    let dup = RateLimiter::new(
        backend.clone(),
        vec![
            Policy::new("p", 1, secs(1)).unwrap(),
            Policy::new("p", 2, secs(1)).unwrap(),
        ],
    );
    assert!(matches!(dup, Err(CoordError::InvalidPolicy { .. })));
    let rl = RateLimiter::new(backend, vec![Policy::new("p", 1, secs(1)).unwrap()]).unwrap();
    let err = rl.check("nope", "k").await.unwrap_err();
    assert!(matches!(err, CoordError::UnknownPolicy(_)) && err.is_bad_input());
    let err = rl.check("p", "").await.unwrap_err();
    assert!(matches!(err, CoordError::InvalidRateKey { .. }));
    assert!(matches!(
        rl.unblock("nope", "k").await,
        Err(CoordError::UnknownPolicy(_))
    ));
    assert!(matches!(
        rl.reset("p", "\t").await,
        Err(CoordError::InvalidRateKey { .. })
    ));
    assert_eq!(rl.policy("p").unwrap().limit(), 1);
    assert_eq!(rl.policies().count(), 1);
}

/// Two instances (two connections) share one limit.
#[tokio::test]
async fn redis_instances_share_the_limit() {
    let prefix = unique("syrl");
    let policy = Policy::new("shared", 10, secs(60)).unwrap();
    let mut limiters = Vec::new();
    for _ in 0..2 {
        let backend = RedisLimiter::connect(REDIS_URL, &prefix).await.unwrap();
        limiters.push(RateLimiter::new(Arc::new(backend), vec![policy.clone()]).unwrap());
    }
    let mut allowed = 0;
    for i in 0..30 {
        if limiters[i % 2]
            .check("shared", "user")
            .await
            .unwrap()
            .allowed
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);
    // A reset through one instance is seen by the other.
    limiters[0].reset("shared", "user").await.unwrap();
    assert_eq!(
        limiters[1].check("shared", "user").await.unwrap().remaining,
        9
    );
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn redis_connect_validates_the_prefix() {
    for prefix in ["", "a{b", "a b"] {
        let err = RedisLimiter::connect(REDIS_URL, prefix).await.unwrap_err();
        assert!(matches!(err, CoordError::InvalidOptions(_)));
    }
}

/// A limiter on a private Redis wrapped in a fallback, and the server, so a
/// test can stop it.
async fn failover_limiter(mode: FallbackMode) -> (PrivateRedis, RateLimiter) {
    let server = PrivateRedis::started().await;
    let redis = RedisLimiter::connect(&server.url(), "fb").await.unwrap();
    let failover = Failover::new(Arc::new(redis), mode);
    let rl = RateLimiter::new(
        Arc::new(failover),
        vec![Policy::new("p", 2, secs(60)).unwrap()],
    )
    .unwrap();
    (server, rl)
}

/// Redis goes away: decisions go on, per instance, without errors or
/// waiting; the status says so and why; when Redis is back, decisions are
/// shared again and the status recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_local_limits_each_instance_during_an_outage() {
    let (mut server, rl) = failover_limiter(FallbackMode::Local).await;
    let status = rl.status();
    assert_eq!(status.backend, "redis");
    assert_eq!(status.fallback, Some(FallbackMode::Local));
    assert!(!status.degraded() && status.reason.is_none());
    assert!(rl.check("p", "k").await.unwrap().allowed);

    server.stop();
    let first = rl.check("p", "k").await.expect("no error during an outage");
    assert!(first.allowed, "the local log starts empty");
    let status = rl.status();
    assert!(status.degraded(), "{status:?}");
    assert!(status.reason.as_deref().is_some_and(|r| !r.is_empty()));
    // The local limit applies, and decisions no longer wait on Redis.
    let started = Instant::now();
    assert!(rl.check("p", "k").await.unwrap().allowed);
    let third = rl.check("p", "k").await.unwrap();
    assert!(!third.allowed);
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(rl.status().fallback_decisions, 3);
    // Usage shows this instance's view; operator actions say Redis is down.
    let usage = rl.usage("p", 5).await.unwrap();
    assert_eq!(usage.top[0].count, 2);
    let err = rl.unblock("p", "k").await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");

    let back = PrivateRedis::start(server.port());
    back.ready().await;
    eventually("the limiter to recover", || async {
        !rl.status().degraded()
    })
    .await;
    // Shared again: the restarted Redis kept nothing, so the key has its
    // quota back there (the local log would have refused).
    let d = rl.check("p", "k").await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 1);
    assert_eq!(rl.status().fallback_decisions, 3);
}

/// Fail-open allows everything during an outage, fail-closed refuses
/// everything with a retry-after; both report it.
#[tokio::test]
async fn fallback_open_and_closed() {
    let (mut server, open) = failover_limiter(FallbackMode::Open).await;
    server.stop();
    for _ in 0..5 {
        let d = open.check("p", "k").await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
    }
    assert!(open.status().degraded());

    let (mut server, closed) = failover_limiter(FallbackMode::Closed).await;
    server.stop();
    let d = closed.check("p", "fresh").await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.retry_after, Some(coord::ratelimit::fallback::PROBE_EVERY));
    let status = closed.status();
    assert!(status.degraded());
    assert_eq!(status.fallback, Some(FallbackMode::Closed));
    assert_eq!(status.fallback_decisions, 1);
}

#[test]
fn fallback_modes_parse() {
    for mode in [
        FallbackMode::Local,
        FallbackMode::Open,
        FallbackMode::Closed,
    ] {
        assert_eq!(mode.as_str().parse::<FallbackMode>().unwrap(), mode);
    }
    let err = "sometimes".parse::<FallbackMode>().unwrap_err();
    assert!(err.to_string().contains("local, open or closed"), "{err}");
}
