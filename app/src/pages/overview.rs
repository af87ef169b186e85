//! The overview (`/`): backend health, totals across queues, the alerts
//! slot and per-queue throughput charts drawn as server-rendered SVG (no
//! charting script to load).

use leptos::prelude::*;

use crate::format::format_count;
use crate::vm::queues::{ChartRange, OverviewVm, STATES, ThroughputVm};
use crate::vm::session::PageCtx;
use crate::widgets::chart::{BarChart, Series, stacked_peak};
use crate::widgets::health::HealthRegion;
use crate::widgets::shell::{Fragment, Frame, Section, document, fragment};
use crate::widgets::table::Empty;

/// The live stream of the overview page.
pub const OVERVIEW_EVENTS: &str = "/events/overview";

/// The overview's stream for a chart range: the page's own `?range=`, so
/// the stream knows whether the throughput region is the live hour (kept
/// current) or a span read from history (left as rendered).
pub fn overview_events(range: ChartRange) -> String {
    match range {
        ChartRange::Hour => OVERVIEW_EVENTS.to_string(),
        other => format!("{OVERVIEW_EVENTS}?range={}", other.as_str()),
    }
}

/// The overview served at `/`: backend health, totals across queues, the
/// alerts slot and per-queue throughput charts over the range picked.
pub fn render_overview_page(vm: &OverviewVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let heading = format!("Throughput, {}", vm.range.title());
    let frame = Frame::new("Switchyard", Section::Overview)
        .live(overview_events(vm.range))
        .reloading();
    document(page, frame, move || {
        view! {
            <section class="overview">
                <h1>"Overview"</h1>
                <HealthRegion health=vm.health.clone() />
                <TotalsRegion vm=vm.clone() />
                <section class="alerts" data-test-id="alerts">
                    <h2>"Alerts"</h2>
                    <p class="muted">
                        "Firing alerts show in the banner at the top of every page; rules, webhook deliveries and history are on the "
                        <a href="/alerts">"Alerts page"</a>
                        "."
                    </p>
                </section>
                <div class="charts-head">
                    <h2 data-test-id="throughput-heading">{heading}</h2>
                    <RangeSelector current=vm.range />
                </div>
                <ThroughputRegion charts=vm.charts.clone() range=vm.range />
                <p>
                    <a href="/queues">"All queues →"</a>
                </p>
            </section>
        }
    })
}

/// The live regions of the overview. The throughput charts are one of
/// them only for the last hour: longer ranges come from history read when
/// the page is rendered, and a live hour must never replace them.
pub fn overview_fragments(vm: &OverviewVm) -> Vec<Fragment> {
    let mut fragments = vec![
        fragment(
            "health",
            view! { <HealthRegion health=vm.health.clone() /> },
        ),
        fragment("totals", view! { <TotalsRegion vm=vm.clone() /> }),
    ];
    if vm.range == ChartRange::Hour {
        fragments.push(fragment(
            "throughput",
            view! { <ThroughputRegion charts=vm.charts.clone() /> },
        ));
    }
    fragments
}

/// Jobs per state over all queues, and the queues worth a look.
#[component]
fn TotalsRegion(vm: OverviewVm) -> impl IntoView {
    let queues = format!(
        "{} {}",
        vm.queue_count,
        if vm.queue_count == 1 {
            "queue"
        } else {
            "queues"
        }
    );
    let warnings = (!vm.warnings.is_empty()).then(|| {
        view! {
            <p class="warnings" data-test-id="queue-warnings">
                "Failure rate above threshold: "
                {vm
                    .warnings
                    .into_iter()
                    .map(|name| {
                        let href = format!("/queues/{name}?state=failed");
                        view! {
                            <a class="badge warning" href=href>
                                {name}
                            </a>
                            " "
                        }
                    })
                    .collect_view()}
            </p>
        }
    });
    view! {
        <div id="totals">
            <div class="totals" data-test-id="totals">
                {STATES
                    .iter()
                    .map(|(state, label)| {
                        let n = vm.totals.count(state);
                        view! {
                            <a
                                class=format!("total {state}")
                                href="/queues"
                                data-test-id=format!("total-{state}")
                            >
                                <span class="n">{format_count(n)}</span>
                                <span class="label">{*label}</span>
                            </a>
                        }
                    })
                    .collect_view()}
            </div>
            <p class="muted">{queues}</p>
            {warnings}
        </div>
    }
}

/// Links to the chart ranges, plain links so they work without the page
/// script; the range shown is marked for assistive technology as well as
/// by its look.
#[component]
fn RangeSelector(current: ChartRange) -> impl IntoView {
    view! {
        <nav class="ranges" aria-label="Chart range" data-test-id="range-selector">
            {ChartRange::ALL
                .into_iter()
                .map(|range| {
                    let is_current = range == current;
                    view! {
                        <a
                            href=format!("/?range={}", range.as_str())
                            class=if is_current { "current" } else { "" }
                            aria-current=is_current.then_some("page")
                            data-test-id=format!("range-{}", range.as_str())
                            title=format!("Throughput over the {}", range.title())
                        >
                            {range.short_label()}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// One small chart per queue: completed (green) and failed (red) jobs per
/// minute over the last hour, or per bucket of a longer `range`.
#[component]
fn ThroughputRegion(
    charts: Vec<ThroughputVm>,
    /// The span the charts cover.
    #[prop(optional)]
    range: ChartRange,
) -> impl IntoView {
    let body = if charts.is_empty() {
        view! { <Empty>"No throughput yet: charts appear once jobs finish."</Empty> }.into_any()
    } else {
        charts
            .into_iter()
            .map(|chart| view! { <Chart chart range /> })
            .collect_view()
            .into_any()
    };
    view! {
        <div id="throughput" class="charts" data-test-id="throughput">
            {body}
        </div>
    }
}

#[component]
fn Chart(chart: ThroughputVm, range: ChartRange) -> impl IntoView {
    let minutes = chart.points.iter().map(|p| p.minute_ms).collect();
    let series = vec![
        Series {
            class: "completed",
            noun: "completed",
            values: chart.points.iter().map(|p| p.completed).collect(),
        },
        Series {
            class: "failed",
            noun: "failed",
            values: chart.points.iter().map(|p| p.failed).collect(),
        },
    ];
    let peak = stacked_peak(&series);
    let completed: u64 = series[0].values.iter().sum();
    let failed: u64 = series[1].values.iter().sum();
    let label = format!(
        "{}: {} completed and {} failed in the {}",
        chart.queue,
        format_count(completed),
        format_count(failed),
        range.title()
    );
    let href = format!("/queues/{}", chart.queue);
    view! {
        <BarChart
            class="chart"
            test_id=format!("chart-{}", chart.queue)
            minutes
            range
            series
            label
        >
            <figcaption>
                <a href=href>{chart.queue.clone()}</a>
                <span class="muted">
                    {format!(
                        " {} completed · {} failed · peak {}{}",
                        format_count(completed),
                        format_count(failed),
                        format_count(peak),
                        range.per(),
                    )}
                </span>
            </figcaption>
        </BarChart>
    }
}
