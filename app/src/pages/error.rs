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
