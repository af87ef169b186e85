//! A BullMQ job's page (`/bullmq/<queue>/jobs/<id>`): its state, buttons,
//! times, attempts, progress, result, error, data, options and logs.

use leptos::prelude::*;

use crate::widgets::queue::FailureBadge;

use crate::format::{format_duration, format_timestamp};
use crate::vm::bullmq::{
    BullJobPageVm, bull_job_actions, bull_job_path, bull_queue_path, bull_state_label,
    bull_state_path,
};
use crate::vm::session::PageCtx;
use crate::widgets::forms::ActionForm;
use crate::widgets::job_log::JobLog;
use crate::widgets::shell::{Fragment, Frame, Notice, Section, document, fragment};

/// The live stream of a BullMQ job's page: `/events/bullmq/<queue>/jobs/<id>`.
pub fn bull_job_events(queue: &str, id: &str) -> String {
    format!("/events{}", bull_job_path(queue, id))
}

/// A BullMQ job's page (`/bullmq/<queue>/jobs/<id>`): its state, buttons,
/// times, attempts, progress, result, error, data, options and logs.
pub fn render_bull_job_page(vm: &BullJobPageVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new(
        format!("Job {} · {} · BullMQ · Switchyard", vm.id, vm.queue),
        Section::BullMq,
    )
    .live(bull_job_events(&vm.queue, &vm.id));
    let queue_href = bull_queue_path(&vm.queue);
    document(page, frame, move || {
        view! {
            <section class="job-page bull-job-page">
                <p class="crumbs">
                    <a href="/bullmq">"BullMQ"</a>
                    " / "
                    <a href=queue_href>{vm.queue.clone()}</a>
                    " /"
                </p>
                <Notice notice=vm.notice.clone() />
                <BullJobRegion vm=vm />
            </section>
        }
    })
}

/// The live regions of a BullMQ job's page: one, `bull-job`.
pub fn bull_job_fragments(vm: &BullJobPageVm) -> Vec<Fragment> {
    vec![fragment(
        "bull-job",
        view! { <BullJobRegion vm=vm.clone() /> },
    )]
}

/// The buttons a job has in its state ([`bull_job_actions`]). `back` is
/// where Retry and Promote come back to; `remove_back` where Remove does
/// (a job's own page is gone once it is removed).
pub(super) fn job_buttons(
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

/// Everything about a BullMQ job (a region): state, name, actions, times,
/// attempts, progress, result, error and stack traces, data, options and
/// logs.
#[component]
fn BullJobRegion(vm: BullJobPageVm) -> impl IntoView {
    let here = vm.url();
    let queue_page = bull_state_path(&vm.queue, &vm.state);
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
    view! {
        <div id="bull-job">
            <h1>
                "Job " <code>{vm.id.clone()}</code> " "
                <span class="muted" data-test-id="job-name">{vm.name.clone()}</span> " "
                <span class=format!("badge state {}", vm.state) data-test-id="job-state">
                    {bull_state_label(&vm.state).to_string()}
                </span>
            </h1>
            <p class="muted" data-test-id="job-summary">
                {format!(
                    "Attempts made {} of {} · started {} · delay {delay} · priority {priority}",
                    vm.attempts_made,
                    vm.attempts,
                    vm.attempts_started,
                )}
                <FailureBadge kind=vm.failure.clone() />
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
                <JobLog logs=vm.logs.clone() earlier=vm.logs_earlier dropped=0 />
            </section>
            <p>
                <a href=queue_page data-test-id="back-to-queue">"Back to the queue"</a>
            </p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn bull_job_page_is_a_full_live_document() {
        let vm = BullJobPageVm {
            notice: Some("Job 42 retried.".into()),
            ..bull_job_vm("failed")
        };
        let html = render_bull_job_page(&vm, &PAGE);
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Job 42 · emails · BullMQ · Switchyard</title>"),
            "{html}"
        );
        assert_eq!(
            bull_job_events("emails", "42"),
            "/events/bullmq/emails/jobs/42"
        );
        assert!(
            html.contains(r#"data-live="/events/bullmq/emails/jobs/42""#),
            "{html}"
        );
        assert!(
            html.contains(r#"aria-current="page" class="current">BullMQ</a>"#),
            "{html}"
        );
        assert!(html.contains("Job 42 retried."), "{html}");
        assert!(
            html.contains(r#"data-test-id="job-state" class="badge state failed">Failed</span>"#),
            "{html}"
        );
        assert!(html.contains("Attempts made 1 of 3 · started 2"), "{html}");
        assert!(html.contains("delay 1 min 0 s · priority 3"), "{html}");
        assert!(html.contains("1970-01-01 00:00:01 UTC"), "{html}");
        assert!(html.contains("1970-01-01 00:00:03 UTC"), "{html}");
        assert!(
            html.contains(r#"data-test-id="job-progress">50</dd>"#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="job-returnvalue""#), "{html}");
        assert!(
            html.contains(r#"data-test-id="failed-reason" class="error-text">SMTP 421</p>"#),
            "{html}"
        );
        let traces = element(&html, r#"data-test-id="job-stacktrace""#, "</ol>");
        assert_eq!(
            traces.matches(r#"<pre class="stack">"#).count(),
            2,
            "{traces}"
        );
        assert!(html.contains(r#"data-test-id="job-data""#), "{html}");
        assert!(html.contains(r#"data-test-id="job-options""#), "{html}");
        let logs = element(&html, r#"data-test-id="job-logs""#, "</ol>");
        assert_eq!(logs.matches("<li>").count(), 2, "{logs}");
        assert!(
            html.contains(r#"<a href="/bullmq/emails?state=failed" data-test-id="back-to-queue">Back to the queue</a>"#),
            "{html}"
        );
        // Retry comes back here; Remove to the queue (the job is gone).
        let retry = element(&html, r#"action="/bullmq/emails/jobs/42/retry""#, "</form>");
        assert!(
            retry.contains(r#"name="back" value="/bullmq/emails/jobs/42""#),
            "{retry}"
        );
        let remove = element(
            &html,
            r#"action="/bullmq/emails/jobs/42/remove""#,
            "</form>",
        );
        assert!(
            remove.contains(r#"name="back" value="/bullmq/emails?state=failed""#),
            "{remove}"
        );
        assert!(remove.contains("data-confirm="), "{remove}");
        let fragments = bull_job_fragments(&vm);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["bull-job"]
        );
        for f in &fragments {
            assert!(f.html.starts_with(r#"<div id="bull-job""#), "{}", f.html);
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
        // Buttons by state, as in the table.
        for (state, _) in BULL_STATES {
            let html = render_bull_job_page(&bull_job_vm(state), &PAGE);
            for verb in ["retry", "promote", "remove"] {
                assert_eq!(
                    html.contains(&format!(r#"action="/bullmq/emails/jobs/42/{verb}""#)),
                    bull_job_actions(state).contains(&verb),
                    "{state} {verb}: {html}"
                );
            }
            assert_eq!(
                html.contains(">Runs at</dt>"),
                state == "delayed",
                "{state}"
            );
        }
        // Nothing logged, nothing returned, no error.
        let quiet = BullJobPageVm {
            logs: vec![],
            returnvalue: None,
            failed_reason: None,
            stacktrace: vec![],
            progress: None,
            ..bull_job_vm("active")
        };
        let html = render_bull_job_page(&quiet, &PAGE);
        assert!(html.contains(r#"data-test-id="no-logs""#), "{html}");
        assert!(!html.contains(r#"data-test-id="job-error""#), "{html}");
        assert!(
            !html.contains(r#"data-test-id="job-returnvalue""#),
            "{html}"
        );
        assert!(
            !html.contains("<form method=\"post\" action=\"/bullmq"),
            "{html}"
        );
    }
}
