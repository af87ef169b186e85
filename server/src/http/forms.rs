//! What every form post shares: the fields a button sends (where to go
//! back to, the selected ids) and the 303 back with a one-off notice.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::flash;

/// Longest `back` path accepted.
const MAX_BACK: usize = 2048;

/// A form's fields: where to go back to, and the selected job ids.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ActionFields {
    pub(crate) back: Option<String>,
    pub(crate) ids: Vec<String>,
}

impl ActionFields {
    /// Reads the fields a button's form sends.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut fields = Self::default();
        for (name, value) in pairs {
            match name.as_str() {
                "back" => fields.back = Some(value),
                "id" => fields.ids.push(value),
                _ => {}
            }
        }
        fields
    }

    /// The page to return to: a local path only (never another site), else
    /// `fallback`.
    pub fn back_or(&self, fallback: String) -> String {
        match self.back.as_deref() {
            Some(back) if is_local_path(back) => back.to_string(),
            _ => fallback,
        }
    }
}

/// True for a path on this site: starts with one `/`, no scheme-relative
/// `//`, no backslash (browsers read `/\` as `//`), printable ASCII.
pub fn is_local_path(path: &str) -> bool {
    path.len() <= MAX_BACK
        && path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && path.bytes().all(|b| b.is_ascii_graphic())
}

/// 303 to `back`, carrying `notice` to the next page.
pub fn redirect(back: &str, notice: &str) -> Response {
    let location = HeaderValue::from_str(back).unwrap_or(HeaderValue::from_static("/queues"));
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, flash::set(notice)),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_back() {
        let fallback = || "/queues".to_string();
        let fields = |back: &str| ActionFields {
            back: Some(back.into()),
            ids: vec![],
        };
        assert_eq!(
            fields("/queues/x?state=failed&limit=50").back_or(fallback()),
            "/queues/x?state=failed&limit=50"
        );
        for evil in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "/queues\nSet-Cookie: x",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(fields(evil).back_or(fallback()), "/queues", "{evil:?}");
        }
    }

    #[test]
    fn repeated_ids_are_all_kept() {
        let fields = ActionFields::from_pairs(vec![
            ("back".into(), "/q".into()),
            ("id".into(), "1".into()),
            ("id".into(), "2".into()),
            ("other".into(), "x".into()),
        ]);
        assert_eq!(fields.ids, ["1", "2"]);
        assert_eq!(fields.back.as_deref(), Some("/q"));
    }
}
