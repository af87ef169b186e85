//! Finding jobs from anywhere: the header's box and `/search` look a job
//! id up in every queue and search names, data and errors across queues
//! and states (`coord::search`); `/api/search` answers the same as JSON.
//! For the embedded backend, [`start_indexer`] keeps its text index
//! filled behind the writers.

pub mod routes;

use std::time::Duration;

use coord::queue::Queues;
use coord::search::{FoundJob, SearchQuery, SearchResult};
use tokio::sync::watch;

use crate::http::error::AppError;

/// Hits a search shows at once.
pub const SEARCH_LIMIT: usize = 50;
/// Jobs the indexer adds per write transaction: short enough that workers'
/// steps barely wait for the write lock.
const INDEX_BATCH: usize = 1_000;
/// Batches in a row before the indexer pauses, so it never monopolises
/// the writer.
const BATCHES_PER_ROUND: usize = 20;
/// Pause between rounds once caught up.
const INDEX_INTERVAL: Duration = Duration::from_secs(1);

/// A search as the page and the API show it.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    /// The text as typed.
    pub text: String,
    /// The text read as a job id, and the queues that have it.
    pub id: Option<(String, Vec<FoundJob>)>,
    /// The text search.
    pub result: SearchResult,
}

/// Runs what was typed: the id lookup when it reads as one, and the text
/// search. Bad queries are 400s with the reason.
pub async fn search(queues: &Queues, text: &str) -> Result<SearchOutcome, AppError> {
    let query = match SearchQuery::parse(text) {
        Ok(query) => query,
        Err(err) => return id_only(queues, text, err).await,
    };
    if query.is_empty() {
        return Err(AppError::bad_request(
            "type a job id or words to search for (q)",
        ));
    }
    let id = match query.as_job_id() {
        Some(id) => Some((id.to_string(), queues.find_job(&id).await?)),
        None => None,
    };
    let result = queues.search(&query, SEARCH_LIMIT).await?;
    Ok(SearchOutcome {
        text: text.to_owned(),
        id,
        result,
    })
}

/// Text that is no query may still be a job id holding a `:` (`order:12`,
/// pasted into the header box): found in some queue, that is the answer;
/// found nowhere, the query's error is.
async fn id_only(
    queues: &Queues,
    text: &str,
    err: coord::CoordError,
) -> Result<SearchOutcome, AppError> {
    let trimmed = text.trim();
    if let Ok(id) = coord::queue::JobId::new(trimmed)
        && !trimmed.contains(char::is_whitespace)
    {
        let found = queues.find_job(&id).await?;
        if !found.is_empty() {
            return Ok(SearchOutcome {
                text: text.to_owned(),
                id: Some((id.to_string(), found)),
                result: SearchResult {
                    complete: true,
                    searched: "no text: it reads only as a job id".to_owned(),
                    ..SearchResult::default()
                },
            });
        }
    }
    Err(err.into())
}

/// The page's view of a search.
pub fn search_vm(outcome: &SearchOutcome) -> app::SearchPageVm {
    let (id, found_in) = match &outcome.id {
        Some((id, found)) => (
            Some(id.clone()),
            found
                .iter()
                .map(|f| (f.queue.to_string(), f.state.as_str().to_owned()))
                .collect(),
        ),
        None => (None, Vec::new()),
    };
    app::SearchPageVm {
        query: outcome.text.clone(),
        id,
        found_in,
        hits: outcome
            .result
            .hits
            .iter()
            .map(|hit| app::SearchHitVm {
                queue: hit.queue.to_string(),
                id: hit.id.to_string(),
                name: hit.name.clone(),
                state: hit.state.as_str().to_owned(),
                created_at: hit.created_at,
                failed_reason: hit.failed_reason.clone(),
            })
            .collect(),
        limit: SEARCH_LIMIT,
        complete: outcome.result.complete,
        searched: outcome.result.searched.clone(),
        unindexed: outcome.result.unindexed,
        error: None,
    }
}

/// Keeps the embedded backend's text index filled: a round of batches
/// every second, until `closed`. Redis has no index (each call returns at
/// once). Errors are logged and retried; searches meanwhile say how many
/// jobs are not indexed yet.
pub fn start_indexer(queues: Queues, mut closed: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let mut backoff = INDEX_INTERVAL;
            for _ in 0..BATCHES_PER_ROUND {
                match queues.index_search(INDEX_BATCH).await {
                    Ok(progress) if progress.pending > 0 && progress.indexed > 0 => {
                        tokio::task::yield_now().await;
                    }
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot index jobs for search; retrying");
                        backoff = INDEX_INTERVAL * 5;
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = closed.changed() => return,
            }
            if *closed.borrow() {
                return;
            }
        }
    });
}
