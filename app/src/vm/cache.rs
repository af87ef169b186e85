//! View model of the Cache page (`/cache`): the services' cache namespaces
//! with their hit ratio, traffic, load time, size and agreement across
//! instances, and one chosen namespace instance by instance with its hit
//! ratio over time and the invalidate actions.
//!
//! Plain data filled by the server from the instances' heartbeats, so the
//! page renders and tests without a cache.

use crate::vm::queues::ChartRange;

/// Namespaces the page lists at a time.
pub const NAMESPACES_PER_PAGE: usize = 50;

/// Instances listed under the chosen namespace at most.
pub const INSTANCES_SHOWN: usize = 50;

/// Whether the instances of a namespace hold the same values, for a badge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgreementVm {
    /// `matches`, `drifted` or `not-comparable` (the badge's class too).
    pub state: &'static str,
    /// The badge's words.
    pub label: String,
    /// What it means, for the badge's title.
    pub detail: String,
}

/// One namespace over every instance reporting it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceRow {
    /// The namespace.
    pub name: String,
    /// Shared tier (`redis`, `local`).
    pub backend: String,
    /// Live instances reporting it, and all of them.
    pub live: usize,
    /// Every instance reporting it.
    pub instances: usize,
    /// Hit ratio over the instances' lifetimes (`93.1%`, `–`).
    pub hit_ratio: String,
    /// Hit ratio over the last closed minute with reads.
    pub recent_hit_ratio: String,
    /// Reads per second (`12.5/s`, `–`).
    pub requests_per_s: String,
    /// Worst p95 load time (`18 ms`, `–`).
    pub load_p95: String,
    /// Entries over the instances' local tiers.
    pub entries: u64,
    /// Their approximate memory (`1.2 MiB`).
    pub memory: String,
    /// Local entries evicted to respect the bound.
    pub evictions: u64,
    /// Invalidations sent and received (`3 sent · 6 received`).
    pub invalidations: String,
    /// Instances whose shared tier is down.
    pub degraded: usize,
    /// Agreement across instances.
    pub agreement: AgreementVm,
    /// The namespace's own view.
    pub href: String,
}

/// One instance's figures for the chosen namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheInstanceRow {
    /// The instance.
    pub instance: String,
    /// `live`, `stale` or `gone`.
    pub status: String,
    /// Its hit ratio (`93.1%`).
    pub hit_ratio: String,
    /// Hits in its local tier.
    pub hits_local: u64,
    /// Hits in the shared tier.
    pub hits_shared: u64,
    /// Reads neither tier answered.
    pub misses: u64,
    /// Reads per second.
    pub requests_per_s: String,
    /// p95 load time.
    pub load_p95: String,
    /// Loads that failed.
    pub load_errors: u64,
    /// Local entries.
    pub entries: u64,
    /// Their approximate memory.
    pub memory: String,
    /// Evicted to respect the bound.
    pub evictions: u64,
    /// Invalidations sent and received.
    pub invalidations: String,
    /// Content hash, shortened.
    pub hash: String,
    /// It holds the same keys as others but other values.
    pub drifted: bool,
    /// Why its shared tier is down, when it is.
    pub degraded: Option<String>,
}

/// Hits and misses per bucket of the chosen namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HitChartVm {
    /// The range shown.
    pub range: ChartRange,
    /// Bucket starts (ms), oldest first.
    pub minutes: Vec<i64>,
    /// Hits per bucket.
    pub hits: Vec<u64>,
    /// Misses per bucket.
    pub misses: Vec<u64>,
    /// The range's hit ratio in words (`93.1% of 12,400 reads`).
    pub summary: String,
    /// Why the history could not be read, when it could not.
    pub error: Option<String>,
}

/// The chosen namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceDetailVm {
    /// Its row (the same figures as in the list).
    pub row: NamespaceRow,
    /// Its instances, by id (at most [`INSTANCES_SHOWN`]).
    pub instances: Vec<CacheInstanceRow>,
    /// Instances left out.
    pub more_instances: usize,
    /// Its hit ratio over the chosen range.
    pub chart: HitChartVm,
}

/// The Cache page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheVm {
    /// This page of namespaces, by name.
    pub namespaces: Vec<NamespaceRow>,
    /// Namespaces in all (reported, within the tracked cap).
    pub total: usize,
    /// Offset of this page.
    pub offset: usize,
    /// Namespaces past the tracked cap, not listed at all.
    pub omitted: usize,
    /// The chosen namespace, when one is chosen.
    pub detail: Option<NamespaceDetailVm>,
    /// The namespace asked for (`?ns=`), also when nobody reports it.
    pub chosen: Option<String>,
    /// The instance whose hit ratio is charted (`?instance=`), else the
    /// namespace's is.
    pub chosen_instance: Option<String>,
    /// Whether instances are watched at all.
    pub watching: bool,
    /// The chart's range, kept in the page's links.
    pub range: ChartRange,
}

impl CacheVm {
    /// The chosen namespace's chart of `instance` (or of the namespace,
    /// `None`) at `range`.
    pub fn chart_url(&self, instance: Option<&str>, range: ChartRange) -> String {
        let mut url = format!(
            "/cache?ns={}",
            crate::format::encode_query(self.chosen.as_deref().unwrap_or_default())
        );
        if let Some(instance) = instance {
            url.push_str(&format!(
                "&instance={}",
                crate::format::encode_query(instance)
            ));
        }
        if range != ChartRange::Hour {
            url.push_str(&format!("&range={}", range.as_str()));
        }
        url
    }

    /// The page's URL for `offset` and the chosen namespace and range.
    pub fn url(&self, offset: usize) -> String {
        let mut query = Vec::new();
        if let Some(ns) = &self.chosen {
            query.push(format!("ns={}", crate::format::encode_query(ns)));
            if let Some(instance) = &self.chosen_instance {
                query.push(format!(
                    "instance={}",
                    crate::format::encode_query(instance)
                ));
            }
        }
        if self.range != ChartRange::Hour {
            query.push(format!("range={}", self.range.as_str()));
        }
        if offset > 0 {
            query.push(format!("offset={offset}"));
        }
        if query.is_empty() {
            "/cache".to_owned()
        } else {
            format!("/cache?{}", query.join("&"))
        }
    }
}
