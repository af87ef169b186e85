//! A queue's Retrying view (`/queues/{queue}/retrying`): the jobs that
//! failed and will run again, with their last error, when they run next
//! and the attempts they have left, so a backoff in progress is never
//! mistaken for nothing happening. Not live: a page to read and act on.

use leptos::prelude::*;

use crate::format::format_count;
use crate::vm::queues::{JobRow, RetryingVm};
use crate::vm::session::PageCtx;
use crate::widgets::forms::ActionForm;
use crate::widgets::pager::Pager;
use crate::widgets::shell::{Frame, Section, document};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::Moment;

/// The Retrying view of one queue.
pub fn render_retrying_page(vm: &RetryingVm, now: i64, page: &PageCtx) -> String {
    let vm = vm.clone();
    let title = format!("Retrying in {} · Switchyard", vm.queue);
    document(page, Frame::new(title, Section::Queues), move || {
        let queue = vm.queue.clone();
        let summary = format!(
            "{} {} failed and will run again{}.",
            format_count(vm.total),
            if vm.total == 1 { "job" } else { "jobs" },
            if vm.total >= vm.cap {
                " (counted up to this many)"
            } else {
                ""
            }
        );
        let body = if vm.jobs.is_empty() {
            view! {
                <Empty test_id="retrying-empty">
                    "No job is waiting to be retried: jobs that fail with attempts left show here until they run again."
                </Empty>
            }
            .into_any()
        } else {
            let back = vm.url_at(vm.offset);
            let rows = vm
                .jobs
                .iter()
                .cloned()
                .map(|job| view! { <RetryingRow job queue=queue.clone() back=back.clone() now /> })
                .collect_view();
            view! {
                <Table
                    class="jobs retrying"
                    test_id="retrying-table"
                    head={view! {
                        <tr>
                            <th scope="col">"Id"</th>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Last error"</th>
                            <th scope="col" class="num">"Attempts"</th>
                            <th scope="col">"Next attempt"</th>
                            <th scope="col">"Actions"</th>
                        </tr>
                    }}
                >
                    {rows}
                </Table>
            }
            .into_any()
        };
        let pager = (vm.total > vm.limit || vm.offset > 0).then(|| {
            let vm = vm.clone();
            view! {
                <Pager
                    offset=vm.offset
                    shown=vm.jobs.len() as u64
                    total=vm.total
                    limit=vm.limit
                    href=move |offset| vm.url_at(offset)
                    test_id="retrying-pager"
                    ids="retrying"
                />
            }
        });
        view! {
            <section class="queue retrying-page">
                <p class="crumbs">
                    <a href="/queues">"Queues"</a>
                    " / "
                    <a href=format!("/queues/{queue}")>{queue.clone()}</a>
                    " /"
                </p>
                <h1>"Retrying"</h1>
                {vm.notice.clone().map(|n| view! { <p class="notice" role="status" data-test-id="notice">{n}</p> })}
                <p data-test-id="retrying-summary">{summary}</p>
                {body}
                {pager}
            </section>
        }
    })
}

#[component]
fn RetryingRow(job: JobRow, queue: String, back: String, now: i64) -> impl IntoView {
    let href = format!("/queues/{queue}/jobs/{}", job.id);
    let action = |verb: &str| format!("/queues/{queue}/jobs/{}/{verb}", job.id);
    let left = job.attempts.saturating_sub(job.attempts_made);
    let error = job.failed_reason.clone().unwrap_or_default();
    let next = match job.run_at {
        Some(at) if at > now => view! { <Moment at=at now=now /> }.into_any(),
        _ => view! { <span data-test-id="due-now">"now (waiting for a worker)"</span> }.into_any(),
    };
    let promote = job.run_at.is_some().then(|| {
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
            <td>
                <a href=href data-test-id="job-link">
                    <code>{job.id.clone()}</code>
                </a>
            </td>
            <td class="name" title=job.name.clone()>{job.name.clone()}</td>
            <td class="error-text" data-test-id="last-error" title=error.clone()>{error.clone()}</td>
            <td class="num" data-test-id="attempts-left">
                {format!("{}/{}", job.attempts_made, job.attempts)}
                " · "
                {format!("{left} left")}
            </td>
            <td>{next}</td>
            <td class="actions">
                {promote}
                <ActionForm
                    action=action("remove")
                    back=back
                    label="Remove"
                    class="danger"
                    test_id="remove-job".to_string()
                    confirm=format!("Remove job {}?", job.id)
                />
            </td>
        </tr>
    }
}
