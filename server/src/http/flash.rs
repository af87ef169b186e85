//! One-off notices after a form action ("Retried 3 jobs"), carried across
//! the redirect in a short-lived cookie so the URL stays clean and a reload
//! does not show the notice again.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

/// Name of the cookie.
const COOKIE: &str = "switchyard_notice";

/// Longest notice kept (characters); the cookie stays far below size limits.
const MAX_CHARS: usize = 300;

/// The notice a request carries, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flash(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Flash {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let notice = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|cookies| cookies.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .and_then(|(_, value)| decode(value))
            .filter(|text| !text.is_empty());
        Ok(Flash(notice))
    }
}

/// The `Set-Cookie` value carrying `notice` to the next page.
pub fn set(notice: &str) -> HeaderValue {
    let text: String = notice.chars().take(MAX_CHARS).collect();
    let value = format!(
        "{COOKIE}={}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax",
        app::encode_query(&text)
    );
    // Percent-encoding leaves only visible ASCII, always a valid header.
    HeaderValue::from_str(&value).unwrap_or_else(|_| clear())
}

/// The `Set-Cookie` value removing the notice once shown.
pub fn clear() -> HeaderValue {
    HeaderValue::from_static("switchyard_notice=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
}

/// Reverses [`app::encode_query`]; `None` for malformed input.
fn decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8(out).ok()?;
    Some(text.chars().take(MAX_CHARS).collect())
}

/// A page response that also removes the notice cookie once it is shown.
pub fn with_flash_cleared(page: Html<String>, shown: bool) -> Response {
    let mut response = page.into_response();
    if shown {
        response.headers_mut().insert(header::SET_COOKIE, clear());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_survive_the_cookie_round_trip() {
        let notice = "Retried 3 jobs; 1 was «no longer» failed & <ok>";
        let header = set(notice);
        let text = header.to_str().expect("ascii");
        let value = text
            .strip_prefix("switchyard_notice=")
            .and_then(|rest| rest.split(';').next())
            .expect("value");
        assert_eq!(decode(value).as_deref(), Some(notice));
        assert!(text.contains("HttpOnly"));
    }

    #[test]
    fn malformed_cookies_are_ignored() {
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%ff%fe"), None);
    }
}
