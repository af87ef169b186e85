//! Simulated service instances for `switchyard demo`: a few replicas of a
//! service that share feature flags and search-parameter statuses through
//! the synced state, and read patients and search parameters through two
//! cache namespaces, each heartbeating its sync and cache figures, so the
//! channels, instances and cache pages show real traffic.

use std::time::Duration;

use coord::CoordError;
use coord::cache::{Cache, CacheOptions, CacheSet, LocalBound};
use coord::debounce::DebounceConfig;
use coord::instance::InstanceId;
use coord::instances::{Heartbeat, HeartbeatConfig, ReportSource, SyncReport};
use coord::sync::{Replica, ReplicaConfig, StateKey};
use coord::time::now_ms;
use rand::RngExt;
use rand::seq::IndexedRandom;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::cache::Caches;
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

/// Patients the demo's services read, most often the first ones.
const PATIENTS: u64 = 300;

type Doc = serde_json::Value;

/// Stands in for the services' database: a few milliseconds per record.
async fn load_record(kind: &'static str, key: String) -> Result<Option<Doc>, std::io::Error> {
    let wait = rand::rng().random_range(4..30);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    Ok(Some(
        json!({ "kind": kind, "id": key, "loadedAt": now_ms() }),
    ))
}

/// One instance's two namespaces: `patients`, a bounded working set read
/// with a skew (instances hold different keys), and `search-params`,
/// which every instance reads whole (so their hashes are compared).
struct DemoCaches {
    patients: Cache<Doc>,
    params: Cache<Doc>,
}

impl DemoCaches {
    async fn open(
        caches: &Caches,
        channels: &Channels,
        id: &InstanceId,
    ) -> Result<Self, CoordError> {
        let open = |ns: &'static str, options: CacheOptions| {
            Cache::open(
                ns,
                options,
                caches.shared(),
                id.clone(),
                Some(channels.bus.clone()),
            )
        };
        let unavailable = |e: coord::cache::CacheError| CoordError::Unavailable(e.to_string());
        Ok(Self {
            patients: open(
                "patients",
                CacheOptions::new(Duration::from_secs(60)).bound(LocalBound::Entries(120)),
            )
            .await
            .map_err(unavailable)?,
            params: open("search-params", CacheOptions::new(Duration::from_secs(30)))
                .await
                .map_err(unavailable)?,
        })
    }

    /// A few reads, as a request handler would make them.
    async fn read(&self) {
        let (patient, param) = {
            let mut rng = rand::rng();
            let r: f64 = rng.random();
            let patient = format!("patient-{}", (r * r * PATIENTS as f64) as u64);
            let param = KEYS.choose(&mut rng).copied().unwrap_or(KEYS[0]);
            (patient, param.to_owned())
        };
        let key = patient.clone();
        if let Err(err) = self
            .patients
            .get_or_load(&patient, || load_record("Patient", key))
            .await
        {
            tracing::debug!(error = %err, "demo cache read failed");
        }
        let key = param.clone();
        if let Err(err) = self
            .params
            .get_or_load(&param, || load_record("SearchParameter", key))
            .await
        {
            tracing::debug!(error = %err, "demo cache read failed");
        }
    }
}

struct Member {
    replica: std::sync::Arc<Replica>,
    heartbeat: std::sync::Arc<Heartbeat>,
    /// Reads the caches like a busy service.
    reader: JoinHandle<()>,
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
    pub async fn start(
        channels: &Channels,
        instances: &Instances,
        caches: &Caches,
    ) -> Result<Self, CoordError> {
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
            let demo_caches = std::sync::Arc::new(DemoCaches::open(caches, channels, &id).await?);
            let set = CacheSet::new();
            set.add(&demo_caches.patients);
            set.add(&demo_caches.params);
            let heartbeat = Heartbeat::start_with_caches(
                instances.registry.clone(),
                HeartbeatConfig::new(id, role, env!("CARGO_PKG_VERSION")).with_interval(HEARTBEAT),
                source,
                set,
            )?;
            let reader = {
                let demo_caches = demo_caches.clone();
                tokio::spawn(async move {
                    let mut tick = 0u64;
                    loop {
                        let pause = rand::rng().random_range(40..160);
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                        demo_caches.read().await;
                        tick += 1;
                        // Now and then a record changes: the writer
                        // replaces it, and the others drop their copy.
                        if tick.is_multiple_of(50) {
                            let n = rand::rng().random_range(0..20);
                            let key = format!("patient-{n}");
                            let doc =
                                json!({ "kind": "Patient", "id": key, "changedAt": now_ms() });
                            if let Err(err) = demo_caches.patients.set(&key, &doc).await {
                                tracing::debug!(error = %err, "demo cache write failed");
                            }
                        }
                    }
                })
            };
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
                reader,
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
            member.reader.abort();
            let _ = member.reader.await;
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
