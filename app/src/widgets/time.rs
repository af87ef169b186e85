//! Moments as the pages show them: relative where the age matters, absolute
//! where the moment itself does, the other form always on hover.

use leptos::prelude::*;

use crate::format::{format_age, format_due, format_timestamp, iso_timestamp};

/// A moment shown relative ("4 s ago") with the exact time on hover; the
/// page script keeps the relative text current between updates.
#[component]
pub fn Moment(at: i64, now: i64) -> impl IntoView {
    view! {
        <time datetime=iso_timestamp(at) title=format_timestamp(at) data-ago="">
            {format_age(now.saturating_sub(at))}
        </time>
    }
}

/// An absolute moment, the same on every page and in every time zone.
#[component]
pub fn At(at: i64) -> impl IntoView {
    let text = format_timestamp(at);
    let title = text.clone();
    view! {
        <time datetime=iso_timestamp(at) title=title>
            {text}
        </time>
    }
}

/// A moment to come shown relative ("in 12 s") with the exact time on
/// hover; the page script keeps the text current between updates, so a
/// schedule that fires hourly does not say "in 59 min" all hour.
#[component]
pub fn Due(at: i64, now: i64) -> impl IntoView {
    view! {
        <time datetime=iso_timestamp(at) title=format_timestamp(at) data-in="">
            {format_due(at.saturating_sub(now))}
        </time>
    }
}
