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
use crate::widgets::queue::StopRetryingForm;
use crate::widgets::shell::{Frame, Section, document};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::Moment;

/// The Retrying view of one queue.
pub fn render_retrying_page(vm: &RetryingVm, now: i64, page: &PageCtx) -> String {
    let vm = vm.clone();
    let title = format!("Retrying in {} · Switchyard", vm.queue);
    let section = if vm.bullmq {
        Section::BullMq
    } else {
        Section::Queues
    };
    document(page, Frame::new(title, section), move || {
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
                .map(|job| {
                    let href = vm.job_path(&job.id);
                    // BullMQ has no such transition of its own.
                    let stop = !vm.bullmq;
                    view! { <RetryingRow job href back=back.clone() now stop /> }
                })
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
                    <a href=vm.queue_path()>{queue.clone()}</a>
                    " /"
                </p>
                <h1>{if vm.bullmq { "Retrying (BullMQ)" } else { "Retrying" }}</h1>
                {vm.notice.clone().map(|n| view! { <p class="notice" role="status" data-test-id="notice">{n}</p> })}
                <p data-test-id="retrying-summary">{summary}</p>
                {vm.coverage.clone().map(|line| view! { <p class="search-note" data-test-id="retrying-coverage">{line}</p> })}
                {body}
                {pager}
            </section>
        }
    })
}

#[component]
fn RetryingRow(job: JobRow, href: String, back: String, now: i64, stop: bool) -> impl IntoView {
    let remove = format!("{href}/remove");
    let stop = stop.then(|| {
        view! { <StopRetryingForm job_path=href.clone() id=job.id.clone() back=back.clone() /> }
    });
    let promote_url = format!("{href}/promote");
    let left = job.attempts.saturating_sub(job.attempts_made);
    let error = job.failed_reason.clone().unwrap_or_default();
    let next = match job.run_at {
        Some(at) if at > now => view! { <Moment at=at now=now /> }.into_any(),
        _ => view! { <span data-test-id="due-now">"now (waiting for a worker)"</span> }.into_any(),
    };
    let promote = job.run_at.is_some().then(|| {
        view! {
            <ActionForm
                action=promote_url.clone()
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
                {format!("{}/{} · {left} left", job.attempts_made, job.attempts)}
            </td>
            <td>{next}</td>
            <td class="actions">
                {promote}
                {stop}
                <ActionForm
                    action=remove
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{PAGE, failed_job};

    #[test]
    fn retrying_jobs_show_their_last_error_next_attempt_and_attempts_left() {
        let mut later = failed_job("8");
        later.attempts_made = 1;
        later.attempts = 4;
        later.run_at = Some(90_000);
        later.retrying = true;
        let mut due = failed_job("9");
        due.attempts_made = 2;
        due.attempts = 3;
        due.run_at = None;
        due.retrying = true;
        let mut vm = RetryingVm {
            queue: "emails".into(),
            bullmq: false,
            coverage: None,
            jobs: vec![due, later],
            total: 2,
            cap: 100_000,
            offset: 0,
            limit: 50,
            notice: None,
        };
        let html = render_retrying_page(&vm, 30_000, &PAGE);
        assert!(html.contains("2 jobs failed and will run again."), "{html}");
        assert!(html.contains("&lt;b&gt;boom&lt;/b&gt;"), "escaped: {html}");
        assert!(!html.contains("<b>boom</b>"), "{html}");
        assert!(html.contains("1/4 · 3 left"), "{html}");
        assert!(html.contains("2/3 · 1 left"), "{html}");
        assert!(html.contains("now (waiting for a worker)"), "{html}");
        assert_eq!(
            html.matches(r#"data-test-id="promote-job""#).count(),
            1,
            "Run now only for the delayed one"
        );
        let empty = RetryingVm {
            queue: "emails".into(),
            limit: 50,
            cap: 100_000,
            ..RetryingVm::default()
        };
        assert!(render_retrying_page(&empty, 0, &PAGE).contains("No job is waiting to be retried"));
        assert_eq!(
            html.matches(r#"data-test-id="stop-retrying""#).count(),
            2,
            "every native row can be stopped"
        );
        // A BullMQ queue's: its paths, and what was looked at.
        vm.bullmq = true;
        vm.queue = "mail q".into();
        vm.coverage = Some("Looked at the first 5,000 jobs of each state.".into());
        let html = render_retrying_page(&vm, 30_000, &PAGE);
        assert!(html.contains(r#"href="/bullmq/mail%20q/jobs/8""#), "{html}");
        assert!(
            html.contains(r#"action="/bullmq/mail%20q/jobs/8/promote""#),
            "{html}"
        );
        assert!(html.contains("Looked at the first 5,000"), "{html}");
        assert!(
            !html.contains("stop-retrying"),
            "BullMQ has no such move: {html}"
        );
    }
}
