//! The dashboard's buttons: HTML form posts that act, then redirect back
//! (303) to the page they came from with a one-off notice. They work
//! without JavaScript; the JSON API offers the same actions to programs.
//!
//! Races an operator cannot see coming (the job was retried by a colleague,
//! removed by retention, picked up by a worker) are notices, not error
//! pages: the page they return to already shows the new state.

use axum::extract::State;
use axum::response::Response;
use coord::CoordError;
use coord::queue::{JobId, MAX_PAGE, QueueName};

use crate::audit::{Actor, AuditEntry, Outcome};
use crate::http::error::{AppError, one_line};
use crate::http::extract::{Form, JobPath, Path, QueuePath};
use crate::http::forms::{ActionFields, redirect};
use crate::queues::{MatchingStart, RetryAllStart};
use crate::state::AppState;

/// The notice for a job action that found the job in another state than
/// the button expected; other errors stay errors.
fn race_notice(err: CoordError) -> Result<String, AppError> {
    match err {
        CoordError::WrongState { .. }
        | CoordError::JobActive { .. }
        | CoordError::NotRetrying { .. } => {
            Ok(format!("Nothing was done: {}.", one_line(&err.to_string())))
        }
        CoordError::JobNotFound { job, .. } => {
            Ok(format!("Nothing was done: job {job} no longer exists."))
        }
        other => Err(other.into()),
    }
}

fn queue_page(queue: &QueueName, state: &str) -> String {
    format!("/queues/{queue}?state={state}")
}

/// What a single-job button does.
#[derive(Debug, Clone, Copy)]
enum JobAction {
    Retry,
    Remove,
    Promote,
    StopRetrying,
}

impl JobAction {
    /// The tab to return to when the form gives no `back`.
    fn home_state(self) -> &'static str {
        match self {
            JobAction::Retry | JobAction::Remove | JobAction::StopRetrying => "failed",
            JobAction::Promote => "delayed",
        }
    }

    /// The audit log's name for it.
    fn audit_action(self) -> &'static str {
        match self {
            JobAction::Retry => "job.retry",
            JobAction::Remove => "job.remove",
            JobAction::Promote => "job.promote",
            JobAction::StopRetrying => "job.stop_retrying",
        }
    }

    fn done(self, id: &JobId) -> String {
        match self {
            JobAction::Retry => format!("Job {id} was retried: it is waiting to run again."),
            JobAction::Remove => format!("Job {id} was removed."),
            JobAction::Promote => format!("Job {id} will run now."),
            JobAction::StopRetrying => format!(
                "Job {id} will not be retried: it is in the failed set, marked as stopped by an operator."
            ),
        }
    }
}

async fn act_on_job(
    state: AppState,
    actor: Actor,
    JobPath { queue, id }: JobPath,
    pairs: Vec<(String, String)>,
    action: JobAction,
) -> Result<Response, AppError> {
    let entry = AuditEntry::new(
        &actor,
        action.audit_action(),
        "job",
        &format!("{queue}/{id}"),
    );
    let back = ActionFields::from_pairs(pairs).back_or(queue_page(&queue, action.home_state()));
    let result = match action {
        JobAction::Retry => state.queues.retry(&queue, &id).await,
        JobAction::Remove => state.queues.remove(&queue, &id).await,
        JobAction::Promote => state.queues.promote(&queue, &id).await,
        JobAction::StopRetrying => state.queues.stop_retrying(&queue, &id).await,
    };
    let (outcome, notice) = match result {
        Ok(()) => (Outcome::Ok, action.done(&id)),
        Err(err) => match race_notice(err) {
            // Nothing was done: a refusal, though the page reads as a notice.
            Ok(notice) => (Outcome::Refused, notice),
            Err(err) => return state.audit.outcome(entry, Err(err)).await,
        },
    };
    let detail = (outcome == Outcome::Refused).then(|| notice.clone());
    state.audit.note(entry.ended(outcome, detail)).await;
    Ok(redirect(&back, &notice))
}

/// `POST /queues/{queue}/jobs/{id}/retry`: a failed job back to waiting.
pub async fn retry_job(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<JobPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    act_on_job(state, actor, path, pairs, JobAction::Retry).await
}

/// `POST /queues/{queue}/jobs/{id}/remove`: deletes a job not running.
pub async fn remove_job(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<JobPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    act_on_job(state, actor, path, pairs, JobAction::Remove).await
}

/// `POST /queues/{queue}/jobs/{id}/promote`: a delayed job runs now.
pub async fn promote_job(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<JobPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    act_on_job(state, actor, path, pairs, JobAction::Promote).await
}

/// `POST /queues/{queue}/jobs/{id}/stop-retrying`: a job waiting out a
/// backoff (or waiting to run again) fails now instead.
pub async fn stop_retrying_job(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<JobPath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    act_on_job(state, actor, path, pairs, JobAction::StopRetrying).await
}

/// `POST /queues/{queue}/retry-selected` with one `id` field per ticked
/// job (at most one page's worth). Jobs that are no longer failed are
/// skipped and counted, so a double submit retries each job once.
pub async fn retry_selected(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let entry = AuditEntry::new(&actor, "queue.retry_selected", "queue", queue.as_str());
    let result = retry_selected_jobs(&state, &queue, pairs).await;
    match result {
        Ok((back, notice, retried)) => {
            // Nothing selected, or none still failed: nothing was done.
            let outcome = if retried > 0 {
                Outcome::Ok
            } else {
                Outcome::Refused
            };
            state
                .audit
                .note(entry.ended(outcome, Some(notice.clone())))
                .await;
            Ok(redirect(&back, &notice))
        }
        Err(err) => state.audit.outcome(entry, Err(err)).await,
    }
}

/// Retries the selected jobs: where to go back to, the notice, and how
/// many were retried.
async fn retry_selected_jobs(
    state: &AppState,
    queue: &QueueName,
    pairs: Vec<(String, String)>,
) -> Result<(String, String, usize), AppError> {
    let fields = ActionFields::from_pairs(pairs);
    let back = fields.back_or(queue_page(queue, "failed"));
    if fields.ids.len() > MAX_PAGE as usize {
        return Err(AppError::bad_request(format!(
            "at most {MAX_PAGE} jobs can be retried at once (got {}); use Retry all failed",
            fields.ids.len()
        )));
    }
    let ids = fields
        .ids
        .iter()
        .map(|id| JobId::new(id.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Ok((back, "Select the jobs to retry first.".to_owned(), 0));
    }
    state.queues.counts(queue).await?;
    let mut retried = 0usize;
    let mut skipped = 0usize;
    for id in &ids {
        match state.queues.retry(queue, id).await {
            Ok(()) => retried += 1,
            Err(err) => {
                race_notice(err)?;
                skipped += 1;
            }
        }
    }
    let mut notice = format!(
        "Retried {retried} {}.",
        if retried == 1 { "job" } else { "jobs" }
    );
    if skipped > 0 {
        notice.push_str(&format!(
            " {skipped} {} no longer failed and left as {}.",
            if skipped == 1 { "was" } else { "were" },
            if skipped == 1 { "it was" } else { "they were" }
        ));
    }
    tracing::info!(%queue, retried, skipped, "selected failed jobs retried");
    Ok((back, notice, retried))
}

/// `POST /queues/{queue}/retry-failed`: starts retrying every failed job
/// in the background ([`crate::queues::start_retry_all`]); the queue page
/// shows its progress live. A second click while it runs starts nothing.
pub async fn retry_failed(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let back = ActionFields::from_pairs(pairs).back_or(queue_page(&queue, "failed"));
    let notice = match crate::queues::start_retry_all(&state, &actor, &queue).await? {
        RetryAllStart::Started(_) => "Retrying all failed jobs; progress shows below.",
        RetryAllStart::AlreadyRunning => {
            "A retry of all failed jobs is already running on this queue."
        }
    };
    Ok(redirect(&back, notice))
}

/// Pauses or resumes a queue ([`crate::queues::set_paused`]), then comes
/// back with a notice.
async fn set_paused(
    state: AppState,
    actor: Actor,
    queue: QueueName,
    pairs: Vec<(String, String)>,
    paused: bool,
) -> Result<Response, AppError> {
    let back = ActionFields::from_pairs(pairs).back_or(format!("/queues/{queue}"));
    crate::queues::set_paused(&state, &actor, &queue, paused).await?;
    let notice = if paused {
        format!("Queue {queue} is paused: workers take no new jobs until it is resumed.")
    } else {
        format!("Queue {queue} is running again.")
    };
    Ok(redirect(&back, &notice))
}

/// `POST /queues/{queue}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    set_paused(state, actor, queue, pairs, true).await
}

/// `POST /queues/{queue}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    set_paused(state, actor, queue, pairs, false).await
}

/// The filter a matching-set button posts (`state`, `name`, `q`, `group`),
/// read as the page's own query so both validate alike.
fn matching_query(
    pairs: &[(String, String)],
) -> Result<crate::queues::vm::QueuePageQuery, AppError> {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    crate::queues::vm::QueuePageParams {
        state: field("state"),
        offset: None,
        limit: None,
        name: field("name"),
        q: field("q"),
        group: field("group"),
    }
    .parse()
}

async fn act_on_matching(
    state: AppState,
    actor: Actor,
    queue: QueueName,
    pairs: Vec<(String, String)>,
    action: coord::errors::GroupAction,
) -> Result<Response, AppError> {
    let query = matching_query(&pairs)?;
    let back =
        ActionFields::from_pairs(pairs).back_or(queue_page(&queue, query.page.state.as_str()));
    let (verb, noun) = match action {
        coord::errors::GroupAction::Retry => ("Retrying", "retry"),
        coord::errors::GroupAction::Remove => ("Removing", "remove"),
    };
    let notice = match crate::queues::start_matching(&state, &actor, &queue, &query, action).await?
    {
        MatchingStart::Started(n, _) => format!(
            "{verb} the {} matching {}; progress shows above.",
            app::format_count(n),
            if n == 1 { "job" } else { "jobs" }
        ),
        MatchingStart::AlreadyRunning => {
            "Nothing was started: another bulk action is running on this queue.".to_owned()
        }
        MatchingStart::Nothing => format!("Nothing to {noun}: no job matches the filter now."),
    };
    Ok(redirect(&back, &notice))
}

/// `POST /queues/{queue}/retry-matching` with the page's filter
/// (`state=failed`, `name`, `q`, `group`): retries exactly the jobs it
/// matches now ([`crate::queues::start_matching`]).
pub async fn retry_matching(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    act_on_matching(
        state,
        actor,
        queue,
        pairs,
        coord::errors::GroupAction::Retry,
    )
    .await
}

/// `POST /queues/{queue}/remove-matching`: removes exactly the jobs the
/// page's filter matches now, in any state but active.
pub async fn remove_matching(
    State(state): State<AppState>,
    actor: Actor,
    Path(QueuePath { queue }): Path<QueuePath>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    act_on_matching(
        state,
        actor,
        queue,
        pairs,
        coord::errors::GroupAction::Remove,
    )
    .await
}

#[cfg(test)]
mod tests {
    /// The page script refuses a selection the server would refuse.
    #[test]
    fn the_page_knows_how_many_jobs_retry_selected_takes() {
        assert_eq!(app::vm::queues::MAX_SELECTED, coord::queue::MAX_PAGE);
    }
}
