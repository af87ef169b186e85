//! One module per page: its `render_*_page`, which returns the whole
//! document, its `*_fragments`, which render the page's live regions alone
//! for its event stream, and the components only that page uses.

pub mod alerts;
pub mod audit;
pub mod bull_job;
pub mod bull_queue;
pub mod bullmq;
pub mod cache;
pub mod channels;
pub mod config;
pub mod error;
pub mod errors;
pub mod instances;
pub mod job;
pub mod login;
pub mod overview;
pub mod queue;
pub mod queues;
pub mod ratelimits;
pub mod redis;
pub mod retrying;
pub mod schedules;
pub mod search;
pub mod users;
pub mod workers;

#[cfg(test)]
mod tests {
    use crate::testing::*;

    /// The server sends a Content-Security-Policy without 'unsafe-inline':
    /// no page may rely on inline script, event handler attributes, `style`
    /// attributes or `<style>` elements.
    #[test]
    fn no_page_needs_inline_script_or_style() {
        for (page, html) in every_page_populated() {
            assert!(!html.contains(r#" style=""#), "{page}: {html}");
            assert!(!html.contains("<style"), "{page}: {html}");
            let mut scripts = 0;
            for (tag, attrs) in tags(&html) {
                assert_ne!(tag, "style", "{page}: {html}");
                for attr in &attrs {
                    assert_ne!(attr, "style", "{page}: <{tag}> {html}");
                    assert!(
                        !(attr.starts_with("on") && attr.len() > 2),
                        "{page}: <{tag} {attr}=…> {html}"
                    );
                }
                if tag == "script" {
                    scripts += 1;
                    assert!(
                        attrs.iter().any(|a| a == "src"),
                        "{page}: inline <script> {html}"
                    );
                }
            }
            if html.starts_with("<!DOCTYPE") {
                // Only the external script.
                assert_eq!(scripts, 1, "{page}: {html}");
                assert!(
                    html.contains(r#"<script src="/app.js" defer></script>"#),
                    "{page}"
                );
            }
        }
    }
}
