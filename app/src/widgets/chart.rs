//! Per-minute bar charts drawn as server-rendered SVG, shared by every page
//! that charts the last hour (no charting script to load, and one look for
//! every chart).

use leptos::prelude::*;

use crate::format::format_count;
use crate::vm::queues::ChartRange;

/// Width of one minute's bar in the chart's coordinate space.
const BAR: usize = 5;
/// Height of the chart's coordinate space (the stylesheet sets its height
/// on screen; the SVG stretches to it).
const HEIGHT: u64 = 100;

/// The top of the value axis: the peak rounded up to 1, 2 or 5 times a
/// power of ten, so its labels (top, half, 0) are round numbers; at least
/// 2, so the half is a whole number too.
pub fn axis_top(peak: u64) -> u64 {
    let peak = peak.max(2);
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let top = step.saturating_mul(m);
            if top >= peak {
                return top;
            }
        }
        step = step.saturating_mul(10);
        if step == u64::MAX {
            return peak;
        }
    }
}

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
    let top = axis_top(stacked_peak(&series));
    let scale = |n: u64| -> u64 { (n.saturating_mul(HEIGHT)).div_ceil(top).min(HEIGHT) };
    let first = minutes.first().map(|&m| range.axis_label(m));
    let middle = minutes.get(minutes.len() / 2).map(|&m| range.axis_label(m));
    let last = minutes.last().map(|&m| range.axis_label(m));
    let half = HEIGHT / 2;
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
    // The value axis and gridlines at the top, half and 0; the readout
    // under the chart says the bar hovered or chosen with the arrow keys
    // (the page script; the bars' titles say it without).
    view! {
        <figure class=class data-test-id=test_id>
            {children()}
            <div class="plot">
                <div class="y-axis" aria-hidden="true">
                    <span>{format_count(top)}</span>
                    <span>{format_count(top / 2)}</span>
                    <span>"0"</span>
                </div>
                <svg
                    viewBox=format!("0 0 {width} {HEIGHT}")
                    preserveAspectRatio="none"
                    role="img"
                    aria-label=label
                    tabindex="0"
                >
                    <line class="grid" x1="0" x2=width.to_string() y1="0" y2="0"></line>
                    <line
                        class="grid"
                        x1="0"
                        x2=width.to_string()
                        y1=half.to_string()
                        y2=half.to_string()
                    ></line>
                    {bars}
                </svg>
            </div>
            <div class="axis">
                <span>{first}</span>
                <span>{middle}</span>
                <span>{last}</span>
            </div>
            <p class="readout" aria-live="polite" data-test-id="bar-readout"></p>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::axis_top;

    #[test]
    fn the_value_axis_tops_at_a_round_number() {
        for (peak, top) in [
            (0, 2),
            (1, 2),
            (2, 2),
            (3, 5),
            (7, 10),
            (11, 20),
            (59, 100),
            (724, 1_000),
            (1_000_001, 2_000_000),
            (u64::MAX, u64::MAX),
        ] {
            assert_eq!(axis_top(peak), top, "peak {peak}");
        }
    }
}
