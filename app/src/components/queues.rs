//! The queues table: one row per queue with its counts, rate, health badge
//! and a pause/resume button.

use leptos::prelude::*;

use super::ActionForm;
use crate::vm::{QueueRow, QueuesVm, STATES, format_count};

/// The queues table as a live region, or a hint on how to get a first
/// queue, or (backend down, nothing known) a line saying counts are missing.
#[component]
pub fn QueuesRegion(vm: QueuesVm) -> impl IntoView {
    let body = if vm.queues.is_empty() {
        if vm.health.backend_ok {
            view! {
                <p class="empty" data-test-id="empty-state">
                    "No queues yet — enqueue a job or run "
                    <code>"switchyard demo"</code>
                </p>
            }
            .into_any()
        } else {
            view! {
                <p class="empty" data-test-id="backend-down">
                    "Queue counts are unavailable until the backend answers."
                </p>
            }
            .into_any()
        }
    } else {
        let legend = format!(
            "Busy: more than {} active jobs. Warning: more than {}% of finished jobs failed in the last 5 minutes.",
            format_count(vm.busy_active),
            vm.warning_failure_rate
        );
        view! {
            <div class="table-wrap">
                <table class="queues" data-test-id="queues-table">
                    <thead>
                        <tr>
                            <th scope="col">"Queue"</th>
                            <th scope="col">"Health"</th>
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
                            <th scope="col" class="num">
                                "Jobs/min"
                            </th>
                            <th scope="col" class="num">
                                "Failure rate"
                            </th>
                            <th scope="col">"State"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {vm
                            .queues
                            .into_iter()
                            .map(|row| view! { <QueueTableRow row /> })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
            <p class="legend">{legend}</p>
        }
        .into_any()
    };
    view! { <div id="queues">{body}</div> }
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
    let rate = row
        .jobs_per_min
        .map(|r| format!("{r:.1}"))
        .unwrap_or_else(|| "–".into());
    let failure = row
        .failure_rate
        .map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "–".into());
    let (action, label, test_id) = if row.paused {
        ("resume", "Resume", "resume-queue")
    } else {
        ("pause", "Pause", "pause-queue")
    };
    view! {
        <tr data-test-id=format!("queue-row-{}", row.name)>
            <th scope="row">
                <a href=href data-test-id="queue-name">
                    {row.name.clone()}
                </a>
            </th>
            <td>
                <span
                    class=format!("badge {}", row.health.class())
                    data-test-id="queue-health"
                >
                    {row.health.label()}
                </span>
            </td>
            {STATES
                .iter()
                .map(|(state, _)| {
                    let n = row.count(state);
                    let class = if n == 0 {
                        format!("num count {state} zero")
                    } else {
                        format!("num count {state}")
                    };
                    let href = format!("/queues/{}?state={state}", row.name);
                    view! {
                        <td class=class data-test-id=format!("count-{state}")>
                            <a href=href>{format_count(n)}</a>
                        </td>
                    }
                })
                .collect_view()}
            <td class="num" data-test-id="jobs-per-min">
                {rate}
            </td>
            <td class="num" data-test-id="failure-rate">
                {failure}
            </td>
            <td data-test-id="queue-state" class="state-cell">
                <span class=state_class data-test-id="queue-paused">
                    {state_label}
                </span>
                <ActionForm
                    action=format!("/queues/{}/{action}", row.name)
                    back="/queues".to_string()
                    label=label
                    test_id=test_id.to_string()
                />
            </td>
        </tr>
    }
}
