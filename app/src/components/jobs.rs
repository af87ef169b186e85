//! A queue's page: its header with state tabs, the retry-all progress, the
//! search form and the job table with its actions.

use leptos::prelude::*;

use super::{ActionForm, CsrfField};
use crate::vm::{
    BulkProgressVm, JobFilterVm, JobRow, QueuePageVm, QueueRow, STATES, format_age, format_count,
    format_timestamp, iso_timestamp,
};

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

/// The queue's name, badges, queue-wide actions and state tabs (a region:
/// counts move while the page is open).
#[component]
pub fn QueueHeader(vm: QueuePageVm) -> impl IntoView {
    let back = vm.url();
    let queue = vm.queue.clone();
    let name = queue.name.clone();
    let paused = queue.paused;
    let (action, label, test_id) = if paused {
        ("resume", "Resume", "resume-queue")
    } else {
        ("pause", "Pause", "pause-queue")
    };
    view! {
        <div id="queue-header">
            <h1>
                {name.clone()} " "
                <span
                    class=format!("badge {}", queue.health.class())
                    data-test-id="queue-health"
                >
                    {queue.health.label()}
                </span>
                " "
                {paused
                    .then(|| {
                        view! {
                            <span class="badge paused" data-test-id="paused-badge">
                                "Paused"
                            </span>
                        }
                    })}
            </h1>
            <div class="toolbar">
                <ActionForm
                    action=format!("/queues/{name}/{action}")
                    back=back
                    label=label
                    test_id=test_id.to_string()
                />
            </div>
            <StateTabs queue=queue selected=vm.state.clone() />
        </div>
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
                            <span class=if queue.count(state) == 0 {
                                "n zero"
                            } else {
                                "n"
                            }>{format_count(queue.count(state))}</span>
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// Filter by name and text, and jump to a job by id. Not a live region:
/// it holds what the operator is typing.
#[component]
pub fn SearchForm(queue: String, state: String, filter: JobFilterVm) -> impl IntoView {
    let action = format!("/queues/{queue}");
    let find = format!("/queues/{queue}/find");
    let clear = format!("/queues/{queue}?state={state}");
    let active = filter.is_active();
    view! {
        <div class="search">
            <form method="get" action=action class="filter" data-test-id="filter-form">
                <input type="hidden" name="state" value=state />
                <label>
                    "Name "
                    <input
                        type="search"
                        name="name"
                        value=filter.name
                        maxlength="200"
                        placeholder="any"
                        data-test-id="filter-name"
                    />
                </label>
                <label>
                    "Data or error contains "
                    <input
                        type="search"
                        name="q"
                        value=filter.text
                        maxlength="200"
                        placeholder="any"
                        data-test-id="filter-text"
                    />
                </label>
                <button type="submit" class="button">
                    "Filter"
                </button>
                {active.then(|| view! { <a href=clear>"Clear"</a> })}
            </form>
            <form method="get" action=find class="find" data-test-id="find-form">
                <label>
                    "Job id "
                    <input
                        type="search"
                        name="id"
                        required
                        maxlength="128"
                        data-test-id="find-id"
                    />
                </label>
                <button type="submit" class="button">
                    "Go"
                </button>
            </form>
        </div>
    }
}

/// The progress of a "retry all failed" run (a region, empty when none).
#[component]
pub fn ProgressRegion(progress: Option<BulkProgressVm>) -> impl IntoView {
    let body = progress.map(|p| {
        let text = match (&p.error, p.finished) {
            (Some(err), _) => format!(
                "Retry all stopped after {} of {} jobs: {err}",
                format_count(p.done),
                format_count(p.total)
            ),
            (None, true) => format!("Retried {} failed jobs.", format_count(p.done)),
            (None, false) => format!(
                "Retrying failed jobs: {} of {}…",
                format_count(p.done),
                format_count(p.total)
            ),
        };
        let class = match (&p.error, p.finished) {
            (Some(_), _) => "progress error",
            (None, true) => "progress done",
            (None, false) => "progress running",
        };
        view! {
            <div
                class=class
                data-test-id="retry-progress"
                data-done=p.done.to_string()
                data-total=p.total.to_string()
                data-finished=p.finished.to_string()
            >
                <progress value=p.done.to_string() max=p.total.max(1).to_string()></progress>
                <span>{text}</span>
            </div>
        }
    });
    view! { <div id="progress">{body}</div> }
}

/// The jobs of the selected state, with the search note, the bulk actions
/// of the failed set, the table and the pager (a region).
#[component]
pub fn JobsRegion(vm: QueuePageVm, now: i64) -> impl IntoView {
    let failed = vm.state == "failed";
    let name = vm.queue.name.clone();
    let back = vm.url();
    let note = vm
        .search_note
        .clone()
        .map(|n| view! { <p class="muted" data-test-id="search-note">{n}</p> });
    let failed_count = vm.queue.counts.failed;
    let bulk = (failed && failed_count > 0).then(|| {
        let all_label = format!("Retry all {} failed jobs?", format_count(failed_count));
        view! {
            <div class="toolbar needs-operator">
                <form
                    id="selection"
                    method="post"
                    action=format!("/queues/{name}/retry-selected")
                    class="inline"
                >
                    <CsrfField />
                    <input type="hidden" name="back" value=back.clone() />
                    <button type="submit" class="button" data-test-id="retry-selected">
                        "Retry selected"
                    </button>
                </form>
                <ActionForm
                    action=format!("/queues/{name}/retry-failed")
                    back=back.clone()
                    label="Retry all failed"
                    class="primary"
                    test_id="retry-all".to_string()
                    confirm=all_label
                />
            </div>
        }
    });
    let table = if vm.jobs.is_empty() {
        let text = if vm.filter.is_active() {
            format!("No {} jobs match the filter.", vm.state)
        } else {
            format!("No {} jobs.", vm.state)
        };
        view! {
            <p class="empty" data-test-id="empty-jobs">
                {text}
            </p>
        }
        .into_any()
    } else {
        view! { <JobsTable vm=vm.clone() now=now /> }.into_any()
    };
    view! {
        <div id="jobs">
            {note}
            {bulk}
            {table}
            <Pager vm=vm />
        </div>
    }
}

/// The table itself: failed jobs show their error and when they failed,
/// the other states their data, priority and age.
#[component]
fn JobsTable(vm: QueuePageVm, now: i64) -> impl IntoView {
    let failed = vm.state == "failed";
    let queue = vm.queue.name.clone();
    let state = vm.state.clone();
    let back = vm.url();
    let head = if failed {
        view! {
            <tr>
                <th scope="col" class="pick">
                    <input type="checkbox" data-select-all="selection" aria-label="Select all" />
                </th>
                <th scope="col">"Id"</th>
                <th scope="col">"Name"</th>
                <th scope="col">"Failed reason"</th>
                <th scope="col" class="num">
                    "Attempts"
                </th>
                <th scope="col">"Failed"</th>
                <th scope="col">"Actions"</th>
            </tr>
        }
        .into_any()
    } else {
        view! {
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
                <th scope="col">"Actions"</th>
            </tr>
        }
        .into_any()
    };
    let rows = vm
        .jobs
        .into_iter()
        .map(|job| {
            view! { <JobTableRow job queue=queue.clone() state=state.clone() back=back.clone() now /> }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class=format!("jobs {}", vm.state) data-test-id="jobs-table">
                <thead>{head}</thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

#[component]
fn JobTableRow(job: JobRow, queue: String, state: String, back: String, now: i64) -> impl IntoView {
    let job_href = format!("/queues/{queue}/jobs/{}", job.id);
    let action = |verb: &str| format!("/queues/{queue}/jobs/{}/{verb}", job.id);
    let remove = (state != "active").then(|| {
        view! {
            <ActionForm
                action=action("remove")
                back=back.clone()
                label="Remove"
                class="danger"
                test_id="remove-job".to_string()
                confirm=format!("Remove job {}?", job.id)
            />
        }
    });
    let attempts = format!("{}/{}", job.attempts_made, job.attempts);
    let name_title = job.name.clone();
    let reason_title = job.failed_reason.clone().unwrap_or_default();
    let data_title = job.data_preview.clone();
    let id_cell = view! {
        <td>
            <a href=job_href data-test-id="job-link">
                <code>{job.id.clone()}</code>
            </a>
        </td>
    };
    if state == "failed" {
        let failed_at = job.finished_at.unwrap_or(job.created_at);
        view! {
            <tr data-test-id=format!("job-row-{}", job.id)>
                <td class="pick">
                    <input
                        type="checkbox"
                        name="id"
                        value=job.id.clone()
                        form="selection"
                        aria-label=format!("Select job {}", job.id)
                        data-test-id="select-job"
                    />
                </td>
                {id_cell}
                <td class="name" data-test-id="job-name" title=name_title.clone()>
                    {job.name}
                </td>
                <td
                    class="error-text"
                    data-test-id="failed-reason"
                    title=reason_title
                >
                    {job.failed_reason.unwrap_or_default()}
                </td>
                <td class="num">{attempts}</td>
                <td>
                    <Moment at=failed_at now=now />
                </td>
                <td class="actions">
                    <ActionForm
                        action=action("retry")
                        back=back.clone()
                        label="Retry"
                        class="primary"
                        test_id="retry-job".to_string()
                    />
                    {remove}
                </td>
            </tr>
        }
        .into_any()
    } else {
        let promote = (state == "delayed").then(|| {
            view! {
                <ActionForm
                    action=action("promote")
                    back=back.clone()
                    label="Run now"
                    test_id="promote-job".to_string()
                />
            }
        });
        view! {
            <tr data-test-id=format!("job-row-{}", job.id)>
                {id_cell}
                <td class="name" data-test-id="job-name" title=name_title.clone()>
                    {job.name}
                </td>
                <td>
                    <code class="data" data-test-id="job-data" title=data_title>
                        {job.data_preview}
                    </code>
                </td>
                <td class="num">{attempts}</td>
                <td class="num">{job.priority}</td>
                <td>
                    <Moment at=job.created_at now=now />
                </td>
                <td class="actions">{promote} {remove}</td>
            </tr>
        }
        .into_any()
    }
}

/// Newest / newer / older / oldest links when a state holds more jobs
/// than one page: at a million jobs, the oldest are one click away.
#[component]
fn Pager(vm: QueuePageVm) -> impl IntoView {
    let shown_to = vm.offset + vm.jobs.len() as u64;
    let limit = vm.limit.max(1);
    let first = (vm.offset > 0).then(|| {
        let newest = vm.url_with_offset(0);
        let newer = vm.url_with_offset(vm.offset.saturating_sub(limit));
        view! {
            <a href=newest data-test-id="page-newest">
                "« Newest"
            </a>
            <a href=newer rel="prev" data-test-id="page-newer">
                "← Newer"
            </a>
        }
    });
    let last = (shown_to < vm.total).then(|| {
        let older = vm.url_with_offset(shown_to);
        let oldest = vm.url_with_offset((vm.total - 1) / limit * limit);
        view! {
            <a href=older rel="next" data-test-id="page-older">
                "Older →"
            </a>
            <a href=oldest data-test-id="page-oldest">
                "Oldest »"
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
            {first}
            <span class="summary">{summary}</span>
            {last}
        </p>
    }
}
