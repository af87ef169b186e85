//! Probes into server-rendered HTML by `data-test-id`, the attribute the
//! pages carry for tests, so that a test names what it checks and survives
//! changes of markup and style around it. Plain string search, no parser:
//! the pages are the server's own, well-formed, and a parser would be a
//! dependency of every test build.

/// The start tag of the first element with `data-test-id="<id>"`.
pub fn start_tag<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let marker = format!(r#"data-test-id="{id}""#);
    let at = html.find(&marker)?;
    let open = html[..at].rfind('<')?;
    let close = at + html[at..].find('>')?;
    Some(&html[open..=close])
}

/// An attribute's value in a start tag.
pub fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!(r#" {name}=""#);
    let start = tag.find(&marker)? + marker.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// The outer HTML of the element with `data-test-id="<id>"`, up to the
/// first closing tag of its kind (so only for elements that do not nest
/// their own kind: `p`, `span`, `pre`, `td`, `table`…); panics when absent.
pub fn element<'a>(html: &'a str, id: &str) -> &'a str {
    let tag = start_tag(html, id).unwrap_or_else(|| panic!("no {id} in {html}"));
    let name: String = tag[1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let start = html.find(tag).expect("tag in page");
    let close = format!("</{name}>");
    let end = html[start..]
        .find(&close)
        .map(|i| start + i + close.len())
        .unwrap_or_else(|| panic!("no {close} after {tag}"));
    &html[start..end]
}

/// The text of the element with `data-test-id="<id>"` (see [`element`]),
/// tags removed, trimmed.
pub fn text_of(html: &str, id: &str) -> String {
    strip_tags(element(html, id))
}

/// The table row (`<tr …>…</tr>`) with `data-test-id="<id>"`.
pub fn row<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let tag = start_tag(html, id)?;
    let start = html.find(tag)?;
    let len = html[start..].find("</tr>")? + "</tr>".len();
    Some(&html[start..start + len])
}

/// Text without its tags (entities left as they are), trimmed.
pub fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}
