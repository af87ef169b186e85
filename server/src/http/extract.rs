//! Request extractors whose rejections are [`AppError`]s, and the parsing of
//! path and query parameters into domain types.
//!
//! axum's own extractors answer plain-text errors; wrapping them here means
//! a malformed body or a bad queue name gets the same JSON (or HTML) error,
//! with the reason, as any other failure.

use axum::extract::{FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use coord::queue::{JobId, JobState, MAX_PAGE, QueueName};
use serde::{Deserialize, Serialize};

use crate::http::error::AppError;

/// `axum::Json` with our error on rejection (a malformed body is a 400 with
/// the parser's reason).
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::Form` with our error on rejection (a body that is not
/// `application/x-www-form-urlencoded` is a 415 with the reason).
#[derive(Debug, Clone, FromRequest)]
#[from_request(via(axum::Form), rejection(AppError))]
pub struct Form<T>(pub T);

/// `axum::extract::Path` with our error on rejection.
#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query` with our error on rejection.
#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

/// `/…/{queue}`: the name is validated while the path is parsed, so a
/// handler only ever sees a valid [`QueueName`].
#[derive(Debug, Clone, Deserialize)]
pub struct QueuePath {
    /// The `{queue}` segment.
    pub queue: QueueName,
}

/// `/…/{queue}/jobs/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct JobPath {
    /// The `{queue}` segment.
    pub queue: QueueName,
    /// The `{id}` segment.
    pub id: JobId,
}

/// The page size when none is asked for.
pub const DEFAULT_LIMIT: u64 = 50;

/// Raw `?state=&offset=&limit=` parameters, kept as text so each bad value
/// is reported with a reason of our own rather than a generic parse error.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageParams {
    /// A job state name.
    pub state: Option<String>,
    /// Jobs to skip.
    pub offset: Option<String>,
    /// Page size.
    pub limit: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Which jobs to list.
    pub state: JobState,
    /// Jobs to skip, newest first.
    pub offset: u64,
    /// Page size, 1..=`MAX_PAGE`.
    pub limit: u64,
}

/// A listing's `?offset=`: 0 when absent or empty, a 400 with the reason
/// when it is not a whole number.
pub fn parse_offset(text: Option<&str>) -> Result<u64, AppError> {
    match text {
        None | Some("") => Ok(0),
        Some(text) => text.parse::<u64>().map_err(|_| {
            AppError::bad_request(format!(
                "offset must be a non-negative integer (got {text:?})"
            ))
        }),
    }
}

impl PageParams {
    /// Validates the parameters; `default_state` is used when `state` is
    /// absent, and when it is `None` the state is required.
    pub fn parse(&self, default_state: Option<JobState>) -> Result<PageRequest, AppError> {
        let state = match (self.state.as_deref(), default_state) {
            (Some(text), _) => parse_state(text)?,
            (None, Some(state)) => state,
            (None, None) => {
                return Err(AppError::bad_request(format!(
                    "the state parameter is required (one of {})",
                    state_names()
                )));
            }
        };
        let offset = parse_offset(self.offset.as_deref())?;
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(AppError::bad_request(format!(
                        "limit must be an integer between 1 and {MAX_PAGE} (got {text:?})"
                    )));
                }
            },
        };
        Ok(PageRequest {
            state,
            offset,
            limit,
        })
    }
}

/// A job state from its lowercase name, or a 400 naming the valid ones.
pub fn parse_state(text: &str) -> Result<JobState, AppError> {
    JobState::ALL
        .into_iter()
        .find(|state| state.as_str() == text)
        .ok_or_else(|| {
            AppError::bad_request(format!(
                "unknown state {text:?} (expected one of {})",
                state_names()
            ))
        })
}

fn state_names() -> String {
    JobState::ALL
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(state: Option<&str>, offset: Option<&str>, limit: Option<&str>) -> PageParams {
        PageParams {
            state: state.map(Into::into),
            offset: offset.map(Into::into),
            limit: limit.map(Into::into),
        }
    }

    #[test]
    fn valid_pages() {
        let page = params(Some("failed"), Some("10"), Some("500"))
            .parse(None)
            .expect("valid");
        assert_eq!(
            page,
            PageRequest {
                state: JobState::Failed,
                offset: 10,
                limit: 500
            }
        );
        let page = params(None, None, None)
            .parse(Some(JobState::Waiting))
            .expect("defaults");
        assert_eq!(page.limit, DEFAULT_LIMIT);
        assert_eq!(page.offset, 0);
    }

    #[test]
    fn each_bad_value_has_a_reason() {
        let err = params(None, None, None).parse(None).expect_err("required");
        assert!(err.message().contains("required"), "{err}");
        let err = params(Some("dead"), None, None)
            .parse(None)
            .expect_err("state");
        assert!(err.message().contains("unknown state \"dead\""), "{err}");
        let err = params(Some("failed"), Some("-1"), None)
            .parse(None)
            .expect_err("offset");
        assert!(err.message().contains("offset"), "{err}");
        for limit in ["0", "501", "x"] {
            let err = params(Some("failed"), None, Some(limit))
                .parse(None)
                .expect_err("limit");
            assert!(err.message().contains("between 1 and 500"), "{err}");
        }
    }
}
