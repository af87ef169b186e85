//! The error-group pages: `/errors` (every queue) and
//! `/queues/{queue}/errors` (one queue, with the actions on a whole group).
//! Live: the group list and a running group action follow the queue(s).

use leptos::prelude::*;

use crate::format::format_count;
use crate::pages::queue::ProgressRegion;
use crate::vm::errors::{ErrorGroupRow, ErrorsVm, GROUP_SORTS};
use crate::vm::session::PageCtx;
use crate::widgets::forms::ActionForm;
use crate::widgets::pager::Pager;
use crate::widgets::shell::{Fragment, Frame, Region, Section, document, fragment};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::Moment;

/// The stream a page listens to, its query kept.
fn events_url(vm: &ErrorsVm) -> String {
    let page = vm.url_at(vm.offset);
    format!("/events{}", page)
}

/// An error-group page: its heading, order, coverage, progress and groups.
pub fn render_errors_page(vm: &ErrorsVm, now: i64, page: &PageCtx) -> String {
    let vm = vm.clone();
    let title = match &vm.queue {
        Some(queue) => format!("Errors of {queue} · Switchyard"),
        None => "Errors · Switchyard".to_owned(),
    };
    let live = events_url(&vm);
    document(
        page,
        Frame::new(title, Section::Errors).live(live),
        move || {
            let heading = match &vm.queue {
                Some(queue) => view! {
                    <h1>
                        {if vm.bullmq { "Errors of BullMQ queue " } else { "Errors of " }}
                        <a href=vm.queue_path(queue)>{queue.clone()}</a>
                    </h1>
                    <p class="muted">
                        <a href=format!("{}?state=failed", vm.queue_path(queue))>"Failed jobs"</a>
                        " · "
                        <a href="/errors">"Errors of every queue"</a>
                    </p>
                }
                .into_any(),
                None => view! {
                    <h1>"Errors"</h1>
                    <p class="muted">
                        "Failed jobs of every queue, grouped by what went wrong: numbers, ids, hex, quoted values and times are folded, so one cause is one row."
                    </p>
                }
                .into_any(),
            };
            view! {
                <section class="errors-page">
                    {heading}
                    {vm.notice.clone().map(|n| view! { <p class="notice" role="status" data-test-id="notice">{n}</p> })}
                    <SortForm vm=vm.clone() />
                    <ProgressRegion progress=vm.progress.clone() />
                    <GroupsRegion vm=vm.clone() now=now />
                </section>
            }
        },
    )
}

/// The live regions of an error-group page.
pub fn errors_fragments(vm: &ErrorsVm, now: i64) -> Vec<Fragment> {
    let vm = vm.clone();
    vec![
        fragment(
            "progress",
            view! { <ProgressRegion progress=vm.progress.clone() /> },
        ),
        fragment("error-groups", view! { <GroupsRegion vm=vm now=now /> }),
    ]
}

/// The order of the list: a GET, so an ordered view is a link.
#[component]
fn SortForm(vm: ErrorsVm) -> impl IntoView {
    let options = GROUP_SORTS
        .into_iter()
        .map(|(value, label)| {
            view! {
                <option value=value selected=value == vm.sort>
                    {label}
                </option>
            }
        })
        .collect_view();
    view! {
        <form method="get" action=vm.path() class="filter" data-test-id="errors-sort">
            <label>
                "Order "
                <select name="sort" data-test-id="errors-sort-select">
                    {options}
                </select>
            </label>
            <input type="hidden" name="limit" value=vm.limit.to_string() />
            <button type="submit" class="button">
                "Show"
            </button>
        </form>
    }
}

/// The groups: what the list covers, the table and the pager (a region).
#[component]
fn GroupsRegion(vm: ErrorsVm, now: i64) -> impl IntoView {
    let coverage = vm
        .coverage
        .iter()
        .map(|line| view! { <p class="search-note" data-test-id="errors-coverage">{line.clone()}</p> })
        .collect_view();
    let summary = (vm.total > 0).then(|| {
        let text = format!(
            "{} failed {} in {} {}.",
            format_count(vm.failed),
            if vm.failed == 1 { "job" } else { "jobs" },
            format_count(vm.total),
            if vm.total == 1 { "group" } else { "groups" }
        );
        view! { <p data-test-id="errors-summary">{text}</p> }
    });
    let body = if vm.groups.is_empty() {
        let text = if vm.offset > 0 && vm.total > 0 {
            "No group on this page."
        } else if vm.queue.is_some() {
            "No failed job: nothing to group. Jobs that fail for good show here, grouped by reason."
        } else {
            "No queue has a failed job: nothing to group."
        };
        view! {
            <Empty test_id="errors-empty">
                {text}
            </Empty>
        }
        .into_any()
    } else {
        let per_queue = vm.queue.is_some();
        let rows = vm
            .groups
            .iter()
            .cloned()
            .map(|group| view! { <GroupRow group vm=vm.clone() now=now /> })
            .collect_view();
        view! {
            <Table
                class="errors"
                test_id="errors-table"
                head={view! {
                    <tr>
                        <th scope="col">"Error"</th>
                        <th scope="col" class="num">"Failed"</th>
                        <th scope="col">"Last hour"</th>
                        <th scope="col">"First seen"</th>
                        <th scope="col">"Last seen"</th>
                        <th scope="col">"Job names"</th>
                        <th scope="col">{if per_queue { "Actions" } else { "Queues" }}</th>
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
                shown=vm.groups.len() as u64
                total=vm.total
                limit=vm.limit
                href=move |offset| vm.url_at(offset)
                test_id="errors-pager"
                ids="errors"
            />
        }
    });
    view! {
        <Region id="error-groups">
            {summary}
            {coverage}
            {body}
            {pager}
        </Region>
    }
}

/// One group: its reason with the newest sample, counts, trend, names and
/// (on a queue's page) the actions on all its jobs.
#[component]
fn GroupRow(group: ErrorGroupRow, vm: ErrorsVm, now: i64) -> impl IntoView {
    let (sample_queue, sample_id) = group.sample_job.clone();
    let sample_href = group.sample_href.clone();
    let names = group
        .names
        .iter()
        .map(|(name, n)| format!("{name} ({})", format_count(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    let names = if group.more_names > 0 {
        format!("{names} and {} more", format_count(group.more_names))
    } else {
        names
    };
    let last = vm.actions_cell(&group);
    view! {
        <tr
            id=format!("group-{}", group.id)
            data-test-id="error-group"
            data-group=group.id.clone()
            data-failed=group.failed.to_string()
        >
            <td class="reason">
                <code data-test-id="error-group-reason">{group.reason.clone()}</code>
                <div class="muted">
                    "e.g. "
                    <a href=sample_href data-test-id="error-group-sample">
                        {format!("job {sample_id}")}
                    </a>
                    {vm.queue.is_none().then(|| format!(" in {sample_queue}"))}
                    ": "
                    <span class="sample">{group.sample_reason.clone()}</span>
                </div>
            </td>
            <td class="num" data-test-id="error-group-failed">{format_count(group.failed)}</td>
            <td>
                <Trend trend=group.trend.clone() />
            </td>
            <td>
                <Moment at=group.first_seen now=now />
            </td>
            <td>
                <Moment at=group.last_seen now=now />
            </td>
            <td data-test-id="error-group-names">{names}</td>
            <td>{last}</td>
        </tr>
    }
}

/// A group's last hour as twelve bars of five minutes (SVG: the page's
/// policy allows no style attributes), with the total in words for those
/// who cannot see the bars.
#[component]
fn Trend(trend: Vec<u32>) -> impl IntoView {
    const HEIGHT: u64 = 16;
    const BAR: usize = 5;
    let total: u64 = trend.iter().map(|&n| u64::from(n)).sum();
    let peak = u64::from(trend.iter().copied().max().unwrap_or(0).max(1));
    let bars = trend
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let h = (u64::from(n) * HEIGHT).div_ceil(peak);
            view! {
                <rect
                    x=(i * BAR).to_string()
                    y=(HEIGHT - h).to_string()
                    width=(BAR - 1).to_string()
                    height=h.to_string()
                ></rect>
            }
        })
        .collect_view();
    let width = (trend.len() * BAR).max(1);
    view! {
        <span class="trend" data-test-id="error-group-trend" data-total=total.to_string()>
            <svg
                class="bars"
                aria-hidden="true"
                width=width.to_string()
                height=HEIGHT.to_string()
                viewBox=format!("0 0 {width} {HEIGHT}")
            >
                {bars}
            </svg>
            <span class="trend-total">{format_count(total)}</span>
        </span>
    }
}

impl ErrorsVm {
    /// The last cell of a group's row: on a queue's page, its jobs and the
    /// actions on all of them; on the all-queues page, where it occurs.
    fn actions_cell(&self, group: &ErrorGroupRow) -> AnyView {
        match &self.queue {
            Some(queue) => {
                let n = format_count(group.failed);
                let jobs = if group.failed == 1 { "job" } else { "jobs" };
                view! {
                    <a href=self.group_jobs(queue, &group.id) data-test-id="error-group-jobs">
                        "View jobs"
                    </a>
                    <ActionForm
                        action=self.action_url(&group.id, "retry")
                        back=self.url_at(self.offset)
                        label="Retry group"
                        class="primary"
                        test_id="error-group-retry".to_owned()
                        confirm=format!("Retry the {n} failed {jobs} of this group?")
                    />
                    <ActionForm
                        action=self.action_url(&group.id, "remove")
                        back=self.url_at(self.offset)
                        label="Remove group"
                        class="danger"
                        test_id="error-group-remove".to_owned()
                        confirm=format!("Remove the {n} failed {jobs} of this group? This cannot be undone.")
                    />
                }
                .into_any()
            }
            None => {
                let links = group
                    .queues
                    .iter()
                    .map(|q| {
                        view! {
                            <li>
                                <a
                                    href=format!("{}#group-{}", q.href, group.id)
                                    data-test-id="error-group-queue"
                                >
                                    {q.queue.clone()}
                                </a>
                                {q.bullmq.then_some(" (BullMQ)")}
                                {format!(" ({})", format_count(q.failed))}
                            </li>
                        }
                    })
                    .collect_view();
                let more = (group.more_queues > 0).then(
                    || view! { <li>{format!("and {} more", format_count(group.more_queues))}</li> },
                );
                view! {
                    <ul class="plain">
                        {links}
                        {more}
                    </ul>
                }
                .into_any()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::PAGE;
    use crate::vm::queues::BulkProgressVm;

    fn group(id: &str, reason: &str, failed: u64) -> ErrorGroupRow {
        ErrorGroupRow {
            id: id.into(),
            reason: reason.into(),
            sample_reason: format!("{reason} (sample)"),
            sample_job: ("payments".into(), "42".into()),
            sample_href: "/queues/payments/jobs/42".into(),
            failed,
            first_seen: 1_000,
            last_seen: 2_000,
            names: vec![("charge".into(), failed)],
            more_names: 2,
            trend: vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3],
            queues: Vec::new(),
            more_queues: 0,
        }
    }

    fn queue_page() -> ErrorsVm {
        ErrorsVm {
            queue: Some("payments".into()),
            groups: vec![
                group("00000000000000aa", "card declined for order #", 7),
                group("00000000000000bb", "<script>alert(1)</script>", 2),
            ],
            total: 2,
            offset: 0,
            limit: 50,
            sort: "failed".into(),
            failed: 9,
            ..ErrorsVm::default()
        }
    }

    #[test]
    fn a_queue_page_lists_groups_with_actions_and_escapes_reasons() {
        let vm = queue_page();
        let html = render_errors_page(&vm, 10_000, &PAGE);
        assert_eq!(html.matches(r#"data-test-id="error-group""#).count(), 2);
        assert!(html.contains("9 failed jobs in 2 groups."), "{html}");
        assert!(!html.contains("<script>alert(1)"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/queues/payments/errors/00000000000000aa/retry""#),
            "{html}"
        );
        assert!(
            html.contains("Retry the 7 failed jobs of this group?"),
            "{html}"
        );
        assert!(html.contains("charge (7) and 2 more"), "{html}");
        assert!(html.contains(r#"data-total="6""#), "trend total: {html}");
        assert!(
            html.contains("/queues/payments?state=failed&amp;group=00000000000000aa"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/queues/payments/errors?sort=failed"#));
        for f in errors_fragments(&vm, 10_000) {
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn empty_and_every_queue_pages_say_what_they_show() {
        let mut vm = ErrorsVm {
            limit: 50,
            sort: "recent".into(),
            ..ErrorsVm::default()
        };
        let html = render_errors_page(&vm, 0, &PAGE);
        assert!(html.contains("No queue has a failed job"), "{html}");
        vm.groups = vec![ErrorGroupRow {
            queues: vec![crate::vm::errors::GroupQueueVm {
                queue: "refunds".into(),
                href: "/queues/refunds/errors".into(),
                bullmq: false,
                failed: 3,
            }],
            more_queues: 4,
            ..group("00000000000000cc", "timeout after # ms", 3)
        }];
        vm.total = 1;
        vm.coverage = vec!["Read the 100 queues with the most failed jobs of 250 with any.".into()];
        let html = render_errors_page(&vm, 0, &PAGE);
        assert!(
            html.contains("/queues/refunds/errors#group-00000000000000cc"),
            "{html}"
        );
        assert!(html.contains("and 4 more"), "{html}");
        assert!(html.contains("Read the 100 queues"), "{html}");
        assert!(
            !html.contains("error-group-retry"),
            "no actions across queues: {html}"
        );
        vm.progress = Some(BulkProgressVm {
            subject: "failed jobs".into(),
            done: 1,
            total: 2,
            ..BulkProgressVm::default()
        });
        assert!(render_errors_page(&vm, 0, &PAGE).contains("Retrying failed jobs: 1 of 2…"));
    }
}
