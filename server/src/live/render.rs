//! The pages' live regions, built from a snapshot's figures at the edge:
//! each capability's `vm` turns figures into a view model, `app` renders
//! it, and the result is shared by every stream of the page for that
//! snapshot (rendered once, whatever the number of viewers).

use std::convert::Infallible;

use super::Snapshot;
use super::stream::{Regions, Streams, prepare};

/// A page whose regions depend on the snapshot alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Health, totals and the hour's charts.
    Overview,
    /// Channel traffic.
    Channels,
    /// Instances and their sync status.
    Instances,
    /// Rate-limit policies, usage and blocks.
    RateLimits,
    /// The configured Redis.
    Redis,
    /// Active alerts, rules, deliveries and the first page of history.
    Alerts,
    /// The firing-alerts banner every page carries.
    Banner,
}

impl Page {
    fn key(self) -> String {
        format!("snapshot:{self:?}")
    }

    fn fragments(self, snapshot: &Snapshot, streams: &Streams) -> Vec<app::Fragment> {
        match self {
            // BullMQ's totals are as of the monitor's latest counts when
            // the hub's snapshot is rendered (at most a tick behind).
            Page::Overview => app::overview_fragments(&crate::overview::overview(
                snapshot,
                streams.bull_snapshot().as_deref(),
            )),
            Page::Channels => {
                app::channels_fragments(&crate::channels::vm::page(snapshot.channels.as_ref()))
            }
            Page::Instances => app::instances_fragments(&crate::instances::vm::page(
                snapshot.instances.as_ref(),
                snapshot.caches.as_deref(),
            )),
            Page::RateLimits => app::ratelimits_fragments(&crate::ratelimits::vm::page(
                snapshot.ratelimits.as_ref(),
            )),
            // Without a read (none yet, or no Redis) the page keeps what
            // it was rendered with.
            Page::Redis => match snapshot.redis.as_deref() {
                Some(figures) => {
                    app::redis_fragments(&crate::redis_health::vm::page(Some(figures), true))
                }
                None => Vec::new(),
            },
            Page::Alerts => app::alerts_fragments(&crate::alerts::vm::first_page(snapshot)),
            Page::Banner => vec![app::banner_fragment(&crate::alerts::vm::banner_of(
                snapshot,
            ))],
        }
    }
}

/// The regions of `page` as of `snapshot`, rendered by the first stream
/// that needs them and shared with the others.
pub async fn regions(streams: &Streams, snapshot: &Snapshot, page: Page) -> Regions {
    let rendered = streams
        .pages()
        .get(page.key(), (snapshot.seq, 0), || async {
            Ok::<_, Infallible>(prepare(page.fragments(snapshot, streams)))
        })
        .await;
    match rendered {
        Ok(regions) => regions,
        Err(never) => match never {},
    }
}

/// The queues page's regions for one order, filter and page, rendered
/// once per snapshot for every stream showing those rows.
pub async fn queues_regions(
    streams: &Streams,
    snapshot: &Snapshot,
    query: &app::QueuesQuery,
) -> Regions {
    let key = format!("snapshot:Queues:{}", query.query_string(query.offset));
    let rendered = streams
        .pages()
        .get(key, (snapshot.seq, 0), || async {
            Ok::<_, Infallible>(prepare(app::queues_fragments(
                &crate::queues::vm::queues_page(snapshot, query),
            )))
        })
        .await;
    match rendered {
        Ok(regions) => regions,
        Err(never) => match never {},
    }
}

/// The schedules page's regions for one filter and page, rendered once
/// per snapshot for every stream showing those rows.
pub async fn schedules_regions(
    streams: &Streams,
    snapshot: &Snapshot,
    query: &crate::schedules::vm::SchedulesQuery,
) -> Regions {
    let Some(figures) = snapshot.schedules.clone() else {
        return Regions::default();
    };
    let key = format!("snapshot:Schedules:{query:?}");
    let rendered = streams
        .pages()
        .get(key, (snapshot.seq, 0), || async {
            // Whether this server fires them is the page's, not the rows'.
            Ok::<_, Infallible>(prepare(app::schedules_fragments(
                &crate::schedules::vm::page(&figures, query, false),
            )))
        })
        .await;
    match rendered {
        Ok(regions) => regions,
        Err(never) => match never {},
    }
}

/// The Cache page's regions for one query, rendered once per snapshot for
/// every stream showing them.
pub async fn cache_regions(
    streams: &Streams,
    snapshot: &Snapshot,
    query: &crate::cache::vm::CacheQuery,
) -> Regions {
    let key = format!("snapshot:Cache:{query:?}");
    let range = match query.range.as_deref() {
        Some(r) if !r.is_empty() => r
            .parse::<crate::metrics::history::Range>()
            .map(crate::queues::vm::chart_range)
            .unwrap_or_default(),
        _ => app::ChartRange::Hour,
    };
    let rendered = streams
        .pages()
        .get(key, (snapshot.seq, 0), || async {
            Ok::<_, Infallible>(prepare(app::cache_fragments(&crate::cache::vm::page(
                snapshot.caches.as_deref(),
                query,
                range,
                app::HitChartVm::default(),
                snapshot.taken_at,
            ))))
        })
        .await;
    match rendered {
        Ok(regions) => regions,
        Err(never) => match never {},
    }
}

/// The workers page's native-worker regions for one filter and page,
/// rendered once per snapshot for every stream showing those rows. The
/// BullMQ connections are read when the page loads, not per snapshot
/// (`CLIENT LIST` costs Redis in proportion to its clients).
pub async fn workers_regions(
    streams: &Streams,
    snapshot: &Snapshot,
    query: &crate::workers::vm::WorkersQuery,
) -> Regions {
    let Some(figures) = snapshot.workers.clone() else {
        return Regions::default();
    };
    let key = format!("snapshot:Workers:{query:?}");
    let rendered = streams
        .pages()
        .get(key, (snapshot.seq, 0), || async {
            Ok::<_, Infallible>(prepare(
                app::workers_fragments(&crate::workers::vm::page(&figures, query))
                    .into_iter()
                    .filter(|f| f.id != app::BULL_WORKERS_REGION)
                    .collect(),
            ))
        })
        .await;
    match rendered {
        Ok(regions) => regions,
        Err(never) => match never {},
    }
}
