//! BullMQ (Node) queues next to the native ones: which exist, their counts,
//! kept current from their own `events` streams.
//!
//! One monitor per server does the Redis work for every open page: it
//! finds the queues (a bounded SCAN of `<prefix>:*:meta`, or the
//! configured list) every [`DISCOVER_EVERY`], follows every queue's events
//! stream with one blocking XREAD, re-reads the counts of a queue when its
//! stream says something happened (and all of them every
//! [`RECOUNT_EVERY`], for queues whose producers trim or disable events),
//! and publishes a [`BullSnapshot`]. Pages and their live streams read the
//! snapshot; browsers never make the server poll BullMQ's keys.

pub mod groups;
pub mod latency;
pub mod routes;
pub mod schedulers;
pub mod settings;
pub mod vm;

pub use groups::BullGroups;
pub use settings::BullSettings;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use coord::bullmq::{BullCounts, BullMq};
use coord::time::now_ms;
use futures_util::StreamExt;
use tokio::sync::watch;

/// Default for `--bullmq-prefix`: BullMQ's own default.
pub const DEFAULT_PREFIX: &str = "bull";
/// How often the queue list is looked for again.
pub const DISCOVER_EVERY: Duration = Duration::from_secs(30);
/// How often every queue's counts are re-read regardless of events (for
/// queues whose producers trim or disable events): between two sweeps only
/// the queues whose streams had events are read, so 10,000 idle queues
/// cost one sweep a minute.
pub const RECOUNT_EVERY: Duration = Duration::from_secs(60);
/// Counts read at once during a sweep.
const COUNT_CONCURRENCY: usize = 64;
/// Keys one discovery may scan at most, so a huge keyspace costs a
/// bounded amount of Redis time (the rest is found on later rounds only if
/// the list is configured instead).
pub const MAX_SCANNED: usize = 100_000;
/// How long the events reader blocks in one XREAD.
const BLOCK: Duration = Duration::from_secs(2);
/// Events read per stream per XREAD.
const EVENTS_PER_READ: usize = 500;

/// What the monitor knows, as of its last read.
#[derive(Debug, Clone, Default)]
pub struct BullSnapshot {
    /// Increases with every publication.
    pub seq: u64,
    /// Every known queue's counts, by name.
    pub queues: BTreeMap<String, BullCounts>,
    /// For each queue, the `seq` at which something about it last changed
    /// (an event or new counts), so a live job table reloads only then.
    pub changed: HashMap<String, u64>,
    /// Why the last read failed, while it does.
    pub error: Option<String>,
    /// When the snapshot was taken (ms since the epoch).
    pub at: i64,
}

/// The monitor: the BullMQ client and the latest snapshot. Cheap to clone.
#[derive(Clone)]
pub struct BullMonitor {
    client: BullMq,
    settings: Arc<BullSettings>,
    snapshot: watch::Receiver<Arc<BullSnapshot>>,
    groups: BullGroups,
    /// Wait and run times of the queues viewed lately.
    latency: latency::BullLatency,
    /// Held so the tasks stop when the last monitor is dropped.
    _stop: Arc<watch::Sender<()>>,
}

impl std::fmt::Debug for BullMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BullMonitor")
            .field("prefix", &self.settings.prefix)
            .finish()
    }
}

impl BullMonitor {
    /// Connects and starts the monitor's task. A Redis that is down at
    /// start is an error (like the other backends); later outages show on
    /// the pages and recover by themselves.
    pub async fn start(settings: BullSettings) -> Result<Self, coord::CoordError> {
        let client = BullMq::connect(settings.url.expose(), &settings.prefix).await?;
        let (tx, rx) = watch::channel(Arc::new(BullSnapshot::default()));
        let (stop_tx, stop_rx) = watch::channel(());
        let settings = Arc::new(settings);
        let groups = BullGroups::default();
        tokio::spawn(run(
            client.clone(),
            settings.clone(),
            groups.clone(),
            tx,
            stop_rx,
        ));
        Ok(Self {
            client,
            settings,
            snapshot: rx,
            groups,
            latency: latency::BullLatency::default(),
            _stop: Arc::new(stop_tx),
        })
    }

    /// The client, for listing jobs and acting on them.
    pub fn client(&self) -> &BullMq {
        &self.client
    }

    /// Wait and run times of the queues whose pages are open.
    pub fn latency(&self) -> &latency::BullLatency {
        &self.latency
    }

    /// The queues' error groups.
    pub fn groups(&self) -> &BullGroups {
        &self.groups
    }

    /// The key prefix watched.
    pub fn prefix(&self) -> &str {
        &self.settings.prefix
    }

    /// The latest snapshot.
    pub fn current(&self) -> Arc<BullSnapshot> {
        self.snapshot.borrow().clone()
    }

    /// Snapshots as they are published, for live streams.
    pub fn subscribe(&self) -> watch::Receiver<Arc<BullSnapshot>> {
        self.snapshot.clone()
    }
}

/// The monitor's loop: discovery, events, counts.
async fn run(
    client: BullMq,
    settings: Arc<BullSettings>,
    groups: BullGroups,
    tx: watch::Sender<Arc<BullSnapshot>>,
    mut stop: watch::Receiver<()>,
) {
    // Books still to be filled: the next read does not block.
    let mut filling = false;
    let mut names: HashSet<String> = HashSet::new();
    let mut last_ids: HashMap<String, String> = HashMap::new();
    let mut discovered_at: Option<tokio::time::Instant> = None;
    let mut counted_at: Option<tokio::time::Instant> = None;
    let mut seq = 0u64;
    loop {
        if stop.has_changed().is_err() {
            return;
        }
        let mut error = None;
        let groups_before = groups.version();
        let mut dirty: HashSet<String> = HashSet::new();
        let mut evented: HashSet<String> = HashSet::new();
        if discovered_at.is_none_or(|at| at.elapsed() >= settings.discover_every) {
            match discover(&client, &settings).await {
                Ok(found) => {
                    // Not "$": that would mean "after this call" on every
                    // call, losing what happens between two reads. Stream
                    // ids are Redis milliseconds: start a second back (a
                    // replayed event only costs a re-read of counts).
                    let start = format!("{}-0", now_ms().saturating_sub(1000).max(0));
                    for name in &found {
                        last_ids
                            .entry(name.clone())
                            .or_insert_with(|| start.clone());
                    }
                    // A queue found now is counted now, not at the next
                    // sweep: its events so far may be older than `start`.
                    dirty.extend(found.iter().filter(|n| !names.contains(*n)).cloned());
                    names = found.into_iter().collect();
                    last_ids.retain(|name, _| names.contains(name));
                    discovered_at = Some(tokio::time::Instant::now());
                }
                Err(err) => error = Some(format!("cannot list the BullMQ queues: {err}")),
            }
        }
        let recount = counted_at.is_none_or(|at| at.elapsed() >= RECOUNT_EVERY);
        if recount {
            dirty.extend(names.iter().cloned());
            counted_at = Some(tokio::time::Instant::now());
        }
        if error.is_none() && !names.is_empty() {
            let from: Vec<(String, String)> = last_ids
                .iter()
                .map(|(q, id)| (q.clone(), id.clone()))
                .collect();
            let block = if dirty.is_empty() && !filling {
                BLOCK
            } else {
                Duration::from_millis(1)
            };
            let read = tokio::select! {
                read = client.read_events(&from, block, EVENTS_PER_READ) => read,
                _ = stop.changed() => return,
            };
            match read {
                Ok(events) => {
                    groups.apply(&client, &events).await;
                    for event in events {
                        last_ids.insert(event.queue.clone(), event.id.clone());
                        dirty.insert(event.queue.clone());
                        evented.insert(event.queue);
                    }
                }
                Err(err) => error = Some(format!("cannot read the BullMQ events: {err}")),
            }
        }
        let previous = tx.borrow().clone();
        let mut next = BullSnapshot {
            seq: previous.seq,
            queues: previous
                .queues
                .iter()
                .filter(|(name, _)| names.contains(*name))
                .map(|(n, c)| (n.clone(), c.clone()))
                .collect(),
            changed: previous.changed.clone(),
            error: error.clone(),
            at: now_ms(),
        };
        let mut changed = next.queues.len() != previous.queues.len() || error != previous.error;
        if error.is_none() {
            let mut fresh = Vec::new();
            let wanted: Vec<String> = dirty
                .iter()
                .filter(|n| names.contains(*n))
                .cloned()
                .collect();
            let mut reads = futures_util::stream::iter(wanted.into_iter().map(|name| {
                let client = client.clone();
                async move {
                    let counts = client.counts(&name).await;
                    (name, counts)
                }
            }))
            .buffer_unordered(COUNT_CONCURRENCY);
            while let Some((name, counts)) = reads.next().await {
                match counts {
                    Ok(counts) => fresh.push((name, counts)),
                    Err(err) => {
                        next.error = Some(format!("cannot read the counts of {name}: {err}"));
                        changed = true;
                        break;
                    }
                }
            }
            drop(reads);
            seq = seq.max(previous.seq) + 1;
            for (name, counts) in fresh {
                if next.queues.get(&name) != Some(&counts) || evented.contains(&name) {
                    next.changed.insert(name.clone(), seq);
                    next.queues.insert(name, counts);
                    changed = true;
                }
            }
        }
        if next.error.is_none() {
            filling = groups.keep(&client, &next.queues).await;
        }
        // Groups filled or moved re-render the pages that show them.
        changed |= groups.version() != groups_before;
        if changed {
            next.seq = seq.max(previous.seq + 1);
            seq = next.seq;
            tx.send_replace(Arc::new(next));
        }
        if error.is_some() || names.is_empty() {
            // Nothing to block on: wait before trying again.
            tokio::select! {
                _ = tokio::time::sleep(BLOCK) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// The queues to watch: the configured list, else those found under the
/// prefix.
async fn discover(
    client: &BullMq,
    settings: &BullSettings,
) -> Result<Vec<String>, coord::CoordError> {
    if settings.queues.is_empty() {
        client.discover(MAX_SCANNED).await
    } else {
        Ok(settings.queues.clone())
    }
}
