//! The overview's regions: totals across queues and per-queue throughput
//! charts drawn as server-rendered SVG (no charting script to load).

use leptos::prelude::*;

use super::chart::{BarChart, Series, stacked_peak};
use crate::vm::{OverviewVm, STATES, ThroughputVm, format_count};

/// Jobs per state over all queues, and the queues worth a look.
#[component]
pub fn TotalsRegion(vm: OverviewVm) -> impl IntoView {
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

/// One small chart per queue: completed (green) and failed (red) jobs per
/// minute over the last hour.
#[component]
pub fn ThroughputRegion(charts: Vec<ThroughputVm>) -> impl IntoView {
    let body = if charts.is_empty() {
        view! { <p class="empty">"No throughput yet: charts appear once jobs finish."</p> }
            .into_any()
    } else {
        charts
            .into_iter()
            .map(|chart| view! { <Chart chart /> })
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
fn Chart(chart: ThroughputVm) -> impl IntoView {
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
        "{}: {} completed and {} failed in the last hour",
        chart.queue,
        format_count(completed),
        format_count(failed)
    );
    let href = format!("/queues/{}", chart.queue);
    view! {
        <BarChart
            class="chart"
            test_id=format!("chart-{}", chart.queue)
            minutes
            series
            label
        >
            <figcaption>
                <a href=href>{chart.queue.clone()}</a>
                <span class="muted">
                    {format!(
                        " {} completed · {} failed · peak {}/min",
                        format_count(completed),
                        format_count(failed),
                        peak,
                    )}
                </span>
            </figcaption>
        </BarChart>
    }
}
