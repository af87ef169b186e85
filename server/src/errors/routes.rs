//! The error-group routes: the pages and their live streams, the JSON
//! twins, and a group's retry and removal as a form button and through
//! the API, each a thin wrapper over [`crate::errors`].

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use coord::errors::{GroupAction, GroupId};
use coord::queue::QueueName;
use coord::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ErrorsParams, GroupActionStart, GroupsPage, Place, all_errors, bull_queue_errors, errors_vm,
    queue_errors,
};
use crate::audit::Actor;
use crate::http::error::AppError;
use crate::http::extract::{Form, Json, Path, Query, QueuePath};
use crate::http::flash::{Flash, with_flash_cleared};
use crate::http::forms::{ActionFields, redirect};
use crate::http::page::Page;
use crate::live::stream::{Events, Scope};
use crate::queues::figures::RetryProgress;
use crate::queues::routes::api::{answer_running, answer_started};
use crate::state::AppState;

/// `/…/{queue}/errors/{group}`; the group is checked here, so a mistyped
/// id is a 400 with the reason.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupPath {
    /// The `{queue}` segment.
    pub queue: QueueName,
    /// The `{group}` segment: 16 hex digits.
    pub group: String,
}

impl GroupPath {
    fn group(&self) -> Result<GroupId, AppError> {
        parse_group(&self.group)
    }
}

/// A group id from a path: a 400 with the reason for a mistyped one.
fn parse_group(text: &str) -> Result<GroupId, AppError> {
    GroupId::parse(text).ok_or_else(|| {
        AppError::bad_request(format!(
            "an error group id is 16 lowercase hex digits (got {text:?})"
        ))
    })
}

/// The BullMQ queues' groups, when BullMQ queues are monitored.
fn bull_groups(state: &AppState) -> Option<&crate::bullmq::BullGroups> {
    state.bullmq.as_ref().map(|m| m.groups())
}

/// `GET /errors`: every queue's groups.
pub async fn all_page(
    State(state): State<AppState>,
    page: Page,
    Query(params): Query<ErrorsParams>,
) -> Result<Response, AppError> {
    let query = params.parse()?;
    let snapshot = state.hub.ready().await;
    let groups = all_errors(&state.queues, &snapshot, bull_groups(&state), query).await?;
    let vm = errors_vm(&groups, None, None);
    Ok(Html(app::render_errors_page(&vm, now_ms(), page.ctx())).into_response())
}

/// `GET /queues/{queue}/errors`: one queue's groups with their actions.
pub async fn queue_page(
    State(state): State<AppState>,
    page: Page,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<ErrorsParams>,
    Flash(notice): Flash,
) -> Result<Response, AppError> {
    let query = params.parse()?;
    let groups = queue_errors(&state.queues, &queue, query).await?;
    let progress = state.hub.progress(&queue);
    let mut vm = errors_vm(&groups, Some(&Place::Native(queue)), progress.as_ref());
    let shown = notice.is_some();
    vm.notice = notice;
    Ok(with_flash_cleared(
        Html(app::render_errors_page(&vm, now_ms(), page.ctx())),
        shown,
    ))
}

/// `GET /events/errors?…`.
pub async fn all_events(
    State(state): State<AppState>,
    Query(params): Query<ErrorsParams>,
) -> Result<Events, AppError> {
    let query = params.parse()?;
    Ok(state.streams.open(Scope::Errors { queue: None, query }))
}

/// `GET /events/queues/{queue}/errors?…`: 404 for an unknown queue, like
/// the page.
pub async fn queue_events(
    State(state): State<AppState>,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<ErrorsParams>,
) -> Result<Events, AppError> {
    let query = params.parse()?;
    state.queues.counts(&queue).await?;
    Ok(state.streams.open(Scope::Errors {
        queue: Some(queue),
        query,
    }))
}

/// `GET /api/errors?sort=&offset=&limit=`: every queue's groups as JSON.
pub async fn all_api(
    State(state): State<AppState>,
    Query(params): Query<ErrorsParams>,
) -> Result<Json<Value>, AppError> {
    let query = params.parse()?;
    let snapshot = state.hub.ready().await;
    let groups = all_errors(&state.queues, &snapshot, bull_groups(&state), query).await?;
    Ok(Json(groups_json(&groups)))
}

/// `GET /api/queues/{queue}/errors?sort=&offset=&limit=`.
pub async fn queue_api(
    State(state): State<AppState>,
    Path(QueuePath { queue }): Path<QueuePath>,
    Query(params): Query<ErrorsParams>,
) -> Result<Json<Value>, AppError> {
    let query = params.parse()?;
    let groups = queue_errors(&state.queues, &queue, query).await?;
    Ok(Json(groups_json(&groups)))
}

/// A page of groups as the API answers it.
fn groups_json(page: &GroupsPage) -> Value {
    let groups: Vec<Value> = page
        .groups
        .iter()
        .map(|listed| {
            let g = &listed.group;
            json!({
                "id": g.id,
                "reason": g.normalised(),
                "failed": g.failed,
                "firstSeen": g.first_seen,
                "lastSeen": g.last_seen,
                "sample": { "job": g.sample_job, "reason": g.sample_reason },
                "names": g.names.iter().map(|(name, n)| json!({ "name": name, "failed": n })).collect::<Vec<_>>(),
                "namesTotal": g.names_total,
                "lastHour": listed.trend.iter().map(|&n| u64::from(n)).sum::<u64>(),
                "trend": listed.trend,
                "queues": listed.queues.iter().map(|(q, n)| json!({
                    "queue": q.name(),
                    "bullmq": matches!(q, Place::Bull(_)),
                    "failed": n,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "groups": groups,
        "total": page.total,
        "failed": page.failed,
        "offset": page.query.offset,
        "limit": page.query.limit,
        "coverage": page.coverage,
    })
}

/// The notice after a group button.
fn notice(start: &GroupActionStart, action: GroupAction) -> &'static str {
    match (start, action) {
        (GroupActionStart::Started(_), GroupAction::Retry) => {
            "Retrying the group's failed jobs; progress shows above."
        }
        (GroupActionStart::Started(_), GroupAction::Remove) => {
            "Removing the group's failed jobs; progress shows above."
        }
        (GroupActionStart::AlreadyRunning, _) => {
            "Nothing was started: another bulk action is running on this queue."
        }
        (GroupActionStart::Empty, _) => "Nothing to do: the group has no failed job any more.",
    }
}

async fn act_form(
    state: AppState,
    actor: Actor,
    path: GroupPath,
    pairs: Vec<(String, String)>,
    action: GroupAction,
) -> Result<Response, AppError> {
    let group = path.group()?;
    let back = ActionFields::from_pairs(pairs).back_or(format!("/queues/{}/errors", path.queue));
    let start = super::start_group_action(&state, &actor, &path.queue, group, action).await?;
    Ok(redirect(&back, notice(&start, action)))
}

/// `POST /queues/{queue}/errors/{group}/retry`: every failed job of the
/// group back to waiting, in the background, with progress on the page.
pub async fn retry_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<GroupPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    act_form(state, actor, path, pairs, GroupAction::Retry).await
}

/// `POST /queues/{queue}/errors/{group}/remove`: every failed job of the
/// group deleted, in the background.
pub async fn remove_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<GroupPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    act_form(state, actor, path, pairs, GroupAction::Remove).await
}

async fn act_api(
    state: AppState,
    actor: Actor,
    path: GroupPath,
    action: GroupAction,
) -> Result<Response, AppError> {
    let group = path.group()?;
    let queue = path.queue;
    let body = |p: &RetryProgress| {
        json!({
            "group": group,
            "action": action.as_str(),
            "done": p.done,
            "total": p.total,
            "finished": p.finished,
            "error": p.error,
        })
    };
    match super::start_group_action(&state, &actor, &queue, group, action).await? {
        GroupActionStart::Started(done) => {
            answer_started(&state, &queue, done, "the group action", body).await
        }
        GroupActionStart::Empty => Ok(Json(body(&RetryProgress {
            finished: true,
            ..Default::default()
        }))
        .into_response()),
        GroupActionStart::AlreadyRunning => Ok(answer_running(&state, &queue, body)),
    }
}

/// `POST /api/queues/{queue}/errors/{group}/retry`: the button's operation;
/// 200 with the final progress when it ended within two seconds, else 202
/// with the progress so far; 409 while another bulk run is going.
pub async fn retry_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<GroupPath>,
) -> Result<Response, AppError> {
    act_api(state, actor, path, GroupAction::Retry).await
}

/// `POST /api/queues/{queue}/errors/{group}/remove`: as [`retry_api`],
/// removing.
pub async fn remove_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<GroupPath>,
) -> Result<Response, AppError> {
    act_api(state, actor, path, GroupAction::Remove).await
}

// ------------------------------------------------------------- BullMQ

/// `/…/bullmq/{queue}/errors/{group}`.
#[derive(Debug, Clone, Deserialize)]
pub struct BullGroupPath {
    /// The `{queue}` segment, a BullMQ queue's name.
    pub queue: String,
    /// The `{group}` segment.
    pub group: String,
}

impl BullGroupPath {
    fn group(&self) -> Result<GroupId, AppError> {
        parse_group(&self.group)
    }
}

/// `/…/bullmq/{queue}/errors`.
#[derive(Debug, Clone, Deserialize)]
pub struct BullQueuePath {
    /// The queue's name.
    pub queue: String,
}

/// One BullMQ queue's groups, 404 when it is not followed.
fn bull_page(state: &AppState, queue: &str, params: &ErrorsParams) -> Result<GroupsPage, AppError> {
    let query = params.parse()?;
    let monitor = crate::bullmq::routes::monitor(state)?;
    bull_queue_errors(monitor.groups(), queue, query)
        .ok_or_else(|| AppError::not_found(format!("no BullMQ queue {queue} is monitored")))
}

/// `GET /bullmq/{queue}/errors`: a BullMQ queue's groups, with their
/// actions and how much of the failed set they cover.
pub async fn bull_queue_page(
    State(state): State<AppState>,
    page: Page,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Query(params): Query<ErrorsParams>,
    Flash(notice): Flash,
) -> Result<Response, AppError> {
    let groups = bull_page(&state, &queue, &params)?;
    let mut vm = errors_vm(&groups, Some(&Place::Bull(queue)), None);
    let shown = notice.is_some();
    vm.notice = notice;
    Ok(with_flash_cleared(
        Html(app::render_errors_page(&vm, now_ms(), page.ctx())),
        shown,
    ))
}

/// `GET /events/bullmq/{queue}/errors?…`: re-rendered as the monitor's
/// books move.
pub async fn bull_queue_events(
    State(state): State<AppState>,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Query(params): Query<ErrorsParams>,
) -> Result<Events, AppError> {
    bull_page(&state, &queue, &params)?;
    let query = params.parse()?;
    let monitor = crate::bullmq::routes::monitor(&state)?.clone();
    let groups = monitor.groups().clone();
    Ok(crate::bullmq::routes::live(
        &state,
        &monitor,
        Box::new(move |_| {
            let page = bull_queue_errors(&groups, &queue, query);
            let place = Place::Bull(queue.clone());
            Box::pin(async move {
                let vm = errors_vm(&page?, Some(&place), None);
                Some(app::errors_fragments(&vm, now_ms()))
            })
        }),
    ))
}

/// `GET /api/bullmq/{queue}/errors?sort=&offset=&limit=`.
pub async fn bull_queue_api(
    State(state): State<AppState>,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Query(params): Query<ErrorsParams>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(groups_json(&bull_page(&state, &queue, &params)?)))
}

/// The notice after a BullMQ group button.
fn bull_notice(done: &super::BullGroupDone, action: GroupAction) -> String {
    let verb = match action {
        GroupAction::Retry => "Retried",
        GroupAction::Remove => "Removed",
    };
    let mut text = format!(
        "{verb} {} of the group's {} failed {}.",
        app::format_count(done.done),
        app::format_count(done.total),
        if done.total == 1 { "job" } else { "jobs" }
    );
    if done.skipped > 0 {
        text.push_str(&format!(
            " {} had already left the failed set and were left as they were.",
            app::format_count(done.skipped)
        ));
    }
    text
}

async fn bull_act_form(
    state: AppState,
    actor: Actor,
    path: BullGroupPath,
    pairs: Vec<(String, String)>,
    action: GroupAction,
) -> Result<Response, AppError> {
    let group = path.group()?;
    let back = ActionFields::from_pairs(pairs).back_or(app::bull_errors_url(&path.queue));
    let done = super::bull_group_action(&state, &actor, &path.queue, group, action).await?;
    Ok(redirect(&back, &bull_notice(&done, action)))
}

/// `POST /bullmq/{queue}/errors/{group}/retry`.
pub async fn bull_retry_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullGroupPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    bull_act_form(state, actor, path, pairs, GroupAction::Retry).await
}

/// `POST /bullmq/{queue}/errors/{group}/remove`.
pub async fn bull_remove_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullGroupPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    bull_act_form(state, actor, path, pairs, GroupAction::Remove).await
}

async fn bull_act_api(
    state: AppState,
    actor: Actor,
    path: BullGroupPath,
    action: GroupAction,
) -> Result<Json<Value>, AppError> {
    let group = path.group()?;
    let done = super::bull_group_action(&state, &actor, &path.queue, group, action).await?;
    Ok(Json(json!({
        "group": group,
        "action": action.as_str(),
        "done": done.done,
        "skipped": done.skipped,
        "total": done.total,
        "finished": true,
    })))
}

/// `POST /api/bullmq/{queue}/errors/{group}/retry`: every failed job of
/// the group back to waiting; answers when done.
pub async fn bull_retry_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullGroupPath>,
) -> Result<Json<Value>, AppError> {
    bull_act_api(state, actor, path, GroupAction::Retry).await
}

/// `POST /api/bullmq/{queue}/errors/{group}/remove`.
pub async fn bull_remove_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullGroupPath>,
) -> Result<Json<Value>, AppError> {
    bull_act_api(state, actor, path, GroupAction::Remove).await
}
