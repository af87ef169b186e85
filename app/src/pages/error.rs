//! An error as a page a person can read, for browser routes.

use leptos::prelude::*;

use crate::vm::session::PageCtx;
use crate::widgets::shell::{Frame, Section, document};

/// The status, a short title and the reason (which may quote user input,
/// so it is escaped like everything else).
pub fn render_error_page(status: u16, title: &str, message: &str, page: &PageCtx) -> String {
    let heading = format!("{status} {title}");
    let frame = Frame::new(format!("{heading} · Switchyard"), Section::None);
    let message = message.to_string();
    document(page, frame, move || {
        view! {
            <section class="error-page">
                <h1 data-test-id="error-title">{heading}</h1>
                <p class="error-message" data-test-id="error-message">
                    {message}
                </p>
                <p>
                    <a href="/queues">"Back to the queues"</a>
                </p>
            </section>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn error_page_escapes_the_message() {
        let html = render_error_page(404, "Not Found", "queue <x> not found", &PAGE);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("404 Not Found"), "{html}");
        assert!(html.contains("queue &lt;x&gt; not found"), "{html}");
        assert!(
            !html.contains("data-live"),
            "error pages are static: {html}"
        );
    }
}
