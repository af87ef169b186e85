//! What the native and the BullMQ queue pages share, so the two look and
//! behave alike: a queue's row cells and its page's state tabs.

use leptos::prelude::*;

use super::forms::ActionForm;
use crate::format::format_count;

/// A queue's count of one state in its table row, linking to those jobs.
#[component]
pub fn CountCell(state: &'static str, count: u64, href: String) -> impl IntoView {
    let class = if count == 0 {
        format!("num count {state} zero")
    } else {
        format!("num count {state}")
    };
    view! {
        <td class=class data-test-id=format!("count-{state}")>
            <a href=href>{format_count(count)}</a>
        </td>
    }
}

/// A queue's Running or Paused badge with the button switching it, in its
/// table row.
#[component]
pub fn StateCell(queue_path: String, paused: bool, back: String) -> impl IntoView {
    let (class, label) = if paused {
        ("badge paused", "Paused")
    } else {
        ("badge running", "Running")
    };
    view! {
        <td data-test-id="queue-state" class="state-cell">
            <span class=class data-test-id="queue-paused">
                {label}
            </span>
            <PauseForm queue_path paused back />
        </td>
    }
}

/// The Pause or Resume button of the queue whose page is `queue_path`.
#[component]
pub fn PauseForm(queue_path: String, paused: bool, back: String) -> impl IntoView {
    let (action, label, test_id) = if paused {
        ("resume", "Resume", "resume-queue")
    } else {
        ("pause", "Pause", "pause-queue")
    };
    view! {
        <ActionForm
            action=format!("{queue_path}/{action}")
            back=back
            label=label
            test_id=test_id.to_string()
        />
    }
}

/// One tab: a state, its label, the link to its jobs and how many it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tab {
    /// The state's name, also its CSS class.
    pub state: &'static str,
    /// What the tab says.
    pub label: &'static str,
    /// The page of that state's jobs.
    pub href: String,
    /// Jobs in that state.
    pub count: u64,
    /// For completed jobs, how many finished in all when retention removed
    /// some: the tab then says the count is what is kept.
    pub kept_of: Option<u64>,
}

/// A tab per state, each linking to that state's jobs and showing how many
/// there are; `selected` is marked for assistive technology as well as by
/// its look.
#[component]
pub fn StateTabs(tabs: Vec<Tab>, selected: String) -> impl IntoView {
    view! {
        <nav class="tabs" aria-label="Job states">
            {tabs
                .into_iter()
                .map(|tab| {
                    let current = tab.state == selected;
                    let class = if current {
                        format!("tab {} current", tab.state)
                    } else {
                        format!("tab {}", tab.state)
                    };
                    let kept = tab.kept_of.filter(|all| *all > tab.count);
                    let title = kept.map(|all| {
                        format!(
                            "{} kept of {} completed since the queue was created (retention removes the oldest)",
                            format_count(tab.count),
                            format_count(all),
                        )
                    });
                    view! {
                        <a
                            class=class
                            href=tab.href
                            aria-current=current.then_some("page")
                            data-test-id=format!("tab-{}", tab.state)
                            title=title
                        >
                            {tab.label}
                            " "
                            <span class=if tab.count == 0 {
                                "n zero"
                            } else {
                                "n"
                            }>{format_count(tab.count)}</span>
                            {kept.map(|_| view! { <span class="kept">" kept"</span> })}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// The name filter and order of a list of queues (the queues page, the
/// BullMQ page): a GET form, so it works without the page script, and not
/// a live region, so what the operator types survives updates. `ids`
/// prefixes its `data-test-id`s (`<ids>-filter`, `<ids>-filter-name`,
/// `<ids>-sort`); `label` names each of `sorts` in the selector.
#[component]
pub fn QueueListFilter(
    action: &'static str,
    query: crate::vm::queues::QueuesQuery,
    sorts: &'static [crate::vm::queues::QueueSort],
    label: fn(crate::vm::queues::QueueSort) -> &'static str,
    ids: &'static str,
) -> impl IntoView {
    let active = !query.filter.is_empty() || query.sort != crate::vm::queues::QueueSort::Name;
    view! {
        <form method="get" action=action class="filter" data-test-id=format!("{ids}-filter")>
            <label>
                "Name contains "
                <input
                    type="search"
                    name="q"
                    value=query.filter.clone()
                    maxlength="200"
                    placeholder="any"
                    data-test-id=format!("{ids}-filter-name")
                />
            </label>
            <label>
                "Sort by "
                <select name="sort" data-test-id=format!("{ids}-sort")>
                    {sorts
                        .iter()
                        .map(|&sort| {
                            view! {
                                <option value=sort.as_str() selected=sort == query.sort>
                                    {label(sort)}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <button type="submit" class="button">
                "Show"
            </button>
            {active.then(|| view! { <a href=action>"Clear"</a> })}
        </form>
    }
}

/// Why a failed job stopped, as a badge: `retries exhausted`,
/// `unrecoverable`, `stalled` or `stopped by an operator`; native and
/// BullMQ rows alike.
#[component]
pub fn FailureBadge(kind: Option<String>) -> impl IntoView {
    kind.map(|kind| {
        let class = match kind.as_str() {
            "retries exhausted" => "badge exhausted",
            "stopped by an operator" => "badge stopped",
            _ => "badge unrecoverable",
        };
        view! {
            " "
            <span class=class data-test-id="failure-kind">
                {kind}
            </span>
        }
    })
}

/// The Stop retrying button of a native job that failed and waits for its
/// next attempt (the Retrying view's rows and the job's page): it fails
/// now, badged as stopped by an operator.
#[component]
pub fn StopRetryingForm(job_path: String, id: String, back: String) -> impl IntoView {
    view! {
        <ActionForm
            action=format!("{job_path}/stop-retrying")
            back=back
            label="Stop retrying"
            test_id="stop-retrying".to_string()
            confirm=format!("Stop retrying job {id}? It moves to the failed set now.")
        />
    }
}
