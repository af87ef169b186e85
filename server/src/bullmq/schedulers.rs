//! BullMQ's job schedulers and legacy repeatables on the schedules page:
//! one chosen BullMQ queue at a time (a read of that queue's repeat set,
//! a page of it), never every queue's; and the operator's run now and the
//! admin's remove, through `coord::bullmq`'s scripts that keep BullMQ's
//! own invariants. Each action is written once ([`act`]) with the form
//! and the API as thin wrappers.

use axum::extract::State;
use axum::response::Response;
use coord::bullmq::{BullScheduler, BullSchedulerKind};
use serde::Deserialize;
use serde_json::{Value, json};

use super::routes::monitor;
use crate::audit::{Actor, AuditEntry};
use crate::http::error::{AppError, one_line};
use crate::http::extract::{Form, Json, Path, Query};
use crate::http::forms::{ActionFields, redirect};
use crate::schedules::vm::{SchedulesQuery, cron_words, every_words};
use crate::state::AppState;

/// BullMQ queue names the page offers to choose from, at most.
const MAX_CHOICES: usize = 500;

/// A BullMQ scheduler in a path.
#[derive(Debug, Deserialize)]
pub struct BullSchedulerPath {
    /// The BullMQ queue.
    pub queue: String,
    /// The scheduler id or the legacy repeatable's key.
    pub key: String,
}

/// A BullMQ queue in a path.
#[derive(Debug, Deserialize)]
pub struct BullSchedulersPath {
    /// The BullMQ queue.
    pub queue: String,
}

/// A page of a BullMQ queue's schedulers.
#[derive(Debug, Default, Deserialize)]
pub struct BullSchedulersQuery {
    /// The first entry.
    #[serde(default)]
    pub offset: u64,
}

/// When an entry runs, in words.
fn repeat_words(s: &BullScheduler) -> String {
    let mut words = match (&s.pattern, s.every) {
        (Some(pattern), _) => cron_words(pattern, s.tz.as_deref().unwrap_or("UTC")),
        (None, Some(every)) => every_words(every),
        (None, None) => "–".to_owned(),
    };
    if let Some(limit) = s.limit {
        words.push_str(&format!(" · at most {}", app::format_count(limit)));
    }
    words
}

fn kind_word(kind: BullSchedulerKind) -> &'static str {
    match kind {
        BullSchedulerKind::Scheduler => "scheduler",
        BullSchedulerKind::Repeatable => "repeatable",
    }
}

fn row(s: &BullScheduler) -> app::BullSchedulerRow {
    app::BullSchedulerRow {
        key: s.key.clone(),
        kind: kind_word(s.kind),
        name: s.name.clone(),
        repeat: repeat_words(s),
        next_run: Some(s.next_run),
        iterations: s.iteration_count,
        template: s
            .template
            .as_ref()
            .map(|t| t.data.clone())
            .unwrap_or_default(),
    }
}

/// The BullMQ part of the schedules page: `None` when BullMQ is not
/// configured; the chosen queue's page of schedulers when one is chosen.
pub async fn read(state: &AppState, query: &SchedulesQuery) -> Option<app::BullSchedulersVm> {
    let bull = state.bullmq.as_ref()?;
    let queues: Vec<String> = bull
        .current()
        .queues
        .keys()
        .take(MAX_CHOICES)
        .cloned()
        .collect();
    // A queue named in the URL is offered even before discovery finds it
    // (or beyond the names offered), so the choice shows as made.
    let mut queues = queues;
    if let Some(chosen) = query.bull()
        && !queues.iter().any(|q| q == chosen)
    {
        queues.insert(0, chosen.to_owned());
    }
    let mut vm = app::BullSchedulersVm {
        queues,
        queue: query.bull().map(str::to_owned),
        offset: query.bull_offset,
        ..app::BullSchedulersVm::default()
    };
    if let Some(queue) = query.bull() {
        let limit = app::BULL_SCHEDULERS_PER_PAGE as u64;
        match bull
            .client()
            .schedulers(queue, query.bull_offset as u64, limit)
            .await
        {
            Ok(page) => {
                vm.rows = page.items.iter().map(row).collect();
                vm.total = page.total;
            }
            Err(err) => {
                tracing::warn!(error = %err, queue, "cannot list BullMQ schedulers");
                vm.problem = Some(one_line(&err.to_string()));
            }
        }
    }
    Some(vm)
}

/// `GET /api/bullmq/{queue}/schedulers?offset=`: a page (50) of the
/// queue's job schedulers and legacy repeatables, soonest first.
pub async fn api_list(
    State(state): State<AppState>,
    Path(BullSchedulersPath { queue }): Path<BullSchedulersPath>,
    Query(query): Query<BullSchedulersQuery>,
) -> Result<Json<Value>, AppError> {
    let limit = app::BULL_SCHEDULERS_PER_PAGE as u64;
    let page = monitor(&state)?
        .client()
        .schedulers(&queue, query.offset, limit)
        .await?;
    Ok(Json(json!({
        "schedulers": page.items,
        "total": page.total,
        "offset": query.offset,
        "limit": limit,
    })))
}

/// Runs a scheduler now or removes it, audited; says what was done.
pub async fn act(
    state: &AppState,
    actor: &Actor,
    queue: &str,
    key: &str,
    action: &str,
) -> Result<String, AppError> {
    let entry = AuditEntry::new(
        actor,
        &format!("bullmq.scheduler_{action}"),
        "bullmq_scheduler",
        &format!("{queue}/{key}"),
    );
    let result = async {
        let client = monitor(state)?.client();
        match action {
            "run" => {
                let job = client.run_scheduler_now(queue, key).await?;
                Ok(format!(
                    "Added job {job} to BullMQ queue {queue} from {key}; its next scheduled run is unchanged."
                ))
            }
            "remove" => {
                client.remove_scheduler(queue, key).await?;
                Ok(format!(
                    "Removed {key} from BullMQ queue {queue}, with its next scheduled job."
                ))
            }
            other => Err(AppError::not_found(format!(
                "BullMQ schedulers can be run or removed, not {other:?}"
            ))),
        }
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// The forms' wrapper of [`act`]: acts, then back with what was done.
async fn form(
    state: AppState,
    actor: Actor,
    BullSchedulerPath { queue, key }: BullSchedulerPath,
    pairs: Vec<(String, String)>,
    action: &str,
) -> Result<Response, AppError> {
    let back = ActionFields::from_pairs(pairs).back_or("/schedules".to_owned());
    let told = act(&state, &actor, &queue, &key, action).await?;
    Ok(redirect(&back, &told))
}

/// The API's wrapper of [`act`].
async fn api(
    state: AppState,
    actor: Actor,
    BullSchedulerPath { queue, key }: BullSchedulerPath,
    action: &str,
) -> Result<Json<Value>, AppError> {
    let told = act(&state, &actor, &queue, &key, action).await?;
    Ok(Json(json!({ "done": told })))
}

/// `POST /bullmq/{queue}/schedulers/{key}/run` (operator).
pub async fn run_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullSchedulerPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    form(state, actor, path, pairs, "run").await
}

/// `POST /bullmq/{queue}/schedulers/{key}/remove` (admin).
pub async fn remove_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullSchedulerPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    form(state, actor, path, pairs, "remove").await
}

/// `POST /api/bullmq/{queue}/schedulers/{key}/run` (operator).
pub async fn run_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullSchedulerPath>,
) -> Result<Json<Value>, AppError> {
    api(state, actor, path, "run").await
}

/// `POST /api/bullmq/{queue}/schedulers/{key}/remove` (admin).
pub async fn remove_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullSchedulerPath>,
) -> Result<Json<Value>, AppError> {
    api(state, actor, path, "remove").await
}
