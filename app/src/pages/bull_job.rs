//! A BullMQ job's page (`/bullmq/<queue>/jobs/<id>`): its state, buttons,
//! flow (parent and children), times, attempts, progress, result, error,
//! data, options and logs.

use leptos::prelude::*;

use crate::widgets::queue::FailureBadge;

use crate::format::{counted, format_count, format_duration, format_timestamp};
use crate::vm::bullmq::{
    BULL_CHILD_KINDS, BullChildGroup, BullFlowJobVm, BullFlowVm, BullJobPageVm, bull_job_actions,
    bull_job_path, bull_queue_path, bull_state_label, bull_state_path,
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
            {vm.flow.clone().map(|flow| view! { <FlowSection flow state=vm.state.clone() /> })}
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

/// A flow job's state badge; `gone` (its hash was removed) reads
/// "Removed".
fn flow_state_badge(state: &str) -> impl IntoView + use<> {
    let label = match state {
        "gone" => "Removed".to_string(),
        other => bull_state_label(other).to_string(),
    };
    view! {
        <span class=format!("badge state {state}") data-test-id="flow-state">
            {label}
        </span>
    }
}

/// A job a flow names: a link to its page with its name, state and queue,
/// or its key when it lives under another prefix (no page here).
#[component]
fn FlowJob(job: BullFlowJobVm) -> impl IntoView {
    let id = match job.href() {
        Some(href) => view! {
            <a href=href data-test-id="flow-link">
                <code>{job.id.clone()}</code>
            </a>
        }
        .into_any(),
        None => view! {
            <code title="under another key prefix" data-test-id="flow-key">
                {job.key.clone()}
            </code>
        }
        .into_any(),
    };
    let queue = job
        .queue
        .clone()
        .map(|queue| view! { <span class="muted flow-queue">{format!(" in {queue}")}</span> });
    view! {
        {id}
        " "
        <span class="muted" data-test-id="flow-name">
            {job.name.clone().unwrap_or_default()}
        </span>
        " "
        {flow_state_badge(&job.state)}
        {queue}
    }
}

/// What this job's failure does to its parent, by the child's option.
fn on_failure_text(option: Option<&str>) -> &'static str {
    match option {
        Some("failParent") => "If this job fails, its parent fails too (failParentOnFailure).",
        Some("ignoreDependency") => {
            "If this job fails, its parent goes on and keeps the error (ignoreDependencyOnFailure)."
        }
        Some("removeDependency") => {
            "If this job fails, its parent goes on without it (removeDependencyOnFailure)."
        }
        Some("continueParent") => {
            "If this job fails, its parent runs at once and keeps the error (continueParentOnFailure)."
        }
        _ => "If this job fails, its parent waits until it is retried.",
    }
}

/// One kind of children: heading with the count, the listed ones, and how
/// many more were not listed.
#[component]
fn ChildGroup(group: BullChildGroup) -> impl IntoView {
    let heading = BULL_CHILD_KINDS
        .iter()
        .find(|(kind, _)| *kind == group.kind)
        .map_or_else(|| group.kind.clone(), |(_, label)| (*label).to_string());
    let more = group.more();
    let more = (more > 0).then(|| {
        view! {
            <li class="muted" data-test-id="flow-more">
                {format!("and {} more", format_count(more))}
            </li>
        }
    });
    let children = group
        .jobs
        .iter()
        .cloned()
        .map(|job| view! { <li data-test-id="flow-child"><FlowJob job /></li> })
        .collect_view();
    view! {
        <div class=format!("flow-group {}", group.kind) data-test-id=format!("flow-{}", group.kind)>
            <h3>
                {heading} " " <span class="count" data-test-id="flow-count">{format_count(group.total)}</span>
            </h3>
            <ul class="flow-children">{children} {more}</ul>
        </div>
    }
}

/// The Flow section: the parent (and what this job's failure does to it),
/// then the children by kind; for a job waiting for its children, how
/// many it still waits for, and whether a failed one holds it.
#[component]
fn FlowSection(flow: BullFlowVm, state: String) -> impl IntoView {
    if let Some(error) = flow.error.clone() {
        return view! {
            <section class="bull-flow" data-test-id="job-flow">
                <h2>"Flow"</h2>
                <p class="error-text" data-test-id="flow-error">
                    {format!("The flow could not be read: {error}")}
                </p>
            </section>
        }
        .into_any();
    }
    let pending = flow.total("pending");
    let waiting = (state == "waiting-children").then(|| {
        view! {
            <p data-test-id="flow-waiting">
                {format!(
                    "Waiting for {} of {}.",
                    format_count(pending),
                    counted(flow.children(), "child", "children"),
                )}
            </p>
        }
    });
    let stuck = flow
        .groups
        .iter()
        .find(|g| g.kind == "pending")
        .map_or(0, |g| {
            g.jobs.iter().filter(|j| j.state == "failed").count() as u64
        });
    let stuck = (stuck > 0).then(|| {
        view! {
            <p class="warnings" data-test-id="flow-stuck">
                {format!(
                    "{} failed without an option that frees the parent: it waits until they are retried.",
                    counted(stuck, "pending child", "pending children"),
                )}
            </p>
        }
    });
    let parent = flow.parent.clone().map(|parent| {
        view! {
            <p data-test-id="flow-parent">
                "Parent: " <FlowJob job=parent />
                <br />
                <span class="muted" data-test-id="flow-on-failure">
                    {on_failure_text(flow.on_failure.as_deref())}
                </span>
            </p>
        }
    });
    let groups = flow
        .groups
        .iter()
        .cloned()
        .map(|group| view! { <ChildGroup group /> })
        .collect_view();
    view! {
        <section class="bull-flow" data-test-id="job-flow">
            <h2>"Flow"</h2>
            {waiting}
            {stuck}
            {parent}
            {groups}
        </section>
    }
    .into_any()
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

    fn flow_job(queue: Option<&str>, id: &str, state: &str) -> BullFlowJobVm {
        BullFlowJobVm {
            queue: queue.map(str::to_owned),
            key: format!("bull:{}:{id}", queue.unwrap_or("elsewhere")),
            id: id.into(),
            name: Some("resize".into()),
            state: state.into(),
        }
    }

    fn group(kind: &str, total: u64, jobs: Vec<BullFlowJobVm>) -> BullChildGroup {
        BullChildGroup {
            kind: kind.into(),
            total,
            jobs,
        }
    }

    #[test]
    fn bull_job_page_shows_its_flow_parent_children_and_what_is_pending() {
        let flow = BullFlowVm {
            parent: Some(flow_job(Some("reports"), "p1", "waiting-children")),
            on_failure: Some("failParent".into()),
            groups: vec![
                group(
                    "pending",
                    102,
                    vec![
                        flow_job(Some("thumbs"), "7", "failed"),
                        flow_job(Some("thumbs"), "8", "waiting"),
                    ],
                ),
                group("processed", 1, vec![flow_job(Some("mail"), "3", "gone")]),
                group("ignored", 1, vec![flow_job(None, "9", "failed")]),
            ],
            error: None,
        };
        let vm = BullJobPageVm {
            flow: Some(flow),
            ..bull_job_vm("waiting-children")
        };
        let html = render_bull_job_page(&vm, &PAGE);
        let section = element(&html, r#"data-test-id="job-flow""#, "</section>");
        assert!(section.contains("<h2>Flow</h2>"), "{section}");
        // The line a waiting parent gets.
        assert!(
            section.contains(r#"data-test-id="flow-waiting">Waiting for 102 of 104 children.</p>"#),
            "{section}"
        );
        assert!(
            section.contains("1 pending child failed without an option that frees the parent"),
            "{section}"
        );
        // The parent: linked, named, with its state and the failure rule.
        let parent = element(section, r#"data-test-id="flow-parent""#, "</p>");
        assert!(
            parent.contains(
                r#"<a href="/bullmq/reports/jobs/p1" data-test-id="flow-link"><code>p1</code></a>"#
            ),
            "{parent}"
        );
        assert!(
            parent.contains(r#"data-test-id="flow-state" class="badge state waiting-children">Waiting children</span>"#),
            "{parent}"
        );
        assert!(parent.contains("its parent fails too"), "{parent}");
        // Children by kind, pending first, capped with "and N more".
        let pending = element(section, r#"data-test-id="flow-pending""#, "</ul>");
        assert_eq!(pending.matches(r#"data-test-id="flow-child""#).count(), 2);
        assert!(
            pending.contains(r#"data-test-id="flow-count" class="count">102</span>"#),
            "{pending}"
        );
        assert!(
            pending.contains(r#"data-test-id="flow-more" class="muted">and 100 more</li>"#),
            "{pending}"
        );
        assert!(
            pending.contains(r#"href="/bullmq/thumbs/jobs/7""#)
                && pending.contains(r#"class="badge state failed""#),
            "{pending}"
        );
        assert!(
            section.find(r#"data-test-id="flow-pending""#)
                < section.find(r#"data-test-id="flow-processed""#),
            "{section}"
        );
        let processed = element(section, r#"data-test-id="flow-processed""#, "</ul>");
        assert!(!processed.contains("flow-more"), "{processed}");
        assert!(
            processed
                .contains(r#"data-test-id="flow-state" class="badge state gone">Removed</span>"#),
            "{processed}"
        );
        // Under another prefix: the key, no link.
        let ignored = element(section, r#"data-test-id="flow-ignored""#, "</ul>");
        assert!(ignored.contains("Failed, ignored"), "{ignored}");
        assert!(
            ignored.contains(r#"data-test-id="flow-key">bull:elsewhere:9</code>"#),
            "{ignored}"
        );
        assert!(!ignored.contains("<a "), "{ignored}");
        // Part of the live region.
        let region = &bull_job_fragments(&vm)[0].html;
        assert!(region.contains(r#"data-test-id="job-flow""#), "{region}");

        // A child that is not waiting: no waiting line; BullMQ's default
        // failure rule spelled out.
        let child = BullJobPageVm {
            flow: Some(BullFlowVm {
                parent: Some(flow_job(Some("reports"), "p1", "waiting-children")),
                ..BullFlowVm::default()
            }),
            ..bull_job_vm("active")
        };
        let html = render_bull_job_page(&child, &PAGE);
        assert!(!html.contains("flow-waiting"), "{html}");
        assert!(!html.contains("flow-stuck"), "{html}");
        assert!(
            html.contains("its parent waits until it is retried"),
            "{html}"
        );
        // Outside a flow: no section at all.
        let html = render_bull_job_page(&bull_job_vm("waiting"), &PAGE);
        assert!(!html.contains(r#"data-test-id="job-flow""#), "{html}");
        // Unreadable: said, nothing else.
        let broken = BullJobPageVm {
            flow: Some(BullFlowVm {
                error: Some("Redis is unreachable".into()),
                ..BullFlowVm::default()
            }),
            ..bull_job_vm("waiting-children")
        };
        let html = render_bull_job_page(&broken, &PAGE);
        assert!(
            html.contains("The flow could not be read: Redis is unreachable"),
            "{html}"
        );
        assert!(!html.contains("flow-waiting"), "{html}");
    }

    #[test]
    fn bull_job_flow_escapes_hostile_queues_ids_and_names() {
        let evil = r#"<script>alert(1)</script>"q'/?#"#;
        let evil_path = crate::vm::bullmq::encode_segment(evil);
        let hostile = BullFlowJobVm {
            queue: Some(evil.into()),
            key: evil.into(),
            id: evil.into(),
            name: Some(evil.into()),
            state: evil.into(),
        };
        let vm = BullJobPageVm {
            flow: Some(BullFlowVm {
                parent: Some(hostile.clone()),
                on_failure: Some(evil.into()),
                groups: vec![
                    group(evil, 5, vec![hostile.clone()]),
                    group(
                        "pending",
                        1,
                        vec![BullFlowJobVm {
                            queue: None,
                            ..hostile
                        }],
                    ),
                ],
                error: None,
            }),
            ..bull_job_vm("waiting-children")
        };
        let html = render_bull_job_page(&vm, &PAGE);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains(r#"="<script"#), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains(&format!(r#"href="/bullmq/{evil_path}/jobs/{evil_path}""#)),
            "{html}"
        );
        crate::testing::assert_csp_clean("flow", &html);
    }
}
