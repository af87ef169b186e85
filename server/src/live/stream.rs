//! Server-sent event streams, one per page scope.
//!
//! A stream sends a full snapshot of its page's regions when it opens (so a
//! reconnecting browser never keeps a stale screen), then, on every hub
//! snapshot, the regions whose HTML changed. Regions that only depend on
//! the snapshot are rendered once per snapshot for all clients; a queue's
//! job table is reloaded only when that queue changed, and clients showing
//! the same page share one load and one rendering through [`SharedCache`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::Fragment;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use coord::CoordError;
use coord::queue::{JobId, QueueName, Queues};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::{OnceCell, mpsc};

use super::render::{self, Page};
use super::{Hub, Snapshot};
use crate::queues::vm::job_page;
use crate::queues::vm::{Listing, QueuePageQuery, listing, queue_page};

/// How often an idle stream sends a comment, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a browser waits before reconnecting a dropped stream.
pub const RETRY: Duration = Duration::from_secs(2);

/// How often a stream of every queue's error groups reads them again
/// while queues change.
const ALL_ERRORS_EVERY: Duration = Duration::from_secs(5);

/// Entries kept in the listing cache before it is cleared.
const CACHE_ENTRIES: usize = 1024;

/// What a stream keeps current.
#[derive(Debug, Clone)]
pub enum Scope {
    /// The overview's health, totals and charts.
    Overview {
        /// Whether the page charts the live hour. A day or a week is read
        /// from history when the page is rendered; sending the hub's hour
        /// would replace it, so those streams leave the charts out.
        live_charts: bool,
    },
    /// A page of the queues table.
    Queues {
        /// Its order, name filter and page.
        query: app::QueuesQuery,
    },
    /// Channel traffic.
    Channels,
    /// Instances and their sync status.
    Instances,
    /// Rate-limit policies, usage and blocks.
    RateLimits,
    /// The configured Redis.
    Redis,
    /// The cache namespaces, and the chosen one's instances.
    Cache {
        /// Its namespace, chart range and page.
        query: crate::cache::vm::CacheQuery,
    },
    /// A page of the workers table.
    Workers {
        /// Its queue filter and page.
        query: crate::workers::vm::WorkersQuery,
    },
    /// A page of the schedules table.
    Schedules {
        /// Its queue filter and page (the BullMQ part is left out: it is
        /// read when the page loads).
        query: crate::schedules::vm::SchedulesQuery,
    },
    /// Active alerts, deliveries and, on the first page, the history.
    Alerts {
        /// Whether the page shows the first page of history (later pages
        /// keep theirs: only the other regions are live there).
        first_page: bool,
    },
    /// One queue's header, retry progress and job table.
    Queue {
        /// The queue.
        queue: QueueName,
        /// Its page's state, paging and filter.
        query: QueuePageQuery,
    },
    /// A page of error groups: one queue's (`queue`), or every queue's.
    Errors {
        /// The queue, or None for every queue.
        queue: Option<QueueName>,
        /// Its order and page.
        query: crate::errors::ErrorsQuery,
    },
    /// One job's details.
    Job {
        /// The queue.
        queue: QueueName,
        /// The job.
        id: JobId,
    },
}

/// What the streams of one server share: the hub they follow, the queues
/// their job tables are read from, and the work they do once for all
/// (job-table loads, rendered pages). Cheap to clone.
#[derive(Clone)]
pub struct Streams {
    hub: Hub,
    queues: Queues,
    /// Longest value a job table carries (`--listing-value-bytes`).
    clip: u32,
    listings: Arc<SharedCache<Listing>>,
    pages: Arc<SharedCache<Vec<Region>>>,
    /// The BullMQ monitor: its totals on the overview, its queues' error
    /// groups beside the native ones.
    bull: Option<crate::bullmq::BullMonitor>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").finish_non_exhaustive()
    }
}

impl Streams {
    /// The streams of a server following `hub`.
    pub fn new(
        hub: Hub,
        queues: Queues,
        clip: u32,
        bull: Option<crate::bullmq::BullMonitor>,
    ) -> Self {
        Self {
            hub,
            queues,
            clip,
            listings: Arc::default(),
            pages: Arc::default(),
            bull,
        }
    }

    /// The BullMQ monitor's latest counts, when BullMQ is watched.
    pub fn bull_snapshot(&self) -> Option<Arc<crate::bullmq::BullSnapshot>> {
        self.bull.as_ref().map(crate::bullmq::BullMonitor::current)
    }

    /// The BullMQ queues' error groups, when BullMQ is watched.
    fn bull_groups(&self) -> Option<&crate::bullmq::BullGroups> {
        self.bull.as_ref().map(crate::bullmq::BullMonitor::groups)
    }

    /// The event stream of a scope. A task per stream renders and sends;
    /// it ends when the client goes away or the server shuts down.
    pub fn open(&self, scope: Scope) -> Events {
        let (tx, rx) = mpsc::channel::<Event>(16);
        tokio::spawn(feed(self.clone(), scope, tx));
        events(rx)
    }

    /// Pages rendered once per snapshot for all their streams.
    pub fn pages(&self) -> &SharedCache<Vec<Region>> {
        &self.pages
    }
}

/// A page's live stream, as axum serves it.
pub type Events = Sse<KeepAliveStream<BoxStream<'static, Result<Event, Infallible>>>>;

/// The response of a stream whose events a task sends on `rx`.
pub fn events(rx: mpsc::Receiver<Event>) -> Events {
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    Sse::new(events.boxed()).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// Sends the opening comment with the reconnect delay; false when the
/// client is gone.
pub async fn open(tx: &mpsc::Sender<Event>) -> bool {
    tx.send(Event::default().retry(RETRY).comment("switchyard"))
        .await
        .is_ok()
}

/// Sends each region whose HTML the client does not have yet (by digest,
/// remembered in `sent`); false when the client is gone.
pub async fn send_new(
    tx: &mpsc::Sender<Event>,
    sent: &mut HashMap<&'static str, u64>,
    groups: &[&[Region]],
) -> bool {
    for region in groups.iter().flat_map(|g| g.iter()) {
        if sent.get(region.id) == Some(&region.digest) {
            continue;
        }
        let event = Event::default().event("swap").data(region.data.as_str());
        if tx.send(event).await.is_err() {
            return false;
        }
        sent.insert(region.id, region.digest);
    }
    true
}

/// What a stream remembers between snapshots.
#[derive(Default)]
struct Cursor {
    /// `Snapshot::changed` of the scope's queue when last loaded.
    loaded_at: u64,
    listing: Option<Arc<Listing>>,
    job: Option<Regions>,
    /// When the all-queues error groups were last read.
    read_at: Option<std::time::Instant>,
    /// (change, bulk-run progress) the error groups were read at.
    errors_at: (u64, u64),
    /// Whether the watched job was active when last read.
    running: bool,
}

/// How often a running job's page reads its log and progress again.
const JOB_LOG_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

async fn feed(streams: Streams, scope: Scope, tx: mpsc::Sender<Event>) {
    let mut snapshots = streams.hub.subscribe();
    let mut closed = streams.hub.closed();
    if *closed.borrow() {
        return;
    }
    if !open(&tx).await {
        return;
    }
    let mut sent: HashMap<&'static str, u64> = HashMap::new();
    let mut cursor = Cursor::default();
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        // Before the hub's first snapshot there is nothing true to show.
        if snapshot.seq > 0 {
            let regions = render(&streams, &scope, &snapshot, &mut cursor).await;
            let banner = render::regions(&streams, &snapshot, Page::Banner).await;
            if !send_new(&tx, &mut sent, &[&regions[..], &banner[..]]).await {
                return;
            }
        }
        // A running job's page also looks again on a timer: its log and
        // progress raise no queue event, so no new snapshot would come.
        let refresh = async {
            if cursor.running {
                tokio::time::sleep(JOB_LOG_REFRESH).await
            } else {
                std::future::pending::<()>().await
            }
        };
        tokio::select! {
            changed = snapshots.changed() => if changed.is_err() { return },
            _ = refresh => {}
            _ = closed.changed() => return,
            _ = tx.closed() => return,
        }
    }
}

/// A region ready to send: rendered, made safe for an event's data, and
/// digested, once per snapshot for every stream that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// The region's element id.
    pub id: &'static str,
    /// Its HTML as event data.
    pub data: String,
    /// A hash of `data`, to skip regions a client already has.
    pub digest: u64,
}

/// The regions of one page as of one snapshot, shared by its streams.
pub type Regions = Arc<Vec<Region>>;

/// Prepares rendered fragments for sending, shared.
pub fn regions(fragments: Vec<Fragment>) -> Regions {
    Arc::new(prepare(fragments))
}

/// Prepares rendered fragments for sending.
pub fn prepare(fragments: Vec<Fragment>) -> Vec<Region> {
    fragments
        .into_iter()
        .map(|fragment| {
            // A carriage return cannot travel in an event's data; as a
            // character reference it means the same in HTML.
            let data = fragment.html.replace('\r', "&#13;");
            let mut hasher = DefaultHasher::new();
            data.hash(&mut hasher);
            Region {
                id: fragment.id,
                digest: hasher.finish(),
                data,
            }
        })
        .collect()
}

async fn render(
    streams: &Streams,
    scope: &Scope,
    snapshot: &Snapshot,
    cursor: &mut Cursor,
) -> Regions {
    match scope {
        Scope::Overview { live_charts: true } => {
            render::regions(streams, snapshot, Page::Overview).await
        }
        Scope::Overview { live_charts: false } => Arc::new(
            render::regions(streams, snapshot, Page::Overview)
                .await
                .iter()
                .filter(|r| r.id != "throughput")
                .cloned()
                .collect(),
        ),
        Scope::Queues { query } => render::queues_regions(streams, snapshot, query).await,
        Scope::Channels => render::regions(streams, snapshot, Page::Channels).await,
        Scope::Instances => render::regions(streams, snapshot, Page::Instances).await,
        Scope::RateLimits => render::regions(streams, snapshot, Page::RateLimits).await,
        Scope::Redis => render::regions(streams, snapshot, Page::Redis).await,
        Scope::Cache { query } => render::cache_regions(streams, snapshot, query).await,
        Scope::Workers { query } => render::workers_regions(streams, snapshot, query).await,
        Scope::Schedules { query } => render::schedules_regions(streams, snapshot, query).await,
        Scope::Alerts { first_page: true } => {
            render::regions(streams, snapshot, Page::Alerts).await
        }
        Scope::Alerts { first_page: false } => Arc::new(
            render::regions(streams, snapshot, Page::Alerts)
                .await
                .iter()
                .filter(|r| r.id != "alerts-history")
                .cloned()
                .collect(),
        ),
        Scope::Queue { queue, query } => {
            let Some(figures) = snapshot.queue(queue.as_str()).cloned() else {
                // Not listed (yet, or the backend is down): keep the page.
                return Regions::default();
            };
            let key = format!("{}|{:?}", queue, query);
            let changed = snapshot.changed(queue.as_str());
            if cursor.listing.is_none() || changed > cursor.loaded_at {
                match streams
                    .listings
                    .get(key.clone(), (changed, 0), || {
                        listing(&streams.queues, queue, query, streams.clip)
                    })
                    .await
                {
                    Ok(fresh) => {
                        cursor.listing = Some(fresh);
                        cursor.loaded_at = changed;
                    }
                    Err(err) => {
                        tracing::debug!(%queue, error = %err, "cannot reload a live job table")
                    }
                }
            }
            let Some(listing) = cursor.listing.clone() else {
                return Regions::default();
            };
            // Every stream of this page at this snapshot, holding this
            // listing, shows the same thing: render it once for all.
            let version = (snapshot.seq, cursor.loaded_at);
            let rendered = streams
                .pages
                .get(key, version, || async {
                    let loaded_at = listing.loaded_at;
                    let vm = queue_page(&figures, query, (*listing).clone(), snapshot);
                    Ok::<_, Infallible>(prepare(app::queue_fragments(&vm, loaded_at)))
                })
                .await;
            match rendered {
                Ok(regions) => regions,
                Err(never) => match never {},
            }
        }
        Scope::Errors { queue, query } => {
            // Read again when the queue changed; every queue's groups at
            // most every ALL_ERRORS_EVERY, as they cost a read per queue.
            let changed = match queue {
                Some(queue) => snapshot.changed(queue.as_str()),
                // BullMQ books move on their own clock: added in, so
                // either moving re-reads.
                None => snapshot
                    .queues
                    .iter()
                    .map(|q| q.changed)
                    .max()
                    .unwrap_or(0)
                    .wrapping_add(streams.bull_groups().map_or(0, |b| b.version())),
            };
            let progress = queue
                .as_ref()
                .and_then(|q| snapshot.progress.get(q.as_str()));
            // A run's progress moves the page too, even where no count did.
            let ran = progress.map_or(0, |p| p.done * 2 + u64::from(p.finished) + 1);
            let due = queue.is_some()
                || cursor
                    .read_at
                    .is_none_or(|at| at.elapsed() >= ALL_ERRORS_EVERY);
            let stamp = (changed, ran);
            if cursor.job.is_none() || (stamp != cursor.errors_at && due) {
                let key = format!("errors|{queue:?}|{query:?}");
                let loaded = streams
                    .pages
                    .get(key, stamp, || async {
                        let page = match queue {
                            Some(queue) => {
                                crate::errors::queue_errors(&streams.queues, queue, *query).await
                            }
                            None => {
                                crate::errors::all_errors(
                                    &streams.queues,
                                    snapshot,
                                    streams.bull_groups(),
                                    *query,
                                )
                                .await
                            }
                        }?;
                        let place = queue.clone().map(crate::errors::Place::Native);
                        let vm = crate::errors::errors_vm(&page, place.as_ref(), progress);
                        Ok::<_, CoordError>(prepare(app::errors_fragments(&vm, snapshot.taken_at)))
                    })
                    .await;
                match loaded {
                    Ok(fresh) => {
                        cursor.job = Some(fresh);
                        cursor.errors_at = stamp;
                        cursor.read_at = Some(std::time::Instant::now());
                    }
                    Err(err) => tracing::debug!(error = %err, "cannot reload live error groups"),
                }
            }
            cursor.job.clone().unwrap_or_default()
        }
        Scope::Job { queue, id } => {
            let changed = snapshot.changed(queue.as_str());
            // A running job's log and progress change without a queue
            // event: it is read again at most once a second while active.
            let running_stale = cursor.running
                && cursor
                    .read_at
                    .is_none_or(|at| at.elapsed() >= JOB_LOG_REFRESH);
            if cursor.job.is_none() || changed > cursor.loaded_at || running_stale {
                let lines = coord::queue::SHOWN_LOG_LINES;
                match crate::queues::job_detail(&streams.queues, queue, id, lines).await {
                    Ok((job, report)) => {
                        cursor.running = job.state == coord::queue::JobState::Active;
                        cursor.read_at = Some(std::time::Instant::now());
                        cursor.job = Some(regions(app::job_fragments(&job_page(&job, &report))));
                        cursor.loaded_at = changed;
                    }
                    Err(err @ (CoordError::JobNotFound { .. } | CoordError::QueueNotFound(_))) => {
                        tracing::debug!(error = %err, "a watched job is gone");
                        cursor.running = false;
                        cursor.job = Some(regions(app::job_gone_fragments(
                            queue.as_str(),
                            id.as_str(),
                        )));
                        cursor.loaded_at = changed;
                    }
                    Err(err) => tracing::debug!(error = %err, "cannot reload a live job"),
                }
            }
            cursor.job.clone().unwrap_or_default()
        }
    }
}

type Slot<T> = Arc<OnceCell<Arc<T>>>;

/// Which state an entry reflects: (snapshot or change `seq`, listing
/// version).
type Version = (u64, u64);

/// Work shared by every stream showing the same page: the first stream to
/// need a version of an entry computes it, the others wait for it and share
/// the result. Used for job-table loads and for rendered queue pages.
pub struct SharedCache<T> {
    entries: Mutex<HashMap<String, (Version, Slot<T>)>>,
}

impl<T> Default for SharedCache<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> SharedCache<T> {
    /// The value for `key` at `version`, computed with `load` if no stream
    /// has yet. A failed load is not kept: the next caller tries again.
    pub async fn get<F, Fut, E>(
        &self,
        key: String,
        version: (u64, u64),
        load: F,
    ) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let slot = {
            let mut entries = crate::sync::lock(&self.entries);
            if entries.len() > CACHE_ENTRIES {
                entries.clear();
            }
            match entries.get(&key) {
                Some((v, slot)) if *v == version => slot.clone(),
                // A stream still on an older version gets its own value
                // without pushing out the newer one the others share.
                Some((v, _)) if *v > version => Arc::new(OnceCell::new()),
                _ => {
                    let slot: Slot<T> = Arc::new(OnceCell::new());
                    entries.insert(key, (version, slot.clone()));
                    slot
                }
            }
        };
        slot.get_or_try_init(|| async { load().await.map(Arc::new) })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn an_older_version_does_not_push_out_the_newer_one() {
        let cache: SharedCache<u64> = SharedCache::default();
        let loads = AtomicUsize::new(0);
        let get = |version: u64| {
            let loads = &loads;
            let cache = &cache;
            async move {
                cache
                    .get("page".into(), (version, 0), || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(version)
                    })
                    .await
            }
        };
        assert_eq!(*get(2).await.expect("new"), 2);
        assert_eq!(*get(1).await.expect("old"), 1);
        assert_eq!(*get(2).await.expect("new again"), 2);
        assert_eq!(
            loads.load(Ordering::SeqCst),
            2,
            "the newer value stayed cached"
        );
        assert_eq!(*get(3).await.expect("newer"), 3);
        assert_eq!(loads.load(Ordering::SeqCst), 3);
    }
}
