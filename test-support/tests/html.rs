//! The HTML probes on a page shaped like the server's.

use test_support::html::{attr, element, row, start_tag, strip_tags, text_of};

const PAGE: &str = r#"<main><h1 data-test-id="title" class="big">Queues <span>(2)</span></h1>
<table><tr data-test-id="queue-row-emails"><td data-test-id="count-waiting"><a href="/q">3</a></td></tr>
<tr data-test-id="queue-row-idle"><td>0</td></tr></table>
<p data-test-id="note">a &amp; b</p></main>"#;

#[test]
fn probes_find_elements_by_test_id() {
    let tag = start_tag(PAGE, "title").expect("title");
    assert_eq!(tag, r#"<h1 data-test-id="title" class="big">"#);
    assert_eq!(attr(tag, "class"), Some("big"));
    assert_eq!(attr(tag, "id"), None);
    assert_eq!(start_tag(PAGE, "absent"), None);

    assert_eq!(text_of(PAGE, "title"), "Queues (2)");
    assert_eq!(
        text_of(PAGE, "note"),
        "a &amp; b",
        "entities are left alone"
    );
    assert_eq!(
        element(PAGE, "count-waiting"),
        r#"<td data-test-id="count-waiting"><a href="/q">3</a></td>"#
    );
}

#[test]
fn a_row_ends_at_its_own_closing_tag() {
    let emails = row(PAGE, "queue-row-emails").expect("row");
    assert!(emails.ends_with("</td></tr>"), "{emails}");
    assert!(!emails.contains("idle"), "{emails}");
    assert_eq!(strip_tags(emails), "3");
    assert_eq!(row(PAGE, "queue-row-absent"), None);
}

#[test]
#[should_panic(expected = "no absent in")]
fn element_panics_when_the_test_id_is_absent() {
    element(PAGE, "absent");
}
