//! BullMQ queues: pages (`/bullmq…`), their buttons (form posts that act
//! and come back with a notice), the JSON API (`/api/bullmq…`) and live
//! streams (`/events/bullmq…`).
//!
//! Every action goes through `coord::bullmq`, whose scripts follow BullMQ's
//! own semantics, so the services' BullMQ workers keep working. Every
//! action is audited like the native queues' (`bullmq.*`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::Fragment;
use axum::Json;
use axum::extract::State;
use axum::response::sse::Event;
use axum::response::{Html, Response};
use coord::bullmq::{BullDependencies, BullFlow, BullJob, BullMq, BullState, MAX_FLOW_CHILDREN};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::audit::{Actor, AuditEntry};
use crate::bullmq::vm::{
    child_counts, flow_vm, job_row, page_names, parse_query, pretty, queues_vm, row,
};
use crate::bullmq::{BullMonitor, BullSnapshot};
use crate::http::error::AppError;
use crate::http::extract::{Form, Path, Query};
use crate::http::flash::Flash;
use crate::http::flash::with_flash_cleared;
use crate::http::forms::{ActionFields, redirect};
use crate::http::page::Page;
use crate::live::stream::{self, Events, regions};
use crate::queues::RETRY_BATCH;
use crate::queues::vm::QueuesParams;
use crate::state::AppState;

/// Jobs per page unless asked otherwise, and at most.
const PAGE: u64 = 20;
const MAX_PAGE: u64 = 100;
/// Longest "clean older than" accepted: a year.
const MAX_CLEAN_AGE: Duration = Duration::from_secs(365 * 24 * 3600);
/// Jobs one clean removes at most (the button can be pressed again).
const CLEAN_LIMIT: u64 = 10_000;

/// A queue in a path.
#[derive(Debug, Deserialize)]
pub struct BullQueuePath {
    queue: String,
}

/// A job in a path.
#[derive(Debug, Deserialize)]
pub struct BullJobPath {
    queue: String,
    id: String,
}

/// `?state=&offset=&limit=` of a queue page, its stream and the API.
#[derive(Debug, Default, Deserialize)]
pub struct BullListQuery {
    state: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

impl BullListQuery {
    fn parse(&self) -> Result<(BullState, u64, u64), AppError> {
        let state = match self.state.as_deref() {
            None | Some("") => BullState::Waiting,
            Some(text) => text.parse::<BullState>()?,
        };
        let limit = self.limit.unwrap_or(PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(AppError::bad_request(format!(
                "limit must be between 1 and {MAX_PAGE} (got {limit})"
            )));
        }
        Ok((state, self.offset.unwrap_or(0), limit))
    }
}

/// The monitor, or 404 saying how to turn it on.
pub(crate) fn monitor(state: &AppState) -> Result<&BullMonitor, AppError> {
    state.bullmq.as_ref().ok_or_else(|| {
        AppError::not_found(
            "BullMQ queues are not monitored on this server (start it with --bullmq <redis-url>, \
             or with --redis)",
        )
    })
}

/// A queue's page URL.
fn queue_url(queue: &str, state: BullState) -> String {
    format!(
        "/bullmq/{}?state={}",
        app::encode_segment(queue),
        state.as_str()
    )
}

/// The queue page's view model, read now.
async fn queue_vm(
    monitor: &BullMonitor,
    queue: &str,
    state: BullState,
    offset: u64,
    limit: u64,
) -> Result<app::BullQueuePageVm, AppError> {
    let client = monitor.client();
    let counts = client.counts(queue).await?;
    let jobs = client.jobs(queue, state, offset, limit).await?;
    let mut rows: Vec<app::BullJobRow> = jobs.iter().map(job_row).collect();
    for (row, deps) in rows
        .iter_mut()
        .zip(children_of(client, queue, state, &jobs).await?)
    {
        row.children = Some(child_counts(&deps));
    }
    Ok(app::BullQueuePageVm {
        prefix: monitor.prefix().to_owned(),
        queue: row(queue, &counts),
        state: state.as_str().to_owned(),
        jobs: rows,
        offset,
        limit,
        total: counts.get(state),
        notice: None,
        error: None,
        latency: monitor.latency().of(client, queue).await,
    })
}

/// The children counts of a page of `waiting-children` jobs (one
/// pipeline for the page); nothing for other states, whose jobs wait for
/// no children.
async fn children_of(
    client: &BullMq,
    queue: &str,
    state: BullState,
    jobs: &[BullJob],
) -> Result<Vec<BullDependencies>, AppError> {
    if state != BullState::WaitingChildren {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = jobs.iter().map(|job| job.id.as_str()).collect();
    Ok(client.dependencies(queue, &ids).await?)
}

/// The job page's view model, read now; 404 when the job is gone.
async fn job_vm(
    monitor: &BullMonitor,
    queue: &str,
    id: &str,
) -> Result<app::BullJobPageVm, AppError> {
    let job = monitor
        .client()
        .job(queue, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("BullMQ queue {queue} has no job {id}")))?;
    // The job was read: a failed flow read is said in its section rather
    // than losing the page.
    let flow = match monitor.client().flow(queue, id, MAX_FLOW_CHILDREN).await {
        Ok(flow) => flow.as_ref().and_then(flow_vm),
        Err(e) => Some(app::BullFlowVm {
            error: Some(e.to_string()),
            ..app::BullFlowVm::default()
        }),
    };
    Ok(app::BullJobPageVm {
        prefix: monitor.prefix().to_owned(),
        queue: queue.to_owned(),
        id: job.id.clone(),
        name: job.name.clone(),
        state: job
            .state
            .map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned()),
        data_pretty: pretty(&job.data),
        opts_pretty: pretty(&job.opts),
        timestamp: job.timestamp,
        processed_on: job.processed_on,
        finished_on: job.finished_on,
        attempts_made: job.attempts_made,
        attempts_started: job.attempts_started,
        attempts: job.attempts_allowed(),
        failure: crate::bullmq::vm::failure_kind(&job).map(str::to_owned),
        failed_reason: job.failed_reason.clone(),
        stacktrace: job.stacktrace.clone(),
        returnvalue: job.returnvalue.clone(),
        progress: job.progress.clone(),
        logs: job.logs.clone(),
        logs_earlier: job.logs_count.saturating_sub(job.logs.len() as u64),
        delay: job.delay,
        priority: job.priority,
        notice: None,
        flow,
    })
}

// ---------------------------------------------------------------- pages

/// `GET /bullmq?sort=&q=&offset=`: a page of BullMQ queues with their
/// counts, live; 400 for a bad parameter.
pub async fn list_page(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
    Query(params): Query<QueuesParams>,
) -> Result<Response, AppError> {
    let query = parse_query(&params)?;
    let snapshot = state
        .bullmq
        .as_ref()
        .map(BullMonitor::current)
        .unwrap_or_default();
    let mut vm = queues_vm(&state, &snapshot, &query, app::QUEUES_PER_PAGE);
    vm.notice = notice.clone();
    Ok(with_flash_cleared(
        Html(app::render_bullmq_page(&vm, page.ctx())),
        notice.is_some(),
    ))
}

/// `GET /bullmq/{queue}?state=&offset=&limit=`: one state's jobs, with the
/// buttons that state allows.
pub async fn queue_page(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Query(query): Query<BullListQuery>,
) -> Result<Response, AppError> {
    let (bull_state, offset, limit) = query.parse()?;
    let monitor = monitor(&state)?;
    let mut vm = queue_vm(monitor, &queue, bull_state, offset, limit).await?;
    vm.notice = notice.clone();
    Ok(with_flash_cleared(
        Html(app::render_bull_queue_page(
            &vm,
            coord::time::now_ms(),
            page.ctx(),
        )),
        notice.is_some(),
    ))
}

/// `GET /bullmq/{queue}/jobs/{id}`: one job, with its data, options,
/// failure, stack trace and logs.
pub async fn job_page(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
    Path(BullJobPath { queue, id }): Path<BullJobPath>,
) -> Result<Response, AppError> {
    let monitor = monitor(&state)?;
    let mut vm = job_vm(monitor, &queue, &id).await?;
    vm.notice = notice.clone();
    Ok(with_flash_cleared(
        Html(app::render_bull_job_page(&vm, page.ctx())),
        notice.is_some(),
    ))
}

/// Jobs of each of `wait`, `prioritized` and `delayed` the Retrying view
/// looks at: BullMQ keeps no retrying set, so this bounds what one view
/// reads (and says so when a state holds more).
pub const RETRYING_SCAN: usize = 5_000;

/// A BullMQ queue's Retrying view, read now: one page of the jobs that
/// failed and will run again, with what was looked at.
pub async fn retrying_rows(
    state: &AppState,
    queue: &str,
    params: &crate::queues::routes::pages::RetryingParams,
) -> Result<app::RetryingVm, AppError> {
    let (offset, limit) = params.parse()?;
    let read = monitor(state)?
        .client()
        .retrying(queue, RETRYING_SCAN)
        .await?;
    let coverage = (!read.complete).then(|| {
        format!(
            "Looked at the first {} jobs of waiting, prioritized and delayed ({} in all): BullMQ keeps no retrying set, so jobs further back are not shown.",
            app::format_count(RETRYING_SCAN as u64),
            app::format_count(read.scanned)
        )
    });
    let total = read.jobs.len() as u64;
    let jobs = read
        .jobs
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|job| app::JobRow {
            id: job.id.clone(),
            name: job.name.clone(),
            attempts_made: u32::try_from(job.attempts_made).unwrap_or(u32::MAX),
            attempts: u32::try_from(job.attempts).unwrap_or(u32::MAX),
            failed_reason: Some(job.reason.clone()),
            run_at: job.run_at,
            retrying: true,
            ..app::JobRow::default()
        })
        .collect();
    Ok(app::RetryingVm {
        queue: queue.to_owned(),
        bullmq: true,
        coverage,
        jobs,
        total,
        cap: u64::MAX,
        offset,
        limit,
        notice: None,
    })
}

/// `GET /bullmq/{queue}/retrying`: the jobs that failed and will run
/// again (a backoff in `delayed`, or back in `wait`), due first.
pub async fn retrying_page(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Query(params): Query<crate::queues::routes::pages::RetryingParams>,
) -> Result<Response, AppError> {
    let mut vm = retrying_rows(&state, &queue, &params).await?;
    vm.notice = notice.clone();
    Ok(with_flash_cleared(
        Html(app::render_retrying_page(
            &vm,
            coord::time::now_ms(),
            page.ctx(),
        )),
        notice.is_some(),
    ))
}

/// `GET /api/bullmq/{queue}/retrying?offset=&limit=`: the same as JSON.
pub async fn api_retrying(
    State(state): State<AppState>,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Query(params): Query<crate::queues::routes::pages::RetryingParams>,
) -> Result<Json<Value>, AppError> {
    let vm = retrying_rows(&state, &queue, &params).await?;
    Ok(Json(crate::queues::routes::api::retrying_json(&vm)))
}

// -------------------------------------------------------------- actions

/// What an action does, for the audit log and its notice.
#[derive(Debug, Clone, Copy)]
enum Act {
    Pause,
    Resume,
    RetryAll,
    Retry,
    Remove,
    Promote,
}

impl Act {
    fn audit(self) -> &'static str {
        match self {
            Act::Pause => "bullmq.pause",
            Act::Resume => "bullmq.resume",
            Act::RetryAll => "bullmq.retry_all",
            Act::Retry => "bullmq.retry",
            Act::Remove => "bullmq.remove",
            Act::Promote => "bullmq.promote",
        }
    }
}

/// Does `act` on a queue (and job), auditing it; the notice on success.
async fn act(
    state: &AppState,
    actor: &Actor,
    act: Act,
    queue: &str,
    id: Option<&str>,
) -> Result<String, AppError> {
    let (kind, target) = match id {
        Some(id) => ("bullmq_job", format!("{queue}/{id}")),
        None => ("bullmq_queue", queue.to_owned()),
    };
    let entry = AuditEntry::new(actor, act.audit(), kind, &target);
    let result = async {
        let client: &BullMq = monitor(state)?.client();
        let id = id.unwrap_or_default();
        let notice = match act {
            Act::Pause => {
                client.pause(queue).await?;
                format!("BullMQ queue {queue} is paused: its workers take no new jobs.")
            }
            Act::Resume => {
                client.resume(queue).await?;
                format!("BullMQ queue {queue} is running again.")
            }
            Act::RetryAll => {
                let n = client.retry_all_failed(queue, RETRY_BATCH).await?;
                format!(
                    "Retried {} of {queue}: waiting to run again.",
                    app::counted(n, "failed job", "failed jobs")
                )
            }
            Act::Retry => {
                client.retry_job(queue, id).await?;
                format!("Job {id} was retried: it is waiting to run again.")
            }
            Act::Remove => {
                client.remove(queue, id).await?;
                format!("Job {id} was removed.")
            }
            Act::Promote => {
                client.promote(queue, id).await?;
                format!("Job {id} will run now.")
            }
        };
        Ok::<_, AppError>(notice)
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// Where a form comes back to: its `back` field, else the queue's tab.
fn back_of(pairs: Vec<(String, String)>, queue: &str, home: BullState) -> String {
    ActionFields::from_pairs(pairs).back_or(queue_url(queue, home))
}

async fn queue_form(
    state: AppState,
    actor: Actor,
    queue: String,
    pairs: Vec<(String, String)>,
    what: Act,
    home: BullState,
) -> Result<Response, AppError> {
    let notice = act(&state, &actor, what, &queue, None).await?;
    Ok(redirect(&back_of(pairs, &queue, home), &notice))
}

async fn job_form(
    state: AppState,
    actor: Actor,
    BullJobPath { queue, id }: BullJobPath,
    pairs: Vec<(String, String)>,
    what: Act,
    home: BullState,
) -> Result<Response, AppError> {
    let notice = act(&state, &actor, what, &queue, Some(&id)).await?;
    Ok(redirect(&back_of(pairs, &queue, home), &notice))
}

/// `POST /bullmq/{queue}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    queue_form(state, actor, queue, pairs, Act::Pause, BullState::Waiting).await
}

/// `POST /bullmq/{queue}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    queue_form(state, actor, queue, pairs, Act::Resume, BullState::Waiting).await
}

/// `POST /bullmq/{queue}/retry-failed`: every failed job, in batches.
pub async fn retry_failed(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    queue_form(state, actor, queue, pairs, Act::RetryAll, BullState::Failed).await
}

/// `POST /bullmq/{queue}/jobs/{id}/retry`.
pub async fn retry(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullJobPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    job_form(state, actor, path, pairs, Act::Retry, BullState::Failed).await
}

/// `POST /bullmq/{queue}/jobs/{id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullJobPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    job_form(state, actor, path, pairs, Act::Remove, BullState::Failed).await
}

/// `POST /bullmq/{queue}/jobs/{id}/promote`.
pub async fn promote(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<BullJobPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    job_form(state, actor, path, pairs, Act::Promote, BullState::Delayed).await
}

/// `older_than` as the clean form and API send it: `1h`, `1d`, `30m`, `7d`.
fn clean_age(text: &str) -> Result<Duration, AppError> {
    let age = crate::config::layer::parse_duration(text).map_err(AppError::bad_request)?;
    if age > MAX_CLEAN_AGE {
        return Err(AppError::bad_request("older_than may be a year at most"));
    }
    Ok(age)
}

/// Cleans a queue's completed or failed jobs older than `age`, audited.
async fn clean_now(
    state: &AppState,
    actor: &Actor,
    queue: &str,
    which: &str,
    (age, age_text): (Result<Duration, AppError>, &str),
) -> Result<u64, AppError> {
    let entry = AuditEntry::new(actor, "bullmq.clean", "bullmq_queue", queue);
    let result = async {
        let which = which.parse::<BullState>()?;
        if !matches!(which, BullState::Completed | BullState::Failed) {
            return Err(AppError::bad_request(
                "only completed or failed jobs can be cleaned",
            ));
        }
        let age = age?;
        Ok(monitor(state)?
            .client()
            .clean(queue, which, age, CLEAN_LIMIT)
            .await?)
    }
    .await;
    let detail = match &result {
        Ok(n) => format!("{n} {which} jobs older than {age_text} removed"),
        Err(_) => format!("{which} jobs older than {age_text}"),
    };
    let entry = AuditEntry {
        detail: Some(detail),
        ..entry
    };
    state.audit.outcome(entry, result).await
}

/// `POST /bullmq/{queue}/clean` with `state` (completed or failed) and
/// `older_than` (`1h`, `1d`, `7d`).
pub async fn clean(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let which = field("state");
    let older = field("older_than");
    let n = clean_now(&state, &actor, &queue, &which, (clean_age(&older), &older)).await?;
    let home = which.parse::<BullState>().unwrap_or(BullState::Completed);
    let notice = format!("Removed {n} {which} jobs older than {older}.");
    Ok(redirect(&back_of(pairs, &queue, home), &notice))
}

// ------------------------------------------------------------------ API

/// `GET /api/bullmq?sort=&q=&offset=&limit=`: a page of the monitored
/// queues and their counts (the BullMQ page's order and filter; `limit`
/// up to 500, 100 by default), with how many match and how many there are.
pub async fn api_list(
    State(state): State<AppState>,
    Query(params): Query<crate::queues::routes::api::ListParams>,
) -> Result<Json<Value>, AppError> {
    let query = parse_query(&params.page)?;
    let limit = crate::queues::routes::api::limit(params.limit.as_deref())?;
    let monitor = monitor(&state)?;
    let snapshot = monitor.current();
    let (page, matching) = page_names(&snapshot, &query, limit);
    let queues: Vec<Value> = page
        .into_iter()
        .map(|(name, counts)| counts_json(name, counts))
        .collect();
    Ok(Json(json!({
        "prefix": monitor.prefix(),
        "queues": queues,
        "sort": query.sort.as_str(),
        "q": query.filter,
        "offset": query.offset,
        "limit": limit,
        "matching": matching,
        "total": snapshot.queues.len(),
        "error": snapshot.error,
    })))
}

fn counts_json(name: &str, counts: &coord::bullmq::BullCounts) -> Value {
    let mut by_state = serde_json::Map::new();
    for s in BullState::ALL {
        by_state.insert(s.as_str().to_owned(), json!(counts.get(s)));
    }
    json!({ "name": name, "paused": counts.is_paused, "counts": by_state })
}

/// `GET /api/bullmq/{queue}`: counts read now.
pub async fn api_show(
    State(state): State<AppState>,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
) -> Result<Json<Value>, AppError> {
    let monitor = monitor(&state)?;
    let counts = monitor.client().counts(&queue).await?;
    let mut body = counts_json(&queue, &counts);
    body["latency"] = crate::bullmq::latency::json(
        monitor
            .latency()
            .of(monitor.client(), &queue)
            .await
            .as_ref(),
    );
    Ok(Json(body))
}

fn job_json(job: &BullJob) -> Value {
    json!({
        "id": job.id,
        "name": job.name,
        "data": serde_json::from_str::<Value>(&job.data).unwrap_or(Value::String(job.data.clone())),
        "opts": serde_json::from_str::<Value>(&job.opts).unwrap_or(Value::String(job.opts.clone())),
        "timestamp": job.timestamp,
        "delay": job.delay,
        "priority": job.priority,
        "processedOn": job.processed_on,
        "finishedOn": job.finished_on,
        "attemptsMade": job.attempts_made,
        "attemptsStarted": job.attempts_started,
        "attempts": job.attempts_allowed(),
        "failure": crate::bullmq::vm::failure_kind(job),
        "failedReason": job.failed_reason,
        "stacktrace": job.stacktrace,
        "returnvalue": job.returnvalue,
        // JSON, as a native job's: BullMQ stores it as JSON text.
        "progress": job.progress.as_deref().map(|text| {
            serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        }),
        "logs": job.logs,
        "logsCount": job.logs_count,
        "state": job.state.map(BullState::as_str),
    })
}

/// `GET /api/bullmq/{queue}/jobs?state=&offset=&limit=`.
pub async fn api_jobs(
    State(state): State<AppState>,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Query(query): Query<BullListQuery>,
) -> Result<Json<Value>, AppError> {
    let (bull_state, offset, limit) = query.parse()?;
    let client = monitor(&state)?.client();
    let counts = client.counts(&queue).await?;
    let jobs = client.jobs(&queue, bull_state, offset, limit).await?;
    let mut listed: Vec<Value> = jobs.iter().map(job_json).collect();
    // Parents say what they wait for, as their tab does.
    for (job, deps) in listed
        .iter_mut()
        .zip(children_of(client, &queue, bull_state, &jobs).await?)
    {
        job["dependencies"] = json!(deps);
    }
    Ok(Json(json!({
        "state": bull_state.as_str(),
        "total": counts.get(bull_state),
        "offset": offset,
        "limit": limit,
        "jobs": listed,
    })))
}

/// `GET /api/bullmq/{queue}/jobs/{id}`: the job, with its `flow` (parent
/// and up to 100 children of each kind with their totals; empty outside a
/// flow).
pub async fn api_job(
    State(state): State<AppState>,
    Path(BullJobPath { queue, id }): Path<BullJobPath>,
) -> Result<Json<Value>, AppError> {
    let client = monitor(&state)?.client();
    let job = client
        .job(&queue, &id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("BullMQ queue {queue} has no job {id}")))?;
    let flow = client
        .flow(&queue, &id, MAX_FLOW_CHILDREN)
        .await?
        .unwrap_or_default();
    let mut body = job_json(&job);
    body["flow"] = flow_json(&flow);
    Ok(Json(body))
}

/// A flow as the API shows it: coord's camelCase form.
fn flow_json(flow: &BullFlow) -> Value {
    serde_json::to_value(flow).unwrap_or(Value::Null)
}

async fn api_act(
    state: AppState,
    actor: Actor,
    what: Act,
    queue: String,
    id: Option<String>,
) -> Result<Json<Value>, AppError> {
    let notice = act(&state, &actor, what, &queue, id.as_deref()).await?;
    Ok(Json(json!({ "done": notice })))
}

/// `POST /api/bullmq/{queue}/pause`.
pub async fn api_pause(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
) -> Result<Json<Value>, AppError> {
    api_act(state, actor, Act::Pause, queue, None).await
}

/// `POST /api/bullmq/{queue}/resume`.
pub async fn api_resume(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
) -> Result<Json<Value>, AppError> {
    api_act(state, actor, Act::Resume, queue, None).await
}

/// `POST /api/bullmq/{queue}/retry-failed`.
pub async fn api_retry_failed(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
) -> Result<Json<Value>, AppError> {
    api_act(state, actor, Act::RetryAll, queue, None).await
}

/// `POST /api/bullmq/{queue}/jobs/{id}/retry`.
pub async fn api_retry(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullJobPath { queue, id }): Path<BullJobPath>,
) -> Result<Json<Value>, AppError> {
    api_act(state, actor, Act::Retry, queue, Some(id)).await
}

/// `POST /api/bullmq/{queue}/jobs/{id}/remove`.
pub async fn api_remove(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullJobPath { queue, id }): Path<BullJobPath>,
) -> Result<Json<Value>, AppError> {
    api_act(state, actor, Act::Remove, queue, Some(id)).await
}

/// `POST /api/bullmq/{queue}/jobs/{id}/promote`.
pub async fn api_promote(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullJobPath { queue, id }): Path<BullJobPath>,
) -> Result<Json<Value>, AppError> {
    api_act(state, actor, Act::Promote, queue, Some(id)).await
}

/// The clean API's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanBody {
    /// `completed` or `failed`.
    state: String,
    /// Age in seconds.
    #[serde(rename = "olderThanSecs")]
    older_than_secs: u64,
}

/// `POST /api/bullmq/{queue}/clean` with `{"state": "completed",
/// "olderThanSecs": 86400}`.
pub async fn api_clean(
    State(state): State<AppState>,
    actor: Actor,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    crate::http::extract::Json(body): crate::http::extract::Json<CleanBody>,
) -> Result<Json<Value>, AppError> {
    let age = Duration::from_secs(body.older_than_secs);
    let age = if age > MAX_CLEAN_AGE {
        Err(AppError::bad_request("olderThanSecs may be a year at most"))
    } else {
        Ok(age)
    };
    let text = format!("{} s", body.older_than_secs);
    let n = clean_now(&state, &actor, &queue, &body.state, (age, &text)).await?;
    Ok(Json(json!({ "removed": n })))
}

// -------------------------------------------------------------- streams

/// Renders a page's live regions for a snapshot; `None` keeps what the
/// browser has (nothing changed for this page, or a read failed).
pub(crate) type Render =
    Box<dyn FnMut(Arc<BullSnapshot>) -> BoxFuture<'static, Option<Vec<Fragment>>> + Send>;

/// A live stream following the monitor's snapshots; it ends when the
/// client goes away or the server shuts down (the hub closes).
pub(crate) fn live(state: &AppState, monitor: &BullMonitor, mut render: Render) -> Events {
    let mut snapshots = monitor.subscribe();
    let mut closed = state.hub.closed();
    let (tx, rx) = mpsc::channel::<Event>(16);
    tokio::spawn(async move {
        if *closed.borrow() || !stream::open(&tx).await {
            return;
        }
        let mut sent = std::collections::HashMap::new();
        loop {
            let snapshot = snapshots.borrow_and_update().clone();
            if let Some(fragments) = render(snapshot).await
                && !stream::send_new(&tx, &mut sent, &[&regions(fragments)[..]]).await
            {
                return;
            }
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() { return },
                _ = closed.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    stream::events(rx)
}

/// `GET /events/bullmq?sort=&q=&offset=`: the same page of queues as the
/// page with that query.
pub async fn events_list(
    State(state): State<AppState>,
    Query(params): Query<QueuesParams>,
) -> Result<Events, AppError> {
    let query = parse_query(&params)?;
    let monitor = monitor(&state)?.clone();
    let page_state = state.clone();
    Ok(live(
        &state,
        &monitor,
        Box::new(move |snapshot| {
            let vm = queues_vm(&page_state, &snapshot, &query, app::QUEUES_PER_PAGE);
            Box::pin(async move { Some(app::bullmq_fragments(&vm)) })
        }),
    ))
}

/// Whether something about `queue` changed since `seen` (and remembers).
fn moved(snapshot: &BullSnapshot, queue: &str, seen: &Mutex<Option<u64>>) -> bool {
    let now = snapshot.changed.get(queue).copied().unwrap_or(0);
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *seen == Some(now) {
        return false;
    }
    *seen = Some(now);
    true
}

/// `GET /events/bullmq/{queue}?state=&offset=&limit=`: the header and the
/// job table, reloaded when the queue's events say something happened.
pub async fn events_queue(
    State(state): State<AppState>,
    Path(BullQueuePath { queue }): Path<BullQueuePath>,
    Query(query): Query<BullListQuery>,
) -> Result<Events, AppError> {
    let (bull_state, offset, limit) = query.parse()?;
    let monitor = monitor(&state)?.clone();
    monitor.client().counts(&queue).await?;
    let seen = Arc::new(Mutex::new(None));
    let reader = monitor.clone();
    Ok(live(
        &state,
        &monitor,
        Box::new(move |snapshot| {
            let fresh = moved(&snapshot, &queue, &seen);
            let (reader, queue) = (reader.clone(), queue.clone());
            Box::pin(async move {
                if !fresh {
                    return None;
                }
                let vm = queue_vm(&reader, &queue, bull_state, offset, limit)
                    .await
                    .ok()?;
                Some(app::bull_queue_fragments(&vm, coord::time::now_ms()))
            })
        }),
    ))
}

/// `GET /events/bullmq/{queue}/jobs/{id}`.
pub async fn events_job(
    State(state): State<AppState>,
    Path(BullJobPath { queue, id }): Path<BullJobPath>,
) -> Result<Events, AppError> {
    let monitor = monitor(&state)?.clone();
    let seen = Arc::new(Mutex::new(None));
    let reader = monitor.clone();
    Ok(live(
        &state,
        &monitor,
        Box::new(move |snapshot| {
            let fresh = moved(&snapshot, &queue, &seen);
            let (reader, queue, id) = (reader.clone(), queue.clone(), id.clone());
            Box::pin(async move {
                if !fresh {
                    return None;
                }
                let vm = job_vm(&reader, &queue, &id).await.ok()?;
                Some(app::bull_job_fragments(&vm))
            })
        }),
    ))
}
