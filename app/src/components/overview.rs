//! The overview's regions: totals across queues and per-queue throughput
//! charts drawn as server-rendered SVG (no charting script to load).

use leptos::prelude::*;

use crate::vm::{OverviewVm, STATES, ThroughputVm, format_clock, format_count};

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

/// Width of one minute's bar in the chart's coordinate space.
const BAR: usize = 5;
/// Height of the chart's coordinate space.
const HEIGHT: u64 = 60;

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
    let slots = chart.points.len().max(1);
    let width = slots * BAR;
    let peak = chart
        .points
        .iter()
        .map(|p| p.completed + p.failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let completed: u64 = chart.points.iter().map(|p| p.completed).sum();
    let failed: u64 = chart.points.iter().map(|p| p.failed).sum();
    let scale = |n: u64| -> u64 { (n * HEIGHT).div_ceil(peak) };
    let first = chart.points.first().map(|p| format_clock(p.minute_ms));
    let last = chart.points.last().map(|p| format_clock(p.minute_ms));
    let label = format!(
        "{}: {} completed and {} failed in the last hour",
        chart.queue,
        format_count(completed),
        format_count(failed)
    );
    let bars = chart
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let x = (i * BAR).to_string();
            let w = (BAR - 1).to_string();
            // Round the stack as a whole so bars never exceed the chart.
            let total = scale(p.completed + p.failed);
            let hc = scale(p.completed).min(total);
            let hf = total - hc;
            let tip = format!(
                "{}: {} completed, {} failed",
                format_clock(p.minute_ms),
                p.completed,
                p.failed
            );
            view! {
                <g>
                    <title>{tip}</title>
                    <rect
                        class="bar completed"
                        x=x.clone()
                        y=(HEIGHT - hc).to_string()
                        width=w.clone()
                        height=hc.to_string()
                    ></rect>
                    <rect
                        class="bar failed"
                        x=x
                        y=(HEIGHT - hc - hf).to_string()
                        width=w
                        height=hf.to_string()
                    ></rect>
                </g>
            }
        })
        .collect_view();
    let href = format!("/queues/{}", chart.queue);
    view! {
        <figure class="chart" data-test-id=format!("chart-{}", chart.queue)>
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
            <svg
                viewBox=format!("0 0 {width} {HEIGHT}")
                preserveAspectRatio="none"
                role="img"
                aria-label=label
            >
                {bars}
            </svg>
            <div class="axis">
                <span>{first}</span>
                <span>{last}</span>
            </div>
        </figure>
    }
}
