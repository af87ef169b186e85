//! A job's log as both kinds of job page show it — native jobs and BullMQ
//! jobs alike: the newest lines, numbered from the first line kept, and
//! what was left out, so a long or capped log never reads as complete.

use leptos::prelude::*;

use crate::format::format_count;

/// The log lines of a job's page. `earlier`: kept lines older than the
/// ones shown; `dropped`: lines the store dropped to stay within its caps.
#[component]
pub fn JobLog(logs: Vec<String>, earlier: u64, dropped: u64) -> impl IntoView {
    if logs.is_empty() {
        return view! { <p class="muted" data-test-id="no-logs">"This job wrote no log lines."</p> }
            .into_any();
    }
    let lines = |n: u64| if n == 1 { "line" } else { "lines" };
    let mut left_out = Vec::new();
    if dropped > 0 {
        left_out.push(format!(
            "{} older {} dropped by the log's cap",
            format_count(dropped),
            lines(dropped)
        ));
    }
    if earlier > 0 {
        left_out.push(format!(
            "{} earlier {} not shown",
            format_count(earlier),
            lines(earlier)
        ));
    }
    let note = (!left_out.is_empty()).then(|| {
        view! {
            <p class="muted" data-test-id="logs-left-out">
                {format!("{}; the newest are below.", capitalize(&left_out.join(", ")))}
            </p>
        }
    });
    let first = (dropped + earlier + 1).to_string();
    view! {
        <div>
            {note}
            <ol
                class="job-logs"
                start=first
                data-test-id="job-logs"
                tabindex="0"
                aria-label="Log lines"
            >
                {logs.into_iter().map(|line| view! { <li><code>{line}</code></li> }).collect_view()}
            </ol>
        </div>
    }
    .into_any()
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(logs: &[&str], earlier: u64, dropped: u64) -> String {
        let logs: Vec<String> = logs.iter().map(|s| s.to_string()).collect();
        view! { <JobLog logs earlier dropped /> }.to_html()
    }

    #[test]
    fn lines_are_escaped_and_numbered_from_the_first_kept() {
        let out = html(&["<b>hi</b>", "second"], 3, 5);
        assert!(out.contains("&lt;b&gt;hi&lt;/b&gt;"), "{out}");
        assert!(!out.contains("<b>"), "{out}");
        assert!(out.contains(r#"start="9""#), "{out}");
        assert!(
            out.contains("5 older lines dropped by the log's cap, 3 earlier lines not shown; the newest are below."),
            "{out}"
        );
        assert_eq!(out.matches("<li>").count(), 2, "{out}");
    }

    #[test]
    fn a_whole_log_says_nothing_was_left_out_and_an_empty_one_says_so() {
        let out = html(&["only"], 0, 0);
        assert!(!out.contains("logs-left-out"), "{out}");
        assert!(out.contains(r#"start="1""#), "{out}");
        let out = html(&[], 0, 0);
        assert!(out.contains("This job wrote no log lines."), "{out}");
        let out = html(&["x"], 1, 0);
        assert!(out.contains("1 earlier line not shown"), "{out}");
    }
}
