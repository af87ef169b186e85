//! `/schedules`, `/api/schedules`, the operator's pause / resume / run now
//! and the admin's edit and remove: each operation written once ([`act`],
//! [`save`]) with the form and the API as thin wrappers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use coord::queue::schedules::{Schedule, ScheduleId, ScheduleState};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ScheduleAction;
use super::vm::{self, SchedulesQuery};
use crate::audit::{Actor, AuditEntry};
use crate::http::error::AppError;
use crate::http::extract::{Form, Json, Path, Query};
use crate::http::flash::{Flash, with_flash_cleared};
use crate::http::forms::{ActionFields, redirect};
use crate::http::page::Page;
use crate::live::stream::{Events, Scope};
use crate::state::AppState;

/// The path of a schedule action.
#[derive(Debug, Deserialize)]
pub struct ScheduleActionPath {
    /// The schedule's id.
    pub id: String,
    /// `pause`, `resume` or `run`.
    pub action: String,
}

/// The path of one schedule.
#[derive(Debug, Deserialize)]
pub struct SchedulePath {
    /// The schedule's id.
    pub id: String,
}

/// Every schedule as the hub last read it (at most 2 s old, and fresh
/// after an action, which waits for the read that shows it): a page load
/// costs no read of 10,000 schedules, which took 100–300 ms (see
/// docs/PERFORMANCE.md). Before the hub's first read, a read now.
async fn figures(state: &AppState) -> std::sync::Arc<super::ScheduleFigures> {
    match state.hub.current().schedules.clone() {
        Some(figures) => figures,
        None => std::sync::Arc::new(state.schedules.figures().await),
    }
}

/// The page's view model from the hub's figures; the BullMQ part reads
/// only the chosen BullMQ queue.
async fn read(state: &AppState, query: &SchedulesQuery) -> app::SchedulesVm {
    let figures = figures(state).await;
    let mut page = vm::page(&figures, query, state.schedules.fires_here());
    page.bull = crate::bullmq::schedulers::read(state, query).await;
    page
}

/// `GET /schedules?queue=&offset=&bull=&bull_offset=`.
pub async fn page(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
    Query(query): Query<SchedulesQuery>,
) -> Response {
    let mut vm = read(&state, &query).await;
    vm.notice = notice.clone();
    with_flash_cleared(
        Html(app::render_schedules_page(&vm, page.ctx())),
        notice.is_some(),
    )
}

/// `GET /events/schedules?queue=&offset=`.
pub async fn events(State(state): State<AppState>, Query(query): Query<SchedulesQuery>) -> Events {
    state.streams.open(Scope::Schedules {
        query: query.native(),
    })
}

/// One schedule as the API answers it: its stored state (the definition,
/// next and last run, last job, runs, version) with its status and next
/// five runs.
fn schedule_json(state: &ScheduleState) -> Value {
    let mut value = serde_json::to_value(state).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("status".into(), vm::status(state).label().into());
        map.insert(
            "nextRuns".into(),
            json!(state.next_runs(app::NEXT_RUNS).unwrap_or_default()),
        );
    }
    value
}

/// `GET /api/schedules?queue=&offset=`: a page of schedules (50), with
/// counts over every match.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<SchedulesQuery>,
) -> Result<Json<Value>, AppError> {
    let figures = figures(&state).await;
    if let Some(problem) = &figures.problem {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the schedules could not be read: {problem}"),
        ));
    }
    let matching = vm::matching(&figures, &query);
    let counts = vm::counts(&matching);
    Ok(Json(json!({
        "schedules": matching
            .iter()
            .skip(query.offset)
            .take(app::SCHEDULES_PER_PAGE)
            .map(|s| schedule_json(s))
            .collect::<Vec<_>>(),
        "total": matching.len(),
        "offset": query.offset,
        "limit": app::SCHEDULES_PER_PAGE,
        "counts": {
            "active": counts.active,
            "paused": counts.paused,
            "finished": counts.finished,
        },
        "firesHere": state.schedules.fires_here(),
    })))
}

/// `GET /api/schedules/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Path(SchedulePath { id }): Path<SchedulePath>,
) -> Result<Json<Value>, AppError> {
    let id = ScheduleId::new(id)?;
    let found = state.schedules.queues().schedule(&id).await?;
    Ok(Json(schedule_json(&found)))
}

/// Carries out an operator's (or, for remove, the admin's) action on a
/// schedule, records it in the audit log, and waits (up to a second) for
/// the snapshot that shows it. Says what was done.
pub async fn act(
    state: &AppState,
    actor: &Actor,
    id: &str,
    action: &str,
) -> Result<(ScheduleId, ScheduleAction, String), AppError> {
    let entry = AuditEntry::new(actor, &format!("schedule.{action}"), "schedule", id);
    let result = async {
        let parsed: ScheduleAction = action.parse().map_err(|_| {
            AppError::not_found(format!(
                "schedules can be paused, resumed, run or removed, not {action:?}"
            ))
        })?;
        let schedule = ScheduleId::new(id)?;
        let told = state.schedules.act(&schedule, parsed).await?;
        state.hub.refresh_schedules().await;
        Ok((schedule, parsed, told))
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// `POST /schedules/{id}/{action}` (operator; `remove` is the admin's own
/// route): the form's wrapper of [`act`].
pub async fn act_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(ScheduleActionPath { id, action }): Path<ScheduleActionPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let back = ActionFields::from_pairs(pairs).back_or("/schedules".to_owned());
    let (_, _, told) = act(&state, &actor, &id, &action).await?;
    Ok(redirect(&back, &told))
}

/// `POST /api/schedules/{id}/{action}` (operator; `remove` admin): the
/// API's wrapper of [`act`]. 404 for an unknown schedule or action.
pub async fn act_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(ScheduleActionPath { id, action }): Path<ScheduleActionPath>,
) -> Result<Json<Value>, AppError> {
    let (schedule, action, told) = act(&state, &actor, &id, &action).await?;
    Ok(Json(json!({
        "schedule": schedule.as_str(),
        "action": action.as_str(),
        "done": told,
    })))
}

/// `POST /schedules/{id}/remove` (admin).
pub async fn remove_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(SchedulePath { id }): Path<SchedulePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let back = ActionFields::from_pairs(pairs).back_or("/schedules".to_owned());
    let (_, _, told) = act(&state, &actor, &id, "remove").await?;
    Ok(redirect(&back, &told))
}

/// `POST /api/schedules/{id}/remove` (admin).
pub async fn remove_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(SchedulePath { id }): Path<SchedulePath>,
) -> Result<Json<Value>, AppError> {
    let (schedule, action, told) = act(&state, &actor, &id, "remove").await?;
    Ok(Json(json!({
        "schedule": schedule.as_str(),
        "action": action.as_str(),
        "done": told,
    })))
}

/// Whether a save creates a schedule or edits one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// A new one: refused (409) when the id is taken.
    Create,
    /// The one at this id: refused (404) when there is none.
    Update,
    /// Either (the API's upsert).
    Upsert,
}

/// Stores a schedule (the one operation behind the form and the API),
/// records it in the audit log, and waits for the snapshot that shows it.
pub async fn save(
    state: &AppState,
    actor: &Actor,
    schedule: Result<Schedule, String>,
    id: &str,
    mode: SaveMode,
) -> Result<ScheduleState, AppError> {
    let action = match mode {
        SaveMode::Create => "schedule.create",
        SaveMode::Update => "schedule.update",
        SaveMode::Upsert => "schedule.save",
    };
    let entry = AuditEntry::new(actor, action, "schedule", id);
    let result = async {
        let schedule = schedule.map_err(AppError::bad_request)?;
        let queues = state.schedules.queues();
        let exists = match queues.schedule(&schedule.id).await {
            Ok(_) => true,
            Err(coord::CoordError::ScheduleNotFound(_)) => false,
            Err(err) => return Err(err.into()),
        };
        match (mode, exists) {
            (SaveMode::Create, true) => {
                return Err(AppError::new(
                    StatusCode::CONFLICT,
                    format!("a schedule {} exists; edit it instead", schedule.id),
                ));
            }
            (SaveMode::Update, false) => {
                return Err(AppError::not_found(format!(
                    "no schedule {} (removed meanwhile?)",
                    schedule.id
                )));
            }
            _ => {}
        }
        let saved = queues.upsert_schedule(schedule).await?;
        tracing::info!(schedule = %saved.schedule.id, "schedule saved");
        state.hub.refresh_schedules().await;
        Ok(saved)
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// `GET /schedules/new` (admin): the form of a new schedule.
pub async fn new_page(page: Page) -> Html<String> {
    Html(app::render_schedule_form_page(&vm::new_form(), page.ctx()))
}

/// `GET /schedules/{id}/edit` (admin): the form of a stored schedule.
pub async fn edit_page(
    State(state): State<AppState>,
    page: Page,
    Path(SchedulePath { id }): Path<SchedulePath>,
) -> Result<Html<String>, AppError> {
    let id = ScheduleId::new(id)?;
    let found = state.schedules.queues().schedule(&id).await?;
    Ok(Html(app::render_schedule_form_page(
        &vm::form_of(&found),
        page.ctx(),
    )))
}

/// The form again, with what was typed and why it was not saved.
fn refused(page: &Page, mut form: app::ScheduleFormVm, err: &AppError) -> Response {
    form.error = Some(err.message().to_owned());
    let status = if err.status().is_client_error() {
        err.status()
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Html(app::render_schedule_form_page(&form, page.ctx())),
    )
        .into_response()
}

/// `POST /schedules` (admin): the form's wrapper of [`save`] for a new
/// schedule. A refused save shows the form again, nothing typed lost.
pub async fn create_form(
    State(state): State<AppState>,
    actor: Actor,
    page: Page,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = vm::form_from_pairs(&pairs, None);
    let id = form.id.trim().to_owned();
    match save(
        &state,
        &actor,
        vm::schedule_of(&form),
        &id,
        SaveMode::Create,
    )
    .await
    {
        Ok(saved) => redirect("/schedules", &format!("Created {}.", saved.schedule.id)),
        Err(err) => refused(&page, form, &err),
    }
}

/// `POST /schedules/{id}/edit` (admin): the form's wrapper of [`save`] for an
/// edit; the id is the path's.
pub async fn update_form(
    State(state): State<AppState>,
    actor: Actor,
    page: Page,
    Path(SchedulePath { id }): Path<SchedulePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = vm::form_from_pairs(&pairs, Some(&id));
    match save(
        &state,
        &actor,
        vm::schedule_of(&form),
        &id,
        SaveMode::Update,
    )
    .await
    {
        Ok(saved) => redirect("/schedules", &format!("Saved {}.", saved.schedule.id)),
        Err(err) => refused(&page, form, &err),
    }
}

/// `POST /api/schedules` (admin): the API's wrapper of [`save`], creating
/// or replacing the schedule the body describes (coord's `Schedule` as
/// JSON).
pub async fn save_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<Value>,
) -> Result<Json<Value>, AppError> {
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let schedule = serde_json::from_value::<Schedule>(body)
        .map_err(|e| format!("not a schedule: {e}"))
        .and_then(|s| s.validate().map(|()| s).map_err(|e| e.to_string()));
    let saved = save(&state, &actor, schedule, &id, SaveMode::Upsert).await?;
    Ok(Json(schedule_json(&saved)))
}
