//! Conformance suite of the rate limiter, written once and run against both
//! backends (in-process and real Redis), plus Redis-only sharing tests.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coord::CoordError;
use coord::ratelimit::local::LocalLimiter;
use coord::ratelimit::redis::RedisLimiter;
use coord::ratelimit::{Policy, RateKey, RateLimitBackend, RateLimiter};
use tokio::time::Instant;

use common::{REDIS_URL, delete_prefix, eventually, keys_under, unique};

/// A backend under test and what must be cleaned up after it.
struct Setup {
    backend: Arc<dyn RateLimitBackend>,
    local: Option<Arc<LocalLimiter>>,
    prefix: Option<String>,
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

    async fn redis() -> Self {
        let prefix = unique("syrl");
        let limiter = RedisLimiter::connect(REDIS_URL, &prefix)
            .await
            .expect("connect to the test Redis at 127.0.0.1:6379");
        Self {
            backend: Arc::new(limiter),
            local: None,
            prefix: Some(prefix),
        }
    }

    fn limiter(&self, policies: Vec<Policy>) -> RateLimiter {
        RateLimiter::new(self.backend.clone(), policies).expect("valid policies")
    }

    /// Whether this backend still holds anything about any key.
    async fn holds_state(&self) -> bool {
        match (&self.local, &self.prefix) {
            (Some(local), _) => {
                local.sweep();
                local.tracked_keys() > 0
            }
            (None, Some(prefix)) => !keys_under(prefix).await.is_empty(),
            (None, None) => unreachable!(),
        }
    }

    async fn cleanup(self) {
        if let Some(prefix) = self.prefix {
            delete_prefix(&prefix).await;
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
                    super::$name(super::Setup::redis().await).await;
                }
            )*
        }
    };
}

conformance!(boundary, burst, concurrency, blocking, expiry, isolation);

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

/// Every key of a decision carries the pair's hash tag (one cluster slot)
/// and an expiry, so idle keys vanish without any sweeping.
#[tokio::test]
async fn redis_keys_share_a_slot_and_expire() {
    let prefix = unique("syrl");
    let policy = Policy::new("tagged", 1, secs(30))
        .unwrap()
        .with_block(5, secs(60), secs(10))
        .unwrap();
    let backend = RedisLimiter::connect(REDIS_URL, &prefix).await.unwrap();
    let rl = RateLimiter::new(Arc::new(backend), vec![policy]).unwrap();
    assert!(rl.check("tagged", "10.0.0.1").await.unwrap().allowed);
    assert!(!rl.check("tagged", "10.0.0.1").await.unwrap().allowed);
    let mut keys = keys_under(&prefix).await;
    keys.sort();
    let base = format!("{prefix}:rl:{{tagged|10.0.0.1}}");
    assert_eq!(
        keys,
        vec![
            format!("{base}:log"),
            format!("{base}:rej"),
            format!("{base}:st")
        ]
    );
    let mut conn = common::raw_redis().await;
    for key in &keys {
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 60_000, "{key} has TTL {ttl}");
    }
    delete_prefix(&prefix).await;
}
