//! Conformance suite of the session stores, written once and run on the
//! embedded store, on Redis and on the Redis Cluster.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coord::sessions::{
    LocalSessions, MAX_LISTED, RedisSessions, SessionError, SessionStore, handle_of, key_of,
};

use common::unique;

/// One deployment's stores: `instance()` is one more process of it.
struct World {
    redis: Option<(String, String)>,
    local: LocalSessions,
    cap: usize,
}

impl World {
    fn embedded() -> Self {
        Self {
            redis: None,
            local: LocalSessions::new(),
            cap: 5,
        }
    }

    fn redis(url: &str) -> Self {
        Self {
            redis: Some((url.to_owned(), unique("sysess"))),
            ..Self::embedded()
        }
    }

    /// A store handle of its own, as another instance would have (its own
    /// connection on Redis).
    async fn instance(&self) -> Arc<dyn SessionStore> {
        match &self.redis {
            None => Arc::new(self.local.clone().with_max_per_user(self.cap)),
            Some((url, prefix)) => Arc::new(
                RedisSessions::connect(url, prefix)
                    .await
                    .unwrap()
                    .with_max_per_user(self.cap),
            ),
        }
    }

    async fn cleanup(self) {
        if let Some((url, prefix)) = self.redis {
            common::delete_prefix_at(&url, &prefix).await;
        }
    }
}

common::world_suite!(
    create_then_get,
    touch_slides_the_expiry,
    sessions_expire,
    revoke_ends_one_session,
    revoke_all_ends_only_that_users_sessions,
    list_shows_active_sessions_most_recent_first,
    the_per_user_cap_ends_the_least_recently_used,
    two_instances_see_each_others_sessions,
    bad_input_is_refused_with_a_reason,
);

const HOUR: Duration = Duration::from_secs(3600);
const SHORT: Duration = Duration::from_millis(300);

async fn create_then_get(world: &World) {
    let store = world.instance().await;
    let user = unique("ada");
    let new = store
        .create(&user, HOUR, "csrf=x;agent=Firefox")
        .await
        .unwrap();
    assert!(new.id.len() > 64, "256 random bits after the user");
    assert!(
        !format!("{new:?}").contains(&new.id),
        "Debug never shows the id"
    );
    assert_eq!(new.session.user, user);
    assert_eq!(new.session.handle, handle_of(&key_of(&new.id)));
    assert_eq!(new.session.created_at, new.session.last_seen_at);
    let lifetime = new.session.expires_at - new.session.created_at;
    assert_eq!(lifetime, 3_600_000);
    assert_eq!(new.evicted, 0);
    let got = store.get(&new.id).await.unwrap().expect("the session");
    assert_eq!(got, new.session);
    assert_eq!(got.data, "csrf=x;agent=Firefox");
    // Another id of the same user, a made-up id, a tampered one: nothing.
    let other = coord::sessions::new_id(&user).unwrap();
    assert_eq!(store.get(&other).await.unwrap(), None);
    assert_eq!(store.get("not-an-id").await.unwrap(), None);
    let mut tampered = new.id.clone();
    tampered.pop();
    tampered.push(if new.id.ends_with('0') { '1' } else { '0' });
    assert_eq!(store.get(&tampered).await.unwrap(), None);
}

async fn touch_slides_the_expiry(world: &World) {
    let store = world.instance().await;
    let user = unique("bob");
    let new = store.create(&user, SHORT, "").await.unwrap();
    // Touched every 100 ms for 900 ms: three lifetimes, still alive.
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let touched = store
            .touch(&new.id, SHORT)
            .await
            .unwrap()
            .expect("a touched session lives on");
        assert!(touched.last_seen_at > new.session.last_seen_at);
        assert_eq!(touched.expires_at - touched.last_seen_at, 300);
        assert_eq!(touched.created_at, new.session.created_at);
    }
    assert!(store.get(&new.id).await.unwrap().is_some());
    let listed = store.list(&user, 10).await.unwrap();
    assert_eq!(listed.sessions.len(), 1);
    assert!(listed.sessions[0].expires_at > new.session.expires_at);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(store.get(&new.id).await.unwrap(), None);
    assert_eq!(
        store.touch(&new.id, SHORT).await.unwrap(),
        None,
        "an ended session cannot be brought back"
    );
}

async fn sessions_expire(world: &World) {
    let store = world.instance().await;
    let user = unique("cy");
    let short = store.create(&user, SHORT, "").await.unwrap();
    let long = store.create(&user, HOUR, "").await.unwrap();
    // Reading does not extend a session.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = store.get(&short.id).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.get(&short.id).await.unwrap(), None);
    assert!(store.get(&long.id).await.unwrap().is_some());
    let listed = store.list(&user, 10).await.unwrap();
    assert_eq!(listed.sessions.len(), 1, "the ended one is not listed");
    assert_eq!(listed.sessions[0].handle, long.session.handle);
    assert!(!listed.more);
    // The embedded store drops ended sessions when swept; Redis by itself.
    let _ = store.sweep(coord::time::now_ms()).await.unwrap();
    assert!(store.get(&long.id).await.unwrap().is_some());
}

async fn revoke_ends_one_session(world: &World) {
    let store = world.instance().await;
    let user = unique("dee");
    let a = store.create(&user, HOUR, "").await.unwrap();
    let b = store.create(&user, HOUR, "").await.unwrap();
    let c = store.create(&user, HOUR, "").await.unwrap();
    assert!(store.revoke(&a.id).await.unwrap());
    assert!(
        !store.revoke(&a.id).await.unwrap(),
        "revoking twice is harmless"
    );
    assert!(!store.revoke("garbage").await.unwrap());
    assert_eq!(store.get(&a.id).await.unwrap(), None);
    // By handle, as the Users page does; the handle of another user's
    // session does nothing.
    let other = unique("eve");
    assert!(
        !store
            .revoke_handle(&other, &b.session.handle)
            .await
            .unwrap()
    );
    assert!(store.revoke_handle(&user, &b.session.handle).await.unwrap());
    assert!(!store.revoke_handle(&user, &b.session.handle).await.unwrap());
    assert_eq!(store.get(&b.id).await.unwrap(), None);
    assert!(store.get(&c.id).await.unwrap().is_some());
    let listed = store.list(&user, 10).await.unwrap();
    assert_eq!(listed.sessions.len(), 1);
    assert_eq!(listed.sessions[0].handle, c.session.handle);
}

async fn revoke_all_ends_only_that_users_sessions(world: &World) {
    let store = world.instance().await;
    let user = unique("fay");
    let other = unique("gus");
    let mine = [
        store.create(&user, HOUR, "").await.unwrap(),
        store.create(&user, HOUR, "").await.unwrap(),
        store.create(&user, HOUR, "").await.unwrap(),
    ];
    let theirs = store.create(&other, HOUR, "").await.unwrap();
    assert_eq!(store.revoke_all(&user).await.unwrap(), 3);
    for new in &mine {
        assert_eq!(store.get(&new.id).await.unwrap(), None);
    }
    assert!(store.list(&user, 10).await.unwrap().sessions.is_empty());
    assert_eq!(store.revoke_all(&user).await.unwrap(), 0);
    assert!(store.get(&theirs.id).await.unwrap().is_some());
    assert_eq!(store.list(&other, 10).await.unwrap().sessions.len(), 1);
    // The user can sign in again afterwards.
    let again = store.create(&user, HOUR, "").await.unwrap();
    assert!(store.get(&again.id).await.unwrap().is_some());
}

async fn list_shows_active_sessions_most_recent_first(world: &World) {
    let store = world.instance().await;
    let user = unique("hal");
    let first = store.create(&user, HOUR, "one").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = store.create(&user, HOUR, "two").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let third = store.create(&user, HOUR, "three").await.unwrap();
    let listed = store.list(&user, 10).await.unwrap();
    let order: Vec<&str> = listed.sessions.iter().map(|s| s.data.as_str()).collect();
    assert_eq!(order, ["three", "two", "one"]);
    assert!(!listed.more);
    // Using the first makes it the most recent.
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.touch(&first.id, HOUR).await.unwrap().unwrap();
    let listed = store.list(&user, 2).await.unwrap();
    let order: Vec<&str> = listed.sessions.iter().map(|s| s.data.as_str()).collect();
    assert_eq!(order, ["one", "three"]);
    assert!(listed.more, "a third one was left out");
    assert_eq!(listed.sessions[1].handle, third.session.handle);
    let _ = second;
    assert!(
        store
            .list(&unique("nobody"), 10)
            .await
            .unwrap()
            .sessions
            .is_empty()
    );
    // The limit is capped.
    let listed = store.list(&user, 10 * MAX_LISTED).await.unwrap();
    assert_eq!(listed.sessions.len(), 3);
}

async fn the_per_user_cap_ends_the_least_recently_used(world: &World) {
    let store = world.instance().await;
    let user = unique("ida");
    let mut made = Vec::new();
    for i in 0..world.cap {
        made.push(store.create(&user, HOUR, &i.to_string()).await.unwrap());
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    // The first is used, so the second is now the least recently used.
    store.touch(&made[0].id, HOUR).await.unwrap().unwrap();
    let extra = store.create(&user, HOUR, "extra").await.unwrap();
    assert_eq!(extra.evicted, 1);
    assert_eq!(store.get(&made[1].id).await.unwrap(), None);
    assert!(store.get(&made[0].id).await.unwrap().is_some());
    assert!(store.get(&extra.id).await.unwrap().is_some());
    let listed = store.list(&user, 100).await.unwrap();
    assert_eq!(listed.sessions.len(), world.cap);
}

async fn two_instances_see_each_others_sessions(world: &World) {
    let a = world.instance().await;
    let b = world.instance().await;
    let user = unique("jo");
    let new = a.create(&user, HOUR, "from a").await.unwrap();
    let seen = b.get(&new.id).await.unwrap().expect("b sees a's session");
    assert_eq!(seen.data, "from a");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let touched = b.touch(&new.id, HOUR).await.unwrap().unwrap();
    assert_eq!(a.get(&new.id).await.unwrap().unwrap(), touched);
    let listed = a.list(&user, 10).await.unwrap();
    assert_eq!(listed.sessions.len(), 1);
    assert!(b.revoke_handle(&user, &new.session.handle).await.unwrap());
    assert_eq!(a.get(&new.id).await.unwrap(), None);
}

async fn bad_input_is_refused_with_a_reason(world: &World) {
    let store = world.instance().await;
    for bad in ["", "a b", "{x}", &"n".repeat(200)] {
        let err = store.create(bad, HOUR, "").await.unwrap_err();
        assert!(
            matches!(err, SessionError::InvalidUser { .. }),
            "{bad:?}: {err}"
        );
    }
    let user = unique("kit");
    let err = store
        .create(&user, HOUR, &"x".repeat(2000))
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::DataTooLarge { .. }), "{err}");
    let err = store.create(&user, Duration::ZERO, "").await.unwrap_err();
    assert!(matches!(err, SessionError::InvalidTtl(_)), "{err}");
    let err = store.revoke_handle(&user, "../../etc").await.unwrap_err();
    assert!(matches!(err, SessionError::InvalidHandle(_)), "{err}");
    assert!(!err.is_outage());
}

/// A store whose Redis is gone says so as an outage, which the dashboard
/// answers from its recent reads for a while.
#[tokio::test]
async fn an_unreachable_redis_is_an_outage() {
    let mut redis = test_support::redis::PrivateRedis::started().await;
    let prefix = unique("sysess");
    let store = RedisSessions::connect(&redis.url(), &prefix).await.unwrap();
    let new = store.create("lee", HOUR, "").await.unwrap();
    redis.stop();
    let err = store.get(&new.id).await.unwrap_err();
    assert!(err.is_outage(), "{err}");
}
