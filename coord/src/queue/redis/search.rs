//! Finding jobs on Redis ([`crate::search`]). An id is one `HGET` per
//! queue, run concurrently. Text has no index on Redis, but two qualifiers
//! do, kept by the job scripts: `name:` reads the name index (the newest
//! ids enqueued under each name, written by `enqueue.lua`), `error:` the
//! error groups (failed jobs) and the retrying set (jobs waiting out a
//! backoff). Anything else reads the newest jobs of each queue and state
//! it may match. Every read is within a budget, values clipped as a
//! listing clips them, and the answer says what it read.

use futures_util::StreamExt;
use futures_util::stream;

use super::RedisBackend;
use crate::error::{CoordError, Result};
use crate::errors::MAX_GROUPS;
use crate::queue::{JobId, JobState, QueueBackend, QueueName};
use crate::search::{DATA_INDEX_BYTES, FoundJob, SearchHit, SearchQuery, SearchResult, thousands};

/// Jobs a text search reads in all, shared among the (queue, state) sets
/// it looks in.
pub const SCAN_BUDGET: u64 = 5_000;
/// Fewest jobs it reads from each set it looks in.
const MIN_PER_SET: u64 = 20;
/// Most sets one search reads: the budget at the fewest jobs each.
const MAX_SETS: usize = (SCAN_BUDGET / MIN_PER_SET) as usize;
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

/// Ids the name index keeps per name (`NAME_JOBS` in `common.lua`).
pub const NAME_JOBS: u64 = 5_000;
/// Names the name index keeps per queue (`NAMES` in `common.lua`).
pub const NAMES: u64 = 50;

/// A sorted set of job ids a search reads: the queue, the set's key, and
/// whether older members may have been trimmed from it.
struct Set {
    queue: QueueName,
    key: String,
    trimmed: bool,
    /// A list of ids (the name index) rather than a sorted set.
    list: bool,
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
    let (sets, what) = if !query.names.is_empty() {
        (
            name_sets(backend, &queues, query).await?,
            "the name index (the newest 5,000 jobs of each name)",
        )
    } else if !query.errors.is_empty() {
        (
            error_sets(backend, &queues, query).await?,
            "the error groups (failed jobs) and the retrying jobs",
        )
    } else {
        let states: Vec<JobState> = if query.states.is_empty() {
            JobState::ALL.to_vec()
        } else {
            query.states.clone()
        };
        let sets = queues
            .iter()
            .flat_map(|q| {
                let keys = backend.keys(q);
                states.iter().map(move |s| Set {
                    queue: q.clone(),
                    key: keys.state(*s).to_owned(),
                    trimmed: false,
                    list: false,
                })
            })
            .collect();
        (sets, "the newest jobs of each state")
    };
    // At most as many sets as the budget gives MIN_PER_SET each (the first
    // ones: queues in name order, groups most recently failing first), so
    // a search reads SCAN_BUDGET jobs at most; the rest are said.
    let mut sets = sets;
    let all_sets = sets.len();
    sets.truncate(MAX_SETS);
    let per_set = (SCAN_BUDGET / sets.len().max(1) as u64).max(MIN_PER_SET);
    let n_sets = sets.len();
    let pages = stream::iter(sets)
        .map(|set| async move {
            let keys = backend.keys(&set.queue);
            let page = backend
                .list_set(
                    &set.queue,
                    &set.key,
                    &keys,
                    (0, per_set),
                    Some(DATA_INDEX_BYTES as u32),
                    if set.list {
                        super::SetOrder::List
                    } else {
                        super::SetOrder::Descending
                    },
                )
                .await?;
            Ok::<_, CoordError>((page, set.trimmed))
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut complete = all_queues <= SCAN_QUEUES && all_sets <= MAX_SETS;
    let mut read = 0u64;
    let mut hits = Vec::new();
    for page in pages {
        let (page, trimmed) = page?;
        read += page.jobs.len() as u64;
        complete &= page.total <= per_set && !trimmed;
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
            .then_with(|| a.queue.as_str().cmp(b.queue.as_str()))
    });
    // A job in two sets read (a name's set and a state's) is one hit.
    hits.dedup_by(|a, b| a.queue == b.queue && a.id == b.id);
    hits.truncate(limit);
    let mut searched = format!(
        "{what} in {} {}: {} {} read, at most {} from each ({} read in all; values over 4 KiB are not searched)",
        thousands(queues.len() as u64),
        if queues.len() == 1 { "queue" } else { "queues" },
        thousands(n_sets as u64),
        if n_sets == 1 { "set" } else { "sets" },
        thousands(per_set),
        thousands(read)
    );
    if all_sets > MAX_SETS {
        searched.push_str(&format!(
            "; {} more sets matched and were not read (narrow the search)",
            thousands((all_sets - MAX_SETS) as u64)
        ));
    }
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

/// The name index's lists of every name holding all the `name:` terms,
/// one read of each queue's names. A queue with [`NAMES`] names may have
/// dropped older ones, and a name's list of [`NAME_JOBS`] older ids: both
/// count as trimmed.
async fn name_sets(
    backend: &RedisBackend,
    queues: &[QueueName],
    query: &SearchQuery,
) -> Result<Vec<Set>> {
    let terms: Vec<String> = query.names.iter().map(|n| n.to_lowercase()).collect();
    let terms = &terms;
    per_queue(queues, |queue| async move {
        let base = backend.keys(&queue).base;
        let names: Vec<String> = redis::cmd("ZREVRANGE")
            .arg(format!("{base}names"))
            .arg(0)
            .arg(-1)
            .query_async(&mut backend.conn())
            .await
            .map_err(CoordError::from)?;
        let all_names = names.len() as u64 >= NAMES;
        let wanted: Vec<String> = names
            .into_iter()
            .filter(|name| {
                let name = name.to_lowercase();
                terms.iter().all(|t| name.contains(t))
            })
            .map(|name| format!("{base}name:{name}"))
            .collect();
        let mut pipe = redis::pipe();
        for key in &wanted {
            pipe.llen(key);
        }
        let sizes: Vec<u64> = if wanted.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut backend.conn())
                .await
                .map_err(CoordError::from)?
        };
        Ok::<_, CoordError>(
            wanted
                .into_iter()
                .zip(sizes)
                .map(|(key, size)| Set {
                    queue: queue.clone(),
                    key,
                    trimmed: all_names || size >= NAME_JOBS,
                    list: true,
                })
                .collect::<Vec<_>>(),
        )
    })
    .await
}

/// For `error:`: the jobs sets of every error group whose shared reason
/// holds each term's normalised form (failed jobs, when the query admits
/// them), and the retrying set (waiting and delayed jobs with an error).
/// The jobs read are matched on their own reason afterwards.
async fn error_sets(
    backend: &RedisBackend,
    queues: &[QueueName],
    query: &SearchQuery,
) -> Result<Vec<Set>> {
    let terms: Vec<String> = query
        .errors
        .iter()
        .map(|e| crate::errors::normalise(e).to_lowercase())
        .collect();
    let terms = &terms;
    per_queue(queues, |queue| async move {
        let keys = backend.keys(&queue);
        let mut sets = Vec::new();
        if query.admits(&queue, JobState::Failed) {
            // Read as they are: a search books no old failures (the
            // queue's own group page does).
            let groups =
                super::errors::error_groups(&mut backend.conn(), &keys, MAX_GROUPS).await?;
            let capped = groups.total > groups.groups.len() as u64;
            for group in groups.groups {
                let reason = group.normalised().to_lowercase();
                if terms.iter().all(|t| reason.contains(t.as_str())) {
                    sets.push(Set {
                        queue: queue.clone(),
                        key: format!("{}error:{}:jobs", keys.base, group.id),
                        trimmed: capped,
                        list: false,
                    });
                }
            }
        }
        if query.admits(&queue, JobState::Waiting) || query.admits(&queue, JobState::Delayed) {
            sets.push(Set {
                queue: queue.clone(),
                key: format!("{}retrying", keys.base),
                trimmed: false,
                list: false,
            });
        }
        Ok::<_, CoordError>(sets)
    })
    .await
}

/// Runs `read` for each queue, [`CONCURRENCY`] at a time, and gathers the
/// sets they name.
async fn per_queue<F, Fut>(queues: &[QueueName], read: F) -> Result<Vec<Set>>
where
    F: Fn(QueueName) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Set>>>,
{
    let read = stream::iter(queues.iter().cloned())
        .map(read)
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut sets = Vec::new();
    for r in read {
        sets.extend(r?);
    }
    Ok(sets)
}
