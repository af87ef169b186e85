//! The BullMQ page (`/bullmq`): every BullMQ (Node) queue under the prefix
//! with its counts per state and a Pause/Resume button, or how to turn
//! BullMQ monitoring on when it is off; and the error line the BullMQ
//! pages share.
//!
//! The BullMQ pages mirror the native queue pages' markup and classes, so
//! the two look and behave alike. Queue names and job ids are
//! percent-encoded in every path ([`encode_segment`]); everything else a
//! producer wrote is text or an attribute value, which leptos escapes.
//!
//! [`encode_segment`]: crate::vm::bullmq::encode_segment

use leptos::prelude::*;

use crate::format::format_count;
use crate::vm::bullmq::{
    BULL_STATES, BullQueueRow, BullQueuesVm, bull_queue_path, bull_state_path,
};
use crate::vm::queues::{QUEUES_PER_PAGE, QueueSort};
use crate::vm::session::PageCtx;
use crate::widgets::pager::{Pager, Steps};
use crate::widgets::queue::{CountCell, QueueListFilter, StateCell};
use crate::widgets::shell::{Fragment, Frame, Notice, Section, document, fragment};
use crate::widgets::table::{Empty, Table};

/// The live stream of the BullMQ page.
pub const BULLMQ_EVENTS: &str = "/events/bullmq";

/// The BullMQ page, where its forms come back to (with its query).
const BULLMQ_PAGE: &str = "/bullmq";

/// The BullMQ page (`/bullmq`): every BullMQ queue under the prefix with
/// its counts per state and a Pause/Resume button, or how to turn BullMQ
/// monitoring on when it is off.
pub fn render_bullmq_page(vm: &BullQueuesVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let live = format!("{BULLMQ_EVENTS}{}", vm.query.query_string(vm.query.offset));
    // Off, there is nothing to keep current: no stream, so no pill that
    // could read as a broken connection.
    let frame = Frame::new("BullMQ · Switchyard", Section::BullMq);
    let frame = if vm.enabled { frame.live(live) } else { frame };
    document(page, frame, move || {
        view! {
            <section class="queues-page bullmq-page">
                <h1>"BullMQ"</h1>
                <Notice notice=vm.notice.clone() />
                {vm
                    .enabled
                    .then(|| {
                        view! {
                            <QueueListFilter
                                action=BULLMQ_PAGE
                                query=vm.query.clone()
                                sorts=&BULL_SORTS
                                label=bull_sort_label
                                ids="bull-queues"
                            />
                        }
                    })}
                <BullQueuesRegion vm=vm />
            </section>
        }
    })
}

/// The BullMQ orders: their rates are not known here, so no throughput.
pub const BULL_SORTS: [QueueSort; 3] = [QueueSort::Name, QueueSort::Failures, QueueSort::Backlog];

/// How the BullMQ page names its orders: BullMQ's own counts.
fn bull_sort_label(sort: QueueSort) -> &'static str {
    match sort {
        QueueSort::Failures => "Failed jobs",
        QueueSort::Backlog => "Backlog (waiting + delayed + prioritized)",
        other => other.label(),
    }
}

/// The live regions of the BullMQ page: one, `bull-queues`.
pub fn bullmq_fragments(vm: &BullQueuesVm) -> Vec<Fragment> {
    vec![fragment(
        "bull-queues",
        view! { <BullQueuesRegion vm=vm.clone() /> },
    )]
}

/// A line saying BullMQ could not be read, and that what follows is the
/// last known.
#[component]
pub(super) fn BullError(error: Option<String>, last_known: &'static str) -> impl IntoView {
    error.map(|e| {
        view! {
            <p class="status down bull-error" role="alert" data-test-id="bull-error">
                <span class="dot" aria-hidden="true"></span>
                {format!("BullMQ's Redis could not be read: {e}. {last_known}")}
            </p>
        }
    })
}

/// The BullMQ queues table (a region), or why there is none: BullMQ not
/// configured, Redis unreachable, or no queue under the prefix.
#[component]
pub(super) fn BullQueuesRegion(vm: BullQueuesVm) -> impl IntoView {
    let back = format!("{BULLMQ_PAGE}{}", vm.query.query_string(vm.query.offset));
    // The BullMQ page pages; the short list under the native queues links
    // the BullMQ page for the rest.
    let shown = vm.rows.len() as u64;
    let more = if vm.page_size >= QUEUES_PER_PAGE {
        let query = vm.query.clone();
        (vm.matching > shown || vm.query.offset > 0)
            .then(|| {
                view! {
                    <Pager
                        offset=vm.query.offset
                        shown
                        total=vm.matching
                        limit=vm.page_size
                        href=move |offset| format!("{BULLMQ_PAGE}{}", query.query_string(offset))
                        test_id="bull-queues-pager"
                        ids="bull-queues-page"
                        steps=Steps::Sequence
                    />
                }
            })
            .into_any()
    } else {
        (vm.total > shown)
            .then(|| {
                view! {
                    <p>
                        <a href=BULLMQ_PAGE data-test-id="bull-queues-more">
                            {format!("All {} BullMQ queues →", format_count(vm.total))}
                        </a>
                    </p>
                }
            })
            .into_any()
    };
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
    } else if vm.rows.is_empty() && vm.total > 0 {
        let text = if vm.matching == 0 {
            format!(
                "No BullMQ queue name contains “{}” (of {} queues).",
                vm.query.filter,
                format_count(vm.total)
            )
        } else {
            "No BullMQ queues on this page.".to_owned()
        };
        view! { <Empty test_id="no-match">{text}</Empty> }.into_any()
    } else if vm.rows.is_empty() {
        if vm.error.is_some() {
            view! {
                <Empty test_id="backend-down">
                    "BullMQ queues are unavailable until Redis answers."
                </Empty>
            }
            .into_any()
        } else {
            view! {
                <Empty test_id="empty-state">
                    "No BullMQ queues under prefix " <code>{vm.prefix.clone()}</code>
                </Empty>
            }
            .into_any()
        }
    } else {
        view! {
            <Table
                class="queues bull-queues"
                test_id="bull-queues-table"
                head={view! {
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
                }}
            >
                {vm
                    .rows
                    .clone()
                    .into_iter()
                    .map(|row| view! { <BullQueueTableRow row back=back.clone() /> })
                    .collect_view()}
            </Table>
            {more}
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
fn BullQueueTableRow(row: BullQueueRow, back: String) -> impl IntoView {
    let counts = BULL_STATES
        .iter()
        .map(|&(state, _)| {
            view! {
                <CountCell
                    state
                    count=row.count(state)
                    href=bull_state_path(&row.name, state)
                />
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
            <StateCell
                queue_path=bull_queue_path(&row.name)
                paused=row.paused
                back
            />
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn bullmq_page_is_a_full_live_document() {
        let vm = BullQueuesVm {
            notice: Some("Queue reports resumed.".into()),
            ..bull_queues_vm(vec![bull_row("emails", false), bull_row("reports", true)])
        };
        let html = render_bullmq_page(&vm, &PAGE);
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>BullMQ · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/bullmq""#), "{html}");
        assert_eq!(BULLMQ_EVENTS, "/events/bullmq");
        assert!(
            html.contains(r#"<a href="/bullmq" aria-current="page" class="current">BullMQ</a>"#),
            "{html}"
        );
        // Right after Queues in the navigation.
        let queues = html.find(r#"href="/queues""#).expect("queues");
        let bull = html.find(r#"href="/bullmq""#).expect("bullmq");
        let channels = html.find(r#"href="/channels""#).expect("channels");
        assert!(queues < bull && bull < channels, "{html}");
        assert!(html.contains("Queue reports resumed."), "{html}");
        assert!(
            html.contains(r#"data-test-id="queue-row-emails""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="queue-row-reports""#),
            "{html}"
        );
        for (state, label) in BULL_STATES {
            assert!(html.contains(&format!(">{label}</th>")), "{label}: {html}");
            assert!(
                html.contains(&format!(r#"href="/bullmq/emails?state={state}""#)),
                "{state}: {html}"
            );
            assert!(
                html.contains(&format!(r#"data-test-id="count-{state}""#)),
                "{state}: {html}"
            );
        }
        assert!(html.contains(">7,000</a>"), "paused count: {html}");
        assert!(html.contains(r#"href="/bullmq/emails" data-test-id="queue-name""#));
        assert!(html.contains(r#"action="/bullmq/emails/pause""#), "{html}");
        assert!(
            html.contains(r#"action="/bullmq/reports/resume""#),
            "{html}"
        );
        assert!(
            !html.contains(r#"action="/bullmq/reports/pause""#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<span data-test-id="queue-paused" class="badge paused">Paused</span>"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"<input type="hidden" name="back" value="/bullmq">"#),
            "{html}"
        );
        assert!(!html.contains(r#"data-test-id="bull-error""#), "{html}");
        let fragments = bullmq_fragments(&vm);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["bull-queues"]
        );
        for f in &fragments {
            assert!(f.html.starts_with(r#"<div id="bull-queues""#), "{}", f.html);
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn bullmq_page_empty_unreachable_and_disabled() {
        let empty = render_bullmq_page(&bull_queues_vm(vec![]), &PAGE);
        assert!(
            empty.contains("No BullMQ queues under prefix <code>bull</code>"),
            "{empty}"
        );
        assert!(!empty.contains("bull-queues-table"), "{empty}");

        // Unreachable: the error, and the last known rows kept.
        let down = BullQueuesVm {
            error: Some("connection refused".into()),
            ..bull_queues_vm(vec![bull_row("emails", false)])
        };
        let html = render_bullmq_page(&down, &PAGE);
        assert!(html.contains(r#"data-test-id="bull-error""#), "{html}");
        assert!(html.contains("connection refused"), "{html}");
        assert!(
            html.contains(r#"data-test-id="queue-row-emails""#),
            "{html}"
        );
        // Unreachable with nothing known does not claim there are no queues.
        let html = render_bullmq_page(
            &BullQueuesVm {
                rows: vec![],
                matching: 0,
                total: 0,
                ..down
            },
            &PAGE,
        );
        assert!(!html.contains("No BullMQ queues"), "{html}");
        assert!(html.contains(r#"data-test-id="backend-down""#), "{html}");
        assert!(html.contains("connection refused"), "{html}");

        // Not configured: how to turn it on, and nothing else.
        let off = BullQueuesVm {
            enabled: false,
            ..bull_queues_vm(vec![])
        };
        let html = render_bullmq_page(&off, &PAGE);
        assert!(html.contains(r#"data-test-id="bullmq-disabled""#), "{html}");
        assert!(
            html.contains("<code>--bullmq &lt;redis-url&gt;</code>"),
            "{html}"
        );
        assert!(html.contains("<code>--redis</code>"), "{html}");
        assert!(!html.contains("No BullMQ queues"), "{html}");
        // Nothing to keep current: no stream, no live pill.
        assert!(!html.contains("data-live"), "{html}");
        assert!(!html.contains("live-state"), "{html}");
        for f in bullmq_fragments(&off) {
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn every_bull_form_posts_with_the_csrf_token_and_back() {
        let page = signed_in("olga", "operator");
        let mut failed = bull_queue_vm("failed");
        failed.offset = 50;
        failed.total = 120;
        let rendered = [
            (
                "bullmq",
                render_bullmq_page(
                    &bull_queues_vm(vec![bull_row("emails", false), bull_row("r", true)]),
                    &page,
                ),
                "/bullmq".to_string(),
            ),
            (
                "failed",
                render_bull_queue_page(&failed, 0, &page),
                "/bullmq/emails?state=failed&amp;offset=50".to_string(),
            ),
            (
                "completed",
                render_bull_queue_page(&bull_queue_vm("completed"), 0, &page),
                "/bullmq/emails?state=completed".to_string(),
            ),
            (
                "delayed",
                render_bull_queue_page(&bull_queue_vm("delayed"), 0, &page),
                "/bullmq/emails?state=delayed".to_string(),
            ),
            (
                "job",
                render_bull_job_page(&bull_job_vm("failed"), &page),
                String::new(),
            ),
        ];
        for (what, html, back) in rendered {
            let posts = html.matches(r#"method="post""#).count();
            // Sign out plus at least the page's own buttons.
            assert!(posts > 2, "{what}: {html}");
            assert_eq!(
                html.matches(r#"<input type="hidden" name="csrf_token" value="tok-123">"#)
                    .count(),
                posts,
                "{what}: {html}"
            );
            // The list page's filter is a GET form; every other form posts.
            for form in forms(&html)
                .into_iter()
                .filter(|f| !f.contains(r#"method="get""#))
            {
                assert!(form.contains(r#"method="post""#), "{what}: {form}");
                assert!(
                    form.contains(r#"<input type="hidden" name="csrf_token" value="tok-123">"#),
                    "{what}: {form}"
                );
                if form.contains(r#"action="/logout""#) {
                    continue;
                }
                assert!(form.contains(r#"name="back""#), "{what}: {form}");
                let own = form.contains(&format!(r#"name="back" value="{back}""#));
                let queue_page = what == "job"
                    && form.contains(r#"name="back" value="/bullmq/emails?state=failed""#);
                let job_page =
                    what == "job" && form.contains(r#"name="back" value="/bullmq/emails/jobs/42""#);
                assert!(own || queue_page || job_page, "{what}: {form}");
                // Buttons say which role they need.
                assert!(form.contains("needs-operator"), "{what}: {form}");
            }
        }
        // Live regions are shared by every open page: empty token, filled
        // in by the page script.
        for f in bull_queue_fragments(&bull_queue_vm("failed"), 0)
            .into_iter()
            .chain(bullmq_fragments(&bull_queues_vm(vec![bull_row(
                "e", false,
            )])))
            .chain(bull_job_fragments(&bull_job_vm("failed")))
        {
            for form in forms(&f.html) {
                assert!(
                    form.contains(r#"<input type="hidden" name="csrf_token" value="">"#),
                    "{}: {form}",
                    f.id
                );
            }
        }
    }

    #[test]
    fn bull_pages_escape_hostile_names_ids_reasons_and_data() {
        let evil = r#"<script>alert(1)</script>"q'"#;
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
        let evil_path = "%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22q%27";
        assert_eq!(encode_segment(evil), evil_path);
        let queues = render_bullmq_page(
            &BullQueuesVm {
                prefix: evil.into(),
                error: Some(evil.into()),
                notice: Some(evil.into()),
                ..bull_queues_vm(vec![bull_row(evil, false)])
            },
            &PAGE,
        );
        let empty = render_bullmq_page(
            &BullQueuesVm {
                prefix: evil.into(),
                ..bull_queues_vm(vec![])
            },
            &PAGE,
        );
        let job = BullJobRow {
            id: evil.into(),
            name: evil.into(),
            failed_reason: Some(evil.into()),
            data_preview: format!(r#"{{"html":"{evil}"}}"#),
            ..bull_job("7")
        };
        let queue_vm = BullQueuePageVm {
            prefix: evil.into(),
            queue: bull_row(evil, true),
            jobs: vec![job],
            error: Some(evil.into()),
            notice: Some(evil.into()),
            ..bull_queue_vm("failed")
        };
        let queue = render_bull_queue_page(&queue_vm, 0, &PAGE);
        let job_vm = BullJobPageVm {
            prefix: evil.into(),
            queue: evil.into(),
            id: evil.into(),
            name: evil.into(),
            state: evil.into(),
            data_pretty: evil.into(),
            opts_pretty: evil.into(),
            failed_reason: Some(evil.into()),
            stacktrace: vec![evil.into()],
            returnvalue: Some(evil.into()),
            progress: Some(evil.into()),
            logs: vec![evil.into()],
            notice: Some(evil.into()),
            ..bull_job_vm("failed")
        };
        let job_page = render_bull_job_page(&job_vm, &PAGE);
        for (what, html) in [
            ("queues", &queues),
            ("empty", &empty),
            ("queue", &queue),
            ("job", &job_page),
        ] {
            assert!(!html.contains("<script>alert"), "{what}: {html}");
            assert!(html.contains(escaped), "{what}: {html}");
            // In attributes too: no quote closes one early.
            assert!(!html.contains(r#"="<script"#), "{what}: {html}");
            assert!(!html.contains(r#"-<script"#), "{what}: {html}");
            assert_csp_clean(what, html);
        }
        assert!(
            queues.contains(&format!(r#"href="/bullmq/{evil_path}""#)),
            "{queues}"
        );
        assert!(
            queues.contains(&format!(r#"action="/bullmq/{evil_path}/pause""#)),
            "{queues}"
        );
        assert!(
            queue.contains(&format!(r#"href="/bullmq/{evil_path}/jobs/{evil_path}""#)),
            "{queue}"
        );
        assert!(
            queue.contains(&format!(
                r#"action="/bullmq/{evil_path}/jobs/{evil_path}/retry""#
            )),
            "{queue}"
        );
        assert!(
            queue.contains(&format!(r#"action="/bullmq/{evil_path}/retry-failed""#)),
            "{queue}"
        );
        assert!(
            queue.contains(&format!(r#"action="/bullmq/{evil_path}/clean""#)),
            "{queue}"
        );
        assert!(
            queue.contains(&format!(
                r#"data-live="/events/bullmq/{evil_path}?state=failed""#
            )),
            "{queue}"
        );
        assert!(
            job_page.contains(&format!(
                r#"data-live="/events/bullmq/{evil_path}/jobs/{evil_path}""#
            )),
            "{job_page}"
        );
        // An unknown state is text too, and offers no button.
        assert!(
            !job_page.contains(&format!(r#"action="/bullmq/{evil_path}/jobs/{evil_path}/"#)),
            "{job_page}"
        );
    }

    #[test]
    fn bull_pages_need_no_inline_script_or_style() {
        let queues = bull_queues_vm(vec![bull_row("emails", false), bull_row("r", true)]);
        let off = BullQueuesVm {
            enabled: false,
            ..bull_queues_vm(vec![])
        };
        let mut pages = vec![
            (
                "bullmq".to_string(),
                render_bullmq_page(&queues, &admin_page()),
            ),
            ("bullmq off".to_string(), render_bullmq_page(&off, &PAGE)),
        ];
        for (state, _) in BULL_STATES {
            let vm = bull_queue_vm(state);
            pages.push((
                format!("queue {state}"),
                render_bull_queue_page(&vm, 0, &admin_page()),
            ));
            pages.push((
                format!("job {state}"),
                render_bull_job_page(&bull_job_vm(state), &admin_page()),
            ));
            for f in bull_queue_fragments(&vm, 0)
                .into_iter()
                .chain(bull_job_fragments(&bull_job_vm(state)))
            {
                pages.push((format!("fragment {} {state}", f.id), f.html));
            }
        }
        for f in bullmq_fragments(&queues) {
            pages.push((format!("fragment {}", f.id), f.html));
        }
        for (what, html) in &pages {
            assert_csp_clean(what, html);
        }
    }

    #[test]
    fn bull_paths_encode_every_segment() {
        assert_eq!(encode_segment("emails"), "emails");
        assert_eq!(encode_segment("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode_segment("a/b c?d#e%"), "a%2Fb%20c%3Fd%23e%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(bull_queue_path("a/b"), "/bullmq/a%2Fb");
        assert_eq!(bull_job_path("a/b", "1 2"), "/bullmq/a%2Fb/jobs/1%202");
        assert_eq!(bull_job_events("q", "x/y"), "/events/bullmq/q/jobs/x%2Fy");
        let vm = BullQueuePageVm {
            queue: bull_row("a b", false),
            state: "waiting-children".into(),
            offset: 0,
            ..BullQueuePageVm::default()
        };
        assert_eq!(
            bull_queue_events(&vm),
            "/events/bullmq/a%20b?state=waiting-children"
        );
    }
}
