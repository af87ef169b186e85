//! The schedules page (`/schedules`): every repeatable job with its next
//! runs, its last run and job, and the operator's Pause, Resume and Run
//! now (the admin's Edit and Remove); then BullMQ's job schedulers of one
//! chosen BullMQ queue. Also the edit form (`/schedules/new`,
//! `/schedules/<id>/edit`).
//!
//! Payload templates and names are the services' own, so they are only
//! ever text and attribute values, which leptos escapes.

use leptos::prelude::*;

use crate::format::format_count;
use crate::vm::schedules::{
    BULL_SCHEDULERS_PER_PAGE, BullSchedulerRow, BullSchedulersVm, SCHEDULES_PER_PAGE,
    ScheduleCounts, ScheduleFormVm, ScheduleRow, ScheduleStatus, SchedulesVm,
    bull_scheduler_action_path, schedule_action_path,
};
use crate::vm::session::PageCtx;
use crate::widgets::forms::{ActionForm, PostFields, QueueFilter};
use crate::widgets::pager::{Pager, Steps};
use crate::widgets::shell::{Fragment, Frame, Notice, Region, Section, document, fragment};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::{At, Due, Moment};

/// The live stream of the schedules page.
pub const SCHEDULES_EVENTS: &str = "/events/schedules";

/// The BullMQ schedulers' region: read when the page loads (a read of the
/// chosen queue's keys), never per update.
pub const BULL_SCHEDULERS_REGION: &str = "bull-schedulers";

/// The schedules page's stream for the rows it shows: the same filter and
/// page, so a live update never swaps in other schedules.
pub fn schedules_events(vm: &SchedulesVm) -> String {
    let mut query = vm.url_with_offset(vm.offset);
    query.replace_range(.."/schedules".len(), "");
    format!("{SCHEDULES_EVENTS}{query}")
}

/// The schedules page: the counts, the queue filter, a page of schedules
/// with their actions, and BullMQ's schedulers. The notice after an
/// action sits outside the live regions, so an update does not wipe it.
pub fn render_schedules_page(vm: &SchedulesVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new("Schedules · Switchyard", Section::Schedules)
        .live(schedules_events(&vm))
        .reloading();
    document(page, frame, move || {
        let fires = if vm.fires_here {
            "This dashboard fires due schedules; so may any service running coord's scheduler. Each tick is fired once, whoever gets to it first."
        } else {
            "This dashboard fires no schedules (--scheduler false): the services running coord's scheduler do. Each tick is fired once, whoever gets to it first."
        };
        view! {
            <section class="schedules-page">
                <h1>"Schedules"</h1>
                <Notice notice=vm.notice.clone() />
                <SchedulesSummaryRegion counts=vm.counts.clone() known=vm.problem.is_none() />
                <div class="toolbar">
                    <QueueFilter action="/schedules" queue=vm.queue.clone() test_id="schedules-filter" />
                    <a
                        class="button primary needs-admin"
                        href="/schedules/new"
                        data-test-id="schedule-new"
                    >
                        "New schedule"
                    </a>
                </div>
                <SchedulesRegion vm=vm.clone() />
                <p class="legend" data-test-id="schedules-fired-by">
                    {fires}
                </p>
                {vm.bull.clone().map(|bull| view! { <BullSchedulers bull vm=vm.clone() /> })}
            </section>
        }
    })
}

/// The live regions of the schedules page: `schedules-summary` and
/// `schedules`.
pub fn schedules_fragments(vm: &SchedulesVm) -> Vec<Fragment> {
    vec![
        fragment(
            "schedules-summary",
            view! {
                <SchedulesSummaryRegion counts=vm.counts.clone() known=vm.problem.is_none() />
            },
        ),
        fragment("schedules", view! { <SchedulesRegion vm=vm.clone() /> }),
    ]
}

/// Schedules by status over every match. Empty when they could not be
/// read: zeros would claim there are none.
#[component]
fn SchedulesSummaryRegion(counts: ScheduleCounts, known: bool) -> impl IntoView {
    let line = known.then(|| {
        view! {
            <p class="schedule-counts" data-test-id="schedule-counts">
                {format!(
                    "{} active · {} paused · {} finished",
                    format_count(counts.active as u64),
                    format_count(counts.paused as u64),
                    format_count(counts.finished as u64),
                )}
            </p>
        }
    });
    view! { <Region id="schedules-summary">{line}</Region> }
}

/// The schedules table with its pager, or why there is none.
#[component]
fn SchedulesRegion(vm: SchedulesVm) -> impl IntoView {
    let back = vm.url_with_offset(vm.offset);
    let problem = vm.problem.clone().map(|p| {
        view! {
            <p class="status down" role="alert" data-test-id="schedules-problem">
                <span class="dot" aria-hidden="true"></span>
                {format!("The schedules could not be read: {p}")}
            </p>
        }
    });
    let shown = vm.schedules.len() as u64;
    let pager = (shown > 0 || vm.total > 0).then(|| {
        let pages = vm.clone();
        view! {
            <Pager
                offset=vm.offset as u64
                shown
                total=vm.total as u64
                limit=SCHEDULES_PER_PAGE as u64
                href=move |offset| pages.url_with_offset(offset as usize)
                test_id="schedules-pager"
                ids="schedules-page"
                steps=Steps::Sequence
            />
        }
    });
    let body = if !vm.schedules.is_empty() {
        view! {
            <SchedulesTable rows=vm.schedules.clone() now=vm.now_ms back />
            {pager}
            <p class="legend" data-test-id="schedules-legend">
                "Times are UTC; a cron schedule ticks in its own time zone. Pause: fires nothing until resumed, which starts from the next tick after then. Run now: enqueues one job at once, not counted against the limit."
            </p>
        }
        .into_any()
    } else if vm.problem.is_some() {
        ().into_any()
    } else if vm.total > 0 {
        view! {
            <Empty test_id="past-the-end">"No schedules on this page."</Empty>
            {pager}
        }
        .into_any()
    } else if let Some(queue) = vm.queue.clone() {
        view! {
            <Empty test_id="no-queue-schedules">
                "No schedule enqueues into " <code>{queue}</code> "."
            </Empty>
        }
        .into_any()
    } else {
        view! {
            <Empty test_id="empty-state">
                "No schedules yet. Create one with New schedule, with "
                <code>"POST /api/schedules"</code> ", or from a service with coord's "
                <code>"Queues::upsert_schedule"</code> "."
            </Empty>
        }
        .into_any()
    };
    view! {
        <Region id="schedules">
            {problem}
            {body}
        </Region>
    }
}

/// A page of schedules. The Actions column is the operator's: a viewer's
/// stylesheet hides it whole.
#[component]
fn SchedulesTable(rows: Vec<ScheduleRow>, now: i64, back: String) -> impl IntoView {
    view! {
        <Table
            class="schedules"
            test_id="schedules-table"
            head={view! {
                <tr>
                    <th scope="col">"Schedule"</th>
                    <th scope="col">"Queue"</th>
                    <th scope="col">"Repeats"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Next runs"</th>
                    <th scope="col">"Last run"</th>
                    <th scope="col" class="num">
                        "Runs"
                    </th>
                    <th scope="col" class="needs-operator">
                        "Actions"
                    </th>
                </tr>
            }}
        >
            {rows
                .into_iter()
                .map(|row| view! { <ScheduleTableRow row now back=back.clone() /> })
                .collect_view()}
        </Table>
    }
}

/// One schedule's row, with `data-test-id`s on the cells tests read.
#[component]
fn ScheduleTableRow(row: ScheduleRow, now: i64, back: String) -> impl IntoView {
    let status = row.status;
    let next = if row.next_runs.is_empty() {
        let why = match status {
            ScheduleStatus::Paused => "paused",
            _ => "none: past its end or limit",
        };
        view! { <span class="muted">{why}</span> }.into_any()
    } else {
        view! { <NextRuns runs=row.next_runs.clone() now /> }.into_any()
    };
    let last = match (row.last_run_at, row.last_job.clone()) {
        (Some(at), Some((id, href))) => view! {
            <Moment at now />
            " "
            <a data-test-id="schedule-last-job" href=href>
                <code>{id}</code>
            </a>
        }
        .into_any(),
        (Some(at), None) => view! { <Moment at now /> }.into_any(),
        _ => view! { <span class="muted">"never"</span> }.into_any(),
    };
    let runs = match row.limit {
        Some(limit) => format!("{} of {}", format_count(row.runs), format_count(limit)),
        None => format_count(row.runs),
    };
    let actions = row
        .actions()
        .into_iter()
        .map(|action| {
            view! { <ScheduleActionForm schedule=row.id.clone() action back=back.clone() /> }
        })
        .collect_view();
    let id = row.id.clone();
    let remove = view! {
        <ActionForm
            action=schedule_action_path(&id, "remove")
            back=back.clone()
            label="Remove"
            class="danger"
            test_id="schedule-remove".into()
            needs="admin"
            confirm=format!("Remove schedule {id}? The jobs it enqueued stay.")
        />
    };
    view! {
        <tr data-test-id=format!("schedule-row-{}", row.id) data-id=row.id.clone()>
            <th scope="row">
                <code data-test-id="schedule-id">{row.id.clone()}</code>
                <span class="muted block" data-test-id="schedule-job-name">
                    {row.job_name.clone()}
                </span>
            </th>
            <td>
                <a data-test-id="schedule-queue" href=format!("/queues/{}", row.queue)>
                    {row.queue.clone()}
                </a>
            </td>
            <td data-test-id="schedule-repeat">
                {row.repeat.clone()}
                <span class="muted block">{format!("missed ticks: {}", row.missed)}</span>
            </td>
            <td>
                <span
                    data-test-id="schedule-status"
                    class=format!("badge schedule-{}", status.label())
                >
                    {status.label()}
                </span>
            </td>
            <td class="next-runs" data-test-id="schedule-next">
                {next}
            </td>
            <td data-test-id="schedule-last">{last}</td>
            <td class="num" data-test-id="schedule-runs">
                {runs}
            </td>
            <td class="actions needs-operator">
                {actions}
                <a
                    class="button needs-admin"
                    href=format!("/schedules/{}/edit", crate::format::encode_query(&row.id))
                    data-test-id="schedule-edit"
                >
                    "Edit"
                </a>
                {remove}
            </td>
        </tr>
    }
}

/// The next runs: the first with how long until it, the others as times.
#[component]
fn NextRuns(runs: Vec<i64>, now: i64) -> impl IntoView {
    let mut runs = runs.into_iter();
    let first = runs.next().map(|at| {
        view! {
            <span data-test-id="schedule-next-first">
                <Due at now />
            </span>
        }
    });
    let rest: Vec<i64> = runs.collect();
    view! {
        {first}
        <ol class="plain next-list" data-test-id="schedule-next-list">
            {rest
                .into_iter()
                .map(|at| {
                    view! {
                        <li>
                            <At at />
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
}

/// One of a schedule's operator actions as a button.
#[component]
fn ScheduleActionForm(schedule: String, action: &'static str, back: String) -> impl IntoView {
    let path = schedule_action_path(&schedule, action);
    let test_id = format!("schedule-{action}");
    let label = match action {
        "pause" => "Pause",
        "resume" => "Resume",
        _ => "Run now",
    };
    view! { <ActionForm action=path back label test_id /> }
}

/// BullMQ's job schedulers and legacy repeatables of the chosen queue.
#[component]
fn BullSchedulers(bull: BullSchedulersVm, vm: SchedulesVm) -> impl IntoView {
    let chosen = bull.queue.clone();
    let options = bull
        .queues
        .iter()
        .map(|q| {
            let selected = chosen.as_deref() == Some(q.as_str());
            view! {
                <option value=q.clone() selected=selected>
                    {q.clone()}
                </option>
            }
        })
        .collect_view();
    let back = vm.url_with_offset(vm.offset);
    let body = match (bull.queue.clone(), bull.problem.clone()) {
        (_, Some(problem)) => view! {
            <p class="status down" role="alert" data-test-id="bull-schedulers-problem">
                <span class="dot" aria-hidden="true"></span>
                {format!("BullMQ's schedulers could not be read: {problem}")}
            </p>
        }
        .into_any(),
        (None, None) => view! {
            <Empty test_id="bull-schedulers-choose">
                "Choose a BullMQ queue to list its job schedulers and repeatable jobs."
            </Empty>
        }
        .into_any(),
        (Some(queue), None) if bull.rows.is_empty() && bull.total == 0 => view! {
            <Empty test_id="bull-schedulers-empty">
                "BullMQ queue " <code>{queue}</code>
                " has no job schedulers or repeatable jobs."
            </Empty>
        }
        .into_any(),
        (Some(queue), None) => {
            let pages = vm.clone();
            let pager = view! {
                <Pager
                    offset=bull.offset as u64
                    shown=bull.rows.len() as u64
                    total=bull.total
                    limit=BULL_SCHEDULERS_PER_PAGE as u64
                    href=move |offset| {
                        let mut at = pages.clone();
                        if let Some(b) = at.bull.as_mut() {
                            b.offset = offset as usize;
                        }
                        at.url_with_offset(at.offset)
                    }
                    test_id="bull-schedulers-pager"
                    ids="bull-schedulers-page"
                    steps=Steps::Sequence
                />
            };
            view! {
                <BullSchedulersTable rows=bull.rows.clone() queue back now=vm.now_ms />
                {pager}
            }
            .into_any()
        }
    };
    view! {
        <h2>"BullMQ job schedulers"</h2>
        <form method="get" action="/schedules" class="filter" data-test-id="bull-schedulers-filter">
            {vm.queue.clone().map(|q| view! { <input type="hidden" name="queue" value=q /> })}
            <label>
                "BullMQ queue "
                <select name="bull" data-test-id="bull-schedulers-queue">
                    <option value="">"choose…"</option>
                    {options}
                </select>
            </label>
            <button type="submit" class="button">
                "Show"
            </button>
        </form>
        <Region id=BULL_SCHEDULERS_REGION>{body}</Region>
        <p class="legend">
            "Job schedulers (" <code>"upsertJobScheduler"</code>
            ") and legacy repeatable jobs, as BullMQ stores them. Run now adds one job from the template at once; the next scheduled run stays as it was. Remove deletes the scheduler and its next scheduled job, as BullMQ's own removeJobScheduler does."
        </p>
    }
}

/// A page of one BullMQ queue's schedulers.
#[component]
fn BullSchedulersTable(
    rows: Vec<BullSchedulerRow>,
    queue: String,
    back: String,
    now: i64,
) -> impl IntoView {
    view! {
        <Table
            class="schedules bull-schedulers"
            test_id="bull-schedulers-table"
            head={view! {
                <tr>
                    <th scope="col">"Scheduler"</th>
                    <th scope="col">"Kind"</th>
                    <th scope="col">"Repeats"</th>
                    <th scope="col">"Next run"</th>
                    <th scope="col" class="num">
                        "Runs"
                    </th>
                    <th scope="col">"Template"</th>
                    <th scope="col" class="needs-operator">
                        "Actions"
                    </th>
                </tr>
            }}
        >
            {rows
                .into_iter()
                .map(|row| {
                    let next = match row.next_run {
                        Some(at) => view! { <Due at now /> }.into_any(),
                        None => view! { <span class="muted">"none"</span> }.into_any(),
                    };
                    let run = bull_scheduler_action_path(&queue, &row.key, "run");
                    let remove = bull_scheduler_action_path(&queue, &row.key, "remove");
                    let key = row.key.clone();
                    view! {
                        <tr data-test-id="bull-scheduler-row" data-id=row.key.clone()>
                            <th scope="row">
                                <code data-test-id="bull-scheduler-key">{row.key.clone()}</code>
                                <span class="muted block">{row.name.clone()}</span>
                            </th>
                            <td data-test-id="bull-scheduler-kind">{row.kind}</td>
                            <td data-test-id="bull-scheduler-repeat">{row.repeat.clone()}</td>
                            <td data-test-id="bull-scheduler-next">{next}</td>
                            <td class="num" data-test-id="bull-scheduler-runs">
                                {row.iterations.map_or_else(|| "–".to_owned(), format_count)}
                            </td>
                            <td>
                                <code class="template" data-test-id="bull-scheduler-template">
                                    {row.template.clone()}
                                </code>
                            </td>
                            <td class="actions needs-operator">
                                <ActionForm
                                    action=run
                                    back=back.clone()
                                    label="Run now"
                                    test_id="bull-scheduler-run".into()
                                />
                                <ActionForm
                                    action=remove
                                    back=back.clone()
                                    label="Remove"
                                    class="danger"
                                    needs="admin"
                                    test_id="bull-scheduler-remove".into()
                                    confirm=format!(
                                        "Remove BullMQ scheduler {key}? Its next scheduled job goes with it; jobs already run stay.",
                                    )
                                />
                            </td>
                        </tr>
                    }
                })
                .collect_view()}
        </Table>
    }
}

/// The edit form of a schedule (`/schedules/new`, `/schedules/<id>/edit`):
/// every field of the definition, the reason a save was refused above
/// them, and what was typed kept.
pub fn render_schedule_form_page(form: &ScheduleFormVm, page: &PageCtx) -> String {
    let form = form.clone();
    let title = match &form.editing {
        Some(id) => format!("Edit {id} · Schedules · Switchyard"),
        None => "New schedule · Schedules · Switchyard".to_owned(),
    };
    document(page, Frame::new(title, Section::Schedules), move || {
        view! { <ScheduleForm form /> }
    })
}

#[component]
fn ScheduleForm(form: ScheduleFormVm) -> impl IntoView {
    let heading = match &form.editing {
        Some(id) => format!("Edit schedule {id}"),
        None => "New schedule".to_owned(),
    };
    let action = match &form.editing {
        Some(id) => format!("/schedules/{}/edit", crate::format::encode_query(id)),
        None => "/schedules".to_owned(),
    };
    let error = form.error.clone().map(|e| {
        view! {
            <p class="status down" role="alert" data-test-id="schedule-form-error">
                <span class="dot" aria-hidden="true"></span>
                {format!("Not saved: {e}")}
            </p>
        }
    });
    let kind_option = |value: &'static str, text: &'static str| {
        let selected = form.kind == value;
        view! {
            <option value=value selected=selected>
                {text}
            </option>
        }
    };
    let missed_option = |value: &'static str, text: &'static str| {
        let selected = form.missed == value;
        view! {
            <option value=value selected=selected>
                {text}
            </option>
        }
    };
    let id_field = if form.editing.is_some() {
        view! {
            <input type="hidden" name="id" value=form.id.clone() />
        }
        .into_any()
    } else {
        view! {
            <label>
                "Id "
                <input
                    type="text"
                    name="id"
                    required
                    maxlength="64"
                    pattern="[A-Za-z0-9_.\\-]+"
                    title="1–64 of A–Z, a–z, 0–9, _ . -"
                    value=form.id.clone()
                    data-test-id="schedule-form-id"
                />
            </label>
        }
        .into_any()
    };
    view! {
        <section class="schedule-form-page">
            <h1>{heading}</h1>
            <p>
                <a href="/schedules">"← All schedules"</a>
            </p>
            {error}
            <form
                method="post"
                action=action
                class="schedule-form needs-admin"
                data-test-id="schedule-form"
            >
                <PostFields back="/schedules" />
                {id_field}
                <label>
                    "Queue "
                    <input
                        type="text"
                        name="queue"
                        required
                        maxlength="200"
                        value=form.queue.clone()
                        data-test-id="schedule-form-queue"
                    />
                </label>
                <label>
                    "Job name "
                    <input
                        type="text"
                        name="job_name"
                        required
                        maxlength="200"
                        value=form.job_name.clone()
                        data-test-id="schedule-form-job-name"
                    />
                </label>
                <label>
                    "Repeats " <select name="kind" data-test-id="schedule-form-kind">
                        {kind_option("cron", "on a cron expression")}
                        {kind_option("every", "at a fixed interval")}
                    </select>
                </label>
                <label>
                    "Cron expression "
                    <input
                        type="text"
                        name="expression"
                        maxlength="200"
                        placeholder="0 9 * * 1-5"
                        value=form.expression.clone()
                        data-test-id="schedule-form-expression"
                    />
                </label>
                <label>
                    "Time zone "
                    <input
                        type="text"
                        name="time_zone"
                        maxlength="64"
                        placeholder="Europe/Berlin"
                        value=form.time_zone.clone()
                        data-test-id="schedule-form-time-zone"
                    />
                </label>
                <label>
                    "Interval "
                    <input
                        type="text"
                        name="every"
                        maxlength="32"
                        placeholder="30s, 5m, 1h"
                        value=form.every.clone()
                        data-test-id="schedule-form-every"
                    />
                </label>
                <label>
                    "Starts (UTC) "
                    <input
                        type="text"
                        name="start_at"
                        maxlength="32"
                        placeholder="2026-12-24T09:00:00Z"
                        value=form.start_at.clone()
                        data-test-id="schedule-form-start"
                    />
                </label>
                <label>
                    "Ends (UTC) "
                    <input
                        type="text"
                        name="end_at"
                        maxlength="32"
                        placeholder="none"
                        value=form.end_at.clone()
                        data-test-id="schedule-form-end"
                    />
                </label>
                <label>
                    "At most this many runs "
                    <input
                        type="number"
                        min="1"
                        step="1"
                        name="limit"
                        value=form.limit.clone()
                        data-test-id="schedule-form-limit"
                    />
                </label>
                <label>
                    "Missed ticks " <select name="missed" data-test-id="schedule-form-missed">
                        {missed_option("skip", "skip them")}
                        {missed_option("catch-up-once", "catch up once")}
                    </select>
                </label>
                // Inputs, not textareas: leptos writes a textarea's
                // children raw (like a script's), so a template holding
                // `</textarea>` would end it; an attribute is escaped.
                <label class="wide">
                    "Job data (JSON) "
                    <input
                        type="text"
                        name="data"
                        value=form.data.clone()
                        spellcheck="false"
                        data-test-id="schedule-form-data"
                    />
                </label>
                <label class="wide">
                    "Job options (JSON) "
                    <input
                        type="text"
                        name="options"
                        value=form.options.clone()
                        spellcheck="false"
                        placeholder="{\"attempts\": 3}"
                        data-test-id="schedule-form-options"
                    />
                </label>
                <label>
                    <input
                        type="checkbox"
                        name="paused"
                        value="on"
                        checked=form.paused
                        data-test-id="schedule-form-paused"
                    />
                    " Paused"
                </label>
                <button type="submit" class="button primary" data-test-id="schedule-save">
                    "Save schedule"
                </button>
            </form>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    /// The HTML of one schedule's row.
    fn schedule_row<'a>(html: &'a str, id: &str) -> &'a str {
        element(
            html,
            &format!(r#"data-test-id="schedule-row-{id}""#),
            "</tr>",
        )
    }

    /// Where each form in `html` posts.
    fn actions(html: &str) -> Vec<String> {
        html.match_indices(r#"<form method="post" action=""#)
            .map(|(at, m)| {
                let rest = &html[at + m.len()..];
                rest[..rest.find('"').expect("end")].to_owned()
            })
            .collect()
    }

    #[test]
    fn schedules_page_is_a_full_live_document() {
        let html = render_schedules_page(&schedules_vm(), &signed_in("olga", "operator"));
        assert!(
            html.contains("<title>Schedules · Switchyard</title>"),
            "{html}"
        );
        assert!(
            html.contains(r#"data-live="/events/schedules?bull=mail""#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<a href="/schedules" aria-current="page" class="current">Schedules</a>"#
            ),
            "{html}"
        );
        assert!(html.contains("1 active · 1 paused · 1 finished"), "{html}");
    }

    #[test]
    fn each_status_offers_its_actions() {
        let html = render_schedules_page(&schedules_vm(), &signed_in("ada", "admin"));
        assert_eq!(
            actions(schedule_row(&html, "emails-digest")),
            [
                "/schedules/emails-digest/pause",
                "/schedules/emails-digest/run",
                "/schedules/emails-digest/remove"
            ]
        );
        assert_eq!(
            actions(schedule_row(&html, "webhooks-sweep")),
            [
                "/schedules/webhooks-sweep/resume",
                "/schedules/webhooks-sweep/run",
                "/schedules/webhooks-sweep/remove"
            ]
        );
        let finished = schedule_row(&html, "reports-once");
        assert_eq!(
            actions(finished),
            [
                "/schedules/reports-once/run",
                "/schedules/reports-once/remove"
            ]
        );
        assert!(finished.contains("3 of 3"), "{finished}");
        assert!(
            finished.contains("none: past its end or limit"),
            "{finished}"
        );
        // Remove is the admin's; the others the operator's.
        let remove = element(
            schedule_row(&html, "emails-digest"),
            r#"action="/schedules/emails-digest/remove""#,
            "</form>",
        );
        assert!(remove.contains("data-confirm"), "{remove}");
        let form_start = schedule_row(&html, "emails-digest");
        assert!(
            form_start.contains(r#"class="inline needs-admin""#),
            "{form_start}"
        );
        assert!(
            form_start.contains(r#"class="inline needs-operator""#),
            "{form_start}"
        );
    }

    #[test]
    fn next_runs_are_the_first_in_words_and_four_more() {
        let html = render_schedules_page(&schedules_vm(), &PAGE);
        let row = schedule_row(&html, "emails-digest");
        let next = element(row, r#"data-test-id="schedule-next""#, "</td>");
        // The first is 25 s after the page's now, kept current by the script.
        assert!(next.contains("data-in"), "{next}");
        assert!(next.contains("in 25 s"), "{next}");
        assert_eq!(next.matches("<li>").count(), 4, "{next}");
        assert!(
            row.contains(r#"href="/queues/emails/jobs/emails-digest%3A1""#),
            "{row}"
        );
    }

    #[test]
    fn a_viewer_is_shown_no_action() {
        let html = render_schedules_page(&schedules_vm(), &signed_in("vic", "viewer"));
        assert!(html.contains(r#"data-role="viewer""#), "{html}");
        assert!(
            html.contains(r#"<th scope="col" class="needs-operator">Actions</th>"#),
            "{html}"
        );
        let new = tag_with_test_id(&html, "schedule-new");
        assert!(new.contains("needs-admin"), "{new}");
    }

    #[test]
    fn the_fragments_are_the_regions_of_the_page() {
        for vm in [schedules_vm(), SchedulesVm::default()] {
            let html = render_schedules_page(&vm, &PAGE);
            let fragments = schedules_fragments(&vm);
            assert_eq!(
                fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
                ["schedules-summary", "schedules"]
            );
            for f in &fragments {
                assert!(html.contains(&f.html), "{} differs from the page", f.id);
            }
        }
    }

    #[test]
    fn empty_and_problem_states_say_why() {
        let html = render_schedules_page(&SchedulesVm::default(), &PAGE);
        assert!(html.contains(r#"data-test-id="empty-state""#), "{html}");
        let problem = SchedulesVm {
            problem: Some("connection refused".into()),
            ..SchedulesVm::default()
        };
        let html = render_schedules_page(&problem, &PAGE);
        assert!(
            html.contains("The schedules could not be read: connection refused"),
            "{html}"
        );
        assert!(
            !html.contains("schedule-counts"),
            "no zeros claimed: {html}"
        );
    }

    #[test]
    fn bull_schedulers_of_the_chosen_queue_with_their_actions() {
        let html = render_schedules_page(&schedules_vm(), &signed_in("ada", "admin"));
        let table = element(&html, r#"data-test-id="bull-schedulers-table""#, "</table>");
        assert_eq!(
            table
                .matches(r#"data-test-id="bull-scheduler-row""#)
                .count(),
            2
        );
        assert!(
            table.contains(r#"action="/bullmq/mail/schedulers/every-minute/run""#),
            "{table}"
        );
        // A legacy key's colons and spaces travel encoded.
        assert!(
            table.contains(
                "/bullmq/mail/schedulers/legacy%3A%3A%3A%3A%2A%2F5%20%2A%20%2A%20%2A%20%2A/remove"
            ),
            "{table}"
        );
        assert!(
            html.contains(r#"<option value="mail" selected>mail</option>"#),
            "{html}"
        );
    }

    #[test]
    fn hostile_text_is_escaped() {
        let mut vm = schedules_vm();
        vm.schedules[0].job_name = HOSTILE.into();
        if let Some(bull) = vm.bull.as_mut() {
            bull.rows[0].template = HOSTILE.into();
        }
        let html = render_schedules_page(&vm, &PAGE);
        assert!(!html.contains(HOSTILE), "{html}");
        let form = ScheduleFormVm {
            data: format!("</textarea>{HOSTILE}"),
            ..ScheduleFormVm::default()
        };
        let html = render_schedule_form_page(&form, &PAGE);
        assert!(!html.contains(HOSTILE), "{html}");
    }

    #[test]
    fn a_refused_form_keeps_what_was_typed_and_says_why() {
        let form = ScheduleFormVm {
            editing: Some("nightly".into()),
            id: "nightly".into(),
            queue: "reports".into(),
            kind: "every".into(),
            every: "5m".into(),
            missed: "catch-up-once".into(),
            data: r#"{"a":1}"#.into(),
            error: Some("the interval \"5 minutes\" is not like 30s".into()),
            ..ScheduleFormVm::default()
        };
        let html = render_schedule_form_page(&form, &admin_page());
        assert!(
            html.contains("<title>Edit nightly · Schedules · Switchyard</title>"),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/schedules/nightly/edit""#),
            "{html}"
        );
        assert!(html.contains("Not saved: the interval"), "{html}");
        assert!(
            html.contains(r#"<option value="every" selected>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<option value="catch-up-once" selected>"#),
            "{html}"
        );
        assert!(html.contains(r#"value="reports""#), "{html}");
        assert!(html.contains(r#"value="{&quot;a&quot;:1}""#), "{html}");
        // An edit keeps its id: it travels hidden, not as a field to change.
        assert!(
            html.contains(r#"<input type="hidden" name="id" value="nightly""#),
            "{html}"
        );
    }
}
