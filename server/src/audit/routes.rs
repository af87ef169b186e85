//! The audit log, read: the Audit page (`/audit`) and the same entries as
//! JSON (`/api/audit`), with one set of filters.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::{ACTIONS, AuditEntry, AuditFilter, Outcome};
use crate::http::error::AppError;
use crate::http::extract::{Json, Query};
use crate::state::AppState;

/// Entries per page when none is asked for.
pub const DEFAULT_LIMIT: u64 = 50;
/// Most entries per page.
pub const MAX_LIMIT: u64 = 500;
/// Longest filter value accepted: names and keys are shorter, and a longer
/// one is a mistake (or an attempt) better refused than searched for.
const MAX_FILTER: usize = 200;

/// Raw `?action=&actor=&target_kind=&target=&outcome=&offset=&limit=`,
/// kept as text so each bad value is refused with a reason of our own.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    action: Option<String>,
    actor: Option<String>,
    target_kind: Option<String>,
    target: Option<String>,
    outcome: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

/// A validated query: the filter, its text as typed (for the form), and
/// the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRequest {
    /// What to match.
    pub filter: AuditFilter,
    /// Entries to skip, newest first.
    pub offset: u64,
    /// Page size, 1..=[`MAX_LIMIT`].
    pub limit: u64,
}

impl AuditQuery {
    /// Validates the query: a 400 with the reason for an unknown outcome,
    /// a page size outside 1..=500, a bad offset, or a value with control
    /// characters or longer than 200 characters. Empty values mean "any".
    pub fn parse(&self) -> Result<AuditRequest, AppError> {
        let text = |name: &str, value: &Option<String>| -> Result<Option<String>, AppError> {
            let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            if value.chars().any(char::is_control) {
                return Err(AppError::bad_request(format!(
                    "{name} must not contain control characters"
                )));
            }
            if value.chars().count() > MAX_FILTER {
                return Err(AppError::bad_request(format!(
                    "{name} is longer than {MAX_FILTER} characters"
                )));
            }
            Ok(Some(value.to_owned()))
        };
        let outcome = text("outcome", &self.outcome)?
            .map(|o| o.parse::<Outcome>().map_err(AppError::bad_request))
            .transpose()?;
        let offset = match text("offset", &self.offset)? {
            None => 0,
            Some(t) => t.parse::<u64>().map_err(|_| {
                AppError::bad_request(format!("offset must be a whole number (got {t:?})"))
            })?,
        };
        let limit = match text("limit", &self.limit)? {
            None => DEFAULT_LIMIT,
            Some(t) => t
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    AppError::bad_request(format!(
                        "limit must be a whole number between 1 and {MAX_LIMIT} (got {t:?})"
                    ))
                })?,
        };
        Ok(AuditRequest {
            filter: AuditFilter {
                action: text("action", &self.action)?,
                actor: text("actor", &self.actor)?,
                target_kind: text("target_kind", &self.target_kind)?,
                outcome,
                q: text("target", &self.target)?,
            },
            offset,
            limit,
        })
    }
}

/// One page of entries; a database error is logged whole and answered
/// 503 with a reason that names the log rather than quoting SQL.
async fn read(
    state: &AppState,
    request: &AuditRequest,
) -> Result<(Vec<AuditEntry>, u64), AppError> {
    state
        .audit
        .list(&request.filter, request.offset, request.limit)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "cannot read the audit log");
            AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the audit log could not be read; see the server log",
            )
        })
}

fn row(entry: AuditEntry) -> app::AuditRow {
    app::AuditRow {
        id: entry.id,
        at: entry.at,
        actor: entry.actor,
        address: entry.address,
        action: entry.action,
        target_kind: entry.target_kind,
        target: entry.target,
        outcome: entry.outcome.as_str().to_owned(),
        detail: entry.detail,
    }
}

/// `GET /audit?action=&actor=&target=&outcome=&offset=&limit=`: the log,
/// newest first, filtered and paged.
pub async fn page(
    State(state): State<AppState>,
    page: crate::http::page::Page,
    Query(query): Query<AuditQuery>,
) -> Result<Html<String>, AppError> {
    let request = query.parse()?;
    let (entries, total) = read(&state, &request).await?;
    let filter = &request.filter;
    let vm = app::AuditVm {
        rows: entries.into_iter().map(row).collect(),
        filter: app::AuditFilterVm {
            action: filter.action.clone().unwrap_or_default(),
            actor: filter.actor.clone().unwrap_or_default(),
            target: filter.q.clone().unwrap_or_default(),
            outcome: filter
                .outcome
                .map(|o| o.as_str().to_owned())
                .unwrap_or_default(),
        },
        offset: request.offset,
        limit: request.limit,
        total,
        actions: ACTIONS.iter().map(|a| (*a).to_owned()).collect(),
        lost: state.audit.lost(),
    };
    Ok(Html(app::render_audit_page(&vm, page.ctx())))
}

/// An entry as the API shows it.
pub fn entry_json(e: &AuditEntry) -> Value {
    json!({
        "id": e.id,
        "at": e.at,
        "actor": e.actor,
        "address": e.address,
        "action": e.action,
        "targetKind": e.target_kind,
        "target": e.target,
        "outcome": e.outcome.as_str(),
        "detail": e.detail,
    })
}

/// `GET /api/audit` with the page's query: one page of entries, newest
/// first, and how many match.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, AppError> {
    let request = query.parse()?;
    let (entries, total) = read(&state, &request).await?;
    Ok(Json(json!({
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "total": total,
        "offset": request.offset,
        "limit": request.limit,
        "lost": state.audit.lost(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> AuditQuery {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        AuditQuery {
            action: get("action"),
            actor: get("actor"),
            target_kind: get("target_kind"),
            target: get("target"),
            outcome: get("outcome"),
            offset: get("offset"),
            limit: get("limit"),
        }
    }

    #[test]
    fn a_query_becomes_a_filter_and_a_page() {
        let request = query(&[
            ("action", "queue.pause"),
            ("actor", ""),
            ("target", " emails "),
            ("outcome", "refused"),
            ("offset", "50"),
            ("limit", "500"),
        ])
        .parse()
        .expect("valid");
        assert_eq!(
            request,
            AuditRequest {
                filter: AuditFilter {
                    action: Some("queue.pause".into()),
                    actor: None,
                    target_kind: None,
                    outcome: Some(Outcome::Refused),
                    q: Some("emails".into()),
                },
                offset: 50,
                limit: 500,
            }
        );
        let defaults = query(&[]).parse().expect("defaults");
        assert_eq!((defaults.offset, defaults.limit), (0, DEFAULT_LIMIT));
        assert_eq!(defaults.filter, AuditFilter::default());
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let refused = |pairs: &[(&str, &str)]| {
            query(pairs)
                .parse()
                .expect_err("refused")
                .message()
                .to_owned()
        };
        assert!(refused(&[("outcome", "done")]).contains("unknown outcome \"done\""));
        for limit in ["0", "501", "x"] {
            assert!(refused(&[("limit", limit)]).contains("between 1 and 500"));
        }
        assert!(refused(&[("offset", "-1")]).contains("offset"));
        assert!(refused(&[("actor", "a\u{7}b")]).contains("control characters"));
        assert!(refused(&[("target", "a\nb")]).contains("target must not"));
        assert!(refused(&[("action", &"x".repeat(201))]).contains("longer than 200"));
    }
}
