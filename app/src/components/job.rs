//! A job's page: its state and actions, timeline, attempts with their
//! errors, data, options and logs.

use leptos::prelude::*;

use super::ActionForm;
use crate::vm::{AttemptVm, JobPageVm, format_duration, format_timestamp};

/// The job's name, state badge and summary line.
#[component]
pub fn JobHeader(vm: JobPageVm) -> impl IntoView {
    view! {
        <h1>
            "Job " <code>{vm.id.clone()}</code> " " <span class="muted">{vm.name.clone()}</span> " "
            <span class=format!("badge state {}", vm.state) data-test-id="job-state">
                {vm.state.clone()}
            </span>
        </h1>
    }
}

/// What an operator can do to the job in its state.
#[component]
pub fn JobActions(vm: JobPageVm) -> impl IntoView {
    let base = format!("/queues/{}/jobs/{}", vm.queue, vm.id);
    let here = base.clone();
    let queue_page = format!("/queues/{}?state={}", vm.queue, vm.state);
    let retry = (vm.state == "failed").then(|| {
        view! {
            <ActionForm
                action=format!("{base}/retry")
                back=here.clone()
                label="Retry"
                class="primary"
                test_id="retry-job".to_string()
            />
        }
    });
    let promote = (vm.state == "delayed").then(|| {
        view! {
            <ActionForm
                action=format!("{base}/promote")
                back=here.clone()
                label="Run now"
                test_id="promote-job".to_string()
            />
        }
    });
    let remove = (vm.state != "active").then(|| {
        view! {
            <ActionForm
                action=format!("{base}/remove")
                back=queue_page
                label="Remove"
                class="danger"
                test_id="remove-job".to_string()
                confirm=format!("Remove job {}?", vm.id)
            />
        }
    });
    view! { <div class="toolbar">{retry} {promote} {remove}</div> }
}

/// Everything about the job that changes as it runs (a region).
#[component]
pub fn JobDetail(vm: JobPageVm) -> impl IntoView {
    let mut timeline = vec![("Enqueued", Some(vm.created_at))];
    if vm.state == "delayed" {
        timeline.push(("Runs at", vm.run_at));
    }
    timeline.push(("Started", vm.processed_at));
    timeline.push(("Finished", vm.finished_at));
    let error = vm.failed_reason.clone().map(|reason| {
        view! {
            <section class="error-box" data-test-id="job-error">
                <h2>"Last error"</h2>
                <p class="error-text">{reason}</p>
                {(!vm.stacktrace.is_empty())
                    .then(|| {
                        view! {
                            <pre class="stack">{vm.stacktrace.join("\n")}</pre>
                        }
                    })}
            </section>
        }
    });
    let history = if vm.history.is_empty() {
        view! { <p class="empty">"No attempt has finished yet."</p> }.into_any()
    } else {
        view! {
            <div class="table-wrap">
            <table class="history" data-test-id="job-history">
                <thead>
                    <tr>
                        <th scope="col" class="num">
                            "#"
                        </th>
                        <th scope="col">"Started"</th>
                        <th scope="col" class="num">
                            "Took"
                        </th>
                        <th scope="col">"Outcome"</th>
                    </tr>
                </thead>
                <tbody>
                    {vm
                        .history
                        .clone()
                        .into_iter()
                        .map(|a| view! { <AttemptRow attempt=a /> })
                        .collect_view()}
                </tbody>
            </table>
            </div>
        }
        .into_any()
    };
    let result = vm.return_value_pretty.clone().map(|value| {
        view! {
            <section>
                <h2>"Result"</h2>
                <pre class="json">{value}</pre>
            </section>
        }
    });
    let summary = format!(
        "Attempts {}/{} · stalled {} {}",
        vm.attempts_made,
        vm.attempts,
        vm.stalled_count,
        if vm.stalled_count == 1 {
            "time"
        } else {
            "times"
        }
    );
    view! {
        <div id="job">
            <JobHeader vm=vm.clone() />
            <p class="muted" data-test-id="job-summary">
                {summary}
            </p>
            <JobActions vm=vm.clone() />
            {error}
            <section>
                <h2>"Timeline"</h2>
                <dl class="timeline" data-test-id="job-timeline">
                    {timeline
                        .into_iter()
                        .map(|(label, at)| {
                            view! {
                                <dt>{label}</dt>
                                <dd>{at.map(format_timestamp).unwrap_or_else(|| "–".into())}</dd>
                            }
                        })
                        .collect_view()}
                </dl>
            </section>
            <section>
                <h2>"Attempts"</h2>
                {history}
            </section>
            {result}
        </div>
    }
}

#[component]
fn AttemptRow(attempt: AttemptVm) -> impl IntoView {
    let outcome = match &attempt.error {
        None => view! { <span class="completed">"completed"</span> }.into_any(),
        Some(err) => {
            let chain = (!attempt.chain.is_empty()).then(|| {
                view! { <pre class="stack">{attempt.chain.join("\n")}</pre> }
            });
            view! {
                <span class="error-text">{err.clone()}</span>
                {chain}
            }
            .into_any()
        }
    };
    view! {
        <tr>
            <td class="num">{attempt.attempt}</td>
            <td>{format_timestamp(attempt.started_at)}</td>
            <td class="num">{format_duration(attempt.finished_at - attempt.started_at)}</td>
            <td>{outcome}</td>
        </tr>
    }
}
