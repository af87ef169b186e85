//! One native queue's page (`/queues/<queue>`): its header with state
//! tabs, the retry-all progress, the search form and a page of jobs in one
//! state with their actions.

use leptos::prelude::*;

use super::overview::Chart;
use super::workers::{NoWorkersBadge, WorkersLink};
use crate::format::{counted, format_count, format_duration};
use crate::vm::queues::{
    BulkProgressVm, ChartRange, JobFilterVm, JobRow, LatencyVm, MAX_SELECTED, PercentilesVm,
    QueuePageVm, STATES, ThroughputVm,
};
use crate::vm::session::PageCtx;
use crate::widgets::chart::{BarChart, Series};
use crate::widgets::forms::{ActionForm, PostFields};
use crate::widgets::pager::Pager;
use crate::widgets::queue::{FailureBadge, PauseForm, StateTabs, Tab};
use crate::widgets::shell::{Fragment, Frame, Notice, Section, document, fragment};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::Moment;

/// One queue's page: header and tabs, retry progress, search, and a page
/// of jobs in one state. `now` (ms) is what ages are measured from.
pub fn render_queue_page(vm: &QueuePageVm, now: i64, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new(queue_title(&vm), Section::Queues).live(format!("/events{}", vm.url()));
    document(page, frame, move || {
        view! {
            <section class="queue">
                <p class="crumbs">
                    <a href="/queues">"Queues"</a>
                    " /"
                </p>
                <QueueHeader vm=vm.clone() />
                <Notice notice=vm.notice.clone() />
                <ProgressRegion progress=vm.progress.clone() />
                <SearchForm
                    queue=vm.queue.name.clone()
                    state=vm.state.clone()
                    filter=vm.filter.clone()
                />
                <JobsRegion vm=vm.clone() now=now />
                // After the jobs, so it never pushes them off the first
                // screen.
                <QueueChartRegion chart=vm.chart latency=vm.latency />
            </section>
        }
    })
}

/// The live regions of a queue's page.
pub fn queue_fragments(vm: &QueuePageVm, now: i64) -> Vec<Fragment> {
    vec![
        fragment("queue-header", view! { <QueueHeader vm=vm.clone() /> }),
        fragment(
            "progress",
            view! { <ProgressRegion progress=vm.progress.clone() /> },
        ),
        fragment("jobs", view! { <JobsRegion vm=vm.clone() now=now /> }),
        fragment(
            "queue-chart",
            view! { <QueueChartRegion chart=vm.chart.clone() latency=vm.latency.clone() /> },
        ),
    ]
}

/// The queue's last hour, completed and failed per finished minute, and
/// how long its jobs wait and run (finished minutes only, so it changes
/// once a minute); empty before the first.
#[component]
fn QueueChartRegion(chart: Option<ThroughputVm>, latency: Option<LatencyVm>) -> impl IntoView {
    view! {
        <div id="queue-chart" class="queue-chart" data-test-id="queue-chart">
            {chart
                .map(|chart| {
                    view! {
                        <Chart chart range=ChartRange::Hour title="Throughput, last hour" />
                    }
                })}
            <Latency latency />
        </div>
    }
}

/// One kind of time's row of the latency table.
#[component]
fn LatencyRow(kind: &'static str, p: PercentilesVm) -> impl IntoView {
    view! {
        <tr data-test-id=format!("latency-{}", kind.to_lowercase())>
            <th scope="row">{kind}</th>
            <td class="num" data-test-id="p50">
                {format_duration(p.p50 as i64)}
            </td>
            <td class="num" data-test-id="p95">
                {format_duration(p.p95 as i64)}
            </td>
            <td class="num" data-test-id="p99">
                {format_duration(p.p99 as i64)}
            </td>
            <td class="num" data-test-id="max">
                {format_duration(p.max as i64)}
            </td>
        </tr>
    }
}

/// Wait and run percentiles over the last finished minutes, and the
/// hour's p95 per minute; a note (`empty`, or what native workers do)
/// while there are none.
#[component]
pub(crate) fn Latency(
    latency: Option<LatencyVm>,
    #[prop(optional)] empty: Option<&'static str>,
) -> impl IntoView {
    let Some(latency) = latency else {
        let empty = empty.unwrap_or(
            "No wait or run times yet: workers report them for the attempts they finish, and each minute shows once it is over.",
        );
        return view! {
            <p class="muted" data-test-id="no-latency">
                {empty}
            </p>
        }
        .into_any();
    };
    let minutes: Vec<i64> = latency.points.iter().map(|p| p.0).collect();
    let series = vec![
        Series {
            class: "wait",
            noun: "ms p95 wait",
            values: latency.points.iter().map(|p| p.1).collect(),
        },
        Series {
            class: "run",
            noun: "ms p95 run",
            values: latency.points.iter().map(|p| p.2).collect(),
        },
    ];
    let label = format!(
        "p95 wait and p95 run per minute over the last hour, {} with attempts",
        counted(latency.points.len() as u64, "minute", "minutes")
    );
    let summary = format!(
        "Last {} · {}. Wait: from when a job could run (enqueued, its delay or the previous attempt over) to its start. Run: start to finish.",
        counted(latency.minutes as u64, "minute", "minutes"),
        counted(latency.attempts, "attempt", "attempts"),
    );
    let idle = latency.minutes == 0;
    view! {
        <section class="latency" data-test-id="queue-latency">
            <h2>"Wait and run times"</h2>
            <p class="muted" data-test-id="latency-summary">
                {if idle {
                    "No attempt finished in the last 5 minutes; the chart shows the hour's busy minutes.".to_owned()
                } else {
                    summary
                }}
            </p>
            <div
                class="table-wrap"
                tabindex="0"
                role="region"
                aria-label="Wait and run times"
                hidden=idle
            >
                <table class="latency-table" data-test-id="latency-table">
                    <thead>
                        <tr>
                            <td></td>
                            <th scope="col" class="num">
                                "p50"
                            </th>
                            <th scope="col" class="num">
                                "p95"
                            </th>
                            <th scope="col" class="num">
                                "p99"
                            </th>
                            <th scope="col" class="num">
                                "Longest"
                            </th>
                        </tr>
                    </thead>
                    <tbody>
                        <LatencyRow kind="Wait" p=latency.wait />
                        <LatencyRow kind="Run" p=latency.run />
                    </tbody>
                </table>
            </div>
            <BarChart class="chart" test_id="latency-chart".to_string() minutes series label>
                <figcaption>
                    <strong>"p95 wait and run, last hour"</strong>
                    <span class="muted">
                        " (stacked: together about the time to finish)"
                    </span>
                </figcaption>
            </BarChart>
        </section>
    }
    .into_any()
}

/// The tab's title: the queue, and its failed jobs when there are any
/// ("reports · 34 failed · Switchyard"), so trouble shows from another
/// tab. The header region carries it (`data-title`) for the page script.
fn queue_title(vm: &QueuePageVm) -> String {
    match vm.queue.counts.failed {
        0 => format!("{} · Switchyard", vm.queue.name),
        n => format!(
            "{} · {} · Switchyard",
            vm.queue.name,
            counted(n, "failed", "failed")
        ),
    }
}

/// The queue's name, badges, queue-wide actions and state tabs (a region:
/// counts move while the page is open), and who takes its jobs.
#[component]
fn QueueHeader(vm: QueuePageVm) -> impl IntoView {
    let back = vm.url();
    let queue = vm.queue.clone();
    let name = queue.name.clone();
    let paused = queue.paused;
    let tabs = STATES
        .iter()
        .map(|&(state, label)| Tab {
            state,
            label,
            href: tab_href(&queue.name, state, &vm.filter),
            count: queue.count(state),
            kept_of: (state == "completed").then_some(queue.counts.completed_total),
        })
        .collect::<Vec<_>>();
    view! {
        <div id="queue-header" data-title=queue_title(&vm)>
            <h1>
                {name.clone()} " "
                <span
                    class=format!("badge {}", queue.health.class())
                    data-test-id="queue-health"
                    data-health="known"
                >
                    {queue.health.label()}
                </span>
                " "
                {paused
                    .then(|| {
                        view! {
                            <span class="badge paused" data-test-id="paused-badge">
                                "Paused"
                            </span>
                        }
                    })}
                <NoWorkersBadge
                    queue=name.clone()
                    workers=queue.workers
                    waiting=queue.counts.waiting
                />
            </h1>
            <div class="toolbar">
                <PauseForm queue_path=format!("/queues/{name}") paused back />
            </div>
            <StateTabs tabs selected=vm.state.clone() />
            <p class="muted">
                <a href=format!("/queues/{name}/retrying") data-test-id="retrying-link">
                    "Retrying: jobs waiting out a backoff after a failure"
                </a>
                " · "
                <a href=format!("/queues/{name}/errors") data-test-id="errors-link">
                    "Errors by group"
                </a>
                <WorkersLink queue=name.clone() workers=queue.workers />
            </p>
        </div>
    }
}

/// A state tab's link: the name and text filters travel with it (the
/// error group is the failed tab's alone).
fn tab_href(queue: &str, state: &str, filter: &JobFilterVm) -> String {
    let mut href = format!("/queues/{queue}?state={state}");
    if !filter.name.is_empty() {
        href.push_str(&format!(
            "&name={}",
            crate::format::encode_query(&filter.name)
        ));
    }
    if !filter.text.is_empty() {
        href.push_str(&format!("&q={}", crate::format::encode_query(&filter.text)));
    }
    href
}

/// Filter by name and text, and jump to a job by id. Not a live region:
/// it holds what the operator is typing.
#[component]
fn SearchForm(queue: String, state: String, filter: JobFilterVm) -> impl IntoView {
    let action = format!("/queues/{queue}");
    let find = format!("/queues/{queue}/find");
    let clear = format!("/queues/{queue}?state={state}");
    let active = filter.is_active();
    let group = (!filter.group.is_empty()).then(|| {
        let reason = filter
            .group_reason
            .clone()
            .unwrap_or_else(|| format!("group {}", filter.group));
        let without = format!("/queues/{queue}?state={state}");
        view! {
            <input type="hidden" name="group" value=filter.group.clone() />
            <p class="filter-group" data-test-id="filter-group">
                "Error group: "
                <code>{reason}</code>
                " "
                <a href=without>"Any error"</a>
                " · "
                <a href=format!("/queues/{queue}/errors")>"All groups"</a>
            </p>
        }
    });
    // On a phone the forms fold behind their summary (the page script
    // closes it there unless a filter is on), so jobs are on the first
    // screen; elsewhere the summary is hidden and the forms always show.
    view! {
        <details
            class="search-toggle"
            open
            data-test-id="search-toggle"
            data-active=active.to_string()
        >
            <summary class="button">
                {if active { "Filter (on) · find a job" } else { "Filter · find a job" }}
            </summary>
            <div class="search">
            <form method="get" action=action class="filter" data-test-id="filter-form">
                <input type="hidden" name="state" value=state />
                {group}
                <label>
                    "Name "
                    <input
                        type="search"
                        name="name"
                        value=filter.name
                        maxlength="200"
                        placeholder="any"
                        data-test-id="filter-name"
                    />
                </label>
                <label>
                    "Data or error contains "
                    <input
                        type="search"
                        name="q"
                        value=filter.text
                        maxlength="200"
                        placeholder="any"
                        data-test-id="filter-text"
                    />
                </label>
                <button type="submit" class="button">
                    "Filter"
                </button>
                {active.then(|| view! { <a href=clear>"Clear"</a> })}
            </form>
            <form method="get" action=find class="find" data-test-id="find-form">
                <label>
                    "Job id "
                    <input
                        type="search"
                        name="id"
                        required
                        maxlength="128"
                        data-test-id="find-id"
                    />
                </label>
                <button type="submit" class="button">
                    "Go"
                </button>
            </form>
            </div>
        </details>
    }
}

/// The progress of a bulk run: retry all, an error group's retry or
/// removal (a region, empty when none).
#[component]
pub(crate) fn ProgressRegion(progress: Option<BulkProgressVm>) -> impl IntoView {
    let body = progress.map(|p| {
        let (run, ran, ing) = if p.removes {
            ("Removing", "Removed", "The removal")
        } else {
            ("Retrying", "Retried", "The retry")
        };
        let subject = &p.subject;
        let text = match (&p.error, p.finished) {
            (Some(err), _) => format!(
                "{ing} of {subject} stopped after {} of {} jobs: {err}",
                format_count(p.done),
                format_count(p.total)
            ),
            (None, true) => format!("{ran} {} {subject}.", format_count(p.done)),
            (None, false) => format!(
                "{run} {subject}: {} of {}…",
                format_count(p.done),
                format_count(p.total)
            ),
        };
        let class = match (&p.error, p.finished) {
            (Some(_), _) => "progress error",
            (None, true) => "progress done",
            (None, false) => "progress running",
        };
        view! {
            <div
                class=class
                data-test-id="retry-progress"
                data-done=p.done.to_string()
                data-total=p.total.to_string()
                data-finished=p.finished.to_string()
            >
                <progress value=p.done.to_string() max=p.total.max(1).to_string()></progress>
                <span>{text}</span>
            </div>
        }
    });
    view! { <div id="progress">{body}</div> }
}

/// The jobs of the selected state, with the search note, the bulk actions
/// of the failed set, the table and the pager (a region).
#[component]
fn JobsRegion(vm: QueuePageVm, now: i64) -> impl IntoView {
    let failed = vm.state == "failed";
    let name = vm.queue.name.clone();
    let back = vm.url();
    let note = vm
        .search_note
        .clone()
        .map(|n| view! { <p class="muted" data-test-id="search-note">{n}</p> });
    let failed_count = vm.queue.counts.failed;
    let group_bulk = (failed && vm.filter.is_group_only() && vm.total > 0).then(|| {
        let n = format_count(vm.total);
        let jobs = if vm.total == 1 { "job" } else { "jobs" };
        let group_url = format!("/queues/{name}/errors/{}", vm.filter.group);
        view! {
            <div class="toolbar needs-operator">
                <ActionForm
                    action=format!("{group_url}/retry")
                    back=back.clone()
                    label_text=format!("Retry {n} matching")
                    class="primary"
                    test_id="retry-matching".to_string()
                    confirm=format!("Retry the {n} failed {jobs} of this error group?")
                />
                <ActionForm
                    action=format!("{group_url}/remove")
                    back=back.clone()
                    label_text=format!("Remove {n} matching")
                    class="danger"
                    test_id="remove-matching".to_string()
                    confirm=format!("Remove the {n} failed {jobs} of this error group? This cannot be undone.")
                />
            </div>
        }
    });
    // A name or text filter: the buttons act on exactly what it matches,
    // read again by the server at the click.
    let filtered = vm.filter.is_active() && !vm.filter.is_group_only();
    let matching_bulk = (filtered && vm.total > 0 && vm.state != "active").then(|| {
        let n = format_count(vm.total);
        let jobs = if vm.total == 1 { "job" } else { "jobs" };
        let fields = vec![
            ("state", vm.state.clone()),
            ("name", vm.filter.name.clone()),
            ("q", vm.filter.text.clone()),
            ("group", vm.filter.group.clone()),
        ];
        let scope = match &vm.search_note {
            Some(note) if note.starts_with("Searched the newest") => " (of the jobs searched)",
            _ => "",
        };
        let retry = failed.then(|| {
            view! {
                <ActionForm
                    action=format!("/queues/{name}/retry-matching")
                    back=back.clone()
                    label_text=format!("Retry {n} matching")
                    class="primary"
                    test_id="retry-matching".to_string()
                    confirm=format!("Retry the {n} failed {jobs} matching the filter{scope}?")
                    fields=fields.clone()
                />
            }
        });
        view! {
            <div class="toolbar needs-operator">
                {retry}
                <ActionForm
                    action=format!("/queues/{name}/remove-matching")
                    back=back.clone()
                    label_text=format!("Remove {n} matching")
                    class="danger"
                    test_id="remove-matching".to_string()
                    confirm=format!(
                        "Remove the {n} {} {jobs} matching the filter{scope}? This cannot be undone.",
                        vm.state
                    )
                    fields=fields
                />
            </div>
        }
    });
    // Ticks belong to this form wherever their row is; the page script
    // keeps them by job id across live updates and pages, and posts the
    // ones not on screen as hidden fields.
    let selection = (failed && !vm.jobs.is_empty()).then(|| {
        view! {
            <form
                id="selection"
                method="post"
                action=format!("/queues/{name}/retry-selected")
                class="inline selection"
                data-selection=""
                data-max=MAX_SELECTED.to_string()
            >
                <PostFields back=back.clone() />
                <button type="submit" class="button" data-test-id="retry-selected">
                    "Retry selected"
                </button>
                <span class="selection-bar" data-test-id="selection-bar" role="status" hidden>
                    <span data-test-id="selection-count"></span>
                    " "
                    <button
                        type="button"
                        class="button"
                        data-selection-clear=""
                        data-test-id="selection-clear"
                    >
                        "Clear"
                    </button>
                </span>
            </form>
        }
    });
    let retry_all = (failed && failed_count > 0 && !vm.filter.is_active()).then(|| {
        let all_label = format!(
            "Retry all {}?",
            counted(failed_count, "failed job", "failed jobs")
        );
        view! {
            <ActionForm
                action=format!("/queues/{name}/retry-failed")
                back=back.clone()
                label="Retry all failed"
                class="primary"
                test_id="retry-all".to_string()
                confirm=all_label
            />
        }
    });
    let bulk = (selection.is_some() || retry_all.is_some()).then(|| {
        view! { <div class="toolbar needs-operator">{selection} {retry_all}</div> }
    });
    let table = if vm.jobs.is_empty() {
        let text = if vm.filter.is_active() {
            format!("No {} jobs match the filter.", vm.state)
        } else {
            format!("No {} jobs.", vm.state)
        };
        view! {
            <Empty test_id="empty-jobs">
                {text}
            </Empty>
        }
        .into_any()
    } else {
        view! { <JobsTable vm=vm.clone() now=now /> }.into_any()
    };
    view! {
        <div id="jobs">
            {note}
            {(failed && failed_count > 0 && vm.filter.group.is_empty())
                .then(|| {
                    view! {
                        <p class="muted">
                            <a
                                href=format!("/queues/{name}/errors")
                                data-test-id="error-groups-link"
                            >
                                "Group the failed jobs by error"
                            </a>
                        </p>
                    }
                })}
            {group_bulk}
            {matching_bulk}
            {bulk}
            {table}
            <Pager
                offset=vm.offset
                shown=vm.jobs.len() as u64
                total=vm.total
                limit=vm.limit
                href=move |offset| vm.url_with_offset(offset)
                test_id="pager"
                ids="page"
            />
        </div>
    }
}

/// The table itself: failed jobs show their error and when they failed,
/// the other states their data, priority and age.
#[component]
fn JobsTable(vm: QueuePageVm, now: i64) -> impl IntoView {
    let failed = vm.state == "failed";
    let queue = vm.queue.name.clone();
    let state = vm.state.clone();
    let back = vm.url();
    let head = if failed {
        view! {
            <tr>
                <th scope="col" class="pick">
                    <input type="checkbox" data-select-all="selection" aria-label="Select all" />
                </th>
                <th scope="col">"Id"</th>
                <th scope="col">"Name"</th>
                <th scope="col">"Failed reason"</th>
                <th scope="col" class="num">
                    "Attempts"
                </th>
                <th scope="col">"Failed"</th>
                <th scope="col">"Actions"</th>
            </tr>
        }
        .into_any()
    } else {
        // Completed jobs, newest finished first (the order both backends
        // keep), say when each finished and how long its last attempt ran;
        // the others their priority and when they were enqueued.
        let (figure, moment) = if vm.state == "completed" {
            (
                "Took",
                view! { <th scope="col" aria-sort="descending">"Finished"</th> }.into_any(),
            )
        } else {
            (
                "Priority",
                view! { <th scope="col">"Enqueued"</th> }.into_any(),
            )
        };
        view! {
            <tr>
                <th scope="col">"Id"</th>
                <th scope="col">"Name"</th>
                <th scope="col">"Data"</th>
                <th scope="col" class="num">
                    "Attempts"
                </th>
                <th scope="col" class="num">
                    {figure}
                </th>
                {moment}
                <th scope="col">"Actions"</th>
            </tr>
        }
        .into_any()
    };
    let rows = vm
        .jobs
        .into_iter()
        .map(|job| {
            view! { <JobTableRow job queue=queue.clone() state=state.clone() back=back.clone() now /> }
        })
        .collect_view();
    view! {
        <Table class=format!("jobs {}", vm.state) test_id="jobs-table" head>
            {rows}
        </Table>
    }
}

#[component]
fn JobTableRow(job: JobRow, queue: String, state: String, back: String, now: i64) -> impl IntoView {
    let job_href = format!("/queues/{queue}/jobs/{}", job.id);
    let truncated_href = job_href.clone();
    let action = |verb: &str| format!("/queues/{queue}/jobs/{}/{verb}", job.id);
    let remove = (state != "active").then(|| {
        view! {
            <ActionForm
                action=action("remove")
                back=back.clone()
                label="Remove"
                class="danger"
                test_id="remove-job".to_string()
                confirm=format!("Remove job {}?", job.id)
            />
        }
    });
    let attempts = format!("{}/{}", job.attempts_made, job.attempts);
    let name_title = job.name.clone();
    let reason_title = job.failed_reason.clone().unwrap_or_default();
    let data_title = job.data_preview.clone();
    let id_cell = view! {
        <td>
            <a href=job_href data-test-id="job-link">
                <code>{job.id.clone()}</code>
            </a>
        </td>
    };
    if state == "failed" {
        let failed_at = job.finished_at.unwrap_or(job.created_at);
        view! {
            <tr data-test-id=format!("job-row-{}", job.id)>
                <td class="pick">
                    <input
                        type="checkbox"
                        name="id"
                        value=job.id.clone()
                        form="selection"
                        aria-label=format!("Select job {}", job.id)
                        data-test-id="select-job"
                    />
                </td>
                {id_cell}
                <td class="name" data-test-id="job-name" title=name_title.clone()>
                    {job.name}
                </td>
                <td
                    class="error-text"
                    data-test-id="failed-reason"
                    title=reason_title
                >
                    {job.failed_reason.unwrap_or_default()}
                </td>
                <td class="num">
                    {attempts}
                    <FailureBadge kind=job.failure.clone() />
                </td>
                <td>
                    <Moment at=failed_at now=now />
                </td>
                <td class="actions">
                    <ActionForm
                        action=action("retry")
                        back=back.clone()
                        label="Retry"
                        class="primary"
                        test_id="retry-job".to_string()
                    />
                    {remove}
                </td>
            </tr>
        }
        .into_any()
    } else {
        let promote = (state == "delayed").then(|| {
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
                {id_cell}
                <td class="name" data-test-id="job-name" title=name_title.clone()>
                    {job.name}
                </td>
                <td>
                    {job
                        .retrying
                        .then(|| {
                            let error = job.failed_reason.clone().unwrap_or_default();
                            let title = error.clone();
                            view! {
                                <div class="error-text" data-test-id="last-error" title=title>
                                    <span class="badge retrying">"retrying"</span>
                                    " last error: "
                                    {error}
                                </div>
                            }
                        })}
                    <code class="data" data-test-id="job-data" title=data_title>
                        {job.data_preview}
                    </code>
                    {job
                        .truncated
                        .map(|what| {
                            view! {
                                " "
                                <a
                                    class="truncated muted"
                                    href=truncated_href.clone()
                                    data-test-id="job-truncated"
                                >
                                    {format!("truncated: {what} — open the job")}
                                </a>
                            }
                        })}
                </td>
                <td class="num">{attempts}</td>
                {if state == "completed" {
                    let took = job
                        .processed_at
                        .zip(job.finished_at)
                        .map(|(start, end)| format_duration(end - start))
                        .unwrap_or_else(|| "–".into());
                    view! {
                        <td class="num" data-test-id="job-took">{took}</td>
                        <td data-test-id="job-finished">
                            <Moment at=job.finished_at.unwrap_or(job.created_at) now=now />
                        </td>
                    }
                        .into_any()
                } else {
                    view! {
                        <td class="num">{job.priority}</td>
                        <td>
                            <Moment at=job.created_at now=now />
                        </td>
                    }
                        .into_any()
                }}
                <td class="actions">{promote} {remove}</td>
            </tr>
        }
        .into_any()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn the_queue_page_shows_wait_and_run_percentiles_and_their_chart() {
        let none = render_queue_page(&failed_page(), 10_000, &PAGE);
        assert!(none.contains(r#"data-test-id="no-latency""#), "{none}");
        let vm = QueuePageVm {
            latency: Some(LatencyVm {
                minutes: 5,
                attempts: 1_234,
                wait: PercentilesVm {
                    p50: 120,
                    p95: 1_500,
                    p99: 4_200,
                    max: 9_000,
                },
                run: PercentilesVm {
                    p50: 40,
                    p95: 80,
                    p99: 95,
                    max: 300,
                },
                points: vec![(60_000, 1_500, 80), (120_000, 900, 70)],
            }),
            ..failed_page()
        };
        let html = render_queue_page(&vm, 10_000, &PAGE);
        assert!(!html.contains(r#"data-test-id="no-latency""#), "{html}");
        assert!(html.contains("Last 5 minutes · 1,234 attempts."), "{html}");
        let wait = element(&html, r#"data-test-id="latency-wait""#, "</tr>");
        for cell in [">120 ms<", ">1.5 s<", ">4.2 s<", ">9.0 s<"] {
            assert!(wait.contains(cell), "{cell}: {wait}");
        }
        let run = element(&html, r#"data-test-id="latency-run""#, "</tr>");
        assert!(run.contains(">80 ms<"), "{run}");
        let chart = element(&html, r#"data-test-id="latency-chart""#, "</figure>");
        assert_eq!(chart.matches("<g>").count(), 2, "{chart}");
        assert!(
            chart.contains("1,500 ms p95 wait, 80 ms p95 run"),
            "{chart}"
        );
        // The live region carries the same.
        let fragments = queue_fragments(&vm, 10_000);
        let region = fragments.iter().find(|f| f.id == "queue-chart").unwrap();
        assert!(region.html.contains(r#"data-test-id="latency-table""#));
    }

    #[test]
    fn queue_rows_show_the_wait_p95_once_any_queue_has_one() {
        let plain = render_queues_page(&queues_vm(vec![row("emails", 0, false)], true), &PAGE);
        assert!(!plain.contains("Wait p95"), "{plain}");
        let mut waited = row("emails", 0, false);
        waited.wait_p95_ms = Some(2_500);
        let html = render_queues_page(
            &queues_vm(vec![waited, row("reports", 0, false)], true),
            &PAGE,
        );
        assert!(html.contains("Wait p95"), "{html}");
        let emails = element(&html, r#"data-test-id="queue-row-emails""#, "</tr>");
        assert!(
            emails.contains(r#"data-test-id="wait-p95" class="num">2.5 s<"#),
            "{emails}"
        );
        let reports = element(&html, r#"data-test-id="queue-row-reports""#, "</tr>");
        assert!(
            reports.contains(r#"data-test-id="wait-p95" class="num">–<"#),
            "{reports}"
        );
    }

    #[test]
    fn completed_jobs_show_when_they_finished_and_how_long_they_took_and_the_queue_its_hour() {
        let mut job = failed_job("9");
        job.failed_reason = None;
        job.failure = None;
        let vm = QueuePageVm {
            state: "completed".into(),
            jobs: vec![job],
            total: 1,
            chart: Some(ThroughputVm {
                queue: "emails".into(),
                points: vec![MinutePoint {
                    minute_ms: 60_000,
                    completed: 3,
                    failed: 1,
                }],
            }),
            ..failed_page()
        };
        let html = render_queue_page(&vm, 10_000, &PAGE);
        assert!(
            html.contains(r#"<th scope="col" aria-sort="descending">Finished</th>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="job-took" class="num">4.0 s<"#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="job-finished"><time datetime="1970-01-01T00:00:06Z""#),
            "{html}"
        );
        assert!(!html.contains(">Enqueued<"), "{html}");
        // The hour's chart, below the jobs, captioned for this page.
        let chart = html.find(r#"id="queue-chart""#).expect("chart region");
        assert!(chart > html.find(r#"id="jobs""#).expect("jobs"), "{html}");
        assert!(
            html[chart..].contains("<strong>Throughput, last hour</strong>"),
            "{html}"
        );
        assert!(html[chart..].contains("3 completed · 1 failed"), "{html}");
        let ids: Vec<_> = queue_fragments(&vm, 10_000).iter().map(|f| f.id).collect();
        assert!(ids.contains(&"queue-chart"), "{ids:?}");
    }

    #[test]
    fn failed_table_has_row_and_bulk_actions_and_escapes_text() {
        let vm = failed_page();
        let html = render_queue_page(&vm, 10_000, &PAGE);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;boom&lt;/b&gt;"), "{html}");
        assert!(html.contains("emails · 1 failed · Switchyard"), "{html}");
        assert!(html.contains("1–1 of 1"), "{html}");
        assert!(
            html.contains(r#"action="/queues/emails/jobs/7/retry""#),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/queues/emails/jobs/7/remove""#),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/queues/emails/retry-selected""#),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/queues/emails/retry-failed""#),
            "{html}"
        );
        assert!(html.contains(r#"form="selection""#), "{html}");
        assert!(
            html.contains(r#"name="back" value="/queues/emails?state=failed&amp;limit=50""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-live="/events/queues/emails?state=failed&amp;limit=50""#),
            "{html}"
        );
        assert!(html.contains("4 s ago"), "failed 4 s before now: {html}");
        assert!(
            !html.contains("http-equiv"),
            "a page with a selection must not reload itself: {html}"
        );
        for f in queue_fragments(&vm, 10_000) {
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn pager_reaches_both_ends_of_a_million_jobs() {
        let mut vm = failed_page();
        vm.total = 1_000_000;
        vm.offset = 500;
        let html = render_queue_page(&vm, 0, &PAGE);
        assert!(html.contains("501–501 of 1,000,000"), "{html}");
        assert!(
            html.contains("limit=50&amp;offset=999950"),
            "oldest page: {html}"
        );
        assert!(
            html.contains("limit=50&amp;offset=450"),
            "newer page: {html}"
        );
        assert!(
            html.contains("limit=50&amp;offset=501"),
            "older page: {html}"
        );
        assert!(html.contains(r#"data-test-id="page-newest""#), "{html}");
    }

    #[test]
    fn progress_reads_running_then_done() {
        let mut vm = failed_page();
        vm.progress = Some(BulkProgressVm {
            subject: "failed jobs".into(),
            removes: false,
            done: 1_500,
            total: 10_000,
            finished: false,
            error: None,
        });
        let html = render_queue_page(&vm, 0, &PAGE);
        assert!(
            html.contains("Retrying failed jobs: 1,500 of 10,000…"),
            "{html}"
        );
        vm.progress = Some(BulkProgressVm {
            subject: "failed jobs of the group “card declined for order #”".into(),
            removes: true,
            done: 10_000,
            total: 10_000,
            finished: true,
            error: None,
        });
        let frags = queue_fragments(&vm, 0);
        let progress = frags.iter().find(|f| f.id == "progress").expect("region");
        assert!(
            progress
                .html
                .contains("Removed 10,000 failed jobs of the group “card declined for order #”."),
            "{}",
            progress.html
        );
        assert!(
            progress.html.contains(r#"data-finished="true""#),
            "{}",
            progress.html
        );
    }

    #[test]
    fn filtered_empty_page_says_nothing_matched_and_keeps_the_filter() {
        let mut vm = failed_page();
        vm.jobs.clear();
        vm.total = 0;
        vm.filter = JobFilterVm {
            name: "x\"><script>".into(),
            ..JobFilterVm::default()
        };
        vm.search_note = Some("Searched all 1 failed jobs: 0 match.".into());
        let html = render_queue_page(&vm, 0, &PAGE);
        assert!(html.contains("No failed jobs match the filter."), "{html}");
        assert!(html.contains("Searched all 1 failed jobs"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("name=x%22%3E%3Cscript%3E"), "{html}");
    }
}
