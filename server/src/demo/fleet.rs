//! Simulated service instances for `switchyard demo`: a few replicas of a
//! service that share feature flags and search-parameter statuses through
//! the synced state, each heartbeating its sync figures, so the channels
//! and instances pages show real traffic.

use std::time::Duration;

use coord::CoordError;
use coord::debounce::DebounceConfig;
use coord::instance::InstanceId;
use coord::instances::{Heartbeat, HeartbeatConfig, ReportSource, SyncReport};
use coord::sync::{Replica, ReplicaConfig, StateKey};
use coord::time::now_ms;
use rand::RngExt;
use rand::seq::IndexedRandom;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::channels::Channels;
use crate::instances::{HEARTBEAT, Instances};

/// The channel the demo's instances announce changes on.
pub const DEMO_CHANNEL: &str = "demo.settings";

/// The simulated instances: id suffix and role.
const INSTANCES: [(&str, &str); 3] = [("api-1", "api"), ("api-2", "api"), ("worker-1", "worker")];

/// Keys the demo changes.
const KEYS: [&str; 8] = [
    "flags/new-checkout",
    "flags/dark-launch-search",
    "flags/bulk-export",
    "search/Patient.birthdate",
    "search/Patient.identifier",
    "search/Observation.code",
    "limits/api-default",
    "limits/api-partner",
];

struct Member {
    replica: std::sync::Arc<Replica>,
    heartbeat: std::sync::Arc<Heartbeat>,
    /// Beats right after each reload, so the instances page shows an
    /// instance caught up as soon as it is, not at its next heartbeat.
    follower: JoinHandle<()>,
}

/// The running simulated instances.
pub struct FleetDemo {
    members: Vec<Member>,
    changer: JoinHandle<()>,
}

impl FleetDemo {
    /// Starts the instances on the deployment's bus, store and registry,
    /// and a task that makes one of them change a setting every second or
    /// so.
    pub async fn start(channels: &Channels, instances: &Instances) -> Result<Self, CoordError> {
        let channel = coord::channels::ChannelName::new(DEMO_CHANNEL)?;
        let mut members = Vec::new();
        for (suffix, role) in INSTANCES {
            let id = InstanceId::new(format!("demo-{suffix}"))?;
            let mut config = ReplicaConfig::new(channel.clone());
            config.debounce = DebounceConfig::new(Duration::from_millis(100));
            let replica = std::sync::Arc::new(
                Replica::start(
                    instances.store.clone(),
                    Some(channels.bus.clone()),
                    id.clone(),
                    config,
                )
                .await?,
            );
            let source = {
                let replica = replica.clone();
                ReportSource::from_fn(move || SyncReport::from(replica.status()))
            };
            let heartbeat = Heartbeat::start(
                instances.registry.clone(),
                HeartbeatConfig::new(id, role, env!("CARGO_PKG_VERSION")).with_interval(HEARTBEAT),
                source,
            )?;
            let heartbeat = std::sync::Arc::new(heartbeat);
            let follower = {
                let heartbeat = heartbeat.clone();
                let mut applied = replica.watch_applied();
                tokio::spawn(async move {
                    while applied.changed().await.is_ok() {
                        heartbeat.beat_now();
                    }
                })
            };
            members.push(Member {
                replica,
                heartbeat,
                follower,
            });
        }
        let writers: Vec<_> = members.iter().map(|m| m.replica.clone()).collect();
        let changer = tokio::spawn(async move {
            loop {
                let pause = rand::rng().random_range(400..1_600);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let (writer, key, status, value) = {
                    let mut rng = rand::rng();
                    let writer = writers.choose(&mut rng).cloned();
                    let key = KEYS.choose(&mut rng).copied().unwrap_or(KEYS[0]);
                    let status = ["enabled", "enabled", "disabled", "pending"]
                        .choose(&mut rng)
                        .copied()
                        .unwrap_or("enabled");
                    let value = json!({
                        "rollout": rng.random_range(0..=100),
                        "changedAt": now_ms(),
                    });
                    (writer, key, status, value)
                };
                let (Some(writer), Ok(key)) = (writer, StateKey::new(key)) else {
                    continue;
                };
                if let Err(err) = writer.put(&key, &value, status).await {
                    tracing::warn!(error = %err, "demo instance could not change a setting");
                }
            }
        });
        Ok(Self { members, changer })
    }

    /// Stops changing settings; every instance leaves the registry.
    pub async fn stop(self) {
        self.changer.abort();
        let _ = self.changer.await;
        for member in self.members {
            member.follower.abort();
            let _ = member.follower.await;
            match std::sync::Arc::try_unwrap(member.heartbeat) {
                Ok(heartbeat) => {
                    if let Err(err) = heartbeat.shutdown().await {
                        tracing::debug!(error = %err, "demo instance could not leave the registry");
                    }
                }
                Err(_) => {
                    tracing::debug!("a demo heartbeat is still shared; it stops when dropped")
                }
            }
            if let Ok(replica) = std::sync::Arc::try_unwrap(member.replica) {
                replica.shutdown().await;
            }
        }
    }
}
