//! The Audit page (`/audit`): the filter form, the log's table and its
//! pager.
//!
//! Not live: a log is read, filtered and paged, and rows arriving while an
//! operator reads would move what they are looking at. Everything shown
//! comes from requests (queue names, keys, rule names, backend errors) and
//! is only ever text and attribute values, which leptos escapes.

use leptos::prelude::*;

use crate::vm::audit::{AuditFilterVm, AuditRow, AuditVm};
use crate::vm::session::PageCtx;
use crate::widgets::pager::Pager;
use crate::widgets::shell::{Frame, Region, Section, document};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::At;

/// The Audit page (`/audit`): who did what to which queue, job, key or
/// alert, and how it ended, filtered and paged.
pub fn render_audit_page(vm: &AuditVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    document(
        page,
        Frame::new("Audit · Switchyard", Section::Audit),
        move || {
            view! {
                <section class="audit-page">
                    <h1>"Audit"</h1>
                    {(vm.lost > 0)
                        .then(|| {
                            let text = format!(
                                "{} audit {} could not be written since this server started (its database refused them or fell too far behind); the server log names each action.",
                                crate::format::format_count(vm.lost),
                                if vm.lost == 1 { "entry" } else { "entries" },
                            );
                            view! {
                                <p class="warnings" role="alert" data-test-id="audit-lost">
                                    {text}
                                </p>
                            }
                        })}
                    <AuditFilterForm
                        filter=vm.filter.clone()
                        actions=vm.actions.clone()
                        limit=vm.limit
                    />
                    <AuditRegion vm=vm />
                </section>
            }
        },
    )
}

/// The outcomes an entry can have, as (value, label), for the filter.
const OUTCOMES: [(&str, &str); 3] = [("ok", "Ok"), ("refused", "Refused"), ("failed", "Failed")];

/// The outcome in words, for its badge.
fn outcome_label(outcome: &str) -> String {
    OUTCOMES
        .iter()
        .find(|(value, _)| *value == outcome)
        .map_or_else(|| outcome.to_owned(), |(_, label)| (*label).to_owned())
}

/// The filter form: a GET, so a filtered view is a link to share. The page
/// size travels along; the offset does not (a new filter starts at the
/// newest entry).
#[component]
fn AuditFilterForm(filter: AuditFilterVm, actions: Vec<String>, limit: u64) -> impl IntoView {
    let active = filter.is_active();
    let action_options = actions
        .into_iter()
        .map(|a| {
            let selected = a == filter.action;
            view! {
                <option value=a.clone() selected=selected>
                    {a.clone()}
                </option>
            }
        })
        .collect_view();
    let outcome_options = OUTCOMES
        .into_iter()
        .map(|(value, label)| {
            let selected = value == filter.outcome;
            view! {
                <option value=value selected=selected>
                    {label}
                </option>
            }
        })
        .collect_view();
    // In the bar every listing's filters sit in (`.search`).
    view! {
        <div class="search">
        <form method="get" action="/audit" class="filter" data-test-id="audit-filter">
            <label>
                "Action "
                <select name="action" data-test-id="audit-filter-action">
                    <option value="" selected=filter.action.is_empty()>
                        "any"
                    </option>
                    {action_options}
                </select>
            </label>
            <label>
                "Actor "
                <input
                    type="search"
                    name="actor"
                    value=filter.actor
                    maxlength="200"
                    placeholder="any"
                    data-test-id="audit-filter-actor"
                />
            </label>
            <label>
                "Target contains "
                <input
                    type="search"
                    name="target"
                    value=filter.target
                    maxlength="200"
                    placeholder="any"
                    data-test-id="audit-filter-target"
                />
            </label>
            <label>
                "Outcome "
                <select name="outcome" data-test-id="audit-filter-outcome">
                    <option value="" selected=filter.outcome.is_empty()>
                        "any"
                    </option>
                    {outcome_options}
                </select>
            </label>
            <input type="hidden" name="limit" value=limit.to_string() />
            <button type="submit" class="button">
                "Filter"
            </button>
            {active.then(|| view! { <a href="/audit">"Clear"</a> })}
        </form>
        </div>
    }
}

/// The log: one page of entries, newest first, or why there are none.
#[component]
fn AuditRegion(vm: AuditVm) -> impl IntoView {
    let body = if vm.rows.is_empty() {
        let text = if vm.offset > 0 && vm.total > 0 {
            "No entry on this page."
        } else if vm.filter.is_active() {
            "No entry matches these filters."
        } else {
            "Nothing has been done yet: pausing a queue, retrying a job, unblocking a key or acknowledging an alert is recorded here."
        };
        view! {
            <Empty test_id="audit-empty">
                {text}
            </Empty>
        }
        .into_any()
    } else {
        let rows = vm
            .rows
            .clone()
            .into_iter()
            .map(|row| view! { <AuditTableRow row /> })
            .collect_view();
        view! {
            <Table
                class="audit"
                test_id="audit-table"
                head={view! {
                    <tr>
                        <th scope="col">"Time"</th>
                        <th scope="col">"Actor"</th>
                        <th scope="col">"Address"</th>
                        <th scope="col">"Action"</th>
                        <th scope="col">"Target"</th>
                        <th scope="col">"Outcome"</th>
                        <th scope="col">"Detail"</th>
                    </tr>
                }}
            >
                {rows}
            </Table>
        }
        .into_any()
    };
    let pager = (vm.total > 0 || vm.offset > 0).then(|| {
        let vm = vm.clone();
        view! {
            <Pager
                offset=vm.offset
                shown=vm.rows.len() as u64
                total=vm.total
                limit=vm.limit
                href=move |offset| vm.url_at(offset)
                test_id="audit-pager"
                ids="audit"
            />
        }
    });
    view! {
        <Region id="audit-log">
            {body}
            {pager}
        </Region>
    }
}

#[component]
fn AuditTableRow(row: AuditRow) -> impl IntoView {
    let (href, text, target) = (row.target_href(), row.target_text(), row.target.clone());
    let address = match row.address {
        Some(address) => view! { <code>{address}</code> }.into_any(),
        None => view! { <span class="muted">"–"</span> }.into_any(),
    };
    let detail = row.detail.unwrap_or_default();
    let badge = format!("badge outcome outcome-{}", row.outcome);
    let label = outcome_label(&row.outcome);
    let kind = row.target_kind.replace('_', " ");
    let action = row.action.clone();
    view! {
        <tr
            data-test-id="audit-row"
            data-id=row.id.to_string()
            data-action=action
            data-outcome=row.outcome
        >
            <td>
                <At at=row.at />
            </td>
            <td data-test-id="audit-actor">{row.actor}</td>
            <td data-test-id="audit-address">{address}</td>
            <td>
                <code data-test-id="audit-action">{row.action}</code>
            </td>
            <td data-test-id="audit-target">
                <span class="muted">{kind}</span>
                " "
                {match href {
                    Some(href) => view! {
                        <a href=href title=target.clone()>
                            <code>{text}</code>
                        </a>
                    }
                    .into_any(),
                    None => view! { <code title=target>{text}</code> }.into_any(),
                }}
            </td>
            <td>
                <span class=badge data-test-id="audit-outcome">
                    {label}
                </span>
            </td>
            <td class="detail" data-test-id="audit-detail">
                {detail}
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_430_045_000;

    fn entry(id: i64, action: &str, target: &str, outcome: &str) -> AuditRow {
        AuditRow {
            id,
            at: T0 - id * 1000,
            actor: "anonymous".into(),
            address: Some("127.0.0.1".into()),
            action: action.into(),
            target_kind: "queue".into(),
            target: target.into(),
            outcome: outcome.into(),
            detail: (outcome != "ok").then(|| "queue ghost was not found".into()),
        }
    }

    fn vm(rows: Vec<AuditRow>, total: u64) -> AuditVm {
        AuditVm {
            rows,
            filter: AuditFilterVm::default(),
            offset: 0,
            limit: 50,
            total,
            actions: vec!["queue.pause".into(), "job.retry".into()],
            lost: 0,
        }
    }

    fn page(vm: &AuditVm) -> String {
        render_audit_page(vm, &crate::testing::admin_page())
    }

    #[test]
    fn lost_entries_are_said_and_none_says_nothing() {
        let mut lost = vm(Vec::new(), 0);
        assert!(!page(&lost).contains("audit-lost"));
        lost.lost = 1234;
        let html = page(&lost);
        assert!(
            html.contains("1,234 audit entries could not be written"),
            "{html}"
        );
        assert!(html.contains(r#"role="alert""#), "{html}");
    }

    #[test]
    fn the_page_lists_entries_newest_first_with_their_outcome() {
        let html = page(&vm(
            vec![
                entry(2, "queue.pause", "emails", "ok"),
                entry(1, "queue.pause", "ghost", "refused"),
            ],
            2,
        ));
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(html.contains("<title>Audit · Switchyard</title>"), "{html}");
        // A log: no live stream.
        assert!(!html.contains("data-live"), "{html}");
        assert!(
            html.contains(r#"<a href="/audit" aria-current="page" class="current">Audit</a>"#),
            "{html}"
        );
        let alerts = html.find(r#"href="/alerts""#).expect("alerts");
        let audit = html.find(r#"href="/audit""#).expect("audit");
        let config = html.find(r#"href="/config""#).expect("config");
        assert!(alerts < audit && audit < config, "{html}");
        let first = html.find(r#"data-id="2""#).expect("row 2");
        let second = html.find(r#"data-id="1""#).expect("row 1");
        assert!(first < second, "{html}");
        for text in [
            r#"<time datetime="2026-11-23T10:34:03Z""#,
            "2026-11-23 10:34:03 UTC</time>",
            r#"<td data-test-id="audit-actor">anonymous</td>"#,
            "<code>127.0.0.1</code>",
            r#"<code data-test-id="audit-action">queue.pause</code>"#,
            // Targets link to what they name.
            r#"<span class="muted">queue</span> <a href="/queues/emails" title="emails"><code>emails</code></a>"#,
            r#"<span data-test-id="audit-outcome" class="badge outcome outcome-ok">Ok</span>"#,
            r#"<span data-test-id="audit-outcome" class="badge outcome outcome-refused">Refused</span>"#,
            r#"data-test-id="audit-detail" class="detail">queue ghost was not found</td>"#,
            "1–2 of 2",
        ] {
            assert!(html.contains(text), "{text}: {html}");
        }
        assert!(!html.contains("audit-older"), "{html}");
        // The filter form: a GET to the page, every filter by name.
        let form_at = html.find(r#"action="/audit""#).expect("form");
        let form = &html[form_at..form_at + html[form_at..].find("</form>").expect("end")];
        assert!(
            html[..form_at].ends_with(r#"<form method="get" "#),
            "{html}"
        );
        for field in [
            r#"<select name="action""#,
            r#"<option value="queue.pause">queue.pause</option>"#,
            r#"name="actor""#,
            r#"name="target""#,
            r#"<select name="outcome""#,
            r#"<option value="refused">Refused</option>"#,
            r#"<input type="hidden" name="limit" value="50">"#,
        ] {
            assert!(form.contains(field), "{field}: {form}");
        }
        assert!(!form.contains("Clear"), "{form}");
    }

    #[test]
    fn filters_show_again_and_the_pager_keeps_them() {
        let mut vm = vm(
            (0..50)
                .map(|i| entry(i, "job.retry", "emails/1", "ok"))
                .collect(),
            120,
        );
        vm.offset = 50;
        vm.filter = AuditFilterVm {
            action: "job.retry".into(),
            actor: String::new(),
            target: "emails & co".into(),
            outcome: "ok".into(),
        };
        let html = page(&vm);
        assert!(
            html.contains(r#"<option value="job.retry" selected>job.retry</option>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<option value="ok" selected>Ok</option>"#),
            "{html}"
        );
        assert!(html.contains(r#"value="emails &amp; co""#), "{html}");
        assert!(html.contains(r#"<a href="/audit">Clear</a>"#), "{html}");
        assert!(html.contains("51–100 of 120"), "{html}");
        let q = "action=job.retry&amp;target=emails%20%26%20co&amp;outcome=ok";
        for link in [
            format!(r#"href="/audit?{q}&amp;offset=0&amp;limit=50" data-test-id="audit-newest""#),
            format!(r#"href="/audit?{q}&amp;offset=0&amp;limit=50" rel="prev""#),
            format!(r#"href="/audit?{q}&amp;offset=100&amp;limit=50" rel="next""#),
            format!(r#"href="/audit?{q}&amp;offset=100&amp;limit=50" data-test-id="audit-oldest""#),
        ] {
            assert!(html.contains(&link), "{link}: {html}");
        }
    }

    #[test]
    fn empty_states_say_why() {
        let html = page(&vm(vec![], 0));
        assert!(html.contains("Nothing has been done yet"), "{html}");
        assert!(!html.contains("audit-table"), "{html}");
        assert!(!html.contains("audit-pager"), "{html}");
        let mut filtered = vm(vec![], 0);
        filtered.filter.outcome = "failed".into();
        let html = page(&filtered);
        assert!(html.contains("No entry matches these filters."), "{html}");
        let mut past = vm(vec![], 7);
        past.offset = 500;
        let html = page(&past);
        assert!(html.contains("No entry on this page."), "{html}");
        assert!(html.contains("audit-newest"), "{html}");
    }

    #[test]
    fn targets_details_and_filters_are_escaped() {
        let hostile = "<script>alert(1)</script>\"x";
        let mut row = entry(1, hostile, hostile, "failed");
        row.actor = hostile.into();
        row.address = Some(hostile.into());
        row.detail = Some(hostile.into());
        row.target_kind = hostile.into();
        let mut vm = vm(vec![row], 1);
        vm.filter.actor = hostile.into();
        vm.filter.target = hostile.into();
        vm.actions.push(hostile.into());
        let html = page(&vm);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("\"x\""), "{html}");
        assert!(
            html.contains(
                r#"data-test-id="audit-detail" class="detail">&lt;script&gt;alert(1)&lt;/script&gt;"x</td>"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"value="&lt;script&gt;alert(1)&lt;/script&gt;&quot;x""#),
            "{html}"
        );
    }
}
