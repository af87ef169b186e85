//! A native job's page (`/queues/<queue>/jobs/<id>`): its state and
//! actions, timeline, attempts with their errors, data, options and logs.

use leptos::prelude::*;

use crate::format::{format_duration, format_timestamp};
use crate::vm::queues::{AttemptVm, JobPageVm};
use crate::vm::session::PageCtx;
use crate::widgets::forms::ActionForm;
use crate::widgets::job_log::JobLog;
use crate::widgets::queue::{FailureBadge, StopRetryingForm};
use crate::widgets::shell::{Fragment, Frame, Notice, Section, document, fragment};
use crate::widgets::table::{Empty, Table};

/// A job's page: state, actions, timeline, attempts, data and options.
pub fn render_job_page(vm: &JobPageVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new(
        format!("Job {} · {} · Switchyard", vm.id, vm.queue),
        Section::Queues,
    )
    .live(format!("/events/queues/{}/jobs/{}", vm.queue, vm.id));
    let queue_href = format!("/queues/{}", vm.queue);
    document(page, frame, move || {
        view! {
            <section class="job-page">
                <p class="crumbs">
                    <a href="/queues">"Queues"</a>
                    " / "
                    <a href=queue_href>{vm.queue.clone()}</a>
                    " /"
                </p>
                <Notice notice=vm.notice.clone() />
                {vm
                    .truncated
                    .clone()
                    .map(|what| {
                        view! {
                            <p class="status degraded" role="note" data-test-id="job-truncated">
                                {format!("Not shown: {what}. The job keeps it whole in the queue store.")}
                            </p>
                        }
                    })}
                <JobDetail vm=vm.clone() />
                <section>
                    <h2>"Data"</h2>
                    <pre class="json" data-test-id="job-data">{vm.data_pretty.clone()}</pre>
                </section>
                <section>
                    <h2>"Options"</h2>
                    <pre class="json" data-test-id="job-options">{vm.options_pretty.clone()}</pre>
                </section>
                <JobLogRegion vm=vm.clone() />
            </section>
        }
    })
}

/// The live regions of a job's page.
pub fn job_fragments(vm: &JobPageVm) -> Vec<Fragment> {
    vec![
        fragment("job", view! { <JobDetail vm=vm.clone() /> }),
        fragment("job-log", view! { <JobLogRegion vm=vm.clone() /> }),
    ]
}

/// The job's log, live while it runs (a region).
#[component]
fn JobLogRegion(vm: JobPageVm) -> impl IntoView {
    view! {
        <section id="job-log">
            <h2>"Logs"</h2>
            <JobLog logs=vm.logs earlier=vm.logs_earlier dropped=vm.logs_dropped />
        </section>
    }
}

/// The job region of a page whose job was removed while it was open.
pub fn job_gone_fragments(queue: &str, id: &str) -> Vec<Fragment> {
    let text = format!(
        "Job {id} no longer exists in {queue}: it was removed, or cleaned up by retention."
    );
    let href = format!("/queues/{queue}");
    vec![fragment(
        "job",
        view! {
            <div id="job">
                <Empty test_id="job-gone">
                    {text}
                    " "
                    <a href=href>"Back to the queue"</a>
                </Empty>
            </div>
        },
    )]
}

/// The job's name, state badge and summary line.
#[component]
fn JobHeader(vm: JobPageVm) -> impl IntoView {
    view! {
        <h1>
            "Job " <code>{vm.id.clone()}</code> " " <span class="muted">{vm.name.clone()}</span> " "
            <span class=format!("badge state {}", vm.state) data-test-id="job-state">
                {vm.state.clone()}
            </span>
            <FailureBadge kind=vm.failure.clone() />
        </h1>
    }
}

/// What an operator can do to the job in its state.
#[component]
fn JobActions(vm: JobPageVm) -> impl IntoView {
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
    let stop = vm.retrying.then(|| {
        view! { <StopRetryingForm job_path=base.clone() id=vm.id.clone() back=here.clone() /> }
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
    view! { <div class="toolbar">{retry} {promote} {stop} {remove}</div> }
}

/// Everything about the job that changes as it runs (a region).
#[component]
fn JobDetail(vm: JobPageVm) -> impl IntoView {
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
        view! { <Empty>"No attempt has finished yet."</Empty> }.into_any()
    } else {
        let rows = vm
            .history
            .clone()
            .into_iter()
            .map(|a| view! { <AttemptRow attempt=a /> })
            .collect_view();
        view! {
            <Table
                class="history"
                test_id="job-history"
                head={view! {
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
                }}
            >
                {rows}
            </Table>
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
    let progress = vm.progress.clone().unwrap_or_else(|| "–".into());
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
                    <dt>"Progress"</dt>
                    <dd data-test-id="job-progress">{progress}</dd>
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn job_page_shows_everything_escaped() {
        let vm = JobPageVm {
            queue: "emails".into(),
            id: "42".into(),
            name: "send".into(),
            state: "failed".into(),
            failure: Some("stopped by an operator".into()),
            retrying: false,
            data_pretty: "{\n  \"x\": \"<script>alert(1)</script>\"\n}".into(),
            truncated: Some("data <b>1.0 MB</b>".into()),
            options_pretty: "{\n  \"attempts\": 3\n}".into(),
            return_value_pretty: None,
            attempts_made: 3,
            attempts: 3,
            stalled_count: 1,
            failed_reason: Some("SMTP 421".into()),
            stacktrace: vec!["SMTP 421".into(), "connection reset".into()],
            history: vec![AttemptVm {
                attempt: 1,
                started_at: 1_000,
                finished_at: 2_500,
                error: Some("SMTP 421".into()),
                chain: vec!["connection reset".into()],
            }],
            created_at: 500,
            processed_at: Some(1_000),
            finished_at: Some(2_500),
            run_at: None,
            logs: vec!["attempt 1 <i>started</i>".into(), "SMTP said 421".into()],
            logs_earlier: 0,
            logs_dropped: 2,
            progress: Some(r#"{"done":3,"of":4}"#.into()),
            notice: Some("Job 42 was retried.".into()),
        };
        let html = render_job_page(&vm, &PAGE);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("connection reset"), "{html}");
        assert!(
            html.contains("Not shown: data &lt;b&gt;1.0 MB&lt;/b&gt;. The job keeps it whole"),
            "{html}"
        );
        assert!(html.contains("1.5 s"), "{html}");
        // The log and progress: escaped, numbered after the dropped lines.
        assert!(
            html.contains("attempt 1 &lt;i&gt;started&lt;/i&gt;"),
            "{html}"
        );
        assert!(
            html.contains(r#"<ol start="3" data-test-id="job-logs""#),
            "{html}"
        );
        assert!(
            html.contains("2 older lines dropped by the log's cap"),
            "{html}"
        );
        assert!(
            html.contains(r#"<dd data-test-id="job-progress">{"done":3,"of":4}</dd>"#),
            "{html}"
        );
        assert_eq!(job_fragments(&vm).len(), 2, "the log is live too");
        assert!(html.contains("1970-01-01 00:00:00 UTC"), "{html}");
        assert!(
            html.contains(r#"action="/queues/emails/jobs/42/retry""#),
            "{html}"
        );
        assert!(html.contains("stalled 1 time"), "{html}");
        assert!(html.contains("Job 42 was retried."), "{html}");
        assert!(
            html.contains(r#"data-live="/events/queues/emails/jobs/42""#),
            "{html}"
        );
        for f in job_fragments(&vm) {
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }
}
