//! A BullMQ queue's page (`/bullmq/<queue>?state=…`): its header with the
//! state tabs, the bulk actions of the failed and completed sets, and a
//! page of jobs in one state with the buttons of that state.

use leptos::prelude::*;

use super::bull_job::job_buttons;
use super::bullmq::BullError;
use crate::format::{counted, format_count, format_in, format_timestamp, iso_timestamp};
use crate::vm::bullmq::{
    BULL_STATES, BullJobRow, BullQueuePageVm, CLEAN_AGES, bull_job_actions, bull_job_path,
    bull_queue_path, bull_state_path,
};
use crate::vm::errors::bull_errors_url;
use crate::vm::session::PageCtx;
use crate::widgets::forms::{ActionForm, PostFields};
use crate::widgets::pager::{Pager, Steps};
use crate::widgets::queue::{FailureBadge, PauseForm, StateTabs, Tab};
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
                <BullJobsRegion vm=vm.clone() now=now />
                <BullLatencyRegion latency=vm.latency />
            </section>
        }
    })
}

/// The live regions of a BullMQ queue's page: `bull-header`,
/// `bull-jobs` and `bull-latency`.
pub fn bull_queue_fragments(vm: &BullQueuePageVm, now: i64) -> Vec<Fragment> {
    vec![
        fragment("bull-header", view! { <BullQueueHeader vm=vm.clone() /> }),
        fragment(
            "bull-jobs",
            view! { <BullJobsRegion vm=vm.clone() now=now /> },
        ),
        fragment(
            "bull-latency",
            view! { <BullLatencyRegion latency=vm.latency.clone() /> },
        ),
    ]
}

/// Wait and run times read from the queue's events stream: BullMQ keeps
/// no histogram, so they reach back only as far as the stream does.
#[component]
fn BullLatencyRegion(latency: Option<crate::vm::queues::LatencyVm>) -> impl IntoView {
    view! {
        <div id="bull-latency" class="queue-chart" data-test-id="bull-latency">
            <super::queue::Latency
                latency
                empty="No wait or run times yet: they are read from the queue's events stream (added, active, completed, failed), and each minute shows once it is over."
            />
            <p class="legend" data-test-id="bull-latency-note">
                "From the queue's events stream, as far back as it reaches (BullMQ trims it to about 10,000 events): an attempt whose start was trimmed away is not counted."
            </p>
        </div>
    }
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
            // BullMQ keeps no lifetime count to compare with.
            kept_of: None,
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
            <p class="muted">
                <a href=format!("{}/retrying", bull_queue_path(&queue.name)) data-test-id="retrying-link">
                    "Retrying: jobs waiting out a backoff after a failure"
                </a>
                " · "
                <a href=bull_errors_url(&queue.name) data-test-id="errors-link">
                    "Errors by group"
                </a>
            </p>
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
                confirm=format!(
                    "Retry all {} of {name}?",
                    counted(in_state, "failed job", "failed jobs")
                )
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
    let parents = state == "waiting-children";
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
            {parents.then(|| view! { <th scope="col">"Children"</th> })}
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
    let children = (state == "waiting-children").then(|| {
        let text = job.children.map_or_else(
            || "–".to_string(),
            |c| {
                format!(
                    "{} of {} pending",
                    format_count(c.pending),
                    counted(c.total, "child", "children")
                )
            },
        );
        view! { <td data-test-id="children">{text}</td> }
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
            <td class="num" data-test-id="attempts">
                {format!("{}/{}", job.attempts_made, job.attempts)}
                <FailureBadge kind=job.failure.clone() />
            </td>
            {reason}
            {runs_at}
            {children}
            <td>
                <code class="data" data-test-id="job-data" title=job.data_preview.clone()>
                    {job.data_preview.clone()}
                </code>
            </td>
            {buttons}
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn bull_queue_page_is_a_full_live_document_with_tabs() {
        let vm = BullQueuePageVm {
            notice: Some("Job 7 retried.".into()),
            ..bull_queue_vm("failed")
        };
        let html = render_bull_queue_page(&vm, 10_000, &PAGE);
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>emails · BullMQ · Switchyard</title>"),
            "{html}"
        );
        assert_eq!(bull_queue_events(&vm), "/events/bullmq/emails?state=failed");
        assert!(
            html.contains(r#"data-live="/events/bullmq/emails?state=failed""#),
            "{html}"
        );
        assert!(
            html.contains(r#"aria-current="page" class="current">BullMQ</a>"#),
            "{html}"
        );
        assert!(html.contains("Job 7 retried."), "{html}");
        assert!(html.contains(r#"data-test-id="bull-prefix""#), "{html}");
        assert!(html.contains("<code>bull</code>"), "{html}");
        assert!(html.contains(r#"action="/bullmq/emails/pause""#), "{html}");
        assert!(!html.contains(r#"data-test-id="paused-badge""#), "{html}");
        for (state, label) in BULL_STATES {
            let tab = tag_with_test_id(&html, &format!("tab-{state}"));
            assert!(
                tab.contains(&format!(r#"href="/bullmq/emails?state={state}""#)),
                "{tab}"
            );
            assert_eq!(
                tab.contains(r#"aria-current="page""#),
                state == "failed",
                "{tab}"
            );
            let whole = element(&html, &format!(r#"data-test-id="tab-{state}""#), "</a>");
            assert!(whole.contains(label), "{whole}");
        }
        assert!(html.contains(r#"<span class="n">6,000</span>"#), "{html}");
        assert!(html.contains(r#"<span class="n zero">0</span>"#), "{html}");
        // The row: link, name, times, attempts, reason, data.
        assert!(
            html.contains(r#"href="/bullmq/emails/jobs/7" data-test-id="job-link""#),
            "{html}"
        );
        assert!(html.contains(">Failed reason</th>"), "{html}");
        assert!(!html.contains(">Runs at</th>"), "{html}");
        assert!(html.contains("SMTP 421"), "{html}");
        assert!(html.contains("9 s ago"), "created 9 s before now: {html}");
        assert!(html.contains("7 s ago"), "finished 7 s before now: {html}");
        assert!(html.contains("ada@example.com"), "{html}");
        assert!(html.contains("1–1 of 1"), "{html}");
        // The page is not paused: its Pause form comes back to it.
        assert!(
            html.contains(
                r#"<input type="hidden" name="back" value="/bullmq/emails?state=failed">"#
            ),
            "{html}"
        );
        let fragments = bull_queue_fragments(&vm, 10_000);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["bull-header", "bull-jobs", "bull-latency"]
        );
        // Wait and run times from the events stream, as on native queues.
        let latency = &fragments[2].html;
        assert!(
            latency.contains(r#"data-test-id="latency-table""#),
            "{latency}"
        );
        assert!(latency.contains("events stream"), "{latency}");
        for f in &fragments {
            assert!(
                f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                "{}",
                f.html
            );
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
        // Paused: badge and Resume.
        let paused = BullQueuePageVm {
            queue: bull_row("emails", true),
            ..vm
        };
        let html = render_bull_queue_page(&paused, 10_000, &PAGE);
        assert!(html.contains(r#"data-test-id="paused-badge""#), "{html}");
        assert!(html.contains(r#"action="/bullmq/emails/resume""#), "{html}");
        assert!(!html.contains(r#"action="/bullmq/emails/pause""#), "{html}");
    }

    #[test]
    fn bull_queue_page_offers_the_buttons_of_each_state() {
        for (state, _) in BULL_STATES {
            let vm = bull_queue_vm(state);
            let html = render_bull_queue_page(&vm, 100_000, &PAGE);
            let count = |id: &str| html.matches(&format!(r#"data-test-id="{id}""#)).count();
            let (retry, promote, remove) = match state {
                "failed" => (1, 0, 1),
                "delayed" => (0, 1, 1),
                "waiting" | "completed" | "prioritized" | "paused" => (0, 0, 1),
                _ => (0, 0, 0),
            };
            assert_eq!(count("retry-job"), retry, "{state}: {html}");
            assert_eq!(count("promote-job"), promote, "{state}: {html}");
            assert_eq!(count("remove-job"), remove, "{state}: {html}");
            assert_eq!(
                html.contains(">Actions</th>"),
                retry + promote + remove > 0,
                "{state}: {html}"
            );
            for verb in bull_job_actions(state) {
                assert!(
                    html.contains(&format!(r#"action="/bullmq/emails/jobs/7/{verb}""#)),
                    "{state} {verb}: {html}"
                );
            }
            // Retry all failed, with a question, on the failed tab only.
            assert_eq!(
                count("retry-all"),
                usize::from(state == "failed"),
                "{state}"
            );
            assert_eq!(
                html.contains(r#"action="/bullmq/emails/retry-failed""#),
                state == "failed",
                "{state}: {html}"
            );
            if state == "failed" {
                assert!(
                    html.contains(r#"data-confirm="Retry all 6,000 failed jobs of emails?""#),
                    "{html}"
                );
            }
            // Clean on the completed and failed tabs.
            let cleans = matches!(state, "completed" | "failed");
            assert_eq!(count("clean-form"), usize::from(cleans), "{state}: {html}");
            if cleans {
                let form = element(&html, r#"data-test-id="clean-form""#, "</form>");
                assert!(form.contains(r#"action="/bullmq/emails/clean""#), "{form}");
                assert!(form.contains(r#"method="post""#), "{form}");
                assert!(form.contains("data-confirm="), "{form}");
                assert!(
                    form.contains(&format!(
                        r#"<input type="hidden" name="state" value="{state}">"#
                    )),
                    "{form}"
                );
                assert!(
                    form.contains(&format!(
                        r#"<input type="hidden" name="back" value="/bullmq/emails?state={state}">"#
                    )),
                    "{form}"
                );
                assert!(form.contains(r#"<select name="older_than""#), "{form}");
                for (value, label) in CLEAN_AGES {
                    assert!(form.contains(&format!(r#"value="{value}""#)), "{form}");
                    assert!(form.contains(label), "{form}");
                }
                assert!(form.contains(r#"name="csrf_token""#), "{form}");
            }
            // Runs at, on the delayed tab only: a minute after `now`… no,
            // 70 s − 100 s: due.
            assert_eq!(
                html.contains(">Runs at</th>"),
                state == "delayed",
                "{state}"
            );
            assert_eq!(
                html.contains(">Failed reason</th>"),
                state == "failed",
                "{state}"
            );
        }
        // A delayed job in the future says when.
        let html = render_bull_queue_page(&bull_queue_vm("delayed"), 10_000, &PAGE);
        assert!(html.contains("in 1 min"), "{html}");
        // Nothing to clean or retry: no bulk buttons.
        let mut vm = bull_queue_vm("failed");
        vm.queue.counts.clear();
        vm.jobs.clear();
        vm.total = 0;
        let html = render_bull_queue_page(&vm, 0, &PAGE);
        assert!(!html.contains(r#"data-test-id="retry-all""#), "{html}");
        assert!(!html.contains(r#"data-test-id="clean-form""#), "{html}");
    }

    #[test]
    fn bull_queue_page_says_when_a_state_is_empty() {
        for (state, _) in BULL_STATES {
            let vm = BullQueuePageVm {
                jobs: vec![],
                total: 0,
                ..bull_queue_vm(state)
            };
            let html = render_bull_queue_page(&vm, 0, &PAGE);
            assert!(
                html.contains(r#"data-test-id="empty-jobs""#),
                "{state}: {html}"
            );
            assert!(
                !html.contains(r#"data-test-id="jobs-table""#),
                "{state}: {html}"
            );
            assert!(html.contains("0 of 0"), "{state}: {html}");
        }
        let html = render_bull_queue_page(
            &BullQueuePageVm {
                jobs: vec![],
                total: 0,
                ..bull_queue_vm("waiting-children")
            },
            0,
            &PAGE,
        );
        assert!(
            html.contains("No jobs are waiting for their children."),
            "{html}"
        );
    }

    #[test]
    fn bull_queue_page_pages_by_offset_and_streams_its_page() {
        let vm = BullQueuePageVm {
            jobs: (0..50).map(|i| bull_job(&i.to_string())).collect(),
            offset: 50,
            total: 120,
            ..bull_queue_vm("waiting")
        };
        assert_eq!(
            bull_queue_events(&vm),
            "/events/bullmq/emails?state=waiting&offset=50"
        );
        let html = render_bull_queue_page(&vm, 0, &PAGE);
        assert!(
            html.contains(r#"data-live="/events/bullmq/emails?state=waiting&amp;offset=50""#),
            "{html}"
        );
        assert!(html.contains("51–100 of 120"), "{html}");
        let prev = tag_with_test_id(&html, "page-prev");
        assert!(
            prev.contains(r#"href="/bullmq/emails?state=waiting""#),
            "{prev}"
        );
        let next = tag_with_test_id(&html, "page-next");
        assert!(
            next.contains(r#"href="/bullmq/emails?state=waiting&amp;offset=100""#),
            "{next}"
        );
        assert!(
            html.contains(
                r#"<input type="hidden" name="back" value="/bullmq/emails?state=waiting&amp;offset=50">"#
            ),
            "{html}"
        );
        // The last page has no next, the first no previous.
        let last = BullQueuePageVm {
            jobs: (0..20).map(|i| bull_job(&i.to_string())).collect(),
            offset: 100,
            ..vm.clone()
        };
        let html = render_bull_queue_page(&last, 0, &PAGE);
        assert!(html.contains("101–120 of 120"), "{html}");
        assert!(!html.contains(r#"data-test-id="page-next""#), "{html}");
        assert!(html.contains(r#"data-test-id="page-prev""#), "{html}");
        let first = BullQueuePageVm { offset: 0, ..vm };
        let html = render_bull_queue_page(&first, 0, &PAGE);
        assert!(!html.contains(r#"data-test-id="page-prev""#), "{html}");
        assert!(html.contains(r#"data-test-id="page-next""#), "{html}");
    }

    #[test]
    fn bull_queue_page_shows_an_unreachable_redis_and_keeps_the_jobs() {
        let vm = BullQueuePageVm {
            error: Some("READONLY You can't write against a read only replica.".into()),
            ..bull_queue_vm("failed")
        };
        let html = render_bull_queue_page(&vm, 0, &PAGE);
        let header = bull_queue_fragments(&vm, 0)
            .into_iter()
            .find(|f| f.id == "bull-header")
            .expect("header");
        assert!(
            header.html.contains(r#"data-test-id="bull-error""#),
            "{}",
            header.html
        );
        assert!(html.contains("read only replica"), "{html}");
        assert!(html.contains(r#"data-test-id="job-row-7""#), "{html}");
    }

    #[test]
    fn waiting_children_rows_say_how_many_children_are_pending() {
        let mut vm = bull_queue_vm("waiting-children");
        vm.jobs = vec![
            BullJobRow {
                children: Some(crate::vm::bullmq::BullChildCounts {
                    pending: 2,
                    total: 3,
                }),
                ..bull_job("7")
            },
            BullJobRow {
                children: Some(crate::vm::bullmq::BullChildCounts {
                    pending: 1,
                    total: 1,
                }),
                ..bull_job("8")
            },
            bull_job("9"),
        ];
        let html = render_bull_queue_page(&vm, 0, &PAGE);
        assert!(html.contains(r#"<th scope="col">Children</th>"#), "{html}");
        let row = element(&html, r#"data-test-id="job-row-7""#, "</tr>");
        assert!(
            row.contains(r#"data-test-id="children">2 of 3 children pending</td>"#),
            "{row}"
        );
        let row = element(&html, r#"data-test-id="job-row-8""#, "</tr>");
        assert!(row.contains(">1 of 1 child pending</td>"), "{row}");
        let row = element(&html, r#"data-test-id="job-row-9""#, "</tr>");
        assert!(row.contains(r#"data-test-id="children">–</td>"#), "{row}");
        // Other tabs have no such column.
        for (state, _) in BULL_STATES {
            if state == "waiting-children" {
                continue;
            }
            let html = render_bull_queue_page(&bull_queue_vm(state), 0, &PAGE);
            assert!(!html.contains(">Children</th>"), "{state}: {html}");
            assert!(!html.contains(r#"data-test-id="children""#), "{state}");
        }
    }
}
