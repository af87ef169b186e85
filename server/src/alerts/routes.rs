//! Alerts: the Alerts page's buttons (acknowledge, silence, rule edits) as
//! form posts, and the same under `/api/alerts…` as JSON.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use coord::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::alerts::model::{ANY_SUBJECT, Alert, Rule, RuleKind, Severity};
use crate::alerts::runner::check_rule;
use crate::alerts::store::{Delivery, RuleSource};
use crate::audit::{Actor, AuditEntry, Outcome};
use crate::db::DbError;
use crate::http::error::AppError;
use crate::http::extract::{Form, Json, Path, Query};
use crate::http::flash::{Flash, with_flash_cleared};
use crate::http::forms::{ActionFields, redirect};
use crate::http::page::Page;
use crate::live::stream::{Events, Scope};
use crate::state::AppState;
use axum::response::Html;

/// Longest silence accepted: a week.
const MAX_SILENCE_SECS: u64 = 7 * 24 * 3600;
/// History rows per page, by default and at most.
const HISTORY_PAGE: u64 = 50;
const MAX_HISTORY_PAGE: u64 = 500;

/// The path of one alert's routes.
#[derive(Debug, Deserialize)]
pub struct AlertPath {
    /// The alert's fingerprint.
    pub fingerprint: String,
}

/// The path of one rule's routes.
#[derive(Debug, Deserialize)]
pub struct RulePath {
    /// The rule's name.
    pub name: String,
}

impl From<DbError> for AppError {
    fn from(err: DbError) -> Self {
        tracing::error!(error = %err, "alert store failed");
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the alert database did not answer; see the server log",
        )
    }
}

/// An entry for an action on one alert; its rule goes in the detail, since
/// a fingerprint alone tells a reader nothing.
fn alert_entry(state: &AppState, actor: &Actor, action: &str, fingerprint: &str) -> AuditEntry {
    let rule = state
        .alerts
        .view()
        .active
        .iter()
        .find(|a| a.fingerprint == fingerprint)
        .map(|a| format!("rule {}", a.rule));
    AuditEntry {
        detail: rule,
        ..AuditEntry::new(actor, action, "alert", fingerprint)
    }
}

/// Records an action on one alert: done, refused (no pending or firing
/// alert has that fingerprint) or failed (the store's error). `done_detail`
/// is added to the rule on success.
async fn audit_alert(
    state: &AppState,
    entry: AuditEntry,
    result: Result<bool, DbError>,
    done_detail: Option<String>,
) -> Result<bool, AppError> {
    let rule = entry.detail.clone();
    let join = |a: Option<String>, b: Option<String>| match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a}, {b}")),
        (a, b) => a.or(b),
    };
    match result {
        Ok(true) => {
            let entry = entry.ended(Outcome::Ok, join(rule, done_detail));
            state.audit.note(entry).await;
            Ok(true)
        }
        Ok(false) => {
            let reason = Some("no pending or firing alert has this fingerprint".to_owned());
            let entry = entry.ended(Outcome::Refused, join(reason, rule));
            state.audit.note(entry).await;
            Ok(false)
        }
        Err(err) => state.audit.outcome(entry, Err(err.into())).await,
    }
}

fn back(pairs: Vec<(String, String)>) -> String {
    ActionFields::from_pairs(pairs).back_or("/alerts".to_owned())
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim())
}

/// Parses a silence length: `1h`, `4h`, `24h`, `30m`, or seconds.
fn silence_secs(text: &str) -> Result<u64, AppError> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let amount: u64 = digits.parse().map_err(|_| {
        AppError::bad_request(format!(
            "silence length {text:?} is not like 1h, 30m or 3600"
        ))
    })?;
    let secs = match unit {
        "" | "s" => amount,
        "m" => amount * 60,
        "h" => amount * 3600,
        "d" => amount * 86_400,
        _ => {
            return Err(AppError::bad_request(format!(
                "silence length {text:?} is not like 1h, 30m or 3600"
            )));
        }
    };
    if secs == 0 || secs > MAX_SILENCE_SECS {
        return Err(AppError::bad_request("a silence lasts from 1 s to 7 days"));
    }
    Ok(secs)
}

/// A rule from form fields; `name` and `kind` come from the path and the
/// stored rule when editing.
fn rule_from_form(
    pairs: &[(String, String)],
    name: String,
    kind: Option<RuleKind>,
) -> Result<Rule, AppError> {
    let number = |field_name: &str, default: Option<f64>| -> Result<f64, AppError> {
        match field(pairs, field_name).filter(|v| !v.is_empty()) {
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| {
                    AppError::bad_request(format!("{field_name} must be a number (got {v:?})"))
                }),
            None => default.ok_or_else(|| {
                AppError::bad_request(format!("the form has no {field_name} field"))
            }),
        }
    };
    let kind = match kind {
        Some(kind) => kind,
        None => field(pairs, "kind")
            .ok_or_else(|| AppError::bad_request("the form has no kind field"))?
            .parse::<RuleKind>()
            .map_err(AppError::bad_request)?,
    };
    let secs = |field_name: &str, default: f64| -> Result<u64, AppError> {
        let n = number(field_name, Some(default))?;
        if n < 0.0 || n.fract() != 0.0 {
            return Err(AppError::bad_request(format!(
                "{field_name} must be a whole number of seconds"
            )));
        }
        Ok(n as u64)
    };
    let rule = Rule {
        name,
        kind,
        target: field(pairs, "target")
            .filter(|t| !t.is_empty())
            .unwrap_or(ANY_SUBJECT)
            .to_owned(),
        threshold: number("threshold", Some(0.0))?,
        window_secs: secs("window_secs", 300.0)?,
        for_secs: secs("for_secs", 0.0)?,
        severity: field(pairs, "severity")
            .unwrap_or("warning")
            .parse::<Severity>()
            .map_err(AppError::bad_request)?,
        enabled: field(pairs, "enabled").is_some_and(|v| matches!(v, "on" | "true" | "1")),
    };
    check_rule(&rule).map_err(AppError::bad_request)?;
    Ok(rule)
}

/// `POST /alerts/{fingerprint}/ack`.
pub async fn ack(
    State(state): State<AppState>,
    actor: Actor,
    Path(AlertPath { fingerprint }): Path<AlertPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let entry = alert_entry(&state, &actor, "alert.ack", &fingerprint);
    let result = state
        .alerts
        .store()
        .acknowledge(&fingerprint, &actor.name, now_ms())
        .await;
    let done = audit_alert(&state, entry, result, None).await?;
    state.alerts.refresh().await;
    let notice = if done {
        "Acknowledged: the alert keeps firing until its condition clears.".to_owned()
    } else {
        "Nothing was done: that alert is no longer pending or firing.".to_owned()
    };
    Ok(redirect(&back(pairs), &notice))
}

/// `POST /alerts/{fingerprint}/silence` with `for` (`1h`, `4h`, `24h`…).
pub async fn silence(
    State(state): State<AppState>,
    actor: Actor,
    Path(AlertPath { fingerprint }): Path<AlertPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let entry = alert_entry(&state, &actor, "alert.silence", &fingerprint);
    let secs = match field(&pairs, "for")
        .ok_or_else(|| AppError::bad_request("the form has no for field"))
        .and_then(silence_secs)
    {
        Ok(secs) => secs,
        Err(err) => return state.audit.outcome(entry, Err(err)).await,
    };
    let now = now_ms();
    let until = now + i64::try_from(secs * 1000).unwrap_or(i64::MAX);
    let result = state
        .alerts
        .store()
        .silence(&fingerprint, Some(until), now)
        .await;
    let length = format!("for {}", app::format_window(until - now));
    let done = audit_alert(&state, entry, result, Some(length)).await?;
    state.alerts.refresh().await;
    let notice = if done {
        format!(
            "Silenced for {}: receivers are not told about it until then.",
            app::format_window(i64::try_from(secs * 1000).unwrap_or(i64::MAX))
        )
    } else {
        "Nothing was done: that alert is no longer pending or firing.".to_owned()
    };
    Ok(redirect(&back(pairs), &notice))
}

/// `POST /alerts/{fingerprint}/unsilence`.
pub async fn unsilence(
    State(state): State<AppState>,
    actor: Actor,
    Path(AlertPath { fingerprint }): Path<AlertPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let entry = alert_entry(&state, &actor, "alert.unsilence", &fingerprint);
    let result = state
        .alerts
        .store()
        .silence(&fingerprint, None, now_ms())
        .await;
    let done = audit_alert(&state, entry, result, None).await?;
    state.alerts.refresh().await;
    let notice = if done {
        "The silence is lifted."
    } else {
        "Nothing was done: that alert is no longer pending or firing."
    };
    Ok(redirect(&back(pairs), notice))
}

/// `POST /alerts/rules`: a new rule (409 if the name is taken).
pub async fn create_rule(
    State(state): State<AppState>,
    actor: Actor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let name = field(&pairs, "name").unwrap_or_default().to_owned();
    let entry = AuditEntry::new(&actor, "alert_rule.create", "alert_rule", &name);
    let result = async {
        let name = field(&pairs, "name")
            .ok_or_else(|| AppError::bad_request("the form has no name field"))?
            .to_owned();
        let rule = rule_from_form(&pairs, name, None)?;
        let store = state.alerts.store();
        if !store
            .add_rule_if_absent(&rule, RuleSource::Ui, now_ms())
            .await?
        {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                format!("a rule named {} exists; edit it instead", rule.name),
            ));
        }
        tracing::info!(rule = %rule.name, "alert rule created");
        rules_changed(&state).await;
        Ok(redirect(
            &back(pairs.clone()),
            &format!("Rule {} created.", rule.name),
        ))
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// `POST /alerts/rules/{name}`: saves a rule's settings (its kind stays).
pub async fn update_rule(
    State(state): State<AppState>,
    actor: Actor,
    Path(RulePath { name }): Path<RulePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let entry = AuditEntry::new(&actor, "alert_rule.update", "alert_rule", &name);
    let result = async {
        let store = state.alerts.store();
        let existing = store
            .rule(&name)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no alert rule is named {name:?}")))?;
        let rule = rule_from_form(&pairs, name, Some(existing.kind))?;
        save_rule(&state, &rule).await?;
        Ok(redirect(
            &back(pairs),
            &format!("Rule {} saved.", rule.name),
        ))
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// `POST /alerts/rules/{name}/delete`: its alerts resolve at the next
/// evaluation.
pub async fn delete_rule(
    State(state): State<AppState>,
    actor: Actor,
    Path(RulePath { name }): Path<RulePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let entry = AuditEntry::new(&actor, "alert_rule.delete", "alert_rule", &name);
    let result = delete_rule_named(&state, &name).await;
    state.audit.outcome(entry, result).await?;
    Ok(redirect(
        &back(pairs),
        &format!("Rule {name} deleted; its alerts resolve at the next evaluation."),
    ))
}

/// An alert as the API shows it.
pub fn alert_json(a: &Alert) -> Value {
    json!({
        "fingerprint": a.fingerprint,
        "rule": a.rule,
        "kind": a.kind.as_str(),
        a.kind.subject(): a.subject,
        "subject": a.subject,
        "status": a.status.as_str(),
        "severity": a.severity.as_str(),
        "value": a.value,
        "summary": a.summary,
        "pendingSince": a.pending_since,
        "firingSince": a.firing_since,
        "resolvedAt": a.resolved_at,
        "acknowledgedBy": a.acknowledged.as_ref().map(|(by, _)| by),
        "acknowledgedAt": a.acknowledged.as_ref().map(|(_, at)| at),
        "silencedUntil": a.silenced_until,
    })
}

/// A rule as the API shows it (and accepts it).
pub fn rule_json(r: &Rule) -> Value {
    json!({
        "name": r.name,
        "kind": r.kind.as_str(),
        "target": r.target,
        "threshold": r.threshold,
        "windowSecs": r.window_secs,
        "forSecs": r.for_secs,
        "severity": r.severity.as_str(),
        "enabled": r.enabled,
    })
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "fingerprint": d.fingerprint,
        "rule": d.rule,
        "event": d.event,
        "receiver": d.receiver,
        "status": d.status,
        "attempts": d.attempts,
        "lastError": d.last_error,
        "nextAttemptAt": d.next_attempt_at,
        "createdAt": d.created_at,
        "sentAt": d.sent_at,
    })
}

/// `GET /api/alerts`: pending and firing alerts, rules, recent deliveries
/// and which instance evaluates.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let view = state.alerts.view();
    Json(json!({
        "active": view.active.iter().map(alert_json).collect::<Vec<_>>(),
        "rules": view.rules.iter().map(rule_json).collect::<Vec<_>>(),
        "deliveries": view.deliveries.iter().map(delivery_json).collect::<Vec<_>>(),
        "receivers": view.receivers,
        "evaluator": view.evaluator,
        "problem": view.problem,
    }))
}

/// Paging of the history.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    offset: Option<u64>,
    limit: Option<u64>,
}

/// `GET /api/alerts/history?offset=&limit=`: resolved alerts, newest first.
pub async fn history(
    State(state): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, AppError> {
    let limit = q.limit.unwrap_or(HISTORY_PAGE);
    if limit == 0 || limit > MAX_HISTORY_PAGE {
        return Err(AppError::bad_request(format!(
            "limit must be between 1 and {MAX_HISTORY_PAGE}"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    let (alerts, total) = state.alerts.store().history(offset, limit).await?;
    Ok(Json(json!({
        "alerts": alerts.iter().map(alert_json).collect::<Vec<_>>(),
        "total": total,
        "offset": offset,
        "limit": limit,
    })))
}

/// The body of `POST /api/alerts/{fingerprint}/silence`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    /// How long, in seconds (1 s to 7 days).
    #[serde(rename = "forSecs")]
    pub for_secs: u64,
}

/// `POST /api/alerts/{fingerprint}/ack`.
pub async fn api_ack(
    State(state): State<AppState>,
    actor: Actor,
    Path(AlertPath { fingerprint }): Path<AlertPath>,
) -> Result<Json<Value>, AppError> {
    let entry = alert_entry(&state, &actor, "alert.ack", &fingerprint);
    let result = state
        .alerts
        .store()
        .acknowledge(&fingerprint, &actor.name, now_ms())
        .await;
    if !audit_alert(&state, entry, result, None).await? {
        return Err(AppError::not_found(format!(
            "no pending or firing alert has fingerprint {fingerprint:?}"
        )));
    }
    state.alerts.refresh().await;
    Ok(Json(
        json!({ "fingerprint": fingerprint, "acknowledged": true }),
    ))
}

/// `POST /api/alerts/{fingerprint}/silence` with `{"forSecs": 3600}`.
pub async fn api_silence(
    State(state): State<AppState>,
    actor: Actor,
    Path(AlertPath { fingerprint }): Path<AlertPath>,
    Json(body): Json<SilenceBody>,
) -> Result<Json<Value>, AppError> {
    let entry = alert_entry(&state, &actor, "alert.silence", &fingerprint);
    let secs = match silence_secs(&body.for_secs.to_string()) {
        Ok(secs) => secs,
        Err(err) => return state.audit.outcome(entry, Err(err)).await,
    };
    let now = now_ms();
    let until = now + i64::try_from(secs * 1000).unwrap_or(i64::MAX);
    let result = state
        .alerts
        .store()
        .silence(&fingerprint, Some(until), now)
        .await;
    let length = format!("for {}", app::format_window(until - now));
    if !audit_alert(&state, entry, result, Some(length)).await? {
        return Err(AppError::not_found(format!(
            "no pending or firing alert has fingerprint {fingerprint:?}"
        )));
    }
    state.alerts.refresh().await;
    Ok(Json(
        json!({ "fingerprint": fingerprint, "silencedUntil": until }),
    ))
}

/// A rule in the API's JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleBody {
    name: String,
    kind: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    threshold: f64,
    #[serde(default = "default_window")]
    window_secs: u64,
    #[serde(default)]
    for_secs: u64,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn default_window() -> u64 {
    300
}

fn enabled_by_default() -> bool {
    true
}

/// `POST /api/alerts/rules`: creates or replaces a rule by name.
pub async fn api_save_rule(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<RuleBody>,
) -> Result<Json<Value>, AppError> {
    // Creating or replacing: the log tells them apart.
    let existed = state.alerts.store().rule(&body.name).await;
    let action = match existed {
        Ok(Some(_)) => "alert_rule.update",
        _ => "alert_rule.create",
    };
    let entry = AuditEntry::new(&actor, action, "alert_rule", &body.name);
    let result = async {
        existed?;
        save_rule_body(&state, body).await
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// Checks and saves a rule from the API's JSON.
async fn save_rule_body(state: &AppState, body: RuleBody) -> Result<Json<Value>, AppError> {
    let rule = Rule {
        kind: body.kind.parse().map_err(AppError::bad_request)?,
        severity: body
            .severity
            .as_deref()
            .unwrap_or("warning")
            .parse()
            .map_err(AppError::bad_request)?,
        target: body.target.unwrap_or_else(|| ANY_SUBJECT.to_owned()),
        threshold: body.threshold,
        window_secs: body.window_secs,
        for_secs: body.for_secs,
        enabled: body.enabled,
        name: body.name,
    };
    check_rule(&rule).map_err(AppError::bad_request)?;
    save_rule(state, &rule).await?;
    Ok(Json(rule_json(&rule)))
}

/// Saves `rule` over its namesake, as the rule form and the API both do,
/// and has the rules evaluated at once.
async fn save_rule(state: &AppState, rule: &Rule) -> Result<(), AppError> {
    state
        .alerts
        .store()
        .save_rule(rule, RuleSource::Ui, now_ms())
        .await?;
    tracing::info!(rule = %rule.name, "alert rule saved");
    rules_changed(state).await;
    Ok(())
}

/// After a rule changed: evaluate now rather than at the next interval,
/// and reload the alerts view so the pages show the change.
async fn rules_changed(state: &AppState) {
    state.alerts.evaluate_soon();
    state.alerts.refresh().await;
}

/// `POST /api/alerts/rules/{name}/delete`.
pub async fn api_delete_rule(
    State(state): State<AppState>,
    actor: Actor,
    Path(RulePath { name }): Path<RulePath>,
) -> Result<Json<Value>, AppError> {
    let entry = AuditEntry::new(&actor, "alert_rule.delete", "alert_rule", &name);
    let result = delete_rule_named(&state, &name).await;
    state.audit.outcome(entry, result).await?;
    Ok(Json(json!({ "name": name, "deleted": true })))
}

/// Deletes a rule (404 if there is none by that name); its alerts resolve
/// at the next evaluation.
async fn delete_rule_named(state: &AppState, name: &str) -> Result<(), AppError> {
    if !state.alerts.store().delete_rule(name).await? {
        return Err(AppError::not_found(format!(
            "no alert rule is named {name:?}"
        )));
    }
    tracing::info!(rule = %name, "alert rule deleted");
    rules_changed(state).await;
    Ok(())
}

/// Paging of the Alerts page's history.
#[derive(Debug, serde::Deserialize)]
pub struct AlertsQuery {
    offset: Option<String>,
    limit: Option<String>,
}

impl AlertsQuery {
    /// Offset and limit, validated like the queue page's (400 with the
    /// reason otherwise).
    pub fn parse(&self) -> Result<(u64, u64), AppError> {
        let number = |name: &str, text: &Option<String>, default: u64| -> Result<u64, AppError> {
            match text.as_deref() {
                None | Some("") => Ok(default),
                Some(t) => t.parse::<u64>().map_err(|_| {
                    AppError::bad_request(format!("{name} must be a whole number (got {t:?})"))
                }),
            }
        };
        let offset = number("offset", &self.offset, 0)?;
        let limit = number("limit", &self.limit, crate::alerts::runner::HISTORY_PAGE)?;
        if limit == 0 || limit > 500 {
            return Err(AppError::bad_request("limit must be between 1 and 500"));
        }
        Ok((offset, limit))
    }

    /// Whether this is the page the live stream keeps current in full.
    pub fn first_page(offset: u64, limit: u64) -> bool {
        offset == 0 && limit == crate::alerts::runner::HISTORY_PAGE
    }
}

/// `GET /alerts?offset=&limit=`: pending and firing alerts with their
/// buttons, webhook deliveries, the history, and the rules editor.
pub async fn page(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
    Query(query): Query<AlertsQuery>,
) -> Result<Response, AppError> {
    let (offset, limit) = query.parse()?;
    let view = state.alerts.view();
    let (history, total) = if AlertsQuery::first_page(offset, limit) {
        (view.history.clone(), view.history_total)
    } else {
        state.alerts.store().history(offset, limit).await?
    };
    let vm = crate::alerts::vm::alerts_page(&view, &history, offset, limit, total, now_ms());
    let shown = notice.is_some();
    Ok(with_flash_cleared(
        Html(app::render_alerts_page(&vm, notice, page.ctx())),
        shown,
    ))
}

/// `GET /events/alerts?offset=&limit=`: on later pages of history only
/// the active alerts and deliveries are live.
pub async fn events(
    State(state): State<AppState>,
    Query(query): Query<AlertsQuery>,
) -> Result<Events, AppError> {
    let (offset, limit) = query.parse()?;
    let first_page = AlertsQuery::first_page(offset, limit);
    Ok(state.streams.open(Scope::Alerts { first_page }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_lengths_parse_with_a_reason() {
        assert_eq!(silence_secs("1h").unwrap(), 3600);
        assert_eq!(silence_secs("30m").unwrap(), 1800);
        assert_eq!(silence_secs("90").unwrap(), 90);
        assert_eq!(silence_secs("7d").unwrap(), MAX_SILENCE_SECS);
        for bad in ["", "0", "8d", "1w", "h", "-1h"] {
            assert!(silence_secs(bad).is_err(), "{bad}");
        }
    }
}
