//! Notification channel traffic: the dashboard observes every channel under
//! the prefix on the deployment's bus (in process for the embedded default,
//! Redis for scale-out), so services that do not use `coord` show up too.

pub mod routes;
pub mod traffic;
pub mod vm;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coord::CoordError;
use coord::channels::{ChannelBus, ChannelName, LocalBus, RawEvent, RedisBus};
use coord::time::now_ms;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::live::wake::Wake;
use crate::sync::lock;
use traffic::{ChannelStats, Traffic};

/// Longest the subscriber counts wait on Redis per snapshot.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Aborts the observer task when the last handle goes.
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Channel traffic as of a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelFigures {
    /// Which bus is observed (`in-process`, `redis`).
    pub bus: &'static str,
    /// Whether the observer is connected to the bus right now.
    pub connected: bool,
    /// Every channel seen, by name.
    pub channels: Vec<ChannelStats>,
}

/// The deployment's notification bus and the observer of its traffic.
/// Cheap to clone.
#[derive(Clone)]
pub struct Channels {
    /// The bus services (and the demo) publish on.
    pub bus: Arc<dyn ChannelBus>,
    redis_bus: Option<RedisBus>,
    traffic: Arc<Mutex<Traffic>>,
    observing: watch::Receiver<bool>,
    _observer: Arc<TaskGuard>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels").finish_non_exhaustive()
    }
}

impl Channels {
    /// Connects the deployment's bus (`redis` given: Redis under `prefix`;
    /// else in process) and starts observing it. `wake` is poked after
    /// each observed message, so live pages refresh.
    pub async fn start(redis: Option<(&str, &str)>, wake: Wake) -> Result<Self, CoordError> {
        let (bus, redis_bus): (Arc<dyn ChannelBus>, _) = match redis {
            Some((url, prefix)) => {
                let bus = RedisBus::connect(url, prefix).await?;
                (Arc::new(bus.clone()), Some(bus))
            }
            None => (Arc::new(LocalBus::new()), None),
        };
        let traffic = Arc::new(Mutex::new(Traffic::default()));
        let (observing_tx, observing) = watch::channel(false);
        let mut subscription = bus.observe().await?;
        let observed = traffic.clone();
        let task = tokio::spawn(async move {
            let mut connected = subscription.connected();
            observing_tx.send_replace(*connected.borrow());
            loop {
                tokio::select! {
                    event = subscription.recv() => match event {
                        Some(RawEvent::Message(m)) => {
                            lock(&observed).record(&m.channel, &m.payload, now_ms());
                            wake.poke();
                        }
                        Some(RawEvent::Lagged(n)) => {
                            tracing::warn!(missed = n, "channel observer fell behind");
                        }
                        None => break,
                    },
                    up = connected.changed() => {
                        if up.is_err() { break }
                        observing_tx.send_replace(*connected.borrow_and_update());
                    }
                }
            }
        });
        Ok(Self {
            bus,
            redis_bus,
            traffic,
            observing,
            _observer: Arc::new(TaskGuard(task)),
        })
    }

    /// The traffic figures, with subscriber counts on Redis.
    pub async fn figures(&self) -> ChannelFigures {
        let mut channels = lock(&self.traffic).rows(now_ms());
        if let Some(bus) = &self.redis_bus {
            for row in &mut channels {
                // Foreign channel names need not be valid ChannelNames;
                // those simply show no subscriber count.
                if let Ok(name) = ChannelName::new(row.name.clone())
                    && let Ok(Ok(n)) =
                        tokio::time::timeout(TIMEOUT, bus.subscriber_count(&name)).await
                {
                    row.subscribers = Some(n);
                }
            }
        }
        ChannelFigures {
            bus: if self.redis_bus.is_some() {
                "redis"
            } else {
                "in-process"
            },
            connected: *self.observing.borrow(),
            channels,
        }
    }
}
