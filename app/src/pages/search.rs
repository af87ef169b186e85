//! The search page (`/search?q=`): a job id looked up in every queue
//! ("found in queue X", or "no queue has job Y"), and jobs matching words
//! and qualifiers across queues and states, saying what was searched and
//! whether the search was complete.

use leptos::prelude::*;

use crate::format::format_count;
use crate::vm::search::{SearchHitVm, SearchPageVm};
use crate::vm::session::PageCtx;
use crate::widgets::shell::{Frame, Section, document};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::Moment;

/// The qualifiers, as the page explains them.
const HELP: [(&str, &str); 5] = [
    ("name:send", "the job's name contains it"),
    ("queue:emails", "only in this queue"),
    ("state:failed", "only in this state"),
    ("error:\"421\"", "its last error contains it"),
    ("data.user.id:42", "this value at this key of its data"),
];

/// The search page.
pub fn render_search_page(vm: &SearchPageVm, now: i64, page: &PageCtx) -> String {
    let vm = vm.clone();
    let title = if vm.query.is_empty() {
        "Search · Switchyard".to_owned()
    } else {
        format!("Search: {} · Switchyard", vm.query)
    };
    document(page, Frame::new(title, Section::None), move || {
        view! {
            <section class="search-page">
                <h1>"Search jobs"</h1>
                <form method="get" action="/search" class="filter" role="search" aria-label="Search jobs">
                    <label>
                        "Job id or words "
                        <input
                            type="search"
                            name="q"
                            value=vm.query.clone()
                            maxlength="256"
                            data-test-id="search-query"
                        />
                    </label>
                    <button type="submit" class="button">
                        "Search"
                    </button>
                </form>
                <details class="help">
                    <summary>"Qualifiers"</summary>
                    <dl>
                        {HELP
                            .iter()
                            .map(|(q, what)| view! { <dt><code>{*q}</code></dt><dd>{*what}</dd> })
                            .collect_view()}
                    </dl>
                </details>
                <SearchBody vm=vm.clone() now=now />
            </section>
        }
    })
}

#[component]
fn SearchBody(vm: SearchPageVm, now: i64) -> impl IntoView {
    if let Some(error) = vm.error.clone() {
        return view! {
            <p class="status degraded" role="alert" data-test-id="search-error">
                {error}
            </p>
        }
        .into_any();
    }
    if vm.query.trim().is_empty() {
        return view! {
            <p class="muted" data-test-id="search-empty">
                "Type a job id to find the queues that have it, or words to find jobs by name and data across every queue and state."
            </p>
        }
        .into_any();
    }
    let id_line = vm.id.clone().map(|id| {
        if vm.found_in.is_empty() {
            view! { <p data-test-id="found-in">{format!("No queue has job {id}.")}</p> }.into_any()
        } else {
            let links = vm
                .found_in
                .iter()
                .map(|(queue, state)| {
                    let href = format!("/queues/{queue}/jobs/{id}");
                    view! {
                        <li>
                            <a href=href data-test-id="found-job">
                                {queue.clone()}
                            </a>
                            " "
                            <span class=format!("badge state {state}")>{state.clone()}</span>
                        </li>
                    }
                })
                .collect_view();
            let n = vm.found_in.len();
            view! {
                <div data-test-id="found-in">
                    <p>
                        {format!(
                            "Job {id} found in {} {}:",
                            format_count(n as u64),
                            if n == 1 { "queue" } else { "queues" },
                        )}
                    </p>
                    <ul class="found-in">{links}</ul>
                </div>
            }
            .into_any()
        }
    });
    let mut said = format!("Searched {}.", vm.searched);
    if vm.unindexed > 0 {
        said.push_str(&format!(
            " The newest {} {} not indexed yet.",
            format_count(vm.unindexed),
            if vm.unindexed == 1 {
                "job is"
            } else {
                "jobs are"
            }
        ));
    }
    if !vm.complete {
        said.push_str(" This search was partial: narrow it with queue: or state: to look further.");
    }
    let status = if vm.complete {
        "muted"
    } else {
        "status degraded"
    };
    let count = if vm.hits.len() >= vm.limit {
        format!("The newest {} matches:", format_count(vm.limit as u64))
    } else if vm.hits.len() == 1 {
        "1 match:".to_owned()
    } else {
        format!("{} matches.", format_count(vm.hits.len() as u64))
    };
    let table = (!vm.hits.is_empty()).then(|| {
        let rows = vm
            .hits
            .clone()
            .into_iter()
            .map(|hit| view! { <HitRow hit now /> })
            .collect_view();
        view! {
            <Table
                class="search-hits"
                test_id="search-hits"
                head=view! {
                    <tr>
                        <th scope="col">"Queue"</th>
                        <th scope="col">"Id"</th>
                        <th scope="col">"Name"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Enqueued"</th>
                        <th scope="col">"Last error"</th>
                    </tr>
                }
            >
                {rows}
            </Table>
        }
    });
    let none = vm.hits.is_empty().then(|| {
        view! { <Empty test_id="search-none">"No job matches."</Empty> }
    });
    view! {
        <div>
            {id_line}
            <p class=status data-test-id="search-scope">{said}</p>
            <p data-test-id="search-count">{count}</p>
            {table}
            {none}
        </div>
    }
    .into_any()
}

#[component]
fn HitRow(hit: SearchHitVm, now: i64) -> impl IntoView {
    let href = format!("/queues/{}/jobs/{}", hit.queue, hit.id);
    let queue_href = format!("/queues/{}", hit.queue);
    view! {
        <tr data-test-id="search-hit">
            <td>
                <a href=queue_href>{hit.queue.clone()}</a>
            </td>
            <td>
                <a href=href data-test-id="hit-link">
                    <code>{hit.id.clone()}</code>
                </a>
            </td>
            <td class="name">{hit.name.clone()}</td>
            <td>
                <span class=format!("badge state {}", hit.state)>{hit.state.clone()}</span>
            </td>
            <td>
                <Moment at=hit.created_at now=now />
            </td>
            <td class="error-text">{hit.failed_reason.clone().unwrap_or_default()}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn vm() -> SearchPageVm {
        SearchPageVm {
            query: "42 <b>".into(),
            id: Some("42".into()),
            found_in: vec![("emails".into(), "failed".into())],
            hits: vec![SearchHitVm {
                queue: "emails".into(),
                id: "42".into(),
                name: "send <i>welcome</i>".into(),
                state: "failed".into(),
                created_at: 1_000,
                failed_reason: Some("SMTP <421>".into()),
            }],
            limit: 50,
            complete: false,
            searched: "the text index".into(),
            unindexed: 3,
            error: None,
        }
    }

    #[test]
    fn hits_and_where_an_id_was_found_are_escaped_and_linked() {
        let html = render_search_page(&vm(), 2_000, &PAGE);
        assert!(html.contains("Job 42 found in 1 queue:"), "{html}");
        assert!(html.contains(r#"href="/queues/emails/jobs/42""#), "{html}");
        assert!(html.contains("send &lt;i&gt;welcome&lt;/i&gt;"), "{html}");
        assert!(html.contains("SMTP &lt;421&gt;"), "{html}");
        assert!(!html.contains("<i>welcome"), "{html}");
        assert!(html.contains(r#"value="42 &lt;b&gt;""#), "{html}");
        assert!(
            html.contains("The newest 3 jobs are not indexed yet."),
            "{html}"
        );
        assert!(html.contains("This search was partial"), "{html}");
    }

    #[test]
    fn an_unknown_id_an_empty_query_and_an_error_say_so() {
        let mut v = vm();
        v.found_in.clear();
        v.hits.clear();
        v.complete = true;
        v.unindexed = 0;
        let html = render_search_page(&v, 2_000, &PAGE);
        assert!(html.contains("No queue has job 42."), "{html}");
        assert!(html.contains("No job matches."), "{html}");
        assert!(!html.contains("partial"), "{html}");
        let html = render_search_page(&SearchPageVm::default(), 0, &PAGE);
        assert!(html.contains(r#"data-test-id="search-empty""#), "{html}");
        let mut v = vm();
        v.error = Some("unknown qualifier \"colour\"".into());
        let html = render_search_page(&v, 0, &PAGE);
        assert!(html.contains(r#"data-test-id="search-error""#), "{html}");
    }
}
