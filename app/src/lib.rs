//! Switchyard's pages, rendered on the server with leptos (SSR only: no
//! WASM, no hydration), from the view models in [`vm`].
//!
//! Each `render_*` function returns a complete HTML document so the server
//! only has to wrap it in a response. Keeping rendering behind plain
//! functions and plain structs means the web layer can change (a live SSE
//! dashboard later) without touching the markup, and the markup can be
//! tested without a backend.

#![warn(missing_docs)]

mod components;
pub mod vm;

use leptos::prelude::*;

use components::{BackendStatus, JobsTable, Pager, QueuesTable, Shell, StateTabs};
pub use vm::{JobRow, OverviewVm, QueuePageVm, QueueRow, STATES, format_age};

/// The doctype leptos does not emit itself; without it browsers fall back to
/// quirks mode and the stylesheet renders differently.
const DOCTYPE: &str = "<!DOCTYPE html>";

/// The queues overview served at `/`: backend status and one row per queue,
/// refreshing itself every 5 seconds.
pub fn render_queues_page(vm: &OverviewVm) -> String {
    let vm = vm.clone();
    let queues = vm.queues.clone();
    // With the backend down an empty list means "unknown", not "no queues":
    // say so instead of suggesting the operator create one.
    let table = if vm.backend_ok || !queues.is_empty() {
        view! { <QueuesTable queues=queues /> }.into_any()
    } else {
        view! {
            <p class="empty" data-test-id="backend-down">
                "Queue counts are unavailable until the backend answers."
            </p>
        }
        .into_any()
    };
    let html = view! {
        <Shell title="Switchyard".to_string() refresh=true>
            <section class="overview">
                <h1>"Queues"</h1>
                <BackendStatus vm=vm />
                {table}
            </section>
        </Shell>
    }
    .to_html();
    format!("{DOCTYPE}{html}")
}

/// One queue's page: its counts as tabs and a page of jobs in one state.
pub fn render_queue_page(vm: &QueuePageVm) -> String {
    let vm = vm.clone();
    let title = format!("{} · Switchyard", vm.queue.name);
    let name = vm.queue.name.clone();
    let paused = vm.queue.paused;
    let queue = vm.queue.clone();
    let state = vm.state.clone();
    let jobs = vm.jobs.clone();
    let html = view! {
        <Shell title=title refresh=true>
            <section class="queue">
                <p class="crumbs">
                    <a href="/">"Queues"</a>
                    " / "
                </p>
                <h1>
                    {name}
                    " "
                    {paused
                        .then(|| {
                            view! {
                                <span class="badge paused" data-test-id="paused-badge">
                                    "Paused"
                                </span>
                            }
                        })}
                </h1>
                <StateTabs queue=queue selected=state.clone() />
                <JobsTable jobs=jobs state=state />
                <Pager vm=vm />
            </section>
        </Shell>
    }
    .to_html();
    format!("{DOCTYPE}{html}")
}

/// An error as a page a person can read, for browser routes: the status,
/// a short title and the reason (which may quote user input, so it is
/// escaped like everything else).
pub fn render_error_page(status: u16, title: &str, message: &str) -> String {
    let page_title = format!("{status} {title} · Switchyard");
    let heading = format!("{status} {title}");
    let message = message.to_string();
    let html = view! {
        <Shell title=page_title>
            <section class="error-page">
                <h1 data-test-id="error-title">{heading}</h1>
                <p class="error-message" data-test-id="error-message">
                    {message}
                </p>
                <p>
                    <a href="/">"Back to the queues"</a>
                </p>
            </section>
        </Shell>
    }
    .to_html();
    format!("{DOCTYPE}{html}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, failed: u64, paused: bool) -> QueueRow {
        QueueRow {
            name: name.into(),
            waiting: 3,
            active: 1,
            delayed: 0,
            completed: 42,
            failed,
            paused,
        }
    }

    #[test]
    fn overview_is_a_full_self_refreshing_document() {
        let html = render_queues_page(&OverviewVm {
            backend: "embedded".into(),
            backend_ok: true,
            latency_ms: Some(0.4),
            problem: None,
            queues: vec![row("emails", 2, false), row("reports", 0, true)],
        });
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(html.contains("<title>Switchyard</title>"), "{html}");
        assert!(html.contains(r#"http-equiv="refresh""#), "{html}");
        assert!(html.contains(r#"content="5""#), "{html}");
        assert!(html.contains(r#"href="/style.css""#), "{html}");
        assert!(
            html.contains(r#"data-test-id="queue-row-emails""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="queue-row-reports""#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="count-failed""#), "{html}");
        assert!(html.contains("Paused"), "{html}");
        assert!(html.contains("Running"), "{html}");
        assert!(
            html.contains("Backend embedded: reachable (0.4 ms)"),
            "{html}"
        );
        for header in [
            "Queue",
            "Waiting",
            "Active",
            "Delayed",
            "Completed",
            "Failed",
            "State",
        ] {
            assert!(
                html.contains(&format!(">{header}</th>")),
                "{header} missing: {html}"
            );
        }
    }

    #[test]
    fn overview_without_queues_says_how_to_get_one() {
        let html = render_queues_page(&OverviewVm {
            backend: "embedded".into(),
            backend_ok: true,
            latency_ms: Some(1.0),
            problem: None,
            queues: vec![],
        });
        assert!(
            html.contains("No queues yet — enqueue a job or run"),
            "{html}"
        );
        assert!(html.contains("<code>switchyard demo</code>"), "{html}");
    }

    #[test]
    fn overview_with_the_backend_down_does_not_claim_there_are_no_queues() {
        let html = render_queues_page(&OverviewVm {
            backend: "redis".into(),
            backend_ok: false,
            latency_ms: None,
            problem: Some("connection refused".into()),
            queues: vec![],
        });
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
    fn job_text_is_escaped() {
        let html = render_queue_page(&QueuePageVm {
            queue: row("emails", 1, false),
            state: "failed".into(),
            jobs: vec![JobRow {
                id: "7".into(),
                name: "<script>alert(1)</script>".into(),
                data_preview: r#"{"html":"<img src=x onerror=alert(1)>"}"#.into(),
                attempts_made: 3,
                attempts: 3,
                priority: 0,
                age_ms: 5_000,
                failed_reason: Some("<b>boom</b>".into()),
            }],
            total: 1,
            offset: 0,
            limit: 50,
        });
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;boom&lt;/b&gt;"), "{html}");
        assert!(html.contains("emails · Switchyard"), "{html}");
        assert!(html.contains("1–1 of 1"), "{html}");
    }

    #[test]
    fn error_page_escapes_the_message() {
        let html = render_error_page(404, "Not Found", "queue <x> not found");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("404 Not Found"), "{html}");
        assert!(html.contains("queue &lt;x&gt; not found"), "{html}");
        assert!(
            !html.contains("http-equiv"),
            "error pages must not reload: {html}"
        );
    }
}
