//! A listing's table, or the sentence standing in for it when it has no
//! rows: every listing says why it is empty rather than showing a bare
//! header.

use leptos::prelude::*;

/// A table in its scrolling wrapper, so a wide one scrolls on its own
/// instead of widening the page.
#[component]
pub fn Table(
    /// The table's classes.
    #[prop(into)]
    class: String,
    /// The table's `data-test-id`.
    test_id: &'static str,
    /// The header row(s).
    head: impl IntoView + 'static,
    /// The rows.
    children: Children,
) -> impl IntoView {
    // Focusable, so a keyboard can scroll it sideways where it does not fit.
    view! {
        <div class="table-wrap" tabindex="0" role="region" aria-label=test_id.replace('-', " ")>
            <table class=class data-test-id=test_id>
                <thead>{head}</thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}

/// What an empty listing says instead of its table.
#[component]
pub fn Empty(
    /// A `data-test-id`, for the empty states tests tell apart.
    #[prop(optional)]
    test_id: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    view! {
        <p class="empty" data-test-id=test_id>
            {children()}
        </p>
    }
}
