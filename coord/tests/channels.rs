//! Notification channels: every case is written once against
//! [`ChannelBus`] and run on the in-process bus and on real Redis (each
//! Redis test under its own prefix), plus Redis-only cases for connection
//! loss, pattern observation and subscriber counts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coord::CoordError;
use coord::channels::{
    ChangeType, Channel, ChannelBus, ChannelName, Envelope, LocalBus, RawEvent, RawSubscription,
    RedisBus, SUBSCRIBER_BUFFER, Subscription, source,
};
use coord::instance::InstanceId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use common::{REDIS_URL, raw_redis, unique};

/// How long a test waits for a message that must arrive.
const ARRIVAL: Duration = Duration::from_secs(10);

/// The buses of a simulated fleet: one per instance on Redis (separate
/// connections, as separate processes would have), one shared bus in
/// process.
struct Fleet {
    buses: Vec<Arc<dyn ChannelBus>>,
}

impl Fleet {
    fn local(n: usize) -> Self {
        let bus: Arc<dyn ChannelBus> = Arc::new(LocalBus::new());
        Self {
            buses: vec![bus; n],
        }
    }

    async fn redis(n: usize) -> Self {
        Self::redis_at(n, REDIS_URL).await
    }

    /// `n` buses on the Redis (or cluster) at `url`.
    async fn redis_at(n: usize, url: &str) -> Self {
        let prefix = unique("test-ch");
        let mut buses: Vec<Arc<dyn ChannelBus>> = Vec::new();
        for _ in 0..n {
            let bus = RedisBus::connect(url, &prefix)
                .await
                .expect("connect to the test Redis (or cluster)");
            buses.push(Arc::new(bus));
        }
        Self { buses }
    }

    /// Instance `i`'s handle on channel `name`.
    fn channel<T: Serialize + for<'de> Deserialize<'de>>(
        &self,
        i: usize,
        name: &str,
    ) -> Channel<T> {
        Channel::new(
            self.buses[i].clone(),
            ChannelName::new(name).unwrap(),
            InstanceId::new(format!("inst-{}", (b'a' + i as u8) as char)).unwrap(),
        )
    }
}

/// Instantiates every case once per bus.
macro_rules! on_both_buses {
    ($($case:ident),* $(,)?) => {
        mod channels_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(super::Fleet::local(3)).await;
                }
            )*
        }
        mod channels_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(super::Fleet::redis(3).await).await;
                }
            )*
        }
        mod channels_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let url = test_support::redis::cluster_url();
                    super::cases::$case(super::Fleet::redis_at(3, &url).await).await;
                }
            )*
        }
    };
}

on_both_buses!(
    reaches_every_other_instance_once,
    typed_round_trip_is_camel_case,
    malformed_messages_are_counted_and_skipped,
    publishing_without_subscribers_is_fine,
    slow_subscriber_counts_what_it_missed,
);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    flag_name: String,
    new_value: u32,
    detail: Option<Detail>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    changed_by: String,
}

async fn next<T: for<'de> Deserialize<'de>>(sub: &mut Subscription<T>) -> Envelope<T> {
    tokio::time::timeout(ARRIVAL, sub.recv())
        .await
        .expect("a message within the deadline")
        .expect("the bus is still there")
}

async fn next_raw(sub: &mut RawSubscription) -> RawEvent {
    tokio::time::timeout(ARRIVAL, sub.recv())
        .await
        .expect("a raw message within the deadline")
        .expect("the bus is still there")
}

mod cases {
    use super::*;

    pub async fn reaches_every_other_instance_once(fleet: Fleet) {
        let name = unique("flags");
        let (a, b, c) = (
            fleet.channel::<u32>(0, &name),
            fleet.channel::<u32>(1, &name),
            fleet.channel::<u32>(2, &name),
        );
        let mut sub_a = a.subscribe().await.unwrap();
        let mut sub_b = b.subscribe().await.unwrap();
        let mut sub_c = c.subscribe().await.unwrap();

        a.publish(ChangeType::Updated, vec!["k1".into()], source::API, &1)
            .await
            .unwrap();
        for sub in [&mut sub_b, &mut sub_c] {
            let got = next(sub).await;
            assert_eq!(got.payload, 1);
            assert_eq!(got.instance_id.as_str(), "inst-a");
        }
        // A second message is the next thing B and C see: the first was
        // not delivered twice.
        a.publish(ChangeType::Updated, vec!["k2".into()], source::API, &2)
            .await
            .unwrap();
        for sub in [&mut sub_b, &mut sub_c] {
            assert_eq!(next(sub).await.payload, 2);
        }
        // C's message is the first thing A sees: A skipped both of its own.
        c.publish(ChangeType::Deleted, vec!["k3".into()], source::API, &3)
            .await
            .unwrap();
        let got = next(&mut sub_a).await;
        assert_eq!((got.payload, got.instance_id.as_str()), (3, "inst-c"));
        let counts = sub_a.stats().snapshot();
        assert_eq!(counts.skipped_self, 2);
        assert_eq!(counts.delivered, 1);
        assert_eq!(counts.received, 3);
        assert_eq!(counts.malformed, 0);

        assert_eq!(next(&mut sub_b).await.payload, 3);
        let counts = sub_b.stats().snapshot();
        assert_eq!((counts.delivered, counts.skipped_self), (3, 0));
        // C skips its own message without returning it.
        c.publish(ChangeType::Created, vec![], source::API, &4)
            .await
            .unwrap();
        b.publish(ChangeType::Created, vec![], source::API, &5)
            .await
            .unwrap();
        assert_eq!(next(&mut sub_c).await.payload, 5);
        let counts = sub_c.stats().snapshot();
        assert_eq!(counts.skipped_self, 2);
        assert_eq!(counts.delivered, 3);
        assert!(*sub_c.connected().borrow());
    }

    pub async fn typed_round_trip_is_camel_case(fleet: Fleet) {
        let name = unique("state.flags");
        let a = fleet.channel::<Change>(0, &name);
        let b = fleet.channel::<Change>(1, &name);
        let mut observer = fleet.buses[2].observe().await.unwrap();
        let mut sub_b = b.subscribe().await.unwrap();
        let change = Change {
            flag_name: "dark-mode".into(),
            new_value: 7,
            detail: Some(Detail {
                changed_by: "ops".into(),
            }),
        };
        let before = coord::time::now_ms();
        a.publish(
            ChangeType::StatusChanged,
            vec!["dark-mode".into(), "beta".into()],
            source::SYNC,
            &change,
        )
        .await
        .unwrap();

        let got = next(&mut sub_b).await;
        assert_eq!(got.payload, change);
        assert_eq!(got.change_type, ChangeType::StatusChanged);
        assert_eq!(got.keys, ["dark-mode", "beta"]);
        assert_eq!(got.source, "sync");
        assert_eq!(got.instance_id.as_str(), "inst-a");
        assert!(got.timestamp >= before && got.timestamp <= coord::time::now_ms());

        let raw = loop {
            match next_raw(&mut observer).await {
                RawEvent::Message(m) if *m.channel == *name => break m,
                RawEvent::Message(_) => continue,
                RawEvent::Lagged(n) => panic!("observer lagged by {n}"),
            }
        };
        let json: Value = serde_json::from_str(&raw.payload).unwrap();
        assert_eq!(
            json,
            json!({
                "instanceId": "inst-a",
                "timestamp": got.timestamp,
                "changeType": "statusChanged",
                "keys": ["dark-mode", "beta"],
                "source": "sync",
                "payload": {
                    "flagName": "dark-mode",
                    "newValue": 7,
                    "detail": {"changedBy": "ops"}
                }
            })
        );
    }

    pub async fn malformed_messages_are_counted_and_skipped(fleet: Fleet) {
        let name = unique("flags");
        let a = fleet.channel::<Change>(0, &name);
        let b = fleet.channel::<Change>(1, &name);
        let mut sub_b = b.subscribe().await.unwrap();
        let channel = ChannelName::new(name.as_str()).unwrap();
        let envelope = |instance: &str, payload: Value| {
            json!({
                "instanceId": instance, "timestamp": 1, "changeType": "updated",
                "keys": [], "source": "api", "payload": payload
            })
            .to_string()
        };
        let bad = [
            "not json at all".to_owned(),
            "{\"instanceId\":\"inst-x\"}".to_owned(),
            "[1,2,3]".to_owned(),
            envelope("inst-x", json!({"flagName": 5})),
            envelope("inst x", json!({"flagName": "f", "newValue": 1})),
            envelope("inst-x", json!({"flagName": "f", "newValue": 1}))
                .replace("\"updated\"", "\"renamed\""),
        ];
        for text in &bad {
            fleet.buses[0].publish(&channel, text).await.unwrap();
        }
        let good = Change {
            flag_name: "f".into(),
            new_value: 1,
            detail: None,
        };
        a.publish(ChangeType::Updated, vec!["f".into()], source::API, &good)
            .await
            .unwrap();
        let got = next(&mut sub_b).await;
        assert_eq!(got.payload, good);
        let counts = sub_b.stats().snapshot();
        assert_eq!(counts.malformed, bad.len() as u64);
        assert_eq!(counts.received, bad.len() as u64 + 1);
        assert_eq!(counts.delivered, 1);
        assert_eq!(counts.skipped_self, 0);

        // Still healthy after the garbage.
        fleet.buses[0].publish(&channel, "{").await.unwrap();
        a.publish(ChangeType::Deleted, vec![], source::API, &good)
            .await
            .unwrap();
        assert_eq!(next(&mut sub_b).await.change_type, ChangeType::Deleted);
        assert_eq!(sub_b.stats().snapshot().malformed, bad.len() as u64 + 1);
    }

    pub async fn publishing_without_subscribers_is_fine(fleet: Fleet) {
        let a = fleet.channel::<u32>(0, &unique("quiet"));
        a.publish(ChangeType::Created, vec![], source::STARTUP, &1)
            .await
            .unwrap();
        // On a cluster a PUBLISH reaches the other nodes over the cluster
        // bus after it returns: let it arrive everywhere first, or a
        // subscription made on another node at once can still get it.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // A subscription started later does not see earlier messages.
        let b = fleet.channel::<u32>(1, a.name().as_str());
        let mut sub_b = b.subscribe().await.unwrap();
        a.publish(ChangeType::Created, vec![], source::STARTUP, &2)
            .await
            .unwrap();
        assert_eq!(next(&mut sub_b).await.payload, 2);
    }

    pub async fn slow_subscriber_counts_what_it_missed(fleet: Fleet) {
        let name = unique("burst");
        let a = fleet.channel::<u32>(0, &name);
        let b = fleet.channel::<u32>(1, &name);
        let mut sub_b = b.subscribe().await.unwrap();
        // Twice the buffer, not read meanwhile: some must be dropped.
        let total = 2 * SUBSCRIBER_BUFFER as u32;
        for n in 0..=total {
            a.publish(ChangeType::Updated, vec![], source::API, &n)
                .await
                .unwrap();
        }
        while next(&mut sub_b).await.payload != total {}
        let counts = sub_b.stats().snapshot();
        assert!(counts.lagged > 0, "{counts:?}");
        assert_eq!(counts.lagged + counts.delivered, u64::from(total) + 1);
        assert_eq!(counts.received, counts.delivered);
    }
}

#[test]
fn channel_and_instance_names_are_rejected() {
    for bad in ["", "has space", "star*", "slash/x", "ünï"] {
        match ChannelName::new(bad) {
            Err(CoordError::InvalidChannel { name, .. }) => assert_eq!(name, bad),
            other => panic!("{bad:?} accepted: {other:?}"),
        }
    }
    assert!(matches!(
        ChannelName::new("x".repeat(101)),
        Err(CoordError::InvalidChannel { .. })
    ));
    for bad in ["", "a b", "tab\there", "nl\n"] {
        match InstanceId::new(bad) {
            Err(e @ CoordError::InvalidInstance { .. }) => assert!(e.is_bad_input()),
            other => panic!("{bad:?} accepted: {other:?}"),
        }
    }
    assert!(InstanceId::from_config(Some(&"x".repeat(129))).is_err());
    let default = InstanceId::from_config(None).unwrap();
    assert!(default.as_str().ends_with(&std::process::id().to_string()));
}

/// A Redis user for one test, so that `CLIENT KILL USER` can cut exactly
/// this test's connections while other tests share the server.
struct TestUser {
    name: String,
}

impl TestUser {
    async fn create() -> Self {
        let name = unique("test-ch-user");
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&name)
            .arg("on")
            .arg("nopass")
            .arg("~*")
            .arg("&*")
            .arg("+@all")
            .query_async(&mut raw_redis().await)
            .await
            .expect("ACL SETUSER");
        Self { name }
    }

    fn url(&self) -> String {
        format!("redis://{}:unused@127.0.0.1:6379", self.name)
    }

    /// Kills this user's pub/sub connections; returns how many.
    async fn kill_pubsub(&self) -> u64 {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("USER")
            .arg(&self.name)
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut raw_redis().await)
            .await
            .expect("CLIENT KILL")
    }

    async fn delete(self) {
        let _: u64 = redis::cmd("ACL")
            .arg("DELUSER")
            .arg(&self.name)
            .query_async(&mut raw_redis().await)
            .await
            .expect("ACL DELUSER");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_channel_resubscribes_after_connection_loss() {
    let user = TestUser::create().await;
    let prefix = unique("test-ch");
    let publisher: Arc<dyn ChannelBus> =
        Arc::new(RedisBus::connect(REDIS_URL, &prefix).await.unwrap());
    let subscriber: Arc<dyn ChannelBus> =
        Arc::new(RedisBus::connect(&user.url(), &prefix).await.unwrap());
    let name = ChannelName::new(unique("flags")).unwrap();
    let a = Channel::<u32>::new(publisher, name.clone(), InstanceId::new("inst-a").unwrap());
    let b = Channel::<u32>::new(subscriber, name, InstanceId::new("inst-b").unwrap());
    let mut sub_b = b.subscribe().await.unwrap();
    let mut connected = sub_b.connected();
    assert!(*connected.borrow_and_update());

    a.publish(ChangeType::Updated, vec![], source::API, &1)
        .await
        .unwrap();
    assert_eq!(next(&mut sub_b).await.payload, 1);

    assert!(
        user.kill_pubsub().await >= 1,
        "no pub/sub connection killed"
    );
    // The loss is noticed (the flag changes; it may already be back up).
    tokio::time::timeout(ARRIVAL, connected.changed())
        .await
        .expect("the subscription notices the loss")
        .unwrap();

    // Messages published during the gap are lost, so keep publishing
    // until one arrives; the deadline bounds the reconnect.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut n = 2;
    let got = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message after the reconnect"
        );
        a.publish(ChangeType::Updated, vec![], source::API, &n)
            .await
            .unwrap();
        if let Ok(Some(env)) = tokio::time::timeout(Duration::from_millis(200), sub_b.recv()).await
        {
            break env;
        }
        n += 1;
    };
    assert!(got.payload >= 2);
    assert!(*sub_b.connected().borrow());
    // And it stays subscribed: the next message arrives normally (after
    // draining any still in flight from the loop above).
    a.publish(ChangeType::Deleted, vec![], source::API, &1000)
        .await
        .unwrap();
    loop {
        let env = next(&mut sub_b).await;
        if env.payload == 1000 {
            break;
        }
    }
    drop(sub_b);
    user.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_channel_observer_sees_foreign_channels() {
    observer_sees_foreign_channels(REDIS_URL).await;
}

/// On a cluster the observer's pattern subscription sits on one node and
/// still sees what is published on any other (the cluster bus forwards
/// every PUBLISH), which is how the Channels page discovers channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_channel_observer_sees_foreign_channels() {
    observer_sees_foreign_channels(&test_support::redis::cluster_url()).await;
}

async fn observer_sees_foreign_channels(url: &str) {
    let prefix = unique("test-ch");
    let bus = RedisBus::connect(url, &prefix).await.unwrap();
    let mut observer = bus.observe().await.unwrap();
    let mut everything = bus.observe_pattern(&format!("{prefix}:*")).await.unwrap();
    // A service that does not use coord, publishing plain text.
    let _: () = redis::cmd("PUBLISH")
        .arg(format!("{prefix}:notifications:legacy/thing"))
        .arg("hello \"world\"")
        .query_async(&mut test_support::redis::raw(url).await)
        .await
        .unwrap();
    let expected = RawEvent::Message(coord::channels::RawMessage {
        channel: "legacy/thing".into(),
        payload: "hello \"world\"".into(),
    });
    assert_eq!(next_raw(&mut observer).await, expected);
    match next_raw(&mut everything).await {
        RawEvent::Message(m) => {
            assert_eq!(&*m.channel, format!("{prefix}:notifications:legacy/thing"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_channel_subscriber_count() {
    subscriber_count(REDIS_URL).await;
}

/// Each node counts only its own subscribers: the bus sums every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_channel_subscriber_count() {
    subscriber_count(&test_support::redis::cluster_url()).await;
}

async fn subscriber_count(url: &str) {
    let prefix = unique("test-ch");
    let bus = RedisBus::connect(url, &prefix).await.unwrap();
    let name = ChannelName::new("counted").unwrap();
    assert_eq!(bus.subscriber_count(&name).await.unwrap(), 0);
    // Six handles, as six processes would have: on a cluster each starts
    // its subscriptions at a random seed, so they spread over the nodes.
    let mut subscriptions = Vec::new();
    for _ in 0..6 {
        let other = RedisBus::connect(url, &prefix).await.unwrap();
        subscriptions.push(other.subscribe(&name).await.unwrap());
    }
    assert_eq!(bus.subscriber_count(&name).await.unwrap(), 6);
    drop(subscriptions);
    common::eventually("subscriptions closed", || async {
        bus.subscriber_count(&name).await.unwrap() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_channel_connect_rejects_bad_input() {
    assert!(matches!(
        RedisBus::connect(REDIS_URL, "bad*prefix").await,
        Err(CoordError::InvalidOptions(_))
    ));
    assert!(matches!(
        RedisBus::connect("redis://127.0.0.1:1", "p").await,
        Err(CoordError::Unavailable(_))
    ));
}
