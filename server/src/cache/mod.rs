//! The services' caches as the dashboard sees them: each instance reports
//! its namespaces' figures in its heartbeat ([`coord::cache::CacheSet`]),
//! the hub reads the heartbeats anyway, and [`Tracker`] turns those
//! lifetime counters into what a page and an alert need — requests per
//! second, hits and requests per minute for the last hour, lifetime totals
//! that never go back when an instance restarts, and whether instances
//! holding the same keys hold the same values. No cache is read for any of
//! it: the cost is the heartbeats', whatever the number of viewers.
//!
//! The dashboard acts on caches through [`Caches`]: a
//! [`CacheAdmin`] over the services' shared tier (their Redis under the
//! deployment's prefix, or the in-process tier the demo's instances use)
//! and the deployment's bus, so an invalidation reaches every instance as
//! a write by one of them would.

pub mod routes;
pub mod vm;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use coord::CoordError;
use coord::cache::{CacheAdmin, CacheStats, LocalShared, RedisShared, SharedTier};
use coord::channels::ChannelBus;
use coord::instance::InstanceId;
use coord::instances::InstanceStatus;

use crate::instances::InstanceFigures;

/// Namespaces the figures keep, by name: a page lists them 50 at a time,
/// and a fleet opening thousands of namespaces costs the hub no more.
pub const MAX_NAMESPACES: usize = 200;

/// Minutes of hits and requests kept per namespace (the live hour; longer
/// ranges come from the metrics history).
pub const MINUTES: usize = 60;

const MINUTE_MS: i64 = 60_000;

/// The services' shared tier and bus, for the dashboard's invalidations and
/// the demo's instances. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Caches {
    shared: Arc<dyn SharedTier>,
    /// Invalidates keys and namespaces everywhere.
    pub admin: CacheAdmin,
}

impl Caches {
    /// The deployment's shared tier (`redis` given: Redis under `prefix`,
    /// where the services' `RedisShared` keeps it; else in process) and
    /// `bus`, acting as `dashboard`.
    pub async fn start(
        redis: Option<(&str, &str)>,
        bus: Arc<dyn ChannelBus>,
        dashboard: InstanceId,
    ) -> Result<Self, CoordError> {
        let shared: Arc<dyn SharedTier> = match redis {
            Some((url, prefix)) => Arc::new(RedisShared::connect(url, prefix).await?),
            None => Arc::new(LocalShared::new()),
        };
        Ok(Self {
            admin: CacheAdmin::new(shared.clone(), Some(bus), dashboard),
            shared,
        })
    }

    /// The shared tier, for caches opened in this process (the demo's).
    pub fn shared(&self) -> Arc<dyn SharedTier> {
        self.shared.clone()
    }
}

/// One instance's figures for one namespace, as of its last heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceCache {
    /// The instance.
    pub instance: String,
    /// Live, stale or gone.
    pub status: InstanceStatus,
    /// What it reported.
    pub stats: CacheStats,
    /// Reads per second between its last two heartbeats, once two were
    /// seen.
    pub requests_per_s: Option<f64>,
    /// It holds the same keys as another live instance, so its values
    /// were compared.
    pub compared: bool,
    /// It holds the same keys as other instances but other values.
    pub drifted: bool,
    /// Its hits and reads per minute of the last hour, oldest first.
    pub minutes: Vec<CacheMinute>,
}

impl InstanceCache {
    /// Its series' subject in the metrics history: `<namespace>/<id>`
    /// (a namespace has no `/`, so the first one separates them).
    pub fn subject(&self) -> String {
        format!("{}/{}", self.stats.namespace, self.instance)
    }

    /// Reads over its last hour.
    pub fn reads_in_hour(&self) -> u64 {
        self.minutes.iter().map(|m| m.requests).sum()
    }

    /// Whether its figures speak for now (a stale or gone instance's are
    /// its last words).
    pub fn is_live(&self) -> bool {
        self.status == InstanceStatus::Live
    }
}

/// Hits and reads of one namespace in one minute, over every instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheMinute {
    /// Start of the minute (ms since the epoch).
    pub minute_ms: i64,
    /// Reads answered by a tier.
    pub hits: u64,
    /// Every read.
    pub requests: u64,
}

/// Reads of a namespace since the dashboard started, by outcome: counters
/// that only grow (an instance that restarts starts its own from zero; the
/// tracker adds what it did since).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheTotals {
    /// Answered by an instance's local tier.
    pub hits_local: u64,
    /// Answered by the shared tier.
    pub hits_shared: u64,
    /// Answered by neither.
    pub misses: u64,
}

/// Whether the instances of a namespace hold the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    /// Every group of live instances holding the same keys (at least two
    /// instances in one group) also holds the same values.
    Matches {
        /// Instances compared.
        compared: usize,
    },
    /// These instances hold the same keys as others of the namespace, but
    /// other values: they missed an invalidation.
    Drifted {
        /// The instances that differ from the most common value (every one
        /// of the group when no value is the most common).
        instances: Vec<String>,
    },
    /// No two live instances hold the same keys (each holds what it read),
    /// so their hashes say nothing.
    NotComparable,
}

/// Share of reads a tier answered over the last `minutes` closed minutes
/// before `now`, with the reads, when there were any: the open minute may
/// hold a single heartbeat's reads, so it never counts.
pub fn closed_hit_ratio(minutes: &[CacheMinute], now: i64, count: i64) -> Option<(f64, u64)> {
    let current = now.div_euclid(MINUTE_MS) * MINUTE_MS;
    let from = current.saturating_sub(count.saturating_mul(MINUTE_MS));
    let (hits, all) = minutes
        .iter()
        .filter(|m| m.minute_ms >= from && m.minute_ms < current)
        .fold((0u64, 0u64), |(h, a), m| {
            (h.saturating_add(m.hits), a.saturating_add(m.requests))
        });
    (all > 0).then(|| (hits as f64 / all as f64, all))
}

/// One namespace over every instance reporting it.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceFigures {
    /// The namespace.
    pub name: String,
    /// Its shared tier's kind, as the first instance reports it.
    pub backend: String,
    /// Every instance reporting it, by id.
    pub instances: Vec<InstanceCache>,
    /// Reads since the dashboard started.
    pub totals: CacheTotals,
    /// The last hour, oldest first (minutes with reads only).
    pub minutes: Vec<CacheMinute>,
    /// Whether instances agree.
    pub agreement: Agreement,
}

impl NamespaceFigures {
    fn live(&self) -> impl Iterator<Item = &InstanceCache> {
        self.instances.iter().filter(|i| i.is_live())
    }

    /// Reads per second over the live instances, once known.
    pub fn requests_per_s(&self) -> Option<f64> {
        let rates: Vec<f64> = self.live().filter_map(|i| i.requests_per_s).collect();
        (!rates.is_empty()).then(|| rates.iter().sum())
    }

    /// Share of reads a tier answered over the live instances' lifetimes.
    pub fn hit_ratio(&self) -> Option<f64> {
        let (hits, all) = self.live().fold((0u64, 0u64), |(h, a), i| {
            let hits = i.stats.hits_local + i.stats.hits_shared;
            (h + hits, a + hits + i.stats.misses)
        });
        (all > 0).then(|| hits as f64 / all as f64)
    }

    /// Share of reads a tier answered in the last `minutes` closed minutes
    /// before `now` (the alert's window), when there were reads.
    pub fn recent_hit_ratio(&self, now: i64, minutes: i64) -> Option<(f64, u64)> {
        closed_hit_ratio(&self.minutes, now, minutes)
    }

    /// The worst live instance's p95 load time (ms), once one loaded.
    pub fn load_p95_ms(&self) -> Option<u64> {
        self.live()
            .filter(|i| i.stats.load_ms.count > 0)
            .map(|i| i.stats.load_ms.p95)
            .max()
    }

    /// A figure summed over the live instances.
    pub fn sum(&self, of: impl Fn(&CacheStats) -> u64) -> u64 {
        self.live().map(|i| of(&i.stats)).sum()
    }

    /// Live instances whose shared tier is unreachable.
    pub fn degraded(&self) -> Vec<&InstanceCache> {
        self.live()
            .filter(|i| i.stats.degraded_since.is_some())
            .collect()
    }
}

/// Every namespace, as of a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheFigures {
    /// The first [`MAX_NAMESPACES`] namespaces by name.
    pub namespaces: Vec<NamespaceFigures>,
    /// Namespaces left out past the cap.
    pub omitted: usize,
}

impl CacheFigures {
    /// One namespace, if any instance reports it.
    pub fn namespace(&self, name: &str) -> Option<&NamespaceFigures> {
        self.namespaces
            .binary_search_by(|n| n.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.namespaces[i])
    }
}

/// What the tracker last saw of one (instance, namespace).
#[derive(Debug, Clone)]
struct Seen {
    /// The content hash it held, and the heartbeat it was first seen at,
    /// when its group disagreed with it.
    suspect: Option<(String, i64)>,
    heartbeat_at: i64,
    totals: CacheTotals,
    rate: Option<f64>,
    generation: u64,
    minutes: VecDeque<CacheMinute>,
}

#[derive(Debug, Default)]
struct NamespaceState {
    totals: CacheTotals,
    minutes: VecDeque<CacheMinute>,
    generation: u64,
}

/// Turns heartbeats' lifetime counters into rates, minutes and totals.
/// Fed every snapshot; a heartbeat is counted once (by its time), so
/// snapshots taken more often than instances beat change nothing.
#[derive(Debug, Default)]
pub struct Tracker {
    seen: HashMap<(String, String), Seen>,
    namespaces: BTreeMap<String, NamespaceState>,
    generation: u64,
    /// What the last figures were built from, and the figures.
    last: Option<(Beats, i64, Arc<CacheFigures>)>,
}

/// Each instance's id, last heartbeat and status: while these and the
/// minute stay the same, so do the figures.
type Beats = Vec<(String, i64, InstanceStatus)>;

fn totals_of(stats: &CacheStats) -> CacheTotals {
    CacheTotals {
        hits_local: stats.hits_local,
        hits_shared: stats.hits_shared,
        misses: stats.misses,
    }
}

/// What happened between two readings of one instance's counters; a
/// counter that went back means the instance restarted, and all it has is
/// new.
fn delta(old: CacheTotals, new: CacheTotals) -> CacheTotals {
    let restarted = new.hits_local < old.hits_local
        || new.hits_shared < old.hits_shared
        || new.misses < old.misses;
    if restarted {
        new
    } else {
        CacheTotals {
            hits_local: new.hits_local - old.hits_local,
            hits_shared: new.hits_shared - old.hits_shared,
            misses: new.misses - old.misses,
        }
    }
}

impl Tracker {
    /// The figures for a snapshot taken at `now`: the last ones again when
    /// no instance beat or changed status and the minute is the same, as
    /// most snapshots (taken for queue changes) find; else
    /// [`observe`](Self::observe)'s.
    pub fn figures(&mut self, instances: &InstanceFigures, now: i64) -> Arc<CacheFigures> {
        let key: Beats = instances
            .instances
            .iter()
            .map(|f| {
                let report = &f.view.report;
                (report.id.to_string(), report.heartbeat_at, f.status())
            })
            .collect();
        let minute = now.div_euclid(MINUTE_MS);
        if let Some((last_key, last_minute, figures)) = &self.last
            && *last_key == key
            && *last_minute == minute
        {
            return figures.clone();
        }
        let figures = Arc::new(self.observe(instances, now));
        self.last = Some((key, minute, figures.clone()));
        figures
    }

    /// Takes in the instances of a snapshot taken at `now`.
    pub fn observe(&mut self, instances: &InstanceFigures, now: i64) -> CacheFigures {
        self.generation += 1;
        let generation = self.generation;
        let mut by_namespace: BTreeMap<String, Vec<InstanceCache>> = BTreeMap::new();
        for facts in &instances.instances {
            let report = &facts.view.report;
            // A report is trusted no further than a well-behaved writer
            // sends: at most 64 namespaces, each a valid name (names go
            // into links, form actions and history subjects).
            for stats in report
                .caches
                .iter()
                .take(coord::instances::MAX_REPORTED_CACHES)
                .filter(|s| coord::cache::Namespace::new(s.namespace.as_str()).is_ok())
            {
                let key = (report.id.to_string(), stats.namespace.clone());
                let now_totals = totals_of(stats);
                let ns = self.namespaces.entry(stats.namespace.clone()).or_default();
                ns.generation = generation;
                let mut minutes = self
                    .seen
                    .get_mut(&key)
                    .map(|s| std::mem::take(&mut s.minutes))
                    .unwrap_or_default();
                let rate = match self.seen.get(&key) {
                    Some(seen) if report.heartbeat_at > seen.heartbeat_at => {
                        let d = delta(seen.totals, now_totals);
                        let reads = d.hits_local + d.hits_shared + d.misses;
                        ns.totals.hits_local += d.hits_local;
                        ns.totals.hits_shared += d.hits_shared;
                        ns.totals.misses += d.misses;
                        let hits = d.hits_local + d.hits_shared;
                        add_minute(&mut ns.minutes, report.heartbeat_at, hits, reads);
                        add_minute(&mut minutes, report.heartbeat_at, hits, reads);
                        let secs = (report.heartbeat_at - seen.heartbeat_at) as f64 / 1000.0;
                        Some(reads as f64 / secs)
                    }
                    Some(seen) => seen.rate,
                    // The first heartbeat seen carries the instance's
                    // whole life: a rate starts with the next one.
                    None => None,
                };
                let oldest = (now.div_euclid(MINUTE_MS) - MINUTES as i64) * MINUTE_MS;
                while minutes.front().is_some_and(|m| m.minute_ms <= oldest) {
                    minutes.pop_front();
                }
                let kept: Vec<CacheMinute> = minutes.iter().copied().collect();
                let suspect = self.seen.get(&key).and_then(|s| s.suspect.clone());
                self.seen.insert(
                    key,
                    Seen {
                        suspect,
                        heartbeat_at: report.heartbeat_at,
                        totals: now_totals,
                        rate,
                        generation,
                        minutes,
                    },
                );
                by_namespace
                    .entry(stats.namespace.clone())
                    .or_default()
                    .push(InstanceCache {
                        instance: report.id.to_string(),
                        status: facts.status(),
                        stats: stats.clone(),
                        requests_per_s: rate,
                        compared: false,
                        drifted: false,
                        minutes: kept,
                    });
            }
        }
        self.seen.retain(|_, s| s.generation == generation);
        self.namespaces.retain(|_, n| n.generation == generation);
        let oldest = (now.div_euclid(MINUTE_MS) - MINUTES as i64) * MINUTE_MS;
        for ns in self.namespaces.values_mut() {
            while ns.minutes.front().is_some_and(|m| m.minute_ms <= oldest) {
                ns.minutes.pop_front();
            }
        }
        let omitted = by_namespace.len().saturating_sub(MAX_NAMESPACES);
        let seen = &mut self.seen;
        let mut confirm = |cache: &InstanceCache, suspect: bool| -> bool {
            let key = (cache.instance.clone(), cache.stats.namespace.clone());
            let Some(s) = seen.get_mut(&key) else {
                return false;
            };
            if !suspect {
                s.suspect = None;
                return false;
            }
            match &s.suspect {
                Some((hash, at)) if *hash == cache.stats.content_hash => s.heartbeat_at > *at,
                _ => {
                    s.suspect = Some((cache.stats.content_hash.clone(), s.heartbeat_at));
                    false
                }
            }
        };
        let namespaces = by_namespace
            .into_iter()
            .take(MAX_NAMESPACES)
            .map(|(name, mut instances)| {
                instances.sort_by(|a, b| a.instance.cmp(&b.instance));
                let agreement = agreement(&mut instances, &mut confirm);
                let state = self.namespaces.get(&name);
                NamespaceFigures {
                    backend: instances
                        .first()
                        .map(|i| i.stats.backend.clone())
                        .unwrap_or_default(),
                    totals: state.map(|s| s.totals).unwrap_or_default(),
                    minutes: state
                        .map(|s| s.minutes.iter().copied().collect())
                        .unwrap_or_default(),
                    agreement,
                    instances,
                    name,
                }
            })
            .collect();
        CacheFigures {
            namespaces,
            omitted,
        }
    }
}

fn add_minute(minutes: &mut VecDeque<CacheMinute>, at: i64, hits: u64, requests: u64) {
    if requests == 0 {
        return;
    }
    let minute_ms = at.div_euclid(MINUTE_MS) * MINUTE_MS;
    // Heartbeats of several instances arrive in any order: find the
    // minute from the end (it is almost always the last or next one).
    match minutes.iter().rposition(|m| m.minute_ms <= minute_ms) {
        Some(i) if minutes[i].minute_ms == minute_ms => {
            minutes[i].hits += hits;
            minutes[i].requests += requests;
        }
        found => {
            let at = found.map_or(0, |i| i + 1);
            minutes.insert(
                at,
                CacheMinute {
                    minute_ms,
                    hits,
                    requests,
                },
            );
        }
    }
}

/// Groups live instances by the keys they hold; within a group of two or
/// more, those whose values differ from the group's most common hash are
/// suspects, and `confirm` (told of every instance, suspect or not) says
/// which are drifted: those that kept the same differing value across two
/// of their own heartbeats. Heartbeats are seconds apart, so a write
/// landing between two instances' beats makes them differ for a beat;
/// an instance that heard the invalidation has another hash by its next
/// one, and a deaf one keeps its stale copy.
fn agreement(
    instances: &mut [InstanceCache],
    confirm: &mut impl FnMut(&InstanceCache, bool) -> bool,
) -> Agreement {
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, cache) in instances.iter().enumerate() {
        if cache.is_live() && cache.stats.entries > 0 && !cache.stats.keys_hash.is_empty() {
            groups.entry(&cache.stats.keys_hash).or_default().push(i);
        }
    }
    let mut compared = Vec::new();
    let mut drifted = Vec::new();
    for members in groups.values().filter(|m| m.len() > 1) {
        compared.extend_from_slice(members);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in members {
            *counts.entry(&instances[i].stats.content_hash).or_default() += 1;
        }
        if counts.len() < 2 {
            continue;
        }
        // The most common hash speaks for the group; without one (two
        // instances that differ, a tie) nobody can tell which is stale, and
        // every member is reported.
        let top = counts.values().copied().max().unwrap_or(0);
        let common: Vec<&str> = counts
            .iter()
            .filter(|(_, n)| **n == top)
            .map(|(h, _)| *h)
            .collect();
        let common = (common.len() == 1).then(|| common[0].to_owned());
        drifted.extend(members.iter().copied().filter(|&i| {
            common
                .as_deref()
                .is_none_or(|h| instances[i].stats.content_hash != h)
        }));
    }
    for &i in &compared {
        instances[i].compared = true;
    }
    let compared = compared.len();
    let mut suspect = vec![false; instances.len()];
    for i in drifted {
        suspect[i] = true;
    }
    let drifted: Vec<usize> = (0..instances.len())
        .filter(|&i| confirm(&instances[i], suspect[i]))
        .collect();
    if compared == 0 {
        return Agreement::NotComparable;
    }
    if drifted.is_empty() {
        return Agreement::Matches { compared };
    }
    for &i in &drifted {
        instances[i].drifted = true;
    }
    Agreement::Drifted {
        instances: drifted
            .into_iter()
            .map(|i| instances[i].instance.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instances::InstanceFacts;
    use coord::instances::{InstanceReport, InstanceView, SyncReport};

    const T: i64 = 1_800_000_000_000;

    fn stats(ns: &str, hits: u64, misses: u64, keys: &str, content: &str) -> CacheStats {
        CacheStats {
            namespace: ns.into(),
            backend: "redis".into(),
            hits_local: hits,
            misses,
            entries: 3,
            keys_hash: keys.into(),
            content_hash: content.into(),
            ..CacheStats::default()
        }
    }

    fn instance(id: &str, at: i64, caches: Vec<CacheStats>) -> InstanceFacts {
        InstanceFacts {
            view: InstanceView {
                report: InstanceReport {
                    id: InstanceId::new(id).unwrap(),
                    role: "api".into(),
                    version: "1".into(),
                    started_at: T - 60_000,
                    heartbeat_at: at,
                    sync: SyncReport::default(),
                    caches,
                },
                status: InstanceStatus::Live,
                heartbeat_age_ms: 0,
            },
            uptime_ms: 0,
            lag_changes: None,
            lag_ms: None,
            hash_matches: None,
        }
    }

    fn figures(instances: Vec<InstanceFacts>) -> InstanceFigures {
        InstanceFigures {
            instances,
            ..InstanceFigures::default()
        }
    }

    #[test]
    fn heartbeats_become_rates_minutes_and_totals_counted_once() {
        let mut tracker = Tracker::default();
        let first = tracker.observe(
            &figures(vec![instance(
                "a",
                T,
                vec![stats("users", 100, 20, "k", "c")],
            )]),
            T,
        );
        let ns = first.namespace("users").unwrap();
        assert_eq!(ns.requests_per_s(), None, "one heartbeat has no rate");
        assert_eq!(ns.totals, CacheTotals::default(), "its past is not ours");
        assert_eq!(ns.hit_ratio(), Some(100.0 / 120.0));

        let next = figures(vec![instance(
            "a",
            T + 5_000,
            vec![stats("users", 140, 30, "k", "c")],
        )]);
        let second = tracker.observe(&next, T + 5_000);
        // The same heartbeat seen by a second snapshot changes nothing.
        let again = tracker.observe(&next, T + 5_500);
        assert_eq!(second, again);
        let ns = again.namespace("users").unwrap();
        assert_eq!(ns.requests_per_s(), Some(10.0));
        assert_eq!(ns.totals.hits_local, 40);
        assert_eq!(ns.totals.misses, 10);
        assert_eq!(
            ns.minutes,
            vec![CacheMinute {
                minute_ms: (T + 5_000) / 60_000 * 60_000,
                hits: 40,
                requests: 50,
            }]
        );

        // A restart: the counters start again and the totals keep growing.
        let restarted = tracker.observe(
            &figures(vec![instance(
                "a",
                T + 10_000,
                vec![stats("users", 5, 1, "k", "c")],
            )]),
            T + 10_000,
        );
        assert_eq!(restarted.namespace("users").unwrap().totals.hits_local, 45);

        // A namespace nobody reports any more is forgotten.
        let gone = tracker.observe(
            &figures(vec![instance("a", T + 15_000, vec![])]),
            T + 15_000,
        );
        assert!(gone.namespaces.is_empty());
    }

    #[test]
    fn instances_holding_the_same_keys_must_hold_the_same_values() {
        let mut tracker = Tracker::default();
        let agreed = tracker.observe(
            &figures(vec![
                instance("a", T, vec![stats("users", 1, 1, "k1", "c1")]),
                instance("b", T, vec![stats("users", 1, 1, "k1", "c1")]),
                instance("c", T, vec![stats("users", 1, 1, "k2", "c9")]),
            ]),
            T,
        );
        assert_eq!(
            agreed.namespace("users").unwrap().agreement,
            Agreement::Matches { compared: 2 }
        );
        let flags: Vec<bool> = agreed
            .namespace("users")
            .unwrap()
            .instances
            .iter()
            .map(|i| i.compared)
            .collect();
        assert_eq!(flags, [true, true, false], "c holds other keys");
        // c differs: a suspect at its first heartbeat (a write may have
        // landed between the beats), drifted once it kept the stale value
        // through its next one.
        let at = |t: i64, c: &str| {
            figures(vec![
                instance("a", t, vec![stats("users", 1, 1, "k1", "c1")]),
                instance("b", t, vec![stats("users", 1, 1, "k1", "c1")]),
                instance("c", t, vec![stats("users", 1, 1, "k1", c)]),
            ])
        };
        let first = tracker.observe(&at(T + 1_000, "c2"), T + 1_000);
        assert_eq!(
            first.namespace("users").unwrap().agreement,
            Agreement::Matches { compared: 3 },
            "one heartbeat apart is not drift yet"
        );
        // The same heartbeat seen again changes nothing.
        let again = tracker.observe(&at(T + 1_000, "c2"), T + 1_500);
        assert_eq!(again, first);
        let drifted = tracker.observe(&at(T + 2_000, "c2"), T + 2_000);
        let ns = drifted.namespace("users").unwrap();
        assert_eq!(
            ns.agreement,
            Agreement::Drifted {
                instances: vec!["c".into()]
            }
        );
        assert!(ns.instances[2].drifted && !ns.instances[0].drifted);
        // It hears of the write and agrees again: drift ends.
        let healed = tracker.observe(&at(T + 3_000, "c1"), T + 3_000);
        assert_eq!(
            healed.namespace("users").unwrap().agreement,
            Agreement::Matches { compared: 3 }
        );
        // A write between two instances' beats: c differs once, then holds
        // another value (it heard the write): never drift.
        tracker.observe(&at(T + 4_000, "c3"), T + 4_000);
        let moved = tracker.observe(&at(T + 5_000, "c1"), T + 5_000);
        assert!(!moved.namespace("users").unwrap().instances[2].drifted);

        let tie = |t: i64| {
            figures(vec![
                instance("a", t, vec![stats("users", 1, 1, "k1", "c1")]),
                instance("b", t, vec![stats("users", 1, 1, "k1", "c2")]),
            ])
        };
        tracker.observe(&tie(T + 6_000), T + 6_000);
        let tie = tracker.observe(&tie(T + 7_000), T + 7_000);
        assert_eq!(
            tie.namespace("users").unwrap().agreement,
            Agreement::Drifted {
                instances: vec!["a".into(), "b".into()]
            },
            "two that differ: either may be the stale one"
        );
        let apart = tracker.observe(
            &figures(vec![
                instance("a", T + 8_000, vec![stats("users", 1, 1, "k1", "c1")]),
                instance("b", T + 8_000, vec![stats("users", 1, 1, "k2", "c2")]),
            ]),
            T + 8_000,
        );
        assert_eq!(
            apart.namespace("users").unwrap().agreement,
            Agreement::NotComparable
        );
    }

    #[test]
    fn figures_are_rebuilt_only_when_a_heartbeat_or_the_minute_changes() {
        let mut tracker = Tracker::default();
        let at = |t: i64, hits: u64| {
            figures(vec![instance(
                "a",
                t,
                vec![stats("users", hits, 1, "k", "c")],
            )])
        };
        let first = tracker.figures(&at(T, 1), T);
        assert!(Arc::ptr_eq(&first, &tracker.figures(&at(T, 1), T + 10)));
        let beat = tracker.figures(&at(T + 5_000, 3), T + 5_000);
        assert!(!Arc::ptr_eq(&first, &beat));
        assert_eq!(beat.namespace("users").unwrap().totals.hits_local, 2);
        let next_minute = tracker.figures(&at(T + 5_000, 3), T + 60_000);
        assert!(!Arc::ptr_eq(&beat, &next_minute));
        assert_eq!(*beat, *next_minute, "nothing new, rebuilt for the minute");
    }

    #[test]
    fn recent_hit_ratio_counts_closed_minutes_of_the_window() {
        let m = |i: i64, hits, requests| CacheMinute {
            minute_ms: T / 60_000 * 60_000 + i * 60_000,
            hits,
            requests,
        };
        let ns = NamespaceFigures {
            name: "users".into(),
            backend: "redis".into(),
            instances: Vec::new(),
            totals: CacheTotals::default(),
            minutes: vec![m(0, 100, 100), m(1, 10, 40), m(2, 30, 60), m(3, 0, 10)],
            agreement: Agreement::NotComparable,
        };
        // At minute 3: the two closed minutes before it are 1 and 2.
        let now = T / 60_000 * 60_000 + 3 * 60_000 + 5;
        assert_eq!(ns.recent_hit_ratio(now, 2), Some((0.4, 100)));
        assert_eq!(ns.recent_hit_ratio(now + 3_600_000, 2), None);
    }

    #[test]
    fn namespaces_are_capped() {
        let mut tracker = Tracker::default();
        // Four instances of 52 namespaces each: 208 in all.
        let instances = (0..4)
            .map(|n| {
                let caches = (0..52)
                    .map(|i| stats(&format!("ns{n}-{i:02}"), 1, 1, "k", "c"))
                    .collect();
                instance(&format!("api-{n}"), T, caches)
            })
            .collect();
        let out = tracker.observe(&figures(instances), T);
        assert_eq!(out.namespaces.len(), MAX_NAMESPACES);
        assert_eq!(out.omitted, 8);
    }

    #[test]
    fn reports_are_trusted_only_as_far_as_a_writer_sends() {
        let mut tracker = Tracker::default();
        let mut caches: Vec<CacheStats> = (0..100)
            .map(|i| stats(&format!("ns{i:03}"), 1, 1, "k", "c"))
            .collect();
        caches.insert(0, stats("bad name/<x>", 1, 1, "k", "c"));
        let out = tracker.observe(&figures(vec![instance("a", T, caches)]), T);
        assert_eq!(
            out.namespaces.len(),
            coord::instances::MAX_REPORTED_CACHES - 1
        );
        assert!(out.namespace("bad name/<x>").is_none());
    }
}
