//! Finding jobs on Redis ([`crate::search`]). An id is one `HGET` per
//! queue, run concurrently. Redis has no text index here, so a text
//! search reads the newest jobs of each queue and state it may match,
//! within a budget, values clipped as a listing clips them, and says so.

use futures_util::StreamExt;
use futures_util::stream;

use super::RedisBackend;
use crate::error::{CoordError, Result};
use crate::queue::{JobId, JobState, QueueBackend, QueueName};
use crate::search::{DATA_INDEX_BYTES, FoundJob, SearchHit, SearchQuery, SearchResult, thousands};

/// Jobs a text search reads in all, shared among the (queue, state) sets
/// it looks in.
pub const SCAN_BUDGET: u64 = 5_000;
/// Fewest jobs it reads from each set it looks in.
const MIN_PER_SET: u64 = 20;
/// Most queues a search looks in; more are named as not searched.
pub const SCAN_QUEUES: usize = 50;
/// Round trips in flight at once.
const CONCURRENCY: usize = 32;

pub(super) async fn find_job(backend: &RedisBackend, id: &JobId) -> Result<Vec<FoundJob>> {
    let queues = backend.queues().await?;
    let found = stream::iter(queues)
        .map(|queue| async move {
            let state: Option<String> = redis::cmd("HGET")
                .arg(backend.keys(&queue).job(id))
                .arg("state")
                .query_async(&mut backend.conn())
                .await
                .map_err(CoordError::from)?;
            Ok::<_, CoordError>(match state {
                Some(state) => Some(FoundJob {
                    queue,
                    state: state.parse()?,
                }),
                None => None,
            })
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut out = Vec::new();
    for f in found {
        if let Some(f) = f? {
            out.push(f);
        }
    }
    out.sort_by(|a, b| a.queue.as_str().cmp(b.queue.as_str()));
    Ok(out)
}

pub(super) async fn search(
    backend: &RedisBackend,
    query: &SearchQuery,
    limit: usize,
) -> Result<SearchResult> {
    let mut queues = if query.queues.is_empty() {
        backend.queues().await?
    } else {
        query.queues.clone()
    };
    queues.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let all_queues = queues.len();
    queues.truncate(SCAN_QUEUES);
    let states: Vec<JobState> = if query.states.is_empty() {
        JobState::ALL.to_vec()
    } else {
        query.states.clone()
    };
    let sets: Vec<(QueueName, JobState)> = queues
        .iter()
        .flat_map(|q| states.iter().map(move |s| (q.clone(), *s)))
        .collect();
    let per_set = (SCAN_BUDGET / sets.len().max(1) as u64).max(MIN_PER_SET);
    let pages = stream::iter(sets)
        .map(|(queue, state)| async move {
            match backend
                .list(&queue, state, 0, per_set, Some(DATA_INDEX_BYTES as u32))
                .await
            {
                Ok(page) => Ok(Some(page)),
                // A queue named in the query that does not exist has no jobs.
                Err(CoordError::QueueNotFound(_)) => Ok(None),
                Err(err) => Err(err),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut complete = all_queues <= SCAN_QUEUES;
    let mut read = 0u64;
    let mut hits = Vec::new();
    for page in pages {
        let Some(page) = page? else { continue };
        read += page.jobs.len() as u64;
        complete &= page.total <= per_set;
        hits.extend(
            page.jobs
                .iter()
                .filter(|job| query.matches(job))
                .map(SearchHit::of),
        );
    }
    hits.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.as_str().cmp(a.id.as_str()))
    });
    hits.truncate(limit);
    let mut searched = format!(
        "the newest {} jobs of each state in {} {} ({} jobs read; values over 4 KiB are not searched)",
        thousands(per_set),
        thousands(queues.len() as u64),
        if queues.len() == 1 { "queue" } else { "queues" },
        thousands(read)
    );
    if all_queues > SCAN_QUEUES {
        searched.push_str(&format!(
            "; {} more queues were not searched (name one with queue:)",
            thousands((all_queues - SCAN_QUEUES) as u64)
        ));
    }
    Ok(SearchResult {
        hits,
        complete,
        searched,
        unindexed: 0,
    })
}
