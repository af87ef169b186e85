//! Per-minute bar charts drawn as server-rendered SVG, shared by every page
//! that charts the last hour (no charting script to load, and one look for
//! every chart).

use leptos::prelude::*;

use crate::format::format_count;
use crate::vm::queues::ChartRange;

/// Width of one minute's bar in the chart's coordinate space.
const BAR: usize = 5;
/// Height of the chart's coordinate space.
const HEIGHT: u64 = 60;

/// One stacked series of a [`BarChart`]: a value per minute, painted by
/// its CSS class so the colour follows the stylesheet's theme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Class of its bars (after `bar`), e.g. `completed`, `rejected`.
    pub class: &'static str,
    /// What a value counts, for the tooltips (`"failed"`, `"messages"`).
    pub noun: &'static str,
    /// One value per minute, in the order of the chart's minutes.
    pub values: Vec<u64>,
}

impl Series {
    fn at(&self, minute: usize) -> u64 {
        self.values.get(minute).copied().unwrap_or(0)
    }
}

/// The largest per-minute total of stacked `series` (at least 1, so an
/// empty chart does not divide by zero); captions quote it as the peak.
pub fn stacked_peak(series: &[Series]) -> u64 {
    let minutes = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    (0..minutes)
        .map(|i| series.iter().map(|s| s.at(i)).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1)
}

/// A `<figure>` with `caption` (the caller's `<figcaption>`), a bar per
/// minute (or per bucket of `range`) stacking `series` from the baseline
/// up, and the first and last bucket under it. Each bar's tooltip names
/// its bucket and every series' value, and `label` says what the chart
/// shows to screen readers.
///
/// The first series sits on the baseline: heights round up, so any
/// non-zero value of it stays visible however tall the other series are.
/// Put the series that matters most first.
#[component]
pub fn BarChart(
    /// Classes of the `<figure>` (`chart` plus any variant).
    class: &'static str,
    /// The figure's `data-test-id`.
    test_id: String,
    /// Start of each minute or bucket (ms since the epoch), oldest first.
    minutes: Vec<i64>,
    /// How wide a bar is, for its tooltip and the axis labels; charts
    /// of the last hour (the default) are per minute.
    #[prop(optional)]
    range: ChartRange,
    /// The stacked series, bottom first.
    series: Vec<Series>,
    /// The chart in words, for screen readers.
    label: String,
    /// The `<figcaption>`.
    children: Children,
) -> impl IntoView {
    let width = minutes.len().max(1) * BAR;
    let peak = stacked_peak(&series);
    let scale = |n: u64| -> u64 { (n * HEIGHT).div_ceil(peak).min(HEIGHT) };
    let first = minutes.first().map(|&m| range.axis_label(m));
    let last = minutes.last().map(|&m| range.axis_label(m));
    let bars = minutes
        .iter()
        .enumerate()
        .map(|(i, &minute)| {
            let x = (i * BAR).to_string();
            let w = (BAR - 1).to_string();
            let values = series
                .iter()
                .map(|s| format!("{} {}", format_count(s.at(i)), s.noun))
                .collect::<Vec<_>>()
                .join(", ");
            let tip = format!("{}: {values}", range.bucket_label(minute));
            // Round each stack's running total, not each piece, so a bar
            // never exceeds the chart.
            let mut below = 0;
            let mut sum = 0;
            let rects = series
                .iter()
                .map(|s| {
                    sum += s.at(i);
                    let top = scale(sum);
                    let h = top - below;
                    below = top;
                    view! {
                        <rect
                            class=format!("bar {}", s.class)
                            x=x.clone()
                            y=(HEIGHT - top).to_string()
                            width=w.clone()
                            height=h.to_string()
                        ></rect>
                    }
                })
                .collect_view();
            view! {
                <g>
                    <title>{tip}</title>
                    {rects}
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class=class data-test-id=test_id>
            {children()}
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
