//! The one pager of every listing that holds more than a page: a queue's
//! jobs, a BullMQ queue's jobs, the alert history and the audit log.

use leptos::prelude::*;

use crate::format::format_count;

/// How a listing's pages are named. Newest-first listings (jobs, alert
/// history, audit) also link both ends, so a million rows back is one click
/// away. A BullMQ state keeps BullMQ's own order, which is not by age for
/// every state (prioritized jobs go by priority), so "newer" would mislead:
/// its pages only step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Steps {
    /// « Newest, ← Newer, Older →, Oldest ».
    #[default]
    NewestFirst,
    /// ← Previous, Next →.
    Sequence,
}

/// Links to the pages around this one and where it sits (`51–100 of
/// 1,234`). The step links carry `rel="prev"` and `rel="next"`; each link's
/// `data-test-id` is `ids` and its name (`page-older`, `history-newest`).
#[component]
pub fn Pager(
    /// Position of the first row shown.
    offset: u64,
    /// Rows shown on this page.
    shown: u64,
    /// Rows in the whole listing.
    total: u64,
    /// Page size.
    limit: u64,
    /// The listing's URL at another offset, everything else kept.
    href: impl Fn(u64) -> String + 'static,
    /// The pager's `data-test-id`.
    test_id: &'static str,
    /// The first part of its links' `data-test-id`s.
    ids: &'static str,
    /// How the pages are named.
    #[prop(optional)]
    steps: Steps,
) -> impl IntoView {
    let limit = limit.max(1);
    let shown_to = offset + shown;
    let link = |offset: u64, rel: Option<&'static str>, name: &str, text: &'static str| {
        view! {
            <a href=href(offset) rel=rel data-test-id=format!("{ids}-{name}")>
                {text}
            </a>
        }
    };
    let first = (offset > 0).then(|| {
        let back = offset.saturating_sub(limit);
        match steps {
            Steps::NewestFirst => view! {
                {link(0, None, "newest", "« Newest")}
                {link(back, Some("prev"), "newer", "← Newer")}
            }
            .into_any(),
            Steps::Sequence => link(back, Some("prev"), "prev", "← Previous").into_any(),
        }
    });
    let last = (shown_to < total).then(|| match steps {
        Steps::NewestFirst => view! {
            {link(shown_to, Some("next"), "older", "Older →")}
            {link((total - 1) / limit * limit, None, "oldest", "Oldest »")}
        }
        .into_any(),
        Steps::Sequence => link(shown_to, Some("next"), "next", "Next →").into_any(),
    });
    let summary = if shown == 0 {
        format!("0 of {}", format_count(total))
    } else {
        format!(
            "{}–{} of {}",
            format_count(offset + 1),
            format_count(shown_to),
            format_count(total)
        )
    };
    view! {
        <p class="pager" data-test-id=test_id>
            {first}
            <span class="summary">{summary}</span>
            {last}
        </p>
    }
}
