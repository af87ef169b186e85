//! The queues page (`/queues`): a page of queues at a time, in the order
//! and with the name filter asked for, each row with its counts, rate,
//! health badge and a pause/resume button; the BullMQ queues next to them
//! when BullMQ is monitored.

use leptos::prelude::*;

use super::bullmq::BullQueuesRegion;
use super::workers::NoWorkersBadge;
use crate::format::format_count;
use crate::vm::queues::{QUEUES_PER_PAGE, QueueRow, QueueSort, QueuesQuery, QueuesVm, STATES};
use crate::vm::session::PageCtx;
use crate::widgets::health::HealthRegion;
use crate::widgets::pager::{Pager, Steps};
use crate::widgets::queue::{CountCell, QueueListFilter, StateCell};
use crate::widgets::shell::{Fragment, Frame, Notice, Section, document, fragment};
use crate::widgets::table::{Empty, Table};

/// The live stream of the queues page.
pub const QUEUES_EVENTS: &str = "/events/queues";

/// The queues page's stream for the rows it shows: the same order, filter
/// and page, so a live update never swaps in other rows.
pub fn queues_events(query: &QueuesQuery) -> String {
    format!("{QUEUES_EVENTS}{}", query.query_string(query.offset))
}

/// The queues page (`/queues`): one page of rows.
pub fn render_queues_page(vm: &QueuesVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new("Queues · Switchyard", Section::Queues)
        .live(queues_events(&vm.query))
        .reloading();
    document(page, frame, move || {
        view! {
            <section class="queues-page">
                <h1>"Queues"</h1>
                <Notice notice=vm.notice.clone() />
                <HealthRegion health=vm.health.clone() />
                <QueueListFilter
                    action="/queues"
                    query=vm.query.clone()
                    sorts=&QueueSort::ALL
                    label=QueueSort::label
                    ids="queues"
                />
                <QueuesRegion vm=vm.clone() />
                {vm
                    .bullmq
                    .clone()
                    .map(|bull| {
                        let heading = format!("BullMQ queues (prefix {})", bull.prefix);
                        view! {
                            <section class="bull-next" data-test-id="bullmq-next">
                                <h2>{heading}</h2>
                                <p class="muted">
                                    "Node services' BullMQ queues on the same Redis; their "
                                    <a href="/bullmq">"BullMQ page"</a>
                                    " updates live."
                                </p>
                                <BullQueuesRegion vm=bull />
                            </section>
                        }
                    })}
            </section>
        }
    })
}

/// The live regions of the queues page.
pub fn queues_fragments(vm: &QueuesVm) -> Vec<Fragment> {
    vec![
        fragment(
            "health",
            view! { <HealthRegion health=vm.health.clone() /> },
        ),
        fragment("queues", view! { <QueuesRegion vm=vm.clone() /> }),
    ]
}

/// The queues table as a live region, or a hint on how to get a first
/// queue, or (backend down, nothing known) a line saying counts are missing.
#[component]
fn QueuesRegion(vm: QueuesVm) -> impl IntoView {
    let body = if vm.queues.is_empty() {
        if !vm.health.backend_ok && vm.total == 0 {
            view! {
                <Empty test_id="backend-down">
                    "Queue counts are unavailable until the backend answers."
                </Empty>
            }
            .into_any()
        } else if vm.total == 0 {
            view! {
                <Empty test_id="empty-state">
                    "No queues yet — enqueue a job or run "
                    <code>"switchyard demo"</code>
                </Empty>
            }
            .into_any()
        } else if vm.matching == 0 {
            let text = format!(
                "No queue name contains “{}” (of {} queues).",
                vm.query.filter,
                format_count(vm.total)
            );
            view! { <Empty test_id="no-match">{text}</Empty> }.into_any()
        } else {
            view! { <Empty test_id="past-the-end">"No queues on this page."</Empty> }.into_any()
        }
    } else {
        let legend = format!(
            "Busy: more than {} active jobs. Warning: more than {}% of finished jobs failed in the last 5 minutes.",
            format_count(vm.busy_active),
            vm.warning_failure_rate
        );
        let back = format!("/queues{}", vm.query.query_string(vm.query.offset));
        let query = vm.query.clone();
        let shown = vm.queues.len() as u64;
        view! {
            <QueueTable rows=vm.queues back test_id="queues-table" />
            <Pager
                offset=vm.query.offset
                shown
                total=vm.matching
                limit=QUEUES_PER_PAGE
                href=move |offset| format!("/queues{}", query.query_string(offset))
                test_id="queues-pager"
                ids="queues-page"
                steps=Steps::Sequence
            />
            <p class="legend">{legend}</p>
        }
        .into_any()
    };
    view! { <div id="queues">{body}</div> }
}

/// Queues with their counts, rates, badges and pause buttons; `back` is
/// where an action returns to.
#[component]
pub fn QueueTable(rows: Vec<QueueRow>, back: String, test_id: &'static str) -> impl IntoView {
    // On Redis Cluster, which master holds each queue.
    let nodes = rows.iter().any(|r| r.node.is_some());
    // Once workers report wait times, how long jobs wait to start.
    let waits = rows.iter().any(|r| r.wait_p95_ms.is_some());
    view! {
        <Table
            class="queues"
            test_id=test_id
            head={view! {
                <tr>
                    <th scope="col">"Queue"</th>
                    <th scope="col">"Health"</th>
                    {STATES
                        .iter()
                        .map(|(state, label)| {
                            view! {
                                <th scope="col" class=format!("num {state}")>
                                    {*label}
                                </th>
                            }
                        })
                        .collect_view()}
                    <th scope="col" class="num">
                        "Jobs/min"
                    </th>
                    <th scope="col" class="num">
                        "Failure rate"
                    </th>
                    {waits
                        .then(|| {
                            view! {
                                <th scope="col" class="num">
                                    <abbr title="95th percentile of the time jobs waited to start, last 5 minutes">
                                        "Wait p95"
                                    </abbr>
                                </th>
                            }
                        })}
                    <th scope="col">"State"</th>
                    {nodes.then(|| view! { <th scope="col">"Node"</th> })}
                </tr>
            }}
        >
            {rows
                .into_iter()
                .map(|row| view! { <QueueTableRow row back=back.clone() nodes waits /> })
                .collect_view()}
        </Table>
    }
}

/// One queue's row, with `data-test-id`s so tests and scripts can read a
/// count without depending on column order. Workers show only when none
/// takes the queue's jobs: the queue page says how many do.
#[component]
fn QueueTableRow(row: QueueRow, back: String, nodes: bool, waits: bool) -> impl IntoView {
    let href = format!("/queues/{}", row.name);
    let rate = row
        .jobs_per_min
        .map(|r| format!("{r:.1}"))
        .unwrap_or_else(|| "–".into());
    let failure = row
        .failure_rate
        .map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "–".into());
    view! {
        <tr data-test-id=format!("queue-row-{}", row.name)>
            <th scope="row">
                <a href=href data-test-id="queue-name">
                    {row.name.clone()}
                </a>
            </th>
            <td>
                <span
                    class=format!("badge {}", row.health.class())
                    data-test-id="queue-health"
                    data-health="known"
                >
                    {row.health.label()}
                </span>
                <NoWorkersBadge
                    queue=row.name.clone()
                    workers=row.workers
                    waiting=row.counts.waiting
                />
            </td>
            {STATES
                .iter()
                .map(|(state, _)| {
                    let href = format!("/queues/{}?state={state}", row.name);
                    view! { <CountCell state=*state count=row.count(state) href /> }
                })
                .collect_view()}
            <td class="num" data-test-id="jobs-per-min">
                {rate}
            </td>
            <td class="num" data-test-id="failure-rate">
                {failure}
            </td>
            {waits
                .then(|| {
                    view! {
                        <td class="num" data-test-id="wait-p95">
                            {row
                                .wait_p95_ms
                                .map(|ms| crate::format::format_duration(ms as i64))
                                .unwrap_or_else(|| "–".into())}
                        </td>
                    }
                })}
            <StateCell
                queue_path=format!("/queues/{}", row.name)
                paused=row.paused
                back
            />
            {nodes
                .then(|| {
                    view! {
                        <td data-test-id="queue-node">
                            {row.node.clone().unwrap_or_else(|| "–".into())}
                        </td>
                    }
                })}
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn bullmq_queues_show_next_to_the_native_ones_when_monitored() {
        let plain = render_queues_page(&queues_vm(vec![row("emails", 0, false)], true), &PAGE);
        assert!(!plain.contains("bullmq-next"), "{plain}");
        let mut vm = queues_vm(vec![row("emails", 0, false)], true);
        vm.bullmq = Some(bull_queues_vm(vec![BullQueueRow {
            name: "mailer<x>".into(),
            counts: vec![("failed".into(), 3)],
            paused: true,
        }]));
        let html = render_queues_page(&vm, &PAGE);
        let native = html.find(r#"id="queues""#).expect("native table");
        let bull = html
            .find(r#"data-test-id="bullmq-next""#)
            .expect("BullMQ section");
        assert!(native < bull, "{html}");
        assert!(html.contains("mailer&lt;x&gt;"), "{html}");
        assert!(html.contains(r#"href="/bullmq""#), "{html}");
    }

    #[test]
    fn queues_page_is_a_full_live_document() {
        let html = render_queues_page(
            &queues_vm(vec![row("emails", 2, false), row("reports", 0, true)], true),
            &PAGE,
        );
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Queues · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/queues""#), "{html}");
        assert!(html.contains(r#"http-equiv="refresh""#), "{html}");
        assert!(html.contains(r#"src="/app.js""#), "{html}");
        assert!(html.contains(r#"href="/style.css""#), "{html}");
        assert!(html.contains(r#"data-test-id="queue-row-emails""#));
        assert!(html.contains(r#"data-test-id="queue-row-reports""#));
        assert!(html.contains(r#"data-test-id="count-failed""#));
        assert!(
            html.contains(r#"action="/queues/reports/resume""#),
            "{html}"
        );
        assert!(html.contains(r#"action="/queues/emails/pause""#), "{html}");
        assert!(html.contains("Warning"), "{html}");
        assert!(html.contains("12.5"), "{html}");
        assert!(html.contains("25.0%"), "{html}");
        assert!(
            html.contains("Backend redis: reachable, 0.4 ms, 3.0 MB used"),
            "{html}"
        );
        for header in [
            "Queue",
            "Health",
            "Waiting",
            "Active",
            "Delayed",
            "Completed",
            "Failed",
            "Jobs/min",
            "State",
        ] {
            assert!(
                html.contains(&format!(">{header}</th>")),
                "{header} missing: {html}"
            );
        }
    }

    #[test]
    fn queues_page_without_queues_says_how_to_get_one() {
        let html = render_queues_page(&queues_vm(vec![], true), &PAGE);
        assert!(
            html.contains("No queues yet — enqueue a job or run"),
            "{html}"
        );
        assert!(html.contains("<code>switchyard demo</code>"), "{html}");
    }

    #[test]
    fn backend_down_does_not_claim_there_are_no_queues() {
        let html = render_queues_page(&queues_vm(vec![], false), &PAGE);
        assert!(!html.contains("No queues yet"), "{html}");
        assert!(
            html.contains("unavailable until the backend answers"),
            "{html}"
        );
        assert!(
            html.contains("Backend redis: unreachable: connection refused"),
            "{html}"
        );
    }

    #[test]
    fn fragments_are_the_regions_of_the_page() {
        let vm = queues_vm(vec![row("emails", 2, false)], true);
        let page = render_queues_page(&vm, &PAGE);
        let fragments = queues_fragments(&vm);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["health", "queues"]
        );
        for f in &fragments {
            assert!(
                f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                "{}",
                f.html
            );
            assert!(page.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn a_page_of_many_queues_has_a_pager_and_keeps_the_query() {
        let mut vm = queues_vm(vec![row("mail-0050", 1, false)], true);
        vm.total = 10_000;
        vm.matching = 1_111;
        vm.query = QueuesQuery {
            sort: QueueSort::Backlog,
            filter: "mail &".into(),
            offset: 50,
        };
        let html = render_queues_page(&vm, &PAGE);
        assert!(
            html.contains(
                r#"data-live="/events/queues?sort=backlog&amp;q=mail%20%26&amp;offset=50""#
            ),
            "{html}"
        );
        assert!(html.contains("51–51 of 1,111"), "{html}");
        assert!(
            html.contains(r#"href="/queues?sort=backlog&amp;q=mail%20%26&amp;offset=51""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/queues?sort=backlog&amp;q=mail%20%26""#),
            "previous page: {html}"
        );
        assert!(
            html.contains(r#"<option value="backlog" selected"#),
            "{html}"
        );
        assert!(html.contains(r#"value="mail &amp;""#), "{html}");
        // An action on a row comes back to this page.
        assert!(
            html.contains(
                r#"name="back" value="/queues?sort=backlog&amp;q=mail%20%26&amp;offset=50""#
            ),
            "{html}"
        );
        // The form is not in the live region: typing survives updates.
        let region = &queues_fragments(&vm)[1].html;
        assert!(!region.contains("queues-filter"), "{region}");
    }

    #[test]
    fn a_filter_matching_nothing_says_so() {
        let mut vm = queues_vm(vec![], true);
        vm.total = 3;
        vm.matching = 0;
        vm.query.filter = "zzz".into();
        let html = render_queues_page(&vm, &PAGE);
        assert!(
            html.contains("No queue name contains “zzz” (of 3 queues)."),
            "{html}"
        );
        assert!(!html.contains("No queues yet"), "{html}");
    }
}
