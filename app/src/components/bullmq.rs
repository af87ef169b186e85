//! The BullMQ pages' parts: the queues table, a queue's header with its
//! state tabs, its job table with the actions of each state, and a job's
//! detail. They mirror the native queue pages' markup and classes, so the
//! two look and behave alike.
//!
//! Every part that changes while a page is open is a region (`bull-queues`,
//! `bull-header`, `bull-jobs`, `bull-job`). Queue names and job ids are
//! percent-encoded in every path ([`encode_segment`]); everything else a
//! producer wrote is text or an attribute value, which leptos escapes.

use leptos::prelude::*;

use super::jobs::Moment;
use super::ratelimits::format_in;
use super::{ActionForm, CsrfField};
use crate::bullmq::{
    BULL_STATES, BullJobPageVm, BullJobRow, BullQueuePageVm, BullQueueRow, BullQueuesVm,
    CLEAN_AGES, bull_job_actions, bull_job_path, bull_queue_path,
};
use crate::vm::{encode_query, format_count, format_duration, format_timestamp, iso_timestamp};

/// Where the BullMQ page's forms come back to: its regions are rendered
/// once for every open page, and there is one such page.
const BULLMQ_PAGE: &str = "/bullmq";

/// The Clean form's preselected age: the one removing the fewest jobs.
const CLEAN_DEFAULT: &str = "7d";

/// A state's label (`waiting-children` → `Waiting children`).
fn state_label(state: &str) -> &str {
    BULL_STATES
        .iter()
        .find(|(s, _)| *s == state)
        .map_or(state, |(_, label)| label)
}

/// The `/bullmq/<queue>?state=<state>` link of a state's jobs.
fn state_href(queue: &str, state: &str) -> String {
    format!("{}?state={}", bull_queue_path(queue), encode_query(state))
}

/// A line saying BullMQ could not be read, and that what follows is the
/// last known.
#[component]
fn BullError(error: Option<String>, last_known: &'static str) -> impl IntoView {
    error.map(|e| {
        view! {
            <p class="status down bull-error" role="alert" data-test-id="bull-error">
                <span class="dot" aria-hidden="true"></span>
                {format!("BullMQ's Redis could not be read: {e}. {last_known}")}
            </p>
        }
    })
}

/// The Pause or Resume button of a queue.
#[component]
fn PauseForm(queue: String, paused: bool, back: String) -> impl IntoView {
    let (action, label, test_id) = if paused {
        ("resume", "Resume", "resume-queue")
    } else {
        ("pause", "Pause", "pause-queue")
    };
    view! {
        <ActionForm
            action=format!("{}/{action}", bull_queue_path(&queue))
            back=back
            label=label
            test_id=test_id.to_string()
        />
    }
}

/// The BullMQ queues table (a region), or why there is none: BullMQ not
/// configured, Redis unreachable, or no queue under the prefix.
#[component]
pub fn BullQueuesRegion(vm: BullQueuesVm) -> impl IntoView {
    let body = if !vm.enabled {
        view! {
            <div class="empty bull-off" data-test-id="bullmq-disabled">
                <p>"BullMQ monitoring is off: no Redis is configured for it."</p>
                <p>
                    "Start Switchyard with " <code>"--bullmq <redis-url>"</code>
                    " (the Redis your BullMQ producers and workers use) to watch and operate their queues here. Without it, Switchyard follows "
                    <code>"--redis"</code> " when that is set."
                </p>
            </div>
        }
        .into_any()
    } else if vm.rows.is_empty() {
        if vm.error.is_some() {
            view! {
                <p class="empty" data-test-id="backend-down">
                    "BullMQ queues are unavailable until Redis answers."
                </p>
            }
            .into_any()
        } else {
            view! {
                <p class="empty" data-test-id="empty-state">
                    "No BullMQ queues under prefix " <code>{vm.prefix.clone()}</code>
                </p>
            }
            .into_any()
        }
    } else {
        view! {
            <div class="table-wrap">
                <table class="queues bull-queues" data-test-id="bull-queues-table">
                    <thead>
                        <tr>
                            <th scope="col">"Queue"</th>
                            {BULL_STATES
                                .iter()
                                .map(|(state, label)| {
                                    view! {
                                        <th scope="col" class=format!("num state-col {state}")>
                                            {*label}
                                        </th>
                                    }
                                })
                                .collect_view()}
                            <th scope="col">"State"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {vm
                            .rows
                            .clone()
                            .into_iter()
                            .map(|row| view! { <BullQueueTableRow row /> })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
            <p class="legend">
                "Queues found under the key prefix " <code>{vm.prefix.clone()}</code>
                ". Counts follow each queue's events stream."
            </p>
        }
        .into_any()
    };
    let error = vm.enabled.then(|| {
        view! {
            <BullError error=vm.error.clone() last_known="The queues below are the last known." />
        }
    });
    view! { <div id="bull-queues">{error} {body}</div> }
}

/// One queue's row: a count per state, each linking to that state's jobs.
#[component]
fn BullQueueTableRow(row: BullQueueRow) -> impl IntoView {
    let (state_class, state_label) = if row.paused {
        ("badge paused", "Paused")
    } else {
        ("badge running", "Running")
    };
    let counts = BULL_STATES
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
                    <a href=state_href(&row.name, state)>{format_count(n)}</a>
                </td>
            }
        })
        .collect_view();
    view! {
        <tr data-test-id=format!("queue-row-{}", row.name)>
            <th scope="row">
                <a href=bull_queue_path(&row.name) data-test-id="queue-name">
                    {row.name.clone()}
                </a>
            </th>
            {counts}
            <td data-test-id="queue-state" class="state-cell">
                <span class=state_class data-test-id="queue-paused">
                    {state_label}
                </span>
                <PauseForm
                    queue=row.name.clone()
                    paused=row.paused
                    back=BULLMQ_PAGE.to_string()
                />
            </td>
        </tr>
    }
}

/// A BullMQ queue's name, prefix, Paused badge, Pause/Resume button and
/// state tabs (a region: counts move while the page is open).
#[component]
pub fn BullQueueHeader(vm: BullQueuePageVm) -> impl IntoView {
    let back = vm.url();
    let queue = vm.queue.clone();
    let paused = queue.paused.then(|| {
        view! {
            <span class="badge paused" data-test-id="paused-badge">
                "Paused"
            </span>
        }
    });
    view! {
        <div id="bull-header">
            <h1>
                {queue.name.clone()} " " <span class="badge bullmq">"BullMQ"</span> " " {paused}
            </h1>
            <div class="toolbar">
                <PauseForm queue=queue.name.clone() paused=queue.paused back=back />
            </div>
            <p class="muted bull-prefix" data-test-id="bull-prefix">
                "Key prefix " <code>{vm.prefix.clone()}</code>
            </p>
            <BullError error=vm.error.clone() last_known="The figures below are the last known." />
            <BullStateTabs queue=queue selected=vm.state.clone() />
        </div>
    }
}

/// The state tabs of a BullMQ queue's page, with each state's count.
#[component]
fn BullStateTabs(queue: BullQueueRow, selected: String) -> impl IntoView {
    view! {
        <nav class="tabs" aria-label="Job states">
            {BULL_STATES
                .iter()
                .map(|(state, label)| {
                    let current = *state == selected;
                    let class = if current {
                        format!("tab {state} current")
                    } else {
                        format!("tab {state}")
                    };
                    let n = queue.count(state);
                    view! {
                        <a
                            class=class
                            href=state_href(&queue.name, state)
                            aria-current=current.then_some("page")
                            data-test-id=format!("tab-{state}")
                        >
                            {*label}
                            " "
                            <span class=if n == 0 { "n zero" } else { "n" }>{format_count(n)}</span>
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// The buttons a job has in its state ([`bull_job_actions`]). `back` is
/// where Retry and Promote come back to; `remove_back` where Remove does
/// (a job's own page is gone once it is removed).
fn job_buttons(
    queue: &str,
    id: &str,
    state: &str,
    back: &str,
    remove_back: &str,
) -> impl IntoView + use<> {
    let base = bull_job_path(queue, id);
    bull_job_actions(state)
        .iter()
        .map(|verb| {
            let action = format!("{base}/{verb}");
            match *verb {
                "retry" => view! {
                    <ActionForm
                        action=action
                        back=back.to_string()
                        label="Retry"
                        class="primary"
                        test_id="retry-job".to_string()
                    />
                }
                .into_any(),
                "promote" => view! {
                    <ActionForm
                        action=action
                        back=back.to_string()
                        label="Promote"
                        test_id="promote-job".to_string()
                    />
                }
                .into_any(),
                _ => view! {
                    <ActionForm
                        action=action
                        back=remove_back.to_string()
                        label="Remove"
                        class="danger"
                        test_id="remove-job".to_string()
                        confirm=format!("Remove job {id} from {queue}?")
                    />
                }
                .into_any(),
            }
        })
        .collect_view()
}

/// What an empty tab says.
fn empty_text(state: &str) -> String {
    match state {
        "waiting" => "No jobs are waiting.".into(),
        "active" => "No job is being processed.".into(),
        "delayed" => "No delayed jobs.".into(),
        "prioritized" => "No prioritized jobs are waiting.".into(),
        "waiting-children" => "No jobs are waiting for their children.".into(),
        "completed" => "No completed jobs (producers may remove them on completion).".into(),
        "failed" => "No failed jobs.".into(),
        "paused" => "No jobs are held by the pause.".into(),
        other => format!("No {other} jobs."),
    }
}

/// The jobs of the selected state (a region): the bulk actions of the
/// failed and completed sets, the table or why it is empty, and the pager.
#[component]
pub fn BullJobsRegion(vm: BullQueuePageVm, now: i64) -> impl IntoView {
    let name = vm.queue.name.clone();
    let back = vm.url();
    let state = vm.state.clone();
    let in_state = vm.queue.count(&state).max(vm.total);
    let retry_all = (state == "failed" && in_state > 0).then(|| {
        view! {
            <ActionForm
                action=format!("{}/retry-failed", bull_queue_path(&name))
                back=back.clone()
                label="Retry all failed"
                class="primary"
                test_id="retry-all".to_string()
                confirm=format!("Retry all {} failed jobs of {name}?", format_count(in_state))
            />
        }
    });
    let clean = (matches!(state.as_str(), "completed" | "failed") && in_state > 0).then(|| {
        view! {
            <CleanForm queue=name.clone() state=state.clone() back=back.clone() />
        }
    });
    let toolbar = (retry_all.is_some() || clean.is_some())
        .then(|| view! { <div class="toolbar bull-bulk">{retry_all} {clean}</div> });
    let table = if vm.jobs.is_empty() {
        view! {
            <p class="empty" data-test-id="empty-jobs">
                {empty_text(&state)}
            </p>
        }
        .into_any()
    } else {
        view! { <BullJobsTable vm=vm.clone() now=now /> }.into_any()
    };
    view! {
        <div id="bull-jobs">
            {toolbar}
            {table}
            <BullPager vm=vm />
        </div>
    }
}

/// The Clean form of the completed and failed sets: removes the jobs older
/// than the age picked.
#[component]
fn CleanForm(queue: String, state: String, back: String) -> impl IntoView {
    let question = format!(
        "Remove the {state} jobs of {queue} older than the age chosen? This cannot be undone."
    );
    let options = CLEAN_AGES
        .into_iter()
        .map(|(value, label)| {
            view! {
                <option value=value selected=value == CLEAN_DEFAULT>
                    {label}
                </option>
            }
        })
        .collect_view();
    view! {
        <form
            method="post"
            action=format!("{}/clean", bull_queue_path(&queue))
            class="inline needs-operator bull-clean"
            data-confirm=question
            data-test-id="clean-form"
        >
            <CsrfField />
            <input type="hidden" name="back" value=back />
            <input type="hidden" name="state" value=state.clone() />
            <label>
                {format!("Clean {state} jobs ")}
                <select name="older_than" data-test-id="clean-older-than">
                    {options}
                </select>
            </label>
            " "
            <button type="submit" class="button danger" data-test-id="clean-jobs">
                "Clean"
            </button>
        </form>
    }
}

/// The jobs table: failed jobs show their error, delayed ones when they
/// run; every row its times, attempts, data and buttons.
#[component]
fn BullJobsTable(vm: BullQueuePageVm, now: i64) -> impl IntoView {
    let state = vm.state.clone();
    let failed = state == "failed";
    let delayed = state == "delayed";
    let has_actions = !bull_job_actions(&state).is_empty();
    let back = vm.url();
    let queue = vm.queue.name.clone();
    let rows = vm
        .jobs
        .into_iter()
        .map(|job| {
            view! {
                <BullJobTableRow
                    job
                    queue=queue.clone()
                    state=state.clone()
                    back=back.clone()
                    now
                />
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class=format!("jobs bull-jobs {}", vm.state) data-test-id="jobs-table">
                <thead>
                    <tr>
                        <th scope="col">"Id"</th>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Processed"</th>
                        <th scope="col">"Finished"</th>
                        <th scope="col" class="num">
                            "Attempts"
                        </th>
                        {failed.then(|| view! { <th scope="col">"Failed reason"</th> })}
                        {delayed.then(|| view! { <th scope="col">"Runs at"</th> })}
                        <th scope="col">"Data"</th>
                        {has_actions.then(|| view! { <th scope="col">"Actions"</th> })}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// A moment shown relative, or `–` when it has not happened.
fn maybe_moment(at: Option<i64>, now: i64) -> impl IntoView + use<> {
    match at {
        Some(at) => view! { <Moment at=at now=now /> }.into_any(),
        None => view! { <span class="muted">"–"</span> }.into_any(),
    }
}

/// When a delayed job runs: the exact time, and how long until then.
#[component]
fn RunsAt(at: Option<i64>, now: i64) -> impl IntoView {
    match at {
        Some(at) => {
            let until = if at > now {
                format_in(at - now)
            } else {
                "due".to_string()
            };
            view! {
                <time datetime=iso_timestamp(at) title=format_timestamp(at)>
                    {until}
                </time>
            }
            .into_any()
        }
        None => view! { <span class="muted">"–"</span> }.into_any(),
    }
}

#[component]
fn BullJobTableRow(
    job: BullJobRow,
    queue: String,
    state: String,
    back: String,
    now: i64,
) -> impl IntoView {
    let failed = state == "failed";
    let delayed = state == "delayed";
    let has_actions = !bull_job_actions(&state).is_empty();
    let buttons = has_actions.then(|| {
        let buttons = job_buttons(&queue, &job.id, &state, &back, &back);
        view! { <td class="actions">{buttons}</td> }
    });
    let reason = failed.then(|| {
        let reason = job.failed_reason.clone().unwrap_or_default();
        let title = reason.clone();
        view! {
            <td class="error-text" data-test-id="failed-reason" title=title>
                {reason}
            </td>
        }
    });
    let runs_at = delayed.then(|| {
        view! {
            <td data-test-id="runs-at">
                <RunsAt at=job.run_at now=now />
            </td>
        }
    });
    view! {
        <tr data-test-id=format!("job-row-{}", job.id)>
            <td>
                <a href=bull_job_path(&queue, &job.id) data-test-id="job-link">
                    <code>{job.id.clone()}</code>
                </a>
            </td>
            <td class="name" data-test-id="job-name" title=job.name.clone()>
                {job.name.clone()}
            </td>
            <td>
                <Moment at=job.timestamp now=now />
            </td>
            <td>{maybe_moment(job.processed_on, now)}</td>
            <td>{maybe_moment(job.finished_on, now)}</td>
            <td class="num">{job.attempts_made}</td>
            {reason}
            {runs_at}
            <td>
                <code class="data" data-test-id="job-data" title=job.data_preview.clone()>
                    {job.data_preview.clone()}
                </code>
            </td>
            {buttons}
        </tr>
    }
}

/// Previous and next pages by offset, and where this one sits.
#[component]
fn BullPager(vm: BullQueuePageVm) -> impl IntoView {
    let limit = vm.limit.max(1);
    let shown_to = vm.offset + vm.jobs.len() as u64;
    let previous = (vm.offset > 0).then(|| {
        view! {
            <a
                href=vm.url_with_offset(vm.offset.saturating_sub(limit))
                rel="prev"
                data-test-id="page-prev"
            >
                "← Previous"
            </a>
        }
    });
    let next = (shown_to < vm.total).then(|| {
        view! {
            <a href=vm.url_with_offset(shown_to) rel="next" data-test-id="page-next">
                "Next →"
            </a>
        }
    });
    let summary = if vm.jobs.is_empty() {
        format!("0 of {}", format_count(vm.total))
    } else {
        format!(
            "{}–{} of {}",
            format_count(vm.offset + 1),
            format_count(shown_to),
            format_count(vm.total)
        )
    };
    view! {
        <p class="pager" data-test-id="pager">
            {previous}
            <span class="summary">{summary}</span>
            {next}
        </p>
    }
}

/// Everything about a BullMQ job (a region): state, name, actions, times,
/// attempts, progress, result, error and stack traces, data, options and
/// logs.
#[component]
pub fn BullJobRegion(vm: BullJobPageVm) -> impl IntoView {
    let here = vm.url();
    let queue_page = state_href(&vm.queue, &vm.state);
    let buttons = job_buttons(&vm.queue, &vm.id, &vm.state, &here, &queue_page);
    let mut timeline = vec![("Created", Some(vm.timestamp))];
    if vm.state == "delayed" && vm.delay > 0 {
        timeline.push(("Runs at", Some(vm.timestamp.saturating_add(vm.delay))));
    }
    timeline.push(("Processed", vm.processed_on));
    timeline.push(("Finished", vm.finished_on));
    let timeline = timeline
        .into_iter()
        .map(|(label, at)| {
            view! {
                <dt>{label}</dt>
                <dd>{at.map(format_timestamp).unwrap_or_else(|| "–".into())}</dd>
            }
        })
        .collect_view();
    let delay = if vm.delay > 0 {
        format_duration(vm.delay)
    } else {
        "none".to_string()
    };
    let priority = if vm.priority > 0 {
        vm.priority.to_string()
    } else {
        "none".to_string()
    };
    let progress = vm.progress.clone().unwrap_or_else(|| "–".into());
    let error = vm.failed_reason.clone().map(|reason| {
        let traces = (!vm.stacktrace.is_empty()).then(|| {
            view! {
                <ol class="stacktraces" data-test-id="job-stacktrace">
                    {vm
                        .stacktrace
                        .clone()
                        .into_iter()
                        .map(|trace| view! { <li><pre class="stack">{trace}</pre></li> })
                        .collect_view()}
                </ol>
            }
        });
        view! {
            <section class="error-box" data-test-id="job-error">
                <h2>"Last error"</h2>
                <p class="error-text" data-test-id="failed-reason">{reason}</p>
                {traces}
            </section>
        }
    });
    let result = vm.returnvalue.clone().map(|value| {
        view! {
            <section>
                <h2>"Return value"</h2>
                <pre class="json" data-test-id="job-returnvalue">{value}</pre>
            </section>
        }
    });
    let logs = if vm.logs.is_empty() {
        view! { <p class="muted" data-test-id="no-logs">"This job wrote no log lines."</p> }
            .into_any()
    } else {
        view! {
            <ol class="bull-logs" data-test-id="job-logs">
                {vm
                    .logs
                    .clone()
                    .into_iter()
                    .map(|line| view! { <li><code>{line}</code></li> })
                    .collect_view()}
            </ol>
        }
        .into_any()
    };
    view! {
        <div id="bull-job">
            <h1>
                "Job " <code>{vm.id.clone()}</code> " "
                <span class="muted" data-test-id="job-name">{vm.name.clone()}</span> " "
                <span class=format!("badge state {}", vm.state) data-test-id="job-state">
                    {state_label(&vm.state).to_string()}
                </span>
            </h1>
            <p class="muted" data-test-id="job-summary">
                {format!(
                    "Attempts made {} · started {} · delay {delay} · priority {priority}",
                    vm.attempts_made,
                    vm.attempts_started,
                )}
            </p>
            <div class="toolbar">{buttons}</div>
            {error}
            <section>
                <h2>"Timeline"</h2>
                <dl class="timeline" data-test-id="job-timeline">
                    {timeline}
                    <dt>"Progress"</dt>
                    <dd data-test-id="job-progress">{progress}</dd>
                </dl>
            </section>
            {result}
            <section>
                <h2>"Data"</h2>
                <pre class="json" data-test-id="job-data">{vm.data_pretty.clone()}</pre>
            </section>
            <section>
                <h2>"Options"</h2>
                <pre class="json" data-test-id="job-options">{vm.opts_pretty.clone()}</pre>
            </section>
            <section>
                <h2>"Logs"</h2>
                {logs}
            </section>
            <p>
                <a href=queue_page data-test-id="back-to-queue">"Back to the queue"</a>
            </p>
        </div>
    }
}
