//! The Cache page's view model from the hub's cache figures.

use app::{
    AgreementVm, CacheInstanceRow, CacheVm, HitChartVm, INSTANCES_SHOWN, NAMESPACES_PER_PAGE,
    NamespaceDetailVm, NamespaceRow,
};
use coord::cache::CacheStats;

use super::{Agreement, CacheFigures, InstanceCache, NamespaceFigures};

/// The page's choices, from its query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct CacheQuery {
    /// The namespace shown instance by instance.
    #[serde(default)]
    pub ns: Option<String>,
    /// The instance whose hit ratio is charted (else the namespace's).
    #[serde(default)]
    pub instance: Option<String>,
    /// The chart's range (`1h`, `24h`, `7d`).
    #[serde(default)]
    pub range: Option<String>,
    /// The first namespace listed.
    #[serde(default)]
    pub offset: usize,
}

impl CacheQuery {
    /// The chosen namespace, an empty one meaning none.
    pub fn ns(&self) -> Option<&str> {
        self.ns.as_deref().map(str::trim).filter(|n| !n.is_empty())
    }

    /// The charted instance, when a namespace is chosen too.
    pub fn instance(&self) -> Option<&str> {
        self.ns()?;
        self.instance.as_deref().filter(|i| !i.trim().is_empty())
    }
}

fn percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn per_second(rate: Option<f64>) -> String {
    match rate {
        None => "–".to_owned(),
        Some(r) if r >= 100.0 => format!("{}/s", app::format_count(r.round() as u64)),
        Some(r) => format!("{r:.1}/s"),
    }
}

fn load_p95(ms: Option<u64>) -> String {
    ms.map_or_else(
        || "–".to_owned(),
        |ms| format!("{} ms", app::format_count(ms)),
    )
}

fn invalidations(sent: u64, received: u64) -> String {
    format!(
        "{} sent · {} received",
        app::format_count(sent),
        app::format_count(received)
    )
}

/// The agreement badge.
pub fn agreement(agreement: &Agreement) -> AgreementVm {
    match agreement {
        Agreement::Matches { compared } => AgreementVm {
            state: "matches",
            label: "matches".into(),
            detail: format!(
                "{} instances holding the same keys hold the same values",
                app::format_count(*compared as u64)
            ),
        },
        Agreement::Drifted { instances } => AgreementVm {
            state: "drifted",
            label: "drifted".into(),
            detail: format!(
                "{} {} the same keys as other instances with other values: an invalidation was missed",
                instances.join(", "),
                if instances.len() == 1 {
                    "holds"
                } else {
                    "hold"
                },
            ),
        },
        Agreement::NotComparable => AgreementVm {
            state: "unknown",
            label: "not comparable".into(),
            detail: "no two live instances hold the same keys (each holds what it read)".into(),
        },
    }
}

/// One namespace's row, `now` for the last closed minute's hit ratio.
pub fn row(ns: &NamespaceFigures, now: i64) -> NamespaceRow {
    NamespaceRow {
        name: ns.name.clone(),
        backend: ns.backend.clone(),
        live: ns.instances.iter().filter(|i| i.is_live()).count(),
        instances: ns.instances.len(),
        hit_ratio: percent(ns.hit_ratio()),
        recent_hit_ratio: percent(ns.recent_hit_ratio(now, 1).map(|(r, _)| r)),
        requests_per_s: per_second(ns.requests_per_s()),
        load_p95: load_p95(ns.load_p95_ms()),
        entries: ns.sum(|s| s.entries),
        memory: app::format_bytes(ns.sum(|s| s.bytes)),
        evictions: ns.sum(|s| s.evictions),
        invalidations: invalidations(
            ns.sum(|s| s.invalidations_sent),
            ns.sum(|s| s.invalidations_received),
        ),
        degraded: ns.degraded().len(),
        agreement: agreement(&ns.agreement),
        href: format!("/cache?ns={}", app::encode_query(&ns.name)),
    }
}

/// coord's hit ratio, unknown (not 0) before the first read.
fn ratio_of(stats: &CacheStats) -> Option<f64> {
    (stats.hits_local + stats.hits_shared + stats.misses > 0).then(|| stats.hit_ratio())
}

fn instance_row(cache: &InstanceCache) -> CacheInstanceRow {
    let s = &cache.stats;
    CacheInstanceRow {
        instance: cache.instance.clone(),
        status: cache.status.to_string(),
        hit_ratio: percent(ratio_of(s)),
        hits_local: s.hits_local,
        hits_shared: s.hits_shared,
        misses: s.misses,
        requests_per_s: per_second(cache.requests_per_s),
        load_p95: load_p95((s.load_ms.count > 0).then_some(s.load_ms.p95)),
        load_errors: s.load_errors,
        entries: s.entries,
        memory: app::format_bytes(s.bytes),
        evictions: s.evictions,
        invalidations: invalidations(s.invalidations_sent, s.invalidations_received),
        hash: s.content_hash.chars().take(8).collect(),
        drifted: cache.drifted,
        degraded: s.degraded_reason.clone(),
    }
}

/// The page from the figures (none when instances are not watched), the
/// chart's range and the chosen namespace's chart, read by the caller.
pub fn page(
    figures: Option<&CacheFigures>,
    query: &CacheQuery,
    range: app::ChartRange,
    chart: HitChartVm,
    now: i64,
) -> CacheVm {
    let Some(figures) = figures else {
        return CacheVm {
            chosen: query.ns().map(str::to_owned),
            chosen_instance: query.instance().map(str::to_owned),
            range,
            ..CacheVm::default()
        };
    };
    let total = figures.namespaces.len();
    let offset = query
        .offset
        .min(total.saturating_sub(1) / NAMESPACES_PER_PAGE * NAMESPACES_PER_PAGE);
    let detail = query
        .ns()
        .and_then(|name| figures.namespace(name))
        .map(|ns| NamespaceDetailVm {
            row: row(ns, now),
            instances: ns
                .instances
                .iter()
                .take(INSTANCES_SHOWN)
                .map(instance_row)
                .collect(),
            more_instances: ns.instances.len().saturating_sub(INSTANCES_SHOWN),
            chart,
        });
    CacheVm {
        namespaces: figures
            .namespaces
            .iter()
            .skip(offset)
            .take(NAMESPACES_PER_PAGE)
            .map(|ns| row(ns, now))
            .collect(),
        total,
        offset,
        omitted: figures.omitted,
        detail,
        chosen: query.ns().map(str::to_owned),
        chosen_instance: query.instance().map(str::to_owned),
        watching: true,
        range,
    }
}
