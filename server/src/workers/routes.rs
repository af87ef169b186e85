//! `/workers`, `/api/workers` and the quiet / resume / stop actions: one
//! operation ([`ask`]) with the form and the API as thin wrappers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, Response};
use coord::CoordError;
use coord::queue::workers::{WorkerCommand, WorkerId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::vm::{self, WorkersQuery};
use crate::audit::{Actor, AuditEntry};
use crate::http::error::{AppError, one_line};
use crate::http::extract::{Form, Json, Path, Query};
use crate::http::flash::{Flash, with_flash_cleared};
use crate::http::forms::{ActionFields, redirect};
use crate::http::page::Page;
use crate::live::stream::{Events, Scope};
use crate::state::AppState;

/// The path of a worker action.
#[derive(Debug, Deserialize)]
pub struct WorkerAction {
    /// The worker's id.
    pub id: String,
    /// `quiet`, `resume` or `stop`.
    pub action: String,
}

/// The page's view model, read now: the registry (one listing) and, when
/// BullMQ is configured, its workers' connections (one `CLIENT LIST` for
/// every BullMQ queue, or the filtered one).
async fn read(state: &AppState, query: &WorkersQuery) -> app::WorkersVm {
    let figures = state.workers.figures().await;
    let page = vm::page(&figures, query);
    let Some(bull) = &state.bullmq else {
        return vm::with_bull(
            page,
            Err("BullMQ is not configured (--bullmq-url), so no BullMQ workers are listed.".into()),
        );
    };
    let known: Vec<String> = bull.current().queues.keys().cloned().collect();
    let names: Vec<String> = match query.queue() {
        Some(queue) => known.into_iter().filter(|q| q == queue).collect(),
        None => known,
    };
    if names.is_empty() {
        return vm::with_bull(page, Ok(Vec::new()));
    }
    let found = bull
        .client()
        .workers_by_queue(&names)
        .await
        .map(|by_queue| by_queue.into_iter().collect())
        .map_err(|err| {
            tracing::warn!(error = %err, "cannot list BullMQ workers");
            one_line(&err.to_string())
        });
    vm::with_bull(page, found)
}

/// `GET /workers?queue=&offset=`: every worker with its busy slots and
/// running jobs, and the BullMQ workers' connections.
pub async fn page(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
    Query(query): Query<WorkersQuery>,
) -> Response {
    let mut vm = read(&state, &query).await;
    vm.notice = notice.clone();
    with_flash_cleared(
        Html(app::render_workers_page(&vm, page.ctx())),
        notice.is_some(),
    )
}

/// `GET /events/workers?queue=&offset=`.
pub async fn events(State(state): State<AppState>, Query(query): Query<WorkersQuery>) -> Events {
    state.streams.open(Scope::Workers { query })
}

/// `GET /api/workers?queue=&offset=`: the page's figures, in the same
/// words (a page of workers, counts over every match).
pub async fn list(State(state): State<AppState>, Query(query): Query<WorkersQuery>) -> Json<Value> {
    let vm = read(&state, &query).await;
    Json(json!({
        "workers": vm.workers.iter().map(|w| json!({
            "id": w.id,
            "queue": w.queue,
            "state": w.state.label(),
            "status": w.liveness.class(),
            "asked": w.asked,
            "busy": w.busy,
            "concurrency": w.concurrency,
            "running": w.running.iter().map(|j| json!({ "id": j.id, "runMs": j.run_ms })).collect::<Vec<_>>(),
            "host": w.host,
            "pid": w.pid,
            "version": w.version,
            "uptimeMs": w.uptime_ms,
            "heartbeatAgeMs": w.heartbeat_age_ms,
            "completed": w.completed,
            "failed": w.failed,
        })).collect::<Vec<_>>(),
        "total": vm.total,
        "offset": vm.offset,
        "limit": app::WORKERS_PER_PAGE,
        "counts": {
            "running": vm.counts.running,
            "quiet": vm.counts.quiet,
            "stopping": vm.counts.stopping,
            "stale": vm.counts.stale,
            "gone": vm.counts.gone,
            "busy": vm.counts.busy,
            "slots": vm.counts.slots,
        },
        "staleAfterMs": vm.stale_after_ms,
        "problem": vm.problem,
        "bullmq": {
            "workers": vm.bull.iter().map(|w| json!({
                "queue": w.queue,
                "name": w.name,
                "addr": w.addr,
                "ageSecs": w.age_secs,
                "idleSecs": w.idle_secs,
                "node": w.node,
            })).collect::<Vec<_>>(),
            "total": vm.bull_total,
            "note": vm.bull_note,
        },
    }))
}

/// Asks a worker to go quiet, resume or stop, records it in the audit log
/// and waits (up to a second) for the snapshot that shows it asked.
pub async fn ask(
    state: &AppState,
    actor: &Actor,
    id: &str,
    action: &str,
) -> Result<(WorkerId, WorkerCommand), AppError> {
    let entry = AuditEntry::new(actor, &format!("worker.{action}"), "worker", id);
    let result = async {
        let command: WorkerCommand = action.parse().map_err(|_| {
            AppError::new(
                StatusCode::NOT_FOUND,
                format!("workers can be asked to quiet, resume or stop, not {action:?}"),
            )
        })?;
        let worker = WorkerId::new(id)?;
        match state.workers.command(&worker, command).await {
            Ok(()) => {}
            Err(CoordError::WorkerNotFound(_)) => {
                return Err(AppError::new(
                    StatusCode::NOT_FOUND,
                    format!("no worker {id} is registered (it stopped, or died long ago)"),
                ));
            }
            Err(err) => return Err(err.into()),
        }
        state.hub.refresh_workers().await;
        Ok((worker, command))
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// What the operator is told once a command is stored.
fn told(worker: &WorkerId, command: WorkerCommand) -> String {
    match command {
        WorkerCommand::Quiet => format!(
            "Asked {worker} to go quiet: it takes no new jobs after its next heartbeat and finishes the ones it runs."
        ),
        WorkerCommand::Resume => {
            format!("Asked {worker} to resume: it takes jobs again after its next heartbeat.")
        }
        WorkerCommand::Stop => format!(
            "Asked {worker} to stop: it takes no new jobs after its next heartbeat, finishes the ones it runs, then leaves."
        ),
    }
}

/// `POST /workers/{id}/{action}` (operator): the form's wrapper of [`ask`].
pub async fn act_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(WorkerAction { id, action }): Path<WorkerAction>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let back = ActionFields::from_pairs(pairs).back_or("/workers".to_owned());
    let (worker, command) = ask(&state, &actor, &id, &action).await?;
    Ok(redirect(&back, &told(&worker, command)))
}

/// `POST /api/workers/{id}/{action}` (operator): the API's wrapper of
/// [`ask`]. 404 for an unknown worker or action.
pub async fn act(
    State(state): State<AppState>,
    actor: Actor,
    Path(WorkerAction { id, action }): Path<WorkerAction>,
) -> Result<Json<Value>, AppError> {
    let (worker, command) = ask(&state, &actor, &id, &action).await?;
    Ok(Json(json!({
        "worker": worker.as_str(),
        "command": command.as_str(),
        "asked": true,
    })))
}
