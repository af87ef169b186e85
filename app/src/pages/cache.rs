//! The Cache page (`/cache`): every cache namespace the services report,
//! with hit ratio, traffic, load time, size and whether instances agree;
//! and one chosen namespace instance by instance, with its hit ratio over
//! the last hour, day or week and the operator's invalidations.
//!
//! Keys an operator types travel in a form body, never a URL, and every
//! figure is text leptos escapes. The invalidate form sits outside the
//! live regions, so an update never wipes a half-typed key.

use leptos::prelude::*;

use crate::format::format_count;
use crate::vm::cache::{
    AgreementVm, CacheInstanceRow, CacheVm, HitChartVm, NAMESPACES_PER_PAGE, NamespaceDetailVm,
    NamespaceRow,
};
use crate::vm::queues::ChartRange;
use crate::vm::session::PageCtx;
use crate::widgets::chart::{BarChart, Series};
use crate::widgets::forms::{ActionForm, PostFields};
use crate::widgets::pager::{Pager, Steps};
use crate::widgets::shell::{Fragment, Frame, Notice, Region, Section, document, fragment};
use crate::widgets::table::{Empty, Table};

/// The live stream of the Cache page.
pub const CACHE_EVENTS: &str = "/events/cache";

/// The page's stream for its own query (namespace, page).
pub fn cache_events(vm: &CacheVm) -> String {
    let url = vm.url(vm.offset);
    match url.split_once('?') {
        Some((_, query)) => format!("{CACHE_EVENTS}?{query}"),
        None => CACHE_EVENTS.to_owned(),
    }
}

/// The Cache page.
pub fn render_cache_page(vm: &CacheVm, notice: Option<String>, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new("Cache · Switchyard", Section::Cache).live(cache_events(&vm));
    document(page, frame, move || {
        let detail = vm.chosen.clone().map(|ns| {
            view! { <Detail vm=vm.clone() ns /> }
        });
        view! {
            <section class="cache-page">
                <h1>"Cache"</h1>
                <Notice notice=notice.clone() />
                <p class="muted">
                    "Each service instance reports its cache namespaces in its heartbeat: figures are as of the last heartbeat, and cost no cache read."
                </p>
                <NamespacesRegion vm=vm.clone() />
                {detail}
            </section>
        }
    })
}

/// The live regions of the Cache page.
pub fn cache_fragments(vm: &CacheVm) -> Vec<Fragment> {
    let mut out = vec![fragment(
        "cache-namespaces",
        view! { <NamespacesRegion vm=vm.clone() /> },
    )];
    if vm.chosen.is_some() {
        out.push(fragment(
            "cache-instances",
            view! { <InstancesRegion detail=vm.detail.clone() vm=vm.clone() /> },
        ));
    }
    out
}

#[component]
fn AgreementBadge(agreement: AgreementVm, test_id: String) -> impl IntoView {
    view! {
        <span data-test-id=test_id title=agreement.detail class=format!("badge {}", agreement.state)>
            {agreement.label}
        </span>
    }
}

#[component]
fn NamespacesRegion(vm: CacheVm) -> impl IntoView {
    let body = if !vm.watching {
        view! {
            <Empty test_id="cache-off">"Instances are not watched by this server, so no cache is reported."</Empty>
        }
        .into_any()
    } else if vm.total == 0 {
        view! {
            <Empty test_id="cache-empty">
                "No instance reports a cache yet. A service reports its namespaces once it opens them with "
                <code>"coord::cache"</code> " and heartbeats with "
                <code>"Heartbeat::start_with_caches"</code> "."
            </Empty>
        }
        .into_any()
    } else {
        let shown = vm.namespaces.len() as u64;
        let pages = vm.clone();
        let omitted = (vm.omitted > 0).then(|| {
            view! {
                <p class="muted" data-test-id="cache-omitted">
                    {format!(
                        "{} more namespaces are reported but not tracked (the dashboard keeps the first {} by name).",
                        format_count(vm.omitted as u64),
                        format_count(vm.total as u64),
                    )}
                </p>
            }
        });
        view! {
            <NamespacesTable rows=vm.namespaces.clone() chosen=vm.chosen.clone() />
            <Pager
                offset=vm.offset as u64
                shown
                total=vm.total as u64
                limit=NAMESPACES_PER_PAGE as u64
                href=move |offset| pages.url(offset as usize)
                test_id="cache-pager"
                ids="cache-page"
                steps=Steps::Sequence
            />
            {omitted}
        }
        .into_any()
    };
    view! { <Region id="cache-namespaces">{body}</Region> }
}

#[component]
fn NamespacesTable(rows: Vec<NamespaceRow>, chosen: Option<String>) -> impl IntoView {
    let rows = rows
        .into_iter()
        .map(|row| {
            let is_chosen = chosen.as_deref() == Some(row.name.as_str());
            let degraded = (row.degraded > 0).then(|| {
                view! {
                    <span class="block warning">
                        {format!("shared tier down on {}", format_count(row.degraded as u64))}
                    </span>
                }
            });
            let test_id = format!("cache-ns-{}", row.name);
            view! {
                <tr data-test-id=test_id.clone() class=if is_chosen { "chosen" } else { "" }>
                    <th scope="row">
                        <a href=row.href.clone() aria-current=is_chosen.then_some("page")>
                            {row.name.clone()}
                        </a>
                        <span class="block">{row.backend.clone()}</span>
                    </th>
                    <td class="num">{format!("{} of {}", row.live, row.instances)}</td>
                    <td class="num" data-test-id=format!("{test_id}-ratio")>
                        {row.hit_ratio.clone()}
                        <span class="block">{format!("last min {}", row.recent_hit_ratio)}</span>
                    </td>
                    <td class="num">{row.requests_per_s.clone()}</td>
                    <td class="num">{row.load_p95.clone()}</td>
                    <td class="num">
                        {format_count(row.entries)} <span class="block">{row.memory.clone()}</span>
                    </td>
                    <td class="num">{format_count(row.evictions)}</td>
                    <td>{row.invalidations.clone()}</td>
                    <td>
                        <AgreementBadge
                            agreement=row.agreement.clone()
                            test_id=format!("{test_id}-agreement")
                        />
                        {degraded}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <Table
            class="cache-namespaces"
            test_id="cache-namespaces-table"
            head={view! {
                <tr>
                    <th scope="col">"Namespace"</th>
                    <th scope="col" class="num">"Instances"</th>
                    <th scope="col" class="num">"Hit ratio"</th>
                    <th scope="col" class="num">"Reads/s"</th>
                    <th scope="col" class="num"><abbr title="95th percentile of the loader's time">"Load p95"</abbr></th>
                    <th scope="col" class="num">"Entries"</th>
                    <th scope="col" class="num">"Evictions"</th>
                    <th scope="col">"Invalidations"</th>
                    <th scope="col">"Instances agree"</th>
                </tr>
            }}
        >
            {rows}
        </Table>
    }
}

#[component]
fn Detail(vm: CacheVm, ns: String) -> impl IntoView {
    let back = vm.url(vm.offset);
    let Some(detail) = vm.detail.clone() else {
        return view! {
            <section class="cache-detail" data-test-id="cache-detail">
                <h2>{ns.clone()}</h2>
                <Empty test_id="cache-unknown">
                    {format!("No instance reports the namespace {ns} (any more).")}
                </Empty>
            </section>
        }
        .into_any();
    };
    let actions = view! {
        <div class="cache-actions needs-operator" data-test-id="cache-actions">
            <form
                method="post"
                action=format!("/cache/{}/invalidate", ns)
                class="inline needs-operator"
                data-test-id="cache-invalidate-key-form"
            >
                <PostFields back=back.clone() />
                <label for="cache-key">"Key"</label>
                <input
                    id="cache-key"
                    name="key"
                    type="text"
                    required
                    maxlength="1024"
                    autocomplete="off"
                    data-test-id="cache-key"
                />
                <button type="submit" class="button" data-test-id="cache-invalidate-key">
                    "Invalidate key"
                </button>
            </form>
            <ActionForm
                action=format!("/cache/{}/invalidate-all", ns)
                back=back.clone()
                label="Invalidate namespace"
                class="danger"
                test_id="cache-invalidate-all".to_owned()
                confirm=format!(
                    "Drop every entry of {ns} from the shared tier and from every instance? They reload from the source on their next read.",
                )
            />
        </div>
    };
    view! {
        <section class="cache-detail" data-test-id="cache-detail" aria-labelledby="cache-detail-title">
            <h2 id="cache-detail-title">{format!("Namespace {ns}")}</h2>
            <HitChart chart=detail.chart.clone() vm=vm.clone() />
            {actions}
            <InstancesRegion detail=Some(detail) vm=vm.clone() />
        </section>
    }
    .into_any()
}

#[component]
fn HitChart(chart: HitChartVm, vm: CacheVm) -> impl IntoView {
    let ns = vm.chosen.clone().unwrap_or_default();
    let instance = vm.chosen_instance.clone();
    let ranges = ChartRange::ALL
        .into_iter()
        .map(|range| {
            let is_current = range == chart.range;
            view! {
                <a
                    href=vm.chart_url(instance.as_deref(), range)
                    class=if is_current { "current" } else { "" }
                    aria-current=is_current.then_some("page")
                    data-test-id=format!("cache-range-{}", range.as_str())
                    title=format!("Hit ratio over the {}", range.title())
                >
                    {range.short_label()}
                </a>
            }
        })
        .collect_view();
    let (whose, back) = match &instance {
        Some(instance) => (
            format!("instance {instance} of {ns}"),
            Some(view! {
                <a href=vm.chart_url(None, chart.range) data-test-id="cache-chart-namespace">
                    "Chart the whole namespace"
                </a>
            }),
        ),
        None => (format!("{ns} (every instance)"), None),
    };
    let body = match chart.error.clone() {
        Some(error) => view! {
            <p class="status down" role="alert" data-test-id="cache-chart-error">
                {format!("The history could not be read: {error}")}
            </p>
        }
        .into_any(),
        None => {
            let label = format!(
                "Cache hits and misses of {whose} over the {}: {}",
                chart.range.title(),
                chart.summary
            );
            view! {
                <BarChart
                    class="chart"
                    test_id="cache-chart".to_owned()
                    minutes=chart.minutes.clone()
                    range=chart.range
                    series=vec![
                        Series { class: "completed", noun: "hits", values: chart.hits.clone() },
                        Series { class: "failed", noun: "misses", values: chart.misses.clone() },
                    ]
                    label
                >
                    <figcaption data-test-id="cache-chart-summary">
                        {format!(
                            "Hit ratio of {whose} over the {}: {}",
                            chart.range.title(),
                            chart.summary,
                        )}
                    </figcaption>
                </BarChart>
            }
            .into_any()
        }
    };
    view! {
        <nav class="ranges" aria-label="Chart range" data-test-id="cache-ranges">
            {ranges}
        </nav>
        {body}
        {back}
    }
}

#[component]
fn InstancesRegion(detail: Option<NamespaceDetailVm>, vm: CacheVm) -> impl IntoView {
    let body = detail.map(|detail| {
        let more = (detail.more_instances > 0).then(|| {
            view! {
                <p class="muted">
                    {format!("{} more instances not listed.", format_count(detail.more_instances as u64))}
                </p>
            }
        });
        view! {
            <p data-test-id="cache-agreement">
                "Instances agree: "
                <AgreementBadge agreement=detail.row.agreement.clone() test_id="cache-agreement-badge".to_owned() />
                " " <span class="muted">{detail.row.agreement.detail.clone()}</span>
            </p>
            <InstancesTable rows=detail.instances.clone() vm=vm.clone() />
            {more}
        }
    });
    view! { <Region id="cache-instances">{body}</Region> }
}

#[component]
fn InstancesTable(rows: Vec<CacheInstanceRow>, vm: CacheVm) -> impl IntoView {
    let rows = rows
        .into_iter()
        .map(|row| {
            let hash = if row.drifted {
                view! { <span class="badge drifted" title="Holds the same keys as other instances, with other values">{format!("{} drifted", row.hash)}</span> }.into_any()
            } else {
                view! { <code>{row.hash.clone()}</code> }.into_any()
            };
            let degraded = row.degraded.clone().map(|why| {
                view! { <span class="block warning">{format!("shared tier down: {why}")}</span> }
            });
            view! {
                <tr data-test-id=format!("cache-instance-{}", row.instance)>
                    <th scope="row">
                        <a
                            href=vm.chart_url(Some(&row.instance), vm.range)
                            title="Chart this instance's hit ratio"
                            aria-current=(vm.chosen_instance.as_deref() == Some(row.instance.as_str()))
                                .then_some("true")
                        >
                            {row.instance.clone()}
                        </a>
                        <span class=format!("badge {}", row.status)>{row.status.clone()}</span>
                        {degraded}
                    </th>
                    <td class="num">
                        {row.hit_ratio.clone()}
                        <span class="block">
                            {format!(
                                "{} local · {} shared · {} missed",
                                format_count(row.hits_local),
                                format_count(row.hits_shared),
                                format_count(row.misses),
                            )}
                        </span>
                    </td>
                    <td class="num">{row.requests_per_s.clone()}</td>
                    <td class="num">
                        {row.load_p95.clone()}
                        <span class="block">{format!("{} failed", format_count(row.load_errors))}</span>
                    </td>
                    <td class="num">
                        {format_count(row.entries)} <span class="block">{row.memory.clone()}</span>
                    </td>
                    <td class="num">{format_count(row.evictions)}</td>
                    <td>{row.invalidations.clone()}</td>
                    <td>{hash}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <Table
            class="cache-instances"
            test_id="cache-instances-table"
            head={view! {
                <tr>
                    <th scope="col">"Instance"</th>
                    <th scope="col" class="num">"Hit ratio"</th>
                    <th scope="col" class="num">"Reads/s"</th>
                    <th scope="col" class="num">"Load p95"</th>
                    <th scope="col" class="num">"Entries"</th>
                    <th scope="col" class="num">"Evictions"</th>
                    <th scope="col">"Invalidations"</th>
                    <th scope="col">"Content hash"</th>
                </tr>
            }}
        >
            {rows}
        </Table>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn row(name: &str) -> NamespaceRow {
        NamespaceRow {
            name: name.into(),
            backend: "redis".into(),
            live: 2,
            instances: 2,
            hit_ratio: "90.0%".into(),
            recent_hit_ratio: "–".into(),
            href: format!("/cache?ns={name}"),
            agreement: AgreementVm {
                state: "matches",
                label: "matches".into(),
                detail: "2 instances hold the same keys and values".into(),
            },
            ..NamespaceRow::default()
        }
    }

    #[test]
    fn an_empty_fleet_says_how_caches_get_here() {
        let vm = CacheVm {
            watching: true,
            ..CacheVm::default()
        };
        let html = render_cache_page(&vm, None, &admin_page());
        assert!(html.contains(r#"data-test-id="cache-empty""#), "{html}");
        assert!(html.contains("start_with_caches"));
    }

    #[test]
    fn the_chosen_namespace_has_its_chart_instances_and_actions_escaped() {
        let vm = CacheVm {
            namespaces: vec![row("users")],
            total: 1,
            watching: true,
            chosen: Some("users".into()),
            detail: Some(NamespaceDetailVm {
                row: row("users"),
                instances: vec![CacheInstanceRow {
                    instance: "<api-1>".into(),
                    status: "live".into(),
                    hash: "00ff".into(),
                    drifted: true,
                    ..CacheInstanceRow::default()
                }],
                more_instances: 0,
                chart: HitChartVm {
                    range: ChartRange::Day,
                    minutes: vec![0, 300_000],
                    hits: vec![9, 1],
                    misses: vec![1, 0],
                    summary: "90.9% of 11 reads".into(),
                    error: None,
                },
            }),
            range: ChartRange::Day,
            ..CacheVm::default()
        };
        let html = render_cache_page(&vm, None, &admin_page());
        assert!(
            html.contains(r#"data-live="/events/cache?ns=users&amp;range=24h""#),
            "{html}"
        );
        assert!(html.contains("90.9% of 11 reads"));
        assert!(html.contains(r#"action="/cache/users/invalidate""#));
        assert!(html.contains(r#"action="/cache/users/invalidate-all""#));
        assert!(html.contains("&lt;api-1&gt;") && !html.contains("<api-1>"));
        assert!(html.contains("00ff drifted"));
        let fragments = cache_fragments(&vm);
        assert_eq!(fragments.len(), 2);
    }
}
