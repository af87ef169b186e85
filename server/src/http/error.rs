//! One error type for every handler, which knows its HTTP status.
//!
//! Handlers return [`AppError`] and never choose a format: the
//! [`render_errors`] middleware answers JSON `{"error": "<reason>"}` under
//! `/api/` and `/health`, and a readable HTML page everywhere else. It also
//! gives the same treatment to the bare error responses produced outside
//! handlers (405 from the router, 413 from the body limit, the timeout), so
//! a client never has to handle two error shapes.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use coord::CoordError;
use serde_json::json;

use crate::state::AppState;

/// An error answered to an HTTP client: a status and a reason that is safe
/// to show (internal details are logged, not returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    status: StatusCode,
    message: String,
}

impl AppError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The request is wrong; the message says how.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The thing asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A failure that is nobody's input: database, decoding and Redis
    /// script errors can quote SQL, scripts or stored data, so the whole
    /// error goes to the log under a fresh id and the client (and the
    /// audit log, which records the answer) gets only that id to quote.
    pub fn internal(err: &dyn std::fmt::Display) -> Self {
        let id = format!("{:08x}", rand::random::<u32>());
        tracing::error!(error_id = %id, error = %err, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal server error (error id {id}); the server log has the details"),
        )
    }

    /// The HTTP status answered.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason shown to the client.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for AppError {}

impl From<CoordError> for AppError {
    fn from(err: CoordError) -> Self {
        // A full or read-only disk is the operator's to fix, and nothing is
        // lost by refusing: say so plainly (507 for a full disk, as WebDAV
        // does) rather than "internal error".
        if let Some(fault) = err.storage_fault() {
            tracing::error!(error = %err, "storage fault");
            let status = match fault {
                coord::sql::StorageFault::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
                coord::sql::StorageFault::ReadOnly => StatusCode::SERVICE_UNAVAILABLE,
            };
            return Self::new(
                status,
                format!(
                    "{}: nothing was written; writes resume by themselves once it is fixed",
                    fault.describe()
                ),
            );
        }
        if err.is_internal() {
            return Self::internal(&err);
        }
        let status = if err.is_bad_input() {
            StatusCode::BAD_REQUEST
        } else if err.is_not_found() {
            StatusCode::NOT_FOUND
        } else {
            match &err {
                CoordError::JobActive { .. }
                | CoordError::WrongState { .. }
                | CoordError::NotRetrying { .. } => StatusCode::CONFLICT,
                _ if err.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            }
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return Self::internal(&err);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %err, "backend unavailable");
        }
        Self::new(status, one_line(&err.to_string()))
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        let status = match &rejection {
            // Syntax and shape errors are both the client's malformed body.
            JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
                StatusCode::BAD_REQUEST
            }
            other => other.status(),
        };
        Self::new(status, one_line(&rejection.body_text()))
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(rejection.status(), one_line(&rejection.body_text()))
    }
}

impl From<FormRejection> for AppError {
    fn from(rejection: FormRejection) -> Self {
        Self::new(rejection.status(), one_line(&rejection.body_text()))
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, one_line(&rejection.body_text()))
    }
}

/// Marker left on a response by [`AppError`] so the middleware can re-render
/// it in the format the route calls for.
#[derive(Debug, Clone)]
struct ErrorMessage(String);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        response.extensions_mut().insert(ErrorMessage(self.message));
        response
    }
}

/// A refusal made outside the handlers (the rate limiter's 429) with its
/// reason and no body: [`render_errors`] answers it in the route's format
/// and, since it runs inside authentication, in the signed-in user's shell.
pub fn bare_refusal(status: StatusCode, message: String) -> axum::http::Response<String> {
    let mut response = axum::http::Response::new(String::new());
    *response.status_mut() = status;
    response.extensions_mut().insert(ErrorMessage(message));
    response
}

/// Whether a path is answered in JSON (API and health checks, read by
/// programs) rather than HTML (read by people).
pub fn is_machine_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/health" || path.starts_with("/health/")
}

/// Gives every error response the format of its route: JSON for
/// [machine paths](is_machine_path), an HTML page otherwise — in the same
/// shell as every page (navigation, user menu, alerts banner) when someone
/// is signed in.
pub async fn render_errors(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let machine = is_machine_path(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let message = match response.extensions().get::<ErrorMessage>() {
        // Already our JSON.
        Some(_) if machine && !is_bare(&response) => return response,
        Some(ErrorMessage(message)) => message.clone(),
        None if is_bare(&response) => default_message(status),
        // Someone else's deliberate body (e.g. the overview page served
        // with 503): leave it alone.
        None => return response,
    };
    let mut rendered = if machine {
        AppError::new(status, message).into_response()
    } else {
        let user = response.extensions().get::<crate::auth::CurrentUser>();
        html_error(status, &message, &crate::http::page::page_ctx(user, &state))
    };
    // What the answer said besides its body stays (`WWW-Authenticate`,
    // `Retry-After`, `Allow`, a cookie); the body's own headers are new.
    for name in response.headers().keys() {
        if *name == header::CONTENT_TYPE
            || *name == header::CONTENT_LENGTH
            || rendered.headers().contains_key(name)
        {
            continue;
        }
        for value in response.headers().get_all(name) {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    rendered
}

/// An HTML error page with the given status, in `page`'s shell.
pub fn html_error(status: StatusCode, message: &str, page: &app::PageCtx) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let page = app::render_error_page(status.as_u16(), title, message, page);
    (status, Html(page)).into_response()
}

/// A response with no body of its own worth keeping: empty or plain text
/// from a layer or the router.
fn is_bare(response: &Response<Body>) -> bool {
    match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(ct) => ct.as_bytes().starts_with(b"text/plain"),
    }
}

/// The reason for an error produced outside our handlers.
fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this path".into(),
        StatusCode::PAYLOAD_TOO_LARGE => "request body is larger than 1 MiB".into(),
        StatusCode::GATEWAY_TIMEOUT => "the request took longer than 30 s".into(),
        other => other
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    }
}

/// Keeps a reason on one line, so JSON clients and log lines stay tidy.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use coord::queue::{JobId, JobState, QueueName};

    use super::*;

    fn q() -> QueueName {
        QueueName::new("emails").expect("valid")
    }

    fn id() -> JobId {
        JobId::new("1").expect("valid")
    }

    #[test]
    fn coord_errors_map_to_statuses() {
        let cases = [
            (
                CoordError::InvalidOptions("delay must not be negative".into()),
                StatusCode::BAD_REQUEST,
            ),
            (CoordError::QueueNotFound(q()), StatusCode::NOT_FOUND),
            (
                CoordError::JobNotFound {
                    queue: q(),
                    job: id(),
                },
                StatusCode::NOT_FOUND,
            ),
            (
                CoordError::WrongState {
                    queue: q(),
                    job: id(),
                    actual: JobState::Waiting,
                    expected: JobState::Failed,
                },
                StatusCode::CONFLICT,
            ),
            (
                CoordError::JobActive {
                    queue: q(),
                    job: id(),
                },
                StatusCode::CONFLICT,
            ),
            (
                CoordError::Unavailable("down".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                CoordError::Corrupt("bad row".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(AppError::from(err).status(), status);
        }
    }

    #[test]
    fn internal_details_are_not_answered() {
        let err = AppError::from(CoordError::Corrupt("SELECT secret FROM x".into()));
        assert!(!err.message().contains("secret"));
    }

    #[test]
    fn machine_paths() {
        assert!(is_machine_path("/api/queues"));
        assert!(is_machine_path("/health"));
        assert!(is_machine_path("/health/ready"));
        assert!(!is_machine_path("/"));
        assert!(!is_machine_path("/apis"));
        assert!(!is_machine_path("/queues/emails"));
    }

    #[test]
    fn reasons_stay_on_one_line() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
    }
}
