//! The workers page (`/workers`): every native worker with what it is
//! running, whether it heartbeats, and the operator's Quiet, Resume and
//! Stop; then the BullMQ workers, of which only their Redis connections
//! can be seen. Also the worker badges the queue pages show.
//!
//! Host names and versions are the workers' own to report, so they are
//! only ever text and attribute values, which leptos escapes.

use leptos::prelude::*;

use super::instances::{format_span, format_threshold};
use crate::format::{counted, format_age, format_count};
use crate::vm::instances::InstanceState;
use crate::vm::session::PageCtx;
use crate::vm::workers::{
    BullWorkerRow, QueueWorkersVm, WORKERS_PER_PAGE, WorkerCounts, WorkerRow, WorkersVm,
    queue_workers_url, worker_action_path,
};
use crate::widgets::forms::{ActionForm, QueueFilter};
use crate::widgets::pager::{Pager, Steps};
use crate::widgets::shell::{Fragment, Frame, Notice, Region, Section, document, fragment};
use crate::widgets::table::{Empty, Table};

/// The live stream of the workers page.
pub const WORKERS_EVENTS: &str = "/events/workers";

/// The BullMQ workers' region: reading it costs a `CLIENT LIST`, so a
/// stream may leave it as the page loaded it and send only the others.
pub const BULL_WORKERS_REGION: &str = "bull-workers";

/// The workers page's stream for the rows it shows: the same queue filter
/// and page, so a live update never swaps in other workers' rows.
pub fn workers_events(vm: &WorkersVm) -> String {
    let url = vm.url_with_offset(vm.offset);
    let query = url.strip_prefix("/workers").unwrap_or_default();
    format!("{WORKERS_EVENTS}{query}")
}

/// The workers page (`/workers`): the counts, the queue filter, a page of
/// native workers with their actions, and the BullMQ connections. The
/// notice after an action sits outside the live regions, so an update
/// does not wipe it.
pub fn render_workers_page(vm: &WorkersVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new("Workers · Switchyard", Section::Workers)
        .live(workers_events(&vm))
        .reloading();
    document(page, frame, move || {
        view! {
            <section class="workers-page">
                <h1>"Workers"</h1>
                <Notice notice=vm.notice.clone() />
                <WorkersSummaryRegion counts=vm.counts.clone() known=vm.problem.is_none() />
                <div class="search">
                    <QueueFilter action="/workers" queue=vm.queue.clone() test_id="workers-filter" />
                </div>
                <WorkersRegion vm=vm.clone() />
                <h2>"BullMQ workers"</h2>
                <BullWorkersRegion vm=vm />
                <p class="legend" data-test-id="bull-workers-unknowable">
                    "BullMQ workers publish nothing about themselves: Switchyard sees only their Redis connections ("
                    <code>"CLIENT LIST"</code>
                    "). Their concurrency, the jobs each runs, their host and process beyond the connection's address, and their version cannot be known, and they cannot be quieted or stopped from here."
                </p>
            </section>
        }
    })
}

/// The live regions of the workers page: `workers-summary`, `workers` and
/// [`BULL_WORKERS_REGION`].
pub fn workers_fragments(vm: &WorkersVm) -> Vec<Fragment> {
    vec![
        fragment(
            "workers-summary",
            view! {
                <WorkersSummaryRegion counts=vm.counts.clone() known=vm.problem.is_none() />
            },
        ),
        fragment("workers", view! { <WorkersRegion vm=vm.clone() /> }),
        fragment(
            BULL_WORKERS_REGION,
            view! { <BullWorkersRegion vm=vm.clone() /> },
        ),
    ]
}

/// The counts line, in the order an operator scans for trouble: who takes
/// jobs, who does not, who stopped heartbeating, and how full the slots
/// are.
pub(crate) fn summary_line(c: &WorkerCounts) -> String {
    format!(
        "{} running · {} quiet · {} stopping · {} stale · {} gone · busy {} of {}",
        format_count(c.running as u64),
        format_count(c.quiet as u64),
        format_count(c.stopping as u64),
        format_count(c.stale as u64),
        format_count(c.gone as u64),
        format_count(c.busy),
        counted(c.slots, "slot", "slots"),
    )
}

/// Workers by state over every match, not just this page. Empty when the
/// registry could not be read: zeros would claim there are no workers.
#[component]
fn WorkersSummaryRegion(counts: WorkerCounts, known: bool) -> impl IntoView {
    let line = known.then(|| {
        view! {
            <p class="worker-counts" data-test-id="worker-counts">
                {summary_line(&counts)}
            </p>
        }
    });
    view! { <Region id="workers-summary">{line}</Region> }
}

/// The native workers: the table with its pager and legend, or why there
/// is none (the registry unreadable, no worker at all, none on the
/// filtered queue, or a page past the end).
#[component]
fn WorkersRegion(vm: WorkersVm) -> impl IntoView {
    let back = vm.url_with_offset(vm.offset);
    let problem = vm.problem.clone().map(|p| {
        view! {
            <p class="status down" role="alert" data-test-id="workers-problem">
                <span class="dot" aria-hidden="true"></span>
                {format!("The worker registry could not be read: {p}")}
            </p>
        }
    });
    let shown = vm.workers.len() as u64;
    let pager = (shown > 0 || vm.total > 0).then(|| {
        let pages = vm.clone();
        view! {
            <Pager
                offset=vm.offset as u64
                shown
                total=vm.total as u64
                limit=WORKERS_PER_PAGE as u64
                href=move |offset| pages.url_with_offset(offset as usize)
                test_id="workers-pager"
                ids="workers-page"
                steps=Steps::Sequence
            />
        }
    });
    let body = if !vm.workers.is_empty() {
        let legend = format!(
            "Stale after {} without a heartbeat; gone once its entry expires. Quiet: takes no new jobs and finishes those it runs. Stop: finishes its jobs, then exits. A worker takes up what is asked at its next heartbeat.",
            format_threshold(vm.stale_after_ms)
        );
        view! {
            <WorkersTable rows=vm.workers.clone() back />
            {pager}
            <p class="legend" data-test-id="workers-legend">
                {legend}
            </p>
        }
        .into_any()
    } else if vm.problem.is_some() {
        ().into_any()
    } else if vm.total > 0 {
        view! {
            <Empty test_id="past-the-end">"No workers on this page."</Empty>
            {pager}
        }
        .into_any()
    } else if let Some(queue) = vm.queue.clone() {
        view! {
            <Empty test_id="no-queue-workers">
                "No worker takes jobs from " <code>{queue}</code>
                ". A worker built with coord's " <code>"WorkerBuilder"</code>
                " on that queue shows here once it starts."
            </Empty>
        }
        .into_any()
    } else {
        view! {
            <Empty test_id="empty-state">
                "No worker heartbeats yet. Workers built with coord's "
                <code>"WorkerBuilder"</code>
                " register themselves here when they start — or run "
                <code>"switchyard demo"</code>
            </Empty>
        }
        .into_any()
    };
    view! {
        <Region id="workers">
            {problem}
            {body}
        </Region>
    }
}

/// A page of native workers. The Actions column is the operator's: a
/// viewer's stylesheet hides it whole (the server refuses the commands
/// anyway), so the rows do not end in an empty column.
#[component]
fn WorkersTable(rows: Vec<WorkerRow>, back: String) -> impl IntoView {
    view! {
        <Table
            class="workers"
            test_id="workers-table"
            head={view! {
                <tr>
                    <th scope="col">"Worker"</th>
                    <th scope="col">"Queue"</th>
                    <th scope="col">"State"</th>
                    <th scope="col" class="num">
                        "Busy"
                    </th>
                    <th scope="col">"Running jobs"</th>
                    <th scope="col">"Host · pid"</th>
                    <th scope="col">"Version"</th>
                    <th scope="col" class="num">
                        "Uptime"
                    </th>
                    <th scope="col" class="num">
                        "Heartbeat"
                    </th>
                    <th scope="col" class="num">
                        <abbr title="jobs completed · attempts failed, since it started">
                            "Done / failed"
                        </abbr>
                    </th>
                    <th scope="col" class="needs-operator">
                        "Actions"
                    </th>
                </tr>
            }}
        >
            {rows
                .into_iter()
                .map(|row| view! { <WorkerTableRow row back=back.clone() /> })
                .collect_view()}
        </Table>
    }
}

/// One worker's row, with `data-test-id`s on the cells tests read, so
/// they do not depend on column order. A worker that stopped
/// heartbeating is highlighted like a stale instance.
#[component]
fn WorkerTableRow(row: WorkerRow, back: String) -> impl IntoView {
    let attention = (row.liveness != InstanceState::Live).then_some("attention");
    let pending = row.pending_ask().map(str::to_owned);
    let asked = pending.clone().map(|asked| {
        view! {
            " "
            <span
                data-test-id="worker-asked"
                class="badge asked"
                title="Asked from the dashboard; the worker takes it up at its next heartbeat"
            >
                {format!("{asked} asked…")}
            </span>
        }
    });
    // What was asked and not yet taken up is not offered again.
    let actions = row
        .actions()
        .into_iter()
        .filter(|action| pending.as_deref() != Some(*action))
        .map(|action| view! { <WorkerActionForm worker=row.id.clone() action back=back.clone() /> })
        .collect_view();
    let failed_class = if row.failed > 0 {
        "counter flagged"
    } else {
        "counter"
    };
    view! {
        <tr
            data-test-id=format!("worker-row-{}", row.id)
            data-id=row.id.clone()
            class=attention
        >
            <th scope="row">
                <code data-test-id="worker-id">{row.id.clone()}</code>
            </th>
            <td>
                <a data-test-id="worker-queue" href=format!("/queues/{}", row.queue)>
                    {row.queue.clone()}
                </a>
            </td>
            <td class="worker-state">
                <span data-test-id="worker-state" class=format!("badge {}", row.state.label())>
                    {row.state.label()}
                </span>
                " "
                <span
                    data-test-id="worker-liveness"
                    class=format!("badge {}", row.liveness.class())
                    data-health="known"
                >
                    {row.liveness.label()}
                </span>
                {asked}
            </td>
            <td class="num" data-test-id="worker-busy">
                {format!("{} / {}", row.busy, row.concurrency)}
            </td>
            <td class="running-jobs" data-test-id="worker-jobs">
                <RunningJobs row=row.clone() />
            </td>
            <td data-test-id="worker-host">{format!("{} · {}", row.host, row.pid)}</td>
            <td data-test-id="worker-version">{row.version.clone()}</td>
            <td class="num" data-test-id="worker-uptime">
                {format_span(row.uptime_ms)}
            </td>
            <td class="num" data-test-id="worker-heartbeat">
                {format_age(row.heartbeat_age_ms)}
            </td>
            <td class="num counters" data-test-id="worker-done">
                <span class="counter" title="completed">
                    {format_count(row.completed)}
                </span>
                " / "
                <span class=failed_class title="failed">
                    {format_count(row.failed)}
                </span>
            </td>
            <td class="actions needs-operator">{actions}</td>
        </tr>
    }
}

/// The jobs in a worker's busy slots, longest-running first, each with how
/// long it has run; the rest counted.
#[component]
fn RunningJobs(row: WorkerRow) -> impl IntoView {
    if row.running.is_empty() && row.running_more == 0 {
        return view! { <span class="muted">"idle"</span> }.into_any();
    }
    let more = (row.running_more > 0).then(|| {
        view! {
            <li class="muted" data-test-id="running-more">
                {format!("and {} more", format_count(u64::from(row.running_more)))}
            </li>
        }
    });
    view! {
        <ul class="plain">
            {row
                .running
                .into_iter()
                .map(|job| {
                    view! {
                        <li>
                            <a data-test-id="running-job" href=job.href>
                                <code>{job.id}</code>
                            </a>
                            " "
                            <span class="muted" title="running for">
                                {format_span(job.run_ms)}
                            </span>
                        </li>
                    }
                })
                .collect_view()}
            {more}
        </ul>
    }
    .into_any()
}

/// One of a worker's commands as a button posting to
/// `/workers/<id>/<action>`. Stop asks first: a stopped worker does not
/// come back from here.
#[component]
fn WorkerActionForm(worker: String, action: &'static str, back: String) -> impl IntoView {
    let path = worker_action_path(&worker, action);
    let test_id = format!("worker-{action}");
    match action {
        "stop" => view! {
            <ActionForm
                action=path
                back
                label="Stop"
                class="danger"
                test_id
                confirm=format!(
                    "Stop worker {worker}? It finishes the jobs it runs, then exits; it cannot be started again from here."
                )
            />
        }
        .into_any(),
        "resume" => view! { <ActionForm action=path back label="Resume" test_id /> }.into_any(),
        _ => view! { <ActionForm action=path back label="Quiet" test_id /> }.into_any(),
    }
}

/// The BullMQ worker connections, why they are not listed, or that none
/// is connected.
#[component]
fn BullWorkersRegion(vm: WorkersVm) -> impl IntoView {
    let note = vm.bull_note.clone().map(|note| {
        view! {
            <p class="muted" data-test-id="bull-workers-note">
                {note}
            </p>
        }
    });
    let shown = vm.bull.len();
    let more = (vm.bull_total > shown).then(|| {
        view! {
            <p class="legend" data-test-id="bull-workers-more">
                {format!(
                    "Showing {} of {} BullMQ worker connections.",
                    format_count(shown as u64),
                    format_count(vm.bull_total as u64),
                )}
            </p>
        }
    });
    let body = if !vm.bull.is_empty() {
        view! { <BullWorkersTable rows=vm.bull /> }.into_any()
    } else if vm.bull_note.is_some() {
        ().into_any()
    } else if let Some(queue) = vm.queue {
        view! {
            <Empty test_id="bull-workers-empty">
                "No BullMQ worker is connected for " <code>{queue}</code> "."
            </Empty>
        }
        .into_any()
    } else {
        view! { <Empty test_id="bull-workers-empty">"No BullMQ worker is connected."</Empty> }
            .into_any()
    };
    view! {
        <Region id=BULL_WORKERS_REGION>
            {note}
            {body}
            {more}
        </Region>
    }
}

/// BullMQ worker connections; the Node column only on a cluster, where a
/// connection is seen on one node.
#[component]
fn BullWorkersTable(rows: Vec<BullWorkerRow>) -> impl IntoView {
    let nodes = rows.iter().any(|r| r.node.is_some());
    view! {
        <Table
            class="workers bull-workers"
            test_id="bull-workers-table"
            head={view! {
                <tr>
                    <th scope="col">"Queue"</th>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Address"</th>
                    {nodes.then(|| view! { <th scope="col">"Node"</th> })}
                    <th scope="col" class="num">
                        "Connected"
                    </th>
                    <th scope="col" class="num">
                        "Idle"
                    </th>
                </tr>
            }}
        >
            {rows
                .into_iter()
                .map(|row| {
                    let node = nodes
                        .then(|| {
                            view! {
                                <td data-test-id="bull-worker-node">
                                    {row.node.clone().unwrap_or_else(|| "–".into())}
                                </td>
                            }
                        });
                    let id = row.addr.clone();
                    view! {
                        <tr data-test-id="bull-worker-row" data-id=id>
                            <th scope="row">
                                <a data-test-id="bull-worker-queue" href=row.href>
                                    {row.queue}
                                </a>
                            </th>
                            <td data-test-id="bull-worker-name">
                                {row.name.unwrap_or_else(|| "—".into())}
                            </td>
                            <td>
                                <code data-test-id="bull-worker-addr">{row.addr}</code>
                            </td>
                            {node}
                            <td class="num" data-test-id="bull-worker-age">
                                {format_age(secs_ms(row.age_secs))}
                            </td>
                            <td class="num" data-test-id="bull-worker-idle">
                                {format_span(secs_ms(row.idle_secs))}
                            </td>
                        </tr>
                    }
                })
                .collect_view()}
        </Table>
    }
}

/// Seconds as the milliseconds the formatters take, saturating rather
/// than wrapping on a nonsense figure.
fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// What a queue's row or header says when nobody takes its new jobs:
/// "no workers" (loud only while jobs wait: an idle queue without workers
/// may be fine) or "all workers quiet", linking to those workers. Nothing
/// while workers take jobs, or when the registry could not be read.
#[component]
pub(super) fn NoWorkersBadge(
    queue: String,
    workers: QueueWorkersVm,
    waiting: u64,
) -> impl IntoView {
    match workers {
        QueueWorkersVm::None => {
            let (class, title) = if waiting > 0 {
                (
                    "badge no-workers warning",
                    format!(
                        "No live worker takes this queue's jobs: {} wait",
                        counted(waiting, "job", "jobs")
                    ),
                )
            } else {
                (
                    "badge no-workers",
                    "No live worker takes this queue's jobs".to_string(),
                )
            };
            Some(
                view! {
                    " "
                    <span data-test-id="queue-workers" class=class title=title>
                        "no workers"
                    </span>
                }
                .into_any(),
            )
        }
        QueueWorkersVm::AllQuiet { workers } => {
            let title = format!(
                "{} live, none takes new jobs",
                counted(workers as u64, "worker", "workers")
            );
            Some(
                view! {
                    " "
                    <a
                        data-test-id="queue-workers"
                        class="badge all-quiet"
                        href=queue_workers_url(&queue)
                        title=title
                    >
                        "all workers quiet"
                    </a>
                }
                .into_any(),
            )
        }
        QueueWorkersVm::Working { .. } | QueueWorkersVm::Unknown => None,
    }
}

/// A queue page's link to the workers taking its jobs, with how busy they
/// are ("3 workers · busy 2/6"); nothing unless some take jobs.
#[component]
pub(super) fn WorkersLink(queue: String, workers: QueueWorkersVm) -> impl IntoView {
    let QueueWorkersVm::Working {
        workers,
        quiet,
        busy,
        slots,
    } = workers
    else {
        return None;
    };
    let quiet = if quiet > 0 {
        format!(" · {} quiet", format_count(quiet as u64))
    } else {
        String::new()
    };
    let text = format!(
        "{}{quiet} · busy {}/{}",
        counted(workers as u64, "worker", "workers"),
        format_count(busy),
        format_count(slots)
    );
    Some(view! {
        " · "
        <a data-test-id="queue-workers" href=queue_workers_url(&queue)>
            {text}
        </a>
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    const WORKER_REGIONS: [&str; 3] = ["workers-summary", "workers", "bull-workers"];

    /// The start tag and cells of the row of worker `id`.
    fn worker_row<'a>(html: &'a str, id: &str) -> &'a str {
        element(html, &format!(r#"data-test-id="worker-row-{id}""#), "</tr>")
    }

    #[test]
    fn workers_page_is_a_full_live_document() {
        let vm = workers_vm();
        let html = render_workers_page(&vm, &signed_in("olga", "operator"));
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Workers · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/workers""#), "{html}");
        assert!(
            html.contains(r#"<a href="/workers" aria-current="page" class="current">Workers</a>"#),
            "{html}"
        );
        // In the navigation after BullMQ, before the fleet's sections.
        let bull = html.find(r#"href="/bullmq""#).expect("bullmq");
        let workers = html.find(r#"href="/workers""#).expect("workers");
        let channels = html.find(r#"href="/channels""#).expect("channels");
        assert!(bull < workers && workers < channels, "{html}");
        assert!(
            html.contains(
                "2 running · 1 quiet · 0 stopping · 1 stale · 0 gone · busy 7 of 11 slots"
            ),
            "{html}"
        );
        // Rows: id, queue link, badges, busy slots, jobs, host, figures.
        let row = worker_row(&html, "web-1-4242-abc123");
        assert!(row.contains(r#"data-id="web-1-4242-abc123""#), "{row}");
        assert!(row.contains(r#"href="/queues/emails""#), "{row}");
        assert!(
            row.contains(r#"data-test-id="worker-state" class="badge running">running<"#),
            "{row}"
        );
        assert!(
            row.contains(
                r#"data-test-id="worker-liveness" data-health="known" class="badge live">Live<"#
            ),
            "{row}"
        );
        assert!(row.contains(">2 / 4<"), "{row}");
        assert!(row.contains(r#"href="/queues/emails/jobs/17""#), "{row}");
        assert!(row.contains(">17</code>"), "{row}");
        assert!(row.contains(">4.2 s<"), "{row}");
        assert!(row.contains(">web-1 · 4242<"), "{row}");
        assert!(row.contains(">1.4.0<"), "{row}");
        assert!(row.contains(">3 h 5 min<"), "{row}");
        assert!(row.contains(">2 s ago<"), "{row}");
        assert!(row.contains(">1,204<"), "{row}");
        assert!(row.contains(r#"class="counter flagged""#), "{row}");
        assert!(!row.contains("attention"), "{row}");
        // More busy slots than named jobs are counted.
        let busy = worker_row(&html, "web-2-77-def456");
        assert_eq!(busy.matches(r#"data-test-id="running-job""#).count(), 3);
        assert!(busy.contains(">and 2 more<"), "{busy}");
        // An idle worker says so.
        let quiet = worker_row(&html, "web-3-9-aaa000");
        assert!(quiet.contains(">idle<"), "{quiet}");
        // A stale worker is highlighted.
        let stale = worker_row(&html, "web-4-10-bbb111");
        assert!(stale.contains(r#"class="attention""#), "{stale}");
        assert!(stale.contains(r#"class="badge stale">Stale<"#), "{stale}");
        // The legend names the threshold.
        assert!(
            html.contains("Stale after 15 s without a heartbeat"),
            "{html}"
        );
        // The static note on BullMQ workers sits outside the region.
        let note = html
            .find(r#"data-test-id="bull-workers-unknowable""#)
            .expect("note");
        assert!(html[note..].contains("<code>CLIENT LIST</code>"), "{html}");
        assert!(html.contains("cannot be known"), "{html}");
        for id in WORKER_REGIONS {
            assert!(html.contains(&format!(r#"<div id="{id}""#)), "{id}: {html}");
        }
    }

    #[test]
    fn workers_fragments_are_the_regions_of_the_page() {
        let mut filtered = workers_vm();
        filtered.queue = Some("emails".into());
        filtered.notice = Some("Asked web-1 to stop.".into());
        for vm in [workers_vm(), filtered, WorkersVm::default()] {
            let html = render_workers_page(&vm, &PAGE);
            let fragments = workers_fragments(&vm);
            assert_eq!(
                fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
                WORKER_REGIONS
            );
            for f in &fragments {
                assert!(
                    f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                    "{}",
                    f.html
                );
                assert!(html.contains(&f.html), "page lacks region {}", f.id);
                assert!(!f.html.contains(r#"data-test-id="notice""#), "{}", f.html);
                assert!(!f.html.contains("workers-filter"), "{}", f.html);
            }
        }
    }

    #[test]
    fn each_state_offers_its_actions_posting_with_csrf_and_back() {
        let html = render_workers_page(&workers_vm(), &signed_in("olga", "operator"));
        let actions = |id: &str| -> Vec<String> {
            forms(worker_row(&html, id))
                .into_iter()
                .map(|form| {
                    let at = form.find(r#"action=""#).expect("action") + 8;
                    form[at..at + form[at..].find('"').expect("end")].to_string()
                })
                .collect()
        };
        assert_eq!(
            actions("web-1-4242-abc123"),
            [
                "/workers/web-1-4242-abc123/quiet",
                "/workers/web-1-4242-abc123/stop"
            ]
        );
        // Quiet offers Resume and Stop; stale, gone or stopping nothing.
        assert_eq!(
            actions("web-3-9-aaa000"),
            [
                "/workers/web-3-9-aaa000/resume",
                "/workers/web-3-9-aaa000/stop"
            ]
        );
        assert!(actions("web-4-10-bbb111").is_empty());
        let row = worker_row(&html, "web-1-4242-abc123");
        let form = forms(row)[0];
        assert!(form.contains(r#"method="post""#), "{form}");
        assert!(form.contains("needs-operator"), "{form}");
        assert!(
            form.contains(r#"<input type="hidden" name="csrf_token" value="tok-123">"#),
            "{form}"
        );
        assert!(
            form.contains(r#"<input type="hidden" name="back" value="/workers">"#),
            "{form}"
        );
        assert!(
            form.contains(r#"data-test-id="worker-quiet" class="button">Quiet</button>"#),
            "{form}"
        );
        let stop = forms(row)[1];
        assert!(
            stop.contains(r#"data-test-id="worker-stop" class="button danger">Stop</button>"#),
            "{stop}"
        );
        assert!(
            stop.contains(r#"data-confirm="Stop worker web-1-4242-abc123?"#),
            "{stop}"
        );
        assert!(
            worker_row(&html, "web-3-9-aaa000").contains(r#"data-test-id="worker-resume""#),
            "{html}"
        );
        // Stopping: nothing to ask.
        let mut vm = workers_vm();
        vm.workers[0].state = WorkerStateVm::Stopping;
        let html = render_workers_page(&vm, &PAGE);
        assert!(forms(worker_row(&html, "web-1-4242-abc123")).is_empty());
        // Gone: nothing either.
        vm.workers[0].state = WorkerStateVm::Running;
        vm.workers[0].liveness = InstanceState::Gone;
        let html = render_workers_page(&vm, &PAGE);
        let row = worker_row(&html, "web-1-4242-abc123");
        assert!(forms(row).is_empty(), "{row}");
        assert!(row.contains(r#"class="badge gone">Gone<"#), "{row}");
    }

    #[test]
    fn a_viewer_is_shown_no_action() {
        // Forms in a live region are shared by every open page, so they
        // are hidden by role: the Actions column and every form in it say
        // they need an operator, and the page says it is a viewer's.
        let html = render_workers_page(&workers_vm(), &signed_in("vic", "viewer"));
        assert!(
            html.contains(r#"<body data-live="/events/workers" data-role="viewer""#),
            "{html}"
        );
        assert!(
            html.contains(r#"<th scope="col" class="needs-operator">Actions</th>"#),
            "{html}"
        );
        let table = element(&html, r#"data-test-id="workers-table""#, "</table>");
        let forms = forms(table);
        assert_eq!(forms.len(), 6, "{table}");
        for form in forms {
            assert!(form.contains(r#"class="inline needs-operator""#), "{form}");
        }
        assert_eq!(
            table
                .matches(r#"<td class="actions needs-operator">"#)
                .count(),
            4,
            "{table}"
        );
    }

    #[test]
    fn a_command_not_taken_up_yet_is_shown_and_not_offered_again() {
        let mut vm = workers_vm();
        vm.workers[0].asked = Some("quiet".into());
        let html = render_workers_page(&vm, &PAGE);
        let row = worker_row(&html, "web-1-4242-abc123");
        assert!(
            row.contains(r#"data-test-id="worker-asked""#) && row.contains(">quiet asked…<"),
            "{row}"
        );
        assert!(!row.contains("worker-quiet"), "{row}");
        assert!(row.contains("worker-stop"), "{row}");
        // Taken up: the state says it, the row no longer does.
        vm.workers[0].state = WorkerStateVm::Quiet;
        let html = render_workers_page(&vm, &PAGE);
        let row = worker_row(&html, "web-1-4242-abc123");
        assert!(!row.contains("worker-asked"), "{row}");
        assert!(row.contains("worker-resume"), "{row}");
    }

    #[test]
    fn hostile_hosts_versions_and_ids_are_escaped() {
        let mut vm = workers_vm();
        let w = &mut vm.workers[0];
        w.id = format!("{HOSTILE}\"x");
        w.host = HOSTILE.into();
        w.version = HOSTILE.into();
        w.queue = "emails".into();
        w.running[0].id = HOSTILE.into();
        vm.bull[0].name = Some(HOSTILE.into());
        vm.bull[0].addr = HOSTILE.into();
        vm.notice = Some(HOSTILE.into());
        vm.queue = Some(HOSTILE.into());
        let html = render_workers_page(&vm, &signed_in("olga", "operator"));
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("\"x\""), "{html}");
        assert!(
            html.contains(">&lt;script&gt;alert(1)&lt;/script&gt; · 4242<"),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<td data-test-id="worker-version">&lt;script&gt;alert(1)&lt;/script&gt;</td>"#
            ),
            "{html}"
        );
        // The id in a path is percent-encoded, in an attribute escaped.
        assert!(
            html.contains(r#"action="/workers/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22x/quiet""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-id="&lt;script&gt;alert(1)&lt;/script&gt;&quot;x""#),
            "{html}"
        );
        // The filter keeps the typed text, escaped, and the stream and
        // pager carry it encoded.
        assert!(
            html.contains(r#"value="&lt;script&gt;alert(1)&lt;/script&gt;""#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"data-live="/events/workers?queue=%3Cscript%3Ealert%281%29%3C%2Fscript%3E""#
            ),
            "{html}"
        );
        for f in workers_fragments(&vm) {
            assert!(!f.html.contains("<script>"), "{}", f.html);
        }
    }

    #[test]
    fn empty_states_say_why() {
        let html = render_workers_page(&WorkersVm::default(), &PAGE);
        let empty = element(&html, r#"data-test-id="empty-state""#, "</p>");
        assert!(empty.contains("<code>WorkerBuilder</code>"), "{empty}");
        assert!(empty.contains("register themselves here"), "{empty}");
        assert!(!html.contains("workers-table"), "{html}");
        assert!(!html.contains("workers-pager"), "{html}");
        assert!(
            html.contains(
                "0 running · 0 quiet · 0 stopping · 0 stale · 0 gone · busy 0 of 0 slots"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                r#"data-test-id="bull-workers-empty" class="empty">No BullMQ worker is connected.<"#
            ),
            "{html}"
        );
        // Filtered to a queue nobody works on.
        let vm = WorkersVm {
            queue: Some("reports".into()),
            ..WorkersVm::default()
        };
        let html = render_workers_page(&vm, &PAGE);
        let empty = element(&html, r#"data-test-id="no-queue-workers""#, "</p>");
        assert!(
            empty.contains("No worker takes jobs from <code>reports</code>."),
            "{empty}"
        );
        assert!(html.contains(r#"href="/workers">All queues</a>"#), "{html}");
        // The registry unreadable: an error line, no counts, no claim
        // that there are no workers.
        let vm = WorkersVm {
            problem: Some("connection refused".into()),
            ..WorkersVm::default()
        };
        let html = render_workers_page(&vm, &PAGE);
        assert!(
            html.contains("The worker registry could not be read: connection refused"),
            "{html}"
        );
        assert!(html.contains(r#"class="status down""#), "{html}");
        assert!(!html.contains("empty-state"), "{html}");
        assert!(!html.contains("worker-counts"), "{html}");
        // Past the last page: a pager back.
        let vm = WorkersVm {
            total: 3,
            offset: 50,
            ..WorkersVm::default()
        };
        let html = render_workers_page(&vm, &PAGE);
        assert!(html.contains("No workers on this page."), "{html}");
        assert!(
            html.contains(r#"data-test-id="workers-page-prev""#),
            "{html}"
        );
    }

    #[test]
    fn the_pager_and_forms_keep_the_queue_filter() {
        let mut vm = workers_vm();
        vm.queue = Some("mail & more".into());
        vm.total = 120;
        vm.offset = 50;
        let html = render_workers_page(&vm, &signed_in("olga", "operator"));
        assert!(
            html.contains(r#"data-live="/events/workers?queue=mail%20%26%20more&amp;offset=50""#),
            "{html}"
        );
        assert!(html.contains("51–54 of 120"), "{html}");
        assert!(
            html.contains(r#"href="/workers?queue=mail%20%26%20more&amp;offset=54""#),
            "next: {html}"
        );
        assert!(
            html.contains(r#"href="/workers?queue=mail%20%26%20more""#),
            "previous: {html}"
        );
        assert!(
            html.contains(
                r#"<input type="hidden" name="back" value="/workers?queue=mail%20%26%20more&amp;offset=50">"#
            ),
            "{html}"
        );
        assert!(html.contains(r#"value="mail &amp; more""#), "{html}");
        // The live update comes back to the same page.
        let region = &workers_fragments(&vm)[1].html;
        assert!(
            region
                .contains(r#"name="back" value="/workers?queue=mail%20%26%20more&amp;offset=50""#),
            "{region}"
        );
    }

    #[test]
    fn bullmq_workers_show_their_connections_and_what_is_missing() {
        let html = render_workers_page(&workers_vm(), &PAGE);
        let table = element(&html, r#"data-test-id="bull-workers-table""#, "</table>");
        assert!(table.contains(r#"href="/bullmq/mailer""#), "{table}");
        assert!(table.contains(">mailer-worker<"), "{table}");
        assert!(table.contains(">—<"), "unnamed: {table}");
        assert!(table.contains(">10.0.0.5:51234</code>"), "{table}");
        assert!(table.contains(">2 h ago<"), "{table}");
        assert!(table.contains(">4.0 s<"), "{table}");
        assert!(!table.contains(">Node<"), "no cluster: {table}");
        assert!(
            html.contains("Showing 2 of 60 BullMQ worker connections."),
            "{html}"
        );
        // On a cluster each connection names its node.
        let mut vm = workers_vm();
        vm.bull[0].node = Some("10.0.0.9:7001".into());
        vm.bull_total = 2;
        let html = render_workers_page(&vm, &PAGE);
        assert!(html.contains(">Node</th>"), "{html}");
        assert!(html.contains(">10.0.0.9:7001<"), "{html}");
        assert!(html.contains(">–<"), "{html}");
        assert!(!html.contains("bull-workers-more"), "{html}");
        // Not listed, and why.
        let vm = WorkersVm {
            bull_note: Some("BullMQ monitoring is off.".into()),
            ..WorkersVm::default()
        };
        let html = render_workers_page(&vm, &PAGE);
        assert!(
            html.contains(
                r#"data-test-id="bull-workers-note" class="muted">BullMQ monitoring is off.<"#
            ),
            "{html}"
        );
        assert!(!html.contains("bull-workers-empty"), "{html}");
    }

    #[test]
    fn queue_rows_and_headers_badge_their_workers() {
        let badge = |workers: QueueWorkersVm, waiting: u64| {
            let mut queue = row("emails", 0, false);
            queue.workers = workers;
            queue.counts.waiting = waiting;
            let rows = render_queues_page(&queues_vm(vec![queue.clone()], true), &PAGE);
            let page = QueuePageVm {
                queue,
                ..failed_page()
            };
            let header = queue_fragments(&page, 0)
                .into_iter()
                .find(|f| f.id == "queue-header")
                .expect("header")
                .html;
            let find = |html: &str| {
                html.contains(r#"data-test-id="queue-workers""#)
                    .then(|| element(html, r#"data-test-id="queue-workers""#, "</").to_string())
            };
            (find(&rows), find(&header))
        };
        // No workers: loud while jobs wait, muted otherwise.
        let (row_badge, header) = badge(QueueWorkersVm::None, 3);
        let row_badge = row_badge.expect("row badge");
        assert!(
            row_badge.contains(r#"class="badge no-workers warning""#)
                && row_badge.contains(">no workers<"),
            "{row_badge}"
        );
        assert!(row_badge.contains("3 jobs wait"), "{row_badge}");
        assert_eq!(header.as_deref(), Some(row_badge.as_str()));
        let (row_badge, _) = badge(QueueWorkersVm::None, 0);
        assert!(
            row_badge
                .expect("row badge")
                .contains(r#"class="badge no-workers""#)
        );
        // All quiet: a warning, linking to those workers.
        let (row_badge, header) = badge(QueueWorkersVm::AllQuiet { workers: 2 }, 0);
        let row_badge = row_badge.expect("row badge");
        assert!(
            row_badge.contains(r#"href="/workers?queue=emails""#)
                && row_badge.contains(r#"class="badge all-quiet""#)
                && row_badge.contains(">all workers quiet<"),
            "{row_badge}"
        );
        assert!(row_badge.contains(r#"title="2 workers live, none takes new jobs""#));
        assert!(header.is_some());
        // Working: nothing on the row; the header links the workers.
        let working = QueueWorkersVm::Working {
            workers: 3,
            quiet: 1,
            busy: 2,
            slots: 6,
        };
        let (row_badge, header) = badge(working, 5);
        assert_eq!(row_badge, None);
        let header = header.expect("header link");
        assert!(
            header.contains(r#"href="/workers?queue=emails""#)
                && header.contains(">3 workers · 1 quiet · busy 2/6<"),
            "{header}"
        );
        let (_, header) = badge(
            QueueWorkersVm::Working {
                workers: 1,
                quiet: 0,
                busy: 0,
                slots: 4,
            },
            0,
        );
        assert!(header.expect("link").contains(">1 worker · busy 0/4<"));
        // Unknown: nothing anywhere.
        assert_eq!(badge(QueueWorkersVm::Unknown, 9), (None, None));
    }

    #[test]
    fn pending_asks_and_paths() {
        let mut row = WorkerRow {
            asked: Some("stop".into()),
            state: WorkerStateVm::Quiet,
            ..WorkerRow::default()
        };
        assert_eq!(row.pending_ask(), Some("stop"));
        row.state = WorkerStateVm::Stopping;
        assert_eq!(row.pending_ask(), None);
        row.asked = Some("resume".into());
        assert_eq!(row.pending_ask(), Some("resume"));
        row.asked = None;
        assert_eq!(row.pending_ask(), None);
        assert_eq!(
            worker_action_path("h/1-2-x", "stop"),
            "/workers/h%2F1-2-x/stop"
        );
        assert_eq!(queue_workers_url("a b"), "/workers?queue=a%20b");
    }
}
