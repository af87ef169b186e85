//! A typed read-through cache shared by a service's instances.
//!
//! Each namespace (`users`, `fhir.resources`…) is one [`Cache<T>`] of
//! serde values with its own time to live. A read looks in two tiers:
//!
//! * the **local tier**, in this process (a bounded [`moka`] cache with
//!   per-entry expiry), so a hot key costs no round trip;
//! * the **shared tier** ([`SharedTier`]: [`RedisShared`], or
//!   [`LocalShared`] in the embedded deployment), so one instance's load
//!   serves the others.
//!
//! Only when both miss does the caller's loader run, and then **once per
//! key at a time**: in one process the local tier's single-flight makes
//! concurrent readers of a key share one load; across instances a short
//! lock in the shared tier (`SET NX PX`) lets one instance load while the
//! others re-read the shared tier for a bounded wait, after which they load
//! themselves (a stuck loader delays, it never blocks). A loader's `None`
//! is cached too when the namespace asks for negative caching, for a
//! shorter time, so a missing record does not reach the database on every
//! request.
//!
//! A load only *adds* to the shared tier (`SET NX`): a write that landed
//! while the loader ran wins, and the reader gets the written value. An
//! invalidation that deletes a key while another instance's loader runs
//! cannot be told from "not cached yet", so that load may put back what was
//! read before the delete, until its time to live: callers whose source
//! changes should [`Cache::set`] the new value rather than only invalidate.
//!
//! # Invalidation and loops
//!
//! A write ([`Cache::set`], [`Cache::invalidate`],
//! [`Cache::invalidate_all`]) changes the shared tier first, then publishes
//! an [`Invalidation`] on the namespace's channel (`cache.<namespace>`,
//! [`crate::channels`]). The other instances drop the keys from their local
//! tier and nothing else: receiving never publishes, and self-skip keeps an
//! instance from hearing itself, so an invalidation travels one hop.
//!
//! # Consistency check
//!
//! [`CacheStats::content_hash`] is an order-independent hash (XOR) of the
//! local tier's entries, each hashed over its key and the exact text stored
//! in the shared tier. Instances holding the same keys with the same values
//! report the same hash; one that kept a stale value (it missed an
//! invalidation) reports another, which the Instances page shows as drift,
//! as the synced state does with its state hash.
//!
//! # Outages
//!
//! When the shared tier is unreachable the cache goes on with the local
//! tier alone (reads that miss it call the loader, writes stay local), at
//! once and without waiting on the dead backend again; a probe pings it
//! every [`PROBE_EVERY`] and, once it answers, the local tier is emptied
//! (invalidations may have been missed meanwhile) and the shared tier is
//! used again, as the rate limiter's [`crate::ratelimit::fallback`] does.

mod admin;
mod local;
mod redis;
mod set;
mod shared;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use moka::future::Cache as Moka;
use moka::notification::RemovalCause;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::task::AbortHandle;
use tokio::time::Instant;

pub use self::admin::CacheAdmin;
pub use self::local::LocalShared;
pub use self::redis::RedisShared;
pub use self::set::CacheSet;
pub use self::shared::{SharedTier, Stored};

use crate::channels::{ChangeType, Channel, ChannelBus, ChannelName, Subscription, source};
use crate::error::CoordError;
use crate::instance::InstanceId;
use crate::queue::latency::{LatencyHistogram, Percentiles};
use crate::time::now_ms;

/// How often a degraded cache asks the shared tier whether it is back.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Longest namespace, in characters (it is part of a channel name).
pub const MAX_NAMESPACE_LEN: usize = 64;

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// How often a reader waiting on another instance's load re-reads.
const WAIT_STEP: Duration = Duration::from_millis(20);

/// What can go wrong in the cache. `Clone`, because one failed load is
/// reported to every reader that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// A namespace that is not safe in keys and channel names.
    #[error("invalid cache namespace {name:?}: {reason}")]
    InvalidNamespace { name: String, reason: &'static str },
    /// An empty or oversized key.
    #[error("invalid cache key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// Options that cannot work (a zero time to live…).
    #[error("invalid cache options: {0}")]
    InvalidOptions(String),
    /// The caller's loader failed; nothing was cached.
    #[error("loading {namespace}/{key} failed: {source}")]
    Load {
        namespace: String,
        key: String,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A value that does not serialize, or a stored text that does not
    /// decode as the namespace's type (another build wrote it).
    #[error("value of {namespace}/{key} does not (de)serialize: {reason}")]
    Codec {
        namespace: String,
        key: String,
        reason: String,
    },
    /// The shared tier answered with an error that is not an outage
    /// (outages fall back to the local tier instead).
    #[error("cache shared tier: {0}")]
    Shared(Arc<CoordError>),
    /// The shared tier changed, but the invalidation could not be
    /// published: other instances keep their local copies until these
    /// expire.
    #[error("changed in the shared tier, but the other instances were not told: {0}")]
    Publish(Arc<CoordError>),
}

/// A checked namespace: 1–64 characters of `[A-Za-z0-9_.-]`, so it is safe
/// in a Redis key, a hash tag and a channel name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Namespace(String);

impl Namespace {
    /// Checks a namespace.
    pub fn new(name: impl Into<String>) -> Result<Self, CacheError> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("must not be empty")
        } else if name.chars().count() > MAX_NAMESPACE_LEN {
            Some("must be at most 64 characters")
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            Some("may only contain ASCII letters, digits and _ . -")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CacheError::InvalidNamespace { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The namespace as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn channel(&self) -> ChannelName {
        // 6 + 64 characters of the channel alphabet: always valid.
        ChannelName::new(format!("cache.{}", self.0))
            .expect("a checked namespace makes a valid channel name")
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Namespace {
    type Error = CacheError;

    fn try_from(s: String) -> Result<Self, CacheError> {
        Self::new(s)
    }
}

impl From<Namespace> for String {
    fn from(ns: Namespace) -> Self {
        ns.0
    }
}

/// What bounds the local tier. Past it, the local tier evicts (TinyLFU:
/// rarely used entries go first, and a one-off key may not get in at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalBound {
    /// At most this many entries.
    Entries(u64),
    /// At most about this many bytes (key plus stored text per entry).
    Bytes(u64),
}

/// How one namespace caches.
#[derive(Clone, Debug)]
pub struct CacheOptions {
    /// Time to live of an entry unless the write names its own.
    pub ttl: Duration,
    /// Cache a loader's `None` for this long; `None` leaves absent values
    /// uncached (every read of a missing key loads).
    pub negative_ttl: Option<Duration>,
    /// The local tier's bound.
    pub bound: LocalBound,
    /// How long a load lock lasts in the shared tier: longer than a load
    /// normally takes, short enough that a crashed loader does not hold
    /// readers up for long.
    pub lock_ttl: Duration,
    /// How long a reader waits for another instance's load before loading
    /// itself.
    pub lock_wait: Duration,
}

impl CacheOptions {
    /// Entries live `ttl`; no negative caching; 10,000 local entries; load
    /// locks of 5 s, waited on for at most 2 s.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            negative_ttl: None,
            bound: LocalBound::Entries(10_000),
            lock_ttl: Duration::from_secs(5),
            lock_wait: Duration::from_secs(2),
        }
    }

    /// Caches a loader's `None` for `ttl`.
    pub fn negative(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Bounds the local tier.
    pub fn bound(mut self, bound: LocalBound) -> Self {
        self.bound = bound;
        self
    }

    /// Sets the load lock's time to live and the readers' wait for it.
    pub fn lock(mut self, ttl: Duration, wait: Duration) -> Self {
        self.lock_ttl = ttl;
        self.lock_wait = wait;
        self
    }

    fn check(&self) -> Result<(), CacheError> {
        let zero = |d: Duration| d.is_zero();
        if zero(self.ttl) || self.negative_ttl.is_some_and(zero) || zero(self.lock_ttl) {
            return Err(CacheError::InvalidOptions(
                "times to live must be positive".into(),
            ));
        }
        if matches!(self.bound, LocalBound::Entries(0) | LocalBound::Bytes(0)) {
            return Err(CacheError::InvalidOptions(
                "the local bound must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// What an instance tells the others on `cache.<namespace>`: drop these
/// keys (the envelope's `keys`) or, with `all`, the whole namespace. It
/// carries no value: a receiver re-reads the shared tier, so a lost or
/// reordered message cannot install a wrong one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invalidation {
    /// The namespace (also in the channel name; kept for observers).
    pub namespace: String,
    /// Whether the whole namespace is dropped.
    pub all: bool,
}

/// One namespace's figures in this instance, plain data for the heartbeat
/// and the Cache page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// The namespace.
    pub namespace: String,
    /// The shared tier's kind (`local`, `redis`).
    pub backend: String,
    /// Reads answered by the local tier (including readers that waited on
    /// another reader's load in this process).
    pub hits_local: u64,
    /// Reads answered by the shared tier.
    pub hits_shared: u64,
    /// Reads neither tier could answer at once.
    pub misses: u64,
    /// Loader calls.
    pub loads: u64,
    /// Loader calls that failed.
    pub load_errors: u64,
    /// Loader times, ms.
    pub load_ms: Percentiles,
    /// Local entries dropped to respect the bound.
    pub evictions: u64,
    /// Local entries dropped because their time was up.
    pub expirations: u64,
    /// Invalidations this instance published.
    pub invalidations_sent: u64,
    /// Invalidations received from other instances.
    pub invalidations_received: u64,
    /// Invalidations that could not be published (the bus was down).
    pub publish_errors: u64,
    /// Entries in the local tier.
    pub entries: u64,
    /// Approximate bytes of the local tier (keys and stored texts).
    pub bytes: u64,
    /// Order-independent hash of the local tier's entries, 16 hex digits
    /// (text: JSON numbers lose 64-bit precision in browsers).
    pub content_hash: String,
    /// The same hash over the keys alone: two instances holding the same
    /// keys report the same one, and only then does a different
    /// `content_hash` mean a stale value rather than a different working
    /// set (instances of a read-through cache hold what they read).
    #[serde(default)]
    pub keys_hash: String,
    /// Since when (ms since the epoch) the shared tier is unreachable.
    pub degraded_since: Option<i64>,
    /// Why it is unreachable.
    pub degraded_reason: Option<String>,
    /// Outages seen since the cache opened.
    pub outages: u64,
}

impl CacheStats {
    /// Share of reads answered by a tier, 0 when nothing was read.
    pub fn hit_ratio(&self) -> f64 {
        let hits = self.hits_local + self.hits_shared;
        let all = hits + self.misses;
        if all == 0 {
            0.0
        } else {
            hits as f64 / all as f64
        }
    }
}

/// One local entry: the decoded value (or a cached absence), and what the
/// hash and the bound need of its stored form.
#[derive(Debug)]
struct Entry<T> {
    value: Option<T>,
    hash: u64,
    key_hash: u64,
    bytes: u32,
    ttl: Duration,
}

/// Each local entry lives as long as its own time to live says.
struct PerEntry;

impl<T> moka::Expiry<String, Arc<Entry<T>>> for PerEntry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Entry<T>>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Arc<Entry<T>>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

#[derive(Debug, Default)]
struct Counters {
    hits_local: AtomicU64,
    hits_shared: AtomicU64,
    misses: AtomicU64,
    loads: AtomicU64,
    load_errors: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    publish_errors: AtomicU64,
    outages: AtomicU64,
}

fn bump(cell: &AtomicU64) {
    cell.fetch_add(1, Ordering::Relaxed);
}

fn read(cell: &AtomicU64) -> u64 {
    cell.load(Ordering::Relaxed)
}

#[derive(Debug, Clone)]
struct Outage {
    since: i64,
    reason: String,
}

/// A loader's result, type-erased.
type Load<'a, T> = Pin<
    Box<
        dyn Future<Output = Result<Option<T>, Box<dyn std::error::Error + Send + Sync>>>
            + Send
            + 'a,
    >,
>;

/// Why a fill did not insert: nothing to cache (not an error for the
/// caller), or a failure every waiting reader gets.
#[derive(Debug)]
enum Fill {
    Absent,
    Failed(CacheError),
}

/// A typed read-through cache of one namespace, as one instance sees it.
/// Cheap to clone: clones are the same cache.
pub struct Cache<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Cache<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Cache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.ns)
            .field("shared", &self.inner.shared)
            .finish_non_exhaustive()
    }
}

struct Inner<T> {
    /// For the probe task, which must not keep a dropped cache alive.
    me: Weak<Inner<T>>,
    ns: Namespace,
    options: CacheOptions,
    instance: InstanceId,
    local: Moka<String, Arc<Entry<T>>>,
    shared: Arc<dyn SharedTier>,
    channel: Option<Channel<Invalidation>>,
    counters: Arc<Counters>,
    /// Bumped by every invalidation received, so a fill that raced one
    /// is not kept.
    epoch: AtomicU64,
    load_ms: Mutex<LatencyHistogram>,
    outage: Mutex<Option<Outage>>,
    probing: AtomicBool,
    listener: Mutex<Option<AbortHandle>>,
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        if let Some(task) = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// FNV-1a over the key and the stored text, then a final mix so XORed
/// entries do not cancel in patterns: stable across processes, builds and
/// versions, unlike `std`'s hasher, since instances of different releases
/// compare it.
fn entry_hash(key: &str, text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes().chain([0xff]).chain(text.bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

fn check_key(key: &str) -> Result<(), CacheError> {
    let reason = if key.is_empty() {
        "must not be empty"
    } else if key.len() > MAX_KEY_LEN {
        "must be at most 1024 bytes"
    } else {
        return Ok(());
    };
    Err(CacheError::InvalidKey {
        key: key.chars().take(64).collect(),
        reason,
    })
}

/// A random token naming one lock holder.
fn token(instance: &InstanceId) -> String {
    format!("{}:{:016x}", instance.as_str(), rand::random::<u64>())
}

impl<T> Cache<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Opens `namespace` over `shared`, as `instance`. With a `bus`, writes
    /// are announced to the other instances and theirs are received from
    /// now on; without one the cache is on its own (one instance, or a
    /// namespace whose entries only ever expire).
    pub async fn open(
        namespace: &str,
        options: CacheOptions,
        shared: Arc<dyn SharedTier>,
        instance: InstanceId,
        bus: Option<Arc<dyn ChannelBus>>,
    ) -> Result<Self, CacheError> {
        let ns = Namespace::new(namespace)?;
        options.check()?;
        let counters = Arc::new(Counters::default());
        let local = {
            let counters = counters.clone();
            let builder = Moka::builder().expire_after(PerEntry).eviction_listener(
                move |_key, _value, cause| match cause {
                    RemovalCause::Size => bump(&counters.evictions),
                    RemovalCause::Expired => bump(&counters.expirations),
                    RemovalCause::Explicit | RemovalCause::Replaced => {}
                },
            );
            match options.bound {
                LocalBound::Entries(n) => builder.max_capacity(n).build(),
                LocalBound::Bytes(n) => builder
                    .weigher(|_key: &String, entry: &Arc<Entry<T>>| entry.bytes)
                    .max_capacity(n)
                    .build(),
            }
        };
        let channel = bus.map(|bus| Channel::new(bus, ns.channel(), instance.clone()));
        let subscription = match &channel {
            Some(channel) => Some(
                channel
                    .subscribe()
                    .await
                    .map_err(|e| CacheError::Shared(Arc::new(e)))?,
            ),
            None => None,
        };
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            ns,
            options,
            instance,
            local,
            shared,
            channel,
            counters,
            epoch: AtomicU64::new(0),
            load_ms: Mutex::new(LatencyHistogram::new()),
            outage: Mutex::new(None),
            probing: AtomicBool::new(false),
            listener: Mutex::new(None),
        });
        if let Some(sub) = subscription {
            let task = tokio::spawn(listen(Arc::downgrade(&inner), sub));
            *inner.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
        }
        Ok(Self { inner })
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.inner.ns
    }

    /// The value of `key`, loading it with `loader` (once, whoever else
    /// asks meanwhile) when neither tier has it; kept for the namespace's
    /// time to live.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        key: &str,
        loader: F,
    ) -> Result<Option<T>, CacheError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Option<T>, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.get_or_load_for(key, self.inner.options.ttl, loader)
            .await
    }

    /// [`Cache::get_or_load`] with this entry's own time to live.
    pub async fn get_or_load_for<F, Fut, E>(
        &self,
        key: &str,
        ttl: Duration,
        loader: F,
    ) -> Result<Option<T>, CacheError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Option<T>, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        check_key(key)?;
        let inner = &self.inner;
        if let Some(entry) = inner.local.get(key).await {
            bump(&inner.counters.hits_local);
            return Ok(entry.value.clone());
        }
        // Boxed once here, so the fill path is not generic over loaders;
        // the loader is called only if the fill gets that far.
        let loader: Load<'_, T> = Box::pin(async move { loader().await.map_err(Into::into) });
        let epoch = inner.epoch.load(Ordering::Acquire);
        let filled = inner
            .local
            .entry_by_ref(key)
            .or_try_insert_with(inner.fill(key, ttl, loader))
            .await;
        match filled {
            Ok(entry) => {
                if !entry.is_fresh() {
                    bump(&inner.counters.hits_local);
                } else if inner.epoch.load(Ordering::Acquire) != epoch {
                    // An invalidation arrived while this fill ran: what it
                    // read may be what the invalidation replaced.
                    inner.local.invalidate(key).await;
                }
                Ok(entry.into_value().value.clone())
            }
            Err(failed) => match &*failed {
                Fill::Absent => Ok(None),
                Fill::Failed(err) => Err(err.clone()),
            },
        }
    }

    /// The cached value of `key`, from either tier, without loading.
    /// `None` also for a cached absence.
    pub async fn get(&self, key: &str) -> Result<Option<T>, CacheError> {
        check_key(key)?;
        let inner = &self.inner;
        if let Some(entry) = inner.local.get(key).await {
            bump(&inner.counters.hits_local);
            return Ok(entry.value.clone());
        }
        match inner.shared_op(|s| s.get(&inner.ns, key)).await {
            Ok(Some(Some(stored))) => {
                bump(&inner.counters.hits_shared);
                let entry = inner.decode(key, stored)?;
                inner.local.insert(key.to_owned(), entry.clone()).await;
                Ok(entry.value.clone())
            }
            Ok(_) => {
                bump(&inner.counters.misses);
                Ok(None)
            }
            Err(Fill::Failed(err)) => Err(err),
            Err(Fill::Absent) => Ok(None),
        }
    }

    /// Stores `value` for the namespace's time to live and tells the other
    /// instances to drop their copy.
    pub async fn set(&self, key: &str, value: &T) -> Result<(), CacheError> {
        self.set_for(key, value, self.inner.options.ttl).await
    }

    /// [`Cache::set`] with this entry's own time to live.
    pub async fn set_for(&self, key: &str, value: &T, ttl: Duration) -> Result<(), CacheError> {
        check_key(key)?;
        if ttl.is_zero() {
            return Err(CacheError::InvalidOptions(
                "times to live must be positive".into(),
            ));
        }
        let inner = &self.inner;
        let entry = inner.store(key, Some(value.clone()), ttl, false).await?;
        inner.local.insert(key.to_owned(), entry).await;
        inner.publish(vec![key.to_owned()], false).await;
        Ok(())
    }

    /// Drops `key` from both tiers here and from the other instances'
    /// local tiers.
    pub async fn invalidate(&self, key: &str) -> Result<(), CacheError> {
        check_key(key)?;
        let inner = &self.inner;
        inner
            .shared_op(|s| s.delete(&inner.ns, key))
            .await
            .map_err(Fill::into_error)?;
        inner.local.invalidate(key).await;
        inner.publish(vec![key.to_owned()], false).await;
        Ok(())
    }

    /// Drops the whole namespace, everywhere.
    pub async fn invalidate_all(&self) -> Result<(), CacheError> {
        let inner = &self.inner;
        inner
            .shared_op(|s| s.clear(&inner.ns))
            .await
            .map_err(Fill::into_error)?;
        inner.local.invalidate_all();
        inner.publish(Vec::new(), true).await;
        Ok(())
    }

    /// This instance's figures for the namespace, with the content hash
    /// and size of the local tier (one pass over it).
    pub async fn stats(&self) -> CacheStats {
        self.inner.stats().await
    }
}

impl Fill {
    fn into_error(self) -> CacheError {
        match self {
            Fill::Failed(err) => err,
            // Only fills report absence; other operations never do.
            Fill::Absent => CacheError::InvalidOptions("nothing to cache".into()),
        }
    }
}

impl<T> Inner<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// This instance's figures for the namespace, with the content hash
    /// and size of the local tier (one pass over it).
    async fn stats(&self) -> CacheStats {
        let inner = self;
        inner.local.run_pending_tasks().await;
        let (mut entries, mut bytes, mut hash, mut keys) = (0u64, 0u64, 0u64, 0u64);
        for (_key, entry) in inner.local.iter() {
            entries += 1;
            bytes += u64::from(entry.bytes);
            hash ^= entry.hash;
            keys ^= entry.key_hash;
        }
        let c = &inner.counters;
        let outage = inner.outage();
        let load_ms = inner
            .load_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .percentiles();
        CacheStats {
            namespace: inner.ns.to_string(),
            backend: inner.shared.backend().to_owned(),
            hits_local: read(&c.hits_local),
            hits_shared: read(&c.hits_shared),
            misses: read(&c.misses),
            loads: read(&c.loads),
            load_errors: read(&c.load_errors),
            load_ms,
            evictions: read(&c.evictions),
            expirations: read(&c.expirations),
            invalidations_sent: read(&c.sent),
            invalidations_received: read(&c.received),
            publish_errors: read(&c.publish_errors),
            entries,
            bytes,
            content_hash: format!("{hash:016x}"),
            keys_hash: format!("{keys:016x}"),
            degraded_since: outage.as_ref().map(|o| o.since),
            degraded_reason: outage.map(|o| o.reason),
            outages: read(&c.outages),
        }
    }

    fn outage(&self) -> Option<Outage> {
        self.outage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs one shared-tier operation unless the tier is known to be down.
    /// `Ok(None)` means "go on with the local tier alone".
    async fn shared_op<'a, R, F, Fut>(&'a self, op: F) -> Result<Option<R>, Fill>
    where
        F: Fn(&'a dyn SharedTier) -> Fut,
        Fut: Future<Output = crate::Result<R>>,
    {
        if self.outage().is_some() {
            return Ok(None);
        }
        // A connection that died while idle (the server restarted) fails
        // its first command and reconnects: try once more before calling
        // it an outage.
        let first = match op(&*self.shared).await {
            Err(e) if e.is_unavailable() => op(&*self.shared).await,
            other => other,
        };
        match first {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.is_unavailable() => {
                self.degrade(e.to_string());
                Ok(None)
            }
            Err(e) => Err(Fill::Failed(CacheError::Shared(Arc::new(e)))),
        }
    }

    /// Switches to the local tier alone (once per outage) and starts the
    /// probe.
    fn degrade(&self, reason: String) {
        {
            let mut outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
            if outage.is_none() {
                tracing::warn!(
                    namespace = %self.ns,
                    "cache shared tier unavailable, using the local tier alone: {reason}"
                );
                bump(&self.counters.outages);
                *outage = Some(Outage {
                    since: now_ms(),
                    reason,
                });
            }
        }
        if !self.probing.swap(true, Ordering::AcqRel) {
            tokio::spawn(probe(self.me.clone()));
        }
    }

    fn decode(&self, key: &str, stored: Stored) -> Result<Arc<Entry<T>>, CacheError> {
        let value = match stored.text.strip_prefix('v') {
            Some(json) => Some(
                serde_json::from_str::<T>(json).map_err(|e| CacheError::Codec {
                    namespace: self.ns.to_string(),
                    key: key.to_owned(),
                    reason: e.to_string(),
                })?,
            ),
            None => None,
        };
        Ok(self.entry(key, value, &stored.text, stored.ttl_left))
    }

    fn entry(&self, key: &str, value: Option<T>, text: &str, ttl: Duration) -> Arc<Entry<T>> {
        let bytes = u32::try_from(key.len() + text.len() + 64).unwrap_or(u32::MAX);
        Arc::new(Entry {
            value,
            hash: entry_hash(key, text),
            key_hash: entry_hash(key, ""),
            bytes,
            ttl,
        })
    }

    /// Writes a value (or, with `None`, an absence) to the shared tier and
    /// returns its local entry. A load (`loaded`) only adds: if a write
    /// landed while the loader ran, that write wins and its entry is
    /// returned, so a slow load never puts back what a write replaced.
    async fn store(
        &self,
        key: &str,
        value: Option<T>,
        ttl: Duration,
        loaded: bool,
    ) -> Result<Arc<Entry<T>>, CacheError> {
        let text = match &value {
            Some(v) => {
                let json = serde_json::to_string(v).map_err(|e| CacheError::Codec {
                    namespace: self.ns.to_string(),
                    key: key.to_owned(),
                    reason: e.to_string(),
                })?;
                format!("v{json}")
            }
            None => "n".to_owned(),
        };
        if !loaded {
            self.shared_op(|s| s.set(&self.ns, key, &text, ttl))
                .await
                .map_err(Fill::into_error)?;
        } else if self
            .shared_op(|s| s.add(&self.ns, key, &text, ttl))
            .await
            .map_err(Fill::into_error)?
            == Some(false)
            && let Some(stored) = self
                .shared_op(|s| s.get(&self.ns, key))
                .await
                .map_err(Fill::into_error)?
                .flatten()
        {
            return self.decode(key, stored);
        }
        Ok(self.entry(key, value, &text, ttl))
    }

    /// Fills a local miss: the shared tier, else one load across instances.
    async fn fill(
        &self,
        key: &str,
        ttl: Duration,
        loader: Load<'_, T>,
    ) -> Result<Arc<Entry<T>>, Fill> {
        if let Some(stored) = self.shared_op(|s| s.get(&self.ns, key)).await?.flatten() {
            bump(&self.counters.hits_shared);
            return self.decode(key, stored).map_err(Fill::Failed);
        }
        bump(&self.counters.misses);
        let token = token(&self.instance);
        let lock_ttl = self.options.lock_ttl;
        match self
            .shared_op(|s| s.try_lock(&self.ns, key, &token, lock_ttl))
            .await?
        {
            Some(true) => {
                // Someone may have stored it between our read and the lock.
                let result = match self.shared_op(|s| s.get(&self.ns, key)).await {
                    Ok(Some(Some(stored))) => self.decode(key, stored).map_err(Fill::Failed),
                    Ok(_) => self.load(key, ttl, loader).await,
                    Err(e) => Err(e),
                };
                if let Err(Fill::Failed(err)) =
                    self.shared_op(|s| s.unlock(&self.ns, key, &token)).await
                {
                    tracing::warn!(namespace = %self.ns, error = %err, "cache load lock not released; it expires by itself");
                }
                result
            }
            Some(false) => {
                let deadline = Instant::now() + self.options.lock_wait;
                while Instant::now() < deadline {
                    tokio::time::sleep(WAIT_STEP).await;
                    match self.shared_op(|s| s.get(&self.ns, key)).await? {
                        Some(Some(stored)) => {
                            return self.decode(key, stored).map_err(Fill::Failed);
                        }
                        Some(None) => {}
                        None => break,
                    }
                }
                self.load(key, ttl, loader).await
            }
            None => self.load(key, ttl, loader).await,
        }
    }

    /// Runs the loader, times it and stores what it found.
    async fn load(
        &self,
        key: &str,
        ttl: Duration,
        loader: Load<'_, T>,
    ) -> Result<Arc<Entry<T>>, Fill> {
        bump(&self.counters.loads);
        let started = Instant::now();
        let loaded = loader.await;
        let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.load_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record_ms(ms);
        match loaded {
            Err(e) => {
                bump(&self.counters.load_errors);
                Err(Fill::Failed(CacheError::Load {
                    namespace: self.ns.to_string(),
                    key: key.to_owned(),
                    source: Arc::from(e),
                }))
            }
            Ok(Some(value)) => self
                .store(key, Some(value), ttl, true)
                .await
                .map_err(Fill::Failed),
            Ok(None) => match self.options.negative_ttl {
                Some(negative) => self
                    .store(key, None, negative, true)
                    .await
                    .map_err(Fill::Failed),
                None => Err(Fill::Absent),
            },
        }
    }

    /// Tells the other instances; a failure is counted and logged, not
    /// returned: the shared tier already changed, and their entries
    /// expire in any case.
    async fn publish(&self, keys: Vec<String>, all: bool) {
        let Some(channel) = &self.channel else { return };
        let message = Invalidation {
            namespace: self.ns.to_string(),
            all,
        };
        match channel
            .publish(ChangeType::Deleted, keys, source::API, &message)
            .await
        {
            Ok(()) => bump(&self.counters.sent),
            Err(err) => {
                bump(&self.counters.publish_errors);
                tracing::warn!(namespace = %self.ns, error = %err, "cache invalidation not published");
            }
        }
    }
}

/// Applies the other instances' invalidations to the local tier. Never
/// publishes (no loops); holds only a weak handle, so dropping the cache
/// ends it. Whenever messages may have been missed (the bus reconnected,
/// or this subscriber fell behind) the local tier is emptied: an entry
/// that might be stale is worth less than one more shared read.
async fn listen<T>(weak: Weak<Inner<T>>, mut sub: Subscription<Invalidation>)
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let mut connected = sub.connected();
    // Only a reconnection matters: the bus may report "connected" again
    // without having been down.
    let mut was_connected = *connected.borrow_and_update();
    let stats = sub.stats();
    let mut lagged = 0;
    let mut watching = true;
    loop {
        tokio::select! {
            envelope = sub.recv() => {
                let Some(envelope) = envelope else { return };
                let Some(inner) = weak.upgrade() else { return };
                inner.epoch.fetch_add(1, Ordering::AcqRel);
                let now_lagged = stats.snapshot().lagged;
                if envelope.payload.all || envelope.keys.is_empty() || now_lagged != lagged {
                    lagged = now_lagged;
                    inner.local.invalidate_all();
                } else {
                    for key in &envelope.keys {
                        inner.local.invalidate(key.as_str()).await;
                    }
                }
                // Counted once applied: whoever reads the count may rely
                // on the local copy being gone.
                bump(&inner.counters.received);
            }
            changed = connected.changed(), if watching => {
                if changed.is_err() {
                    // Nobody reports the connection any more (the bus is
                    // in process): nothing more to watch.
                    watching = false;
                    continue;
                }
                let now_connected = *connected.borrow_and_update();
                let reconnected = now_connected && !was_connected;
                was_connected = now_connected;
                if reconnected {
                    let Some(inner) = weak.upgrade() else { return };
                    tracing::info!(namespace = %inner.ns, "cache invalidations may have been missed while the bus was down; emptying the local tier");
                    inner.local.invalidate_all();
                }
            }
        }
    }
}

/// Pings the shared tier until it answers, then empties the local tier
/// (invalidations sent during the outage were lost) and ends the outage.
async fn probe<T>(weak: Weak<Inner<T>>)
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.shared.ping().await.is_ok() {
            inner.local.invalidate_all();
            let mut outage = inner.outage.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(ended) = outage.take() {
                tracing::info!(
                    namespace = %inner.ns,
                    after_ms = now_ms() - ended.since,
                    "cache shared tier is back"
                );
            }
            inner.probing.store(false, Ordering::Release);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instances of different releases compare hashes: the function must
    /// never change.
    #[test]
    fn entry_hash_is_stable() {
        assert_eq!(
            format!("{:016x}", entry_hash("k", "v\"x\"")),
            "0ab28a29b3f78b0a"
        );
        assert_ne!(entry_hash("ab", "c"), entry_hash("a", "bc"));
    }

    /// The heartbeat will carry it: camelCase, the hash as text.
    #[test]
    fn stats_are_camel_case_json() {
        let stats = CacheStats {
            namespace: "n".into(),
            hits_local: 3,
            hits_shared: 1,
            content_hash: format!("{:016x}", 1),
            ..CacheStats::default()
        };
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["hitsLocal"], 3);
        assert_eq!(json["contentHash"], "0000000000000001");
        assert_eq!(json["loadMs"]["p95"], 0);
        assert_eq!(json["degradedSince"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<CacheStats>(json).unwrap(), stats);
        assert_eq!(stats.hit_ratio(), 1.0);
    }

    #[test]
    fn namespaces_are_checked() {
        assert!(Namespace::new("fhir.resources_v2-x").is_ok());
        for bad in ["", "a b", "a:b", "a{b", "é"] {
            assert!(Namespace::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Namespace::new("n").unwrap().channel().as_str(), "cache.n");
    }
}
