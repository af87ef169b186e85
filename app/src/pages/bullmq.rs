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

use crate::vm::bullmq::{
    BULL_STATES, BullQueueRow, BullQueuesVm, bull_queue_path, bull_state_path,
};
use crate::vm::session::PageCtx;
use crate::widgets::queue::{CountCell, StateCell};
use crate::widgets::shell::{Fragment, Frame, Notice, Section, document, fragment};
use crate::widgets::table::{Empty, Table};

/// The live stream of the BullMQ page.
pub const BULLMQ_EVENTS: &str = "/events/bullmq";

/// Where the BullMQ page's forms come back to: its regions are rendered
/// once for every open page, and there is one such page.
const BULLMQ_PAGE: &str = "/bullmq";

/// The BullMQ page (`/bullmq`): every BullMQ queue under the prefix with
/// its counts per state and a Pause/Resume button, or how to turn BullMQ
/// monitoring on when it is off.
pub fn render_bullmq_page(vm: &BullQueuesVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new("BullMQ · Switchyard", Section::BullMq).live(BULLMQ_EVENTS);
    document(page, frame, move || {
        view! {
            <section class="queues-page bullmq-page">
                <h1>"BullMQ"</h1>
                <Notice notice=vm.notice.clone() />
                <BullQueuesRegion vm=vm />
            </section>
        }
    })
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
                    .map(|row| view! { <BullQueueTableRow row /> })
                    .collect_view()}
            </Table>
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
fn BullQueueTableRow(row: BullQueueRow) -> impl IntoView {
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
                back=BULLMQ_PAGE.to_string()
            />
        </tr>
    }
}
