//! A BullMQ queue's page (`/bullmq/<queue>?state=…`): its header with the
//! state tabs, the bulk actions of the failed and completed sets, and a
//! page of jobs in one state with the buttons of that state.

use leptos::prelude::*;

use super::bull_job::job_buttons;
use super::bullmq::BullError;
use crate::format::{format_count, format_in, format_timestamp, iso_timestamp};
use crate::vm::bullmq::{
    BULL_STATES, BullJobRow, BullQueuePageVm, CLEAN_AGES, bull_job_actions, bull_job_path,
    bull_queue_path, bull_state_path,
};
use crate::vm::session::PageCtx;
use crate::widgets::forms::{ActionForm, PostFields};
use crate::widgets::pager::{Pager, Steps};
use crate::widgets::queue::{PauseForm, StateTabs, Tab};
use crate::widgets::shell::{Fragment, Frame, Notice, Section, document, fragment};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::Moment;

/// The Clean form's preselected age: the one removing the fewest jobs.
const CLEAN_DEFAULT: &str = "7d";

/// The live stream of a BullMQ queue's page:
/// `/events/bullmq/<queue>?state=<state>` (and `&offset=` past the first
/// page), so the stream renders the jobs region of the page shown.
pub fn bull_queue_events(vm: &BullQueuePageVm) -> String {
    format!("/events{}", vm.url())
}

/// A BullMQ queue's page (`/bullmq/<queue>?state=…`): header with its
/// state tabs, and a page of jobs in one state with their buttons. `now`
/// (ms) is what ages are measured from.
pub fn render_bull_queue_page(vm: &BullQueuePageVm, now: i64, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new(
        format!("{} · BullMQ · Switchyard", vm.queue.name),
        Section::BullMq,
    )
    .live(bull_queue_events(&vm));
    document(page, frame, move || {
        view! {
            <section class="queue bull-queue">
                <p class="crumbs">
                    <a href="/bullmq">"BullMQ"</a>
                    " /"
                </p>
                <BullQueueHeader vm=vm.clone() />
                <Notice notice=vm.notice.clone() />
                <BullJobsRegion vm=vm now=now />
            </section>
        }
    })
}

/// The live regions of a BullMQ queue's page: `bull-header` and
/// `bull-jobs`.
pub fn bull_queue_fragments(vm: &BullQueuePageVm, now: i64) -> Vec<Fragment> {
    vec![
        fragment("bull-header", view! { <BullQueueHeader vm=vm.clone() /> }),
        fragment(
            "bull-jobs",
            view! { <BullJobsRegion vm=vm.clone() now=now /> },
        ),
    ]
}

/// A BullMQ queue's name, prefix, Paused badge, Pause/Resume button and
/// state tabs (a region: counts move while the page is open).
#[component]
fn BullQueueHeader(vm: BullQueuePageVm) -> impl IntoView {
    let back = vm.url();
    let queue = vm.queue.clone();
    let tabs = BULL_STATES
        .iter()
        .map(|&(state, label)| Tab {
            state,
            label,
            href: bull_state_path(&queue.name, state),
            count: queue.count(state),
        })
        .collect::<Vec<_>>();
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
                <PauseForm queue_path=bull_queue_path(&queue.name) paused=queue.paused back />
            </div>
            <p class="muted bull-prefix" data-test-id="bull-prefix">
                "Key prefix " <code>{vm.prefix.clone()}</code>
            </p>
            <BullError error=vm.error.clone() last_known="The figures below are the last known." />
            <StateTabs tabs selected=vm.state.clone() />
        </div>
    }
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
fn BullJobsRegion(vm: BullQueuePageVm, now: i64) -> impl IntoView {
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
            <Empty test_id="empty-jobs">
                {empty_text(&state)}
            </Empty>
        }
        .into_any()
    } else {
        view! { <BullJobsTable vm=vm.clone() now=now /> }.into_any()
    };
    view! {
        <div id="bull-jobs">
            {toolbar}
            {table}
            <Pager
                offset=vm.offset
                shown=vm.jobs.len() as u64
                total=vm.total
                limit=vm.limit
                href=move |offset| vm.url_with_offset(offset)
                test_id="pager"
                ids="page"
                steps=Steps::Sequence
            />
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
            <PostFields back />
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
    let head = view! {
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
    };
    view! {
        <Table class=format!("jobs bull-jobs {}", vm.state) test_id="jobs-table" head>
            {rows}
        </Table>
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
