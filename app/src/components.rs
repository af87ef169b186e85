//! The building blocks of every page. Each component takes owned view-model
//! data and renders static HTML; leptos escapes every text node and
//! attribute value, so job names and data from producers can never inject
//! markup.

use leptos::prelude::*;

use crate::vm::{JobRow, OverviewVm, QueuePageVm, QueueRow, STATES, format_age};

/// The document around every page: one stylesheet, one header, and an
/// optional self-refresh so the overview stays current without JavaScript.
#[component]
pub fn Shell(
    /// The `<title>`, also what a browser tab and history show.
    title: String,
    /// Reload the page every 5 s (overview pages only: a form or an error
    /// page must not reload under the operator's eyes).
    #[prop(optional)]
    refresh: bool,
    children: Children,
) -> impl IntoView {
    view! {
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                {refresh.then(|| view! { <meta http-equiv="refresh" content="5" /> })}
                <title>{title}</title>
                <link rel="stylesheet" href="/style.css" />
            </head>
            <body>
                <header class="top">
                    <a class="brand" href="/">
                        "Switchyard"
                    </a>
                    <span class="tagline">"job queues at a glance"</span>
                </header>
                <main>{children()}</main>
            </body>
        </html>
    }
}

/// One line telling the operator whether the numbers below can be trusted.
#[component]
pub fn BackendStatus(vm: OverviewVm) -> impl IntoView {
    let (class, text) = if vm.backend_ok {
        let latency = vm
            .latency_ms
            .map(|ms| format!(" ({ms:.1} ms)"))
            .unwrap_or_default();
        (
            "status ok",
            format!("Backend {}: reachable{latency}", vm.backend),
        )
    } else {
        let why = vm.problem.map(|p| format!(": {p}")).unwrap_or_default();
        (
            "status down",
            format!("Backend {}: unreachable{why}", vm.backend),
        )
    };
    view! {
        <p class=class data-test-id="backend-status">
            <span class="dot" aria-hidden="true"></span>
            {text}
        </p>
    }
}

/// The overview table: one row per queue with a cell per state, or a hint
/// on how to get a first queue.
#[component]
pub fn QueuesTable(queues: Vec<QueueRow>) -> impl IntoView {
    if queues.is_empty() {
        return view! {
            <p class="empty" data-test-id="empty-state">
                "No queues yet — enqueue a job or run "
                <code>"switchyard demo"</code>
            </p>
        }
        .into_any();
    }
    view! {
        <table class="queues" data-test-id="queues-table">
            <thead>
                <tr>
                    <th scope="col">"Queue"</th>
                    {STATES
                        .iter()
                        .map(|(state, label)| {
                            view! {
                                <th scope="col" class=format!("num {state}")>
                                    {*label}
                                </th>
                            }
                        })
                        .collect_view()}
                    <th scope="col">"State"</th>
                </tr>
            </thead>
            <tbody>{queues.into_iter().map(|row| view! { <QueueTableRow row /> }).collect_view()}</tbody>
        </table>
    }
    .into_any()
}

/// One queue's row, with `data-test-id`s so tests and scripts can read a
/// count without depending on column order.
#[component]
fn QueueTableRow(row: QueueRow) -> impl IntoView {
    let href = format!("/queues/{}", row.name);
    let (state_class, state_label) = if row.paused {
        ("badge paused", "Paused")
    } else {
        ("badge running", "Running")
    };
    view! {
        <tr data-test-id=format!("queue-row-{}", row.name)>
            <th scope="row">
                <a href=href data-test-id="queue-name">
                    {row.name.clone()}
                </a>
            </th>
            {STATES
                .iter()
                .map(|(state, _)| {
                    let n = row.count(state);
                    let class = if n == 0 {
                        format!("num count {state} zero")
                    } else {
                        format!("num count {state}")
                    };
                    view! {
                        <td class=class data-test-id=format!("count-{state}")>
                            {n}
                        </td>
                    }
                })
                .collect_view()}
            <td data-test-id="queue-state">
                <span class=state_class>{state_label}</span>
            </td>
        </tr>
    }
}

/// The state tabs of a queue's page: each links to that state's jobs and
/// shows how many there are.
#[component]
pub fn StateTabs(queue: QueueRow, selected: String) -> impl IntoView {
    view! {
        <nav class="tabs" aria-label="Job states">
            {STATES
                .iter()
                .map(|(state, label)| {
                    let current = *state == selected;
                    let class = if current {
                        format!("tab {state} current")
                    } else {
                        format!("tab {state}")
                    };
                    view! {
                        <a
                            class=class
                            href=format!("/queues/{}?state={state}", queue.name)
                            aria-current=current.then_some("page")
                            data-test-id=format!("tab-{state}")
                        >
                            {*label}
                            " "
                            <span class="n">{queue.count(state)}</span>
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// A page of jobs, or a line saying there are none in this state.
#[component]
pub fn JobsTable(jobs: Vec<JobRow>, state: String) -> impl IntoView {
    if jobs.is_empty() {
        return view! {
            <p class="empty" data-test-id="empty-jobs">
                {format!("No {state} jobs.")}
            </p>
        }
        .into_any();
    }
    view! {
        <table class="jobs" data-test-id="jobs-table">
            <thead>
                <tr>
                    <th scope="col">"Id"</th>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Data"</th>
                    <th scope="col" class="num">
                        "Attempts"
                    </th>
                    <th scope="col" class="num">
                        "Priority"
                    </th>
                    <th scope="col">"Enqueued"</th>
                    <th scope="col">"Last error"</th>
                </tr>
            </thead>
            <tbody>
                {jobs
                    .into_iter()
                    .map(|job| {
                        let row_id = format!("job-row-{}", job.id);
                        view! {
                            <tr data-test-id=row_id>
                                <td>
                                    <code>{job.id}</code>
                                </td>
                                <td data-test-id="job-name">{job.name}</td>
                                <td>
                                    <code class="data" data-test-id="job-data">
                                        {job.data_preview}
                                    </code>
                                </td>
                                <td class="num">{format!("{}/{}", job.attempts_made, job.attempts)}</td>
                                <td class="num">{job.priority}</td>
                                <td>{format_age(job.age_ms)}</td>
                                <td class="error-text">{job.failed_reason.unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// Previous/next links when a state holds more jobs than one page.
#[component]
pub fn Pager(vm: QueuePageVm) -> impl IntoView {
    let shown_to = vm.offset + vm.jobs.len() as u64;
    let base = format!(
        "/queues/{}?state={}&limit={}",
        vm.queue.name, vm.state, vm.limit
    );
    let prev = (vm.offset > 0).then(|| {
        let href = format!("{base}&offset={}", vm.offset.saturating_sub(vm.limit));
        view! {
            <a href=href rel="prev">
                "← Newer"
            </a>
        }
    });
    let next = (shown_to < vm.total).then(|| {
        let href = format!("{base}&offset={shown_to}");
        view! {
            <a href=href rel="next">
                "Older →"
            </a>
        }
    });
    let summary = if vm.jobs.is_empty() {
        format!("0 of {}", vm.total)
    } else {
        format!("{}–{} of {}", vm.offset + 1, shown_to, vm.total)
    };
    view! {
        <p class="pager">
            {prev}
            <span class="summary">{summary}</span>
            {next}
        </p>
    }
}
