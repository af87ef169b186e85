//! Builds each page's view model from the backend and the hub's latest
//! snapshot. Page handlers and live streams both call these, so a page and
//! its live updates show the same thing.

use app::{JobFilterVm, JobRow, QueuePageVm, QueueRow};
use coord::CoordError;
use coord::queue::{JobState, MAX_PAGE, QueueCounts, QueueName, Queues};
use coord::time::now_ms;
use serde::Deserialize;

use crate::error::AppError;
use crate::extract::{PageParams, PageRequest};
use crate::live::Snapshot;
use crate::views::{job_row, state_counts};

/// Most jobs a filtered search looks at (newest first): a filter over a
/// million jobs must not scan a million jobs per page view.
pub const SEARCH_LIMIT: u64 = 5_000;

/// Longest filter text accepted.
pub const MAX_FILTER_CHARS: usize = 200;

/// The query of a queue's page: `?state=&offset=&limit=&name=&q=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueuePageParams {
    /// A job state name (waiting when absent).
    pub state: Option<String>,
    /// Jobs (or matches) to skip.
    pub offset: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Substring of the job name.
    pub name: Option<String>,
    /// Substring of the data or failedReason.
    pub q: Option<String>,
}

/// A validated queue page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePageQuery {
    /// State, offset and limit.
    pub page: PageRequest,
    /// The filter (empty strings for none).
    pub filter: JobFilterVm,
}

impl QueuePageParams {
    /// Validates the parameters, with a reason for each bad one.
    pub fn parse(&self) -> Result<QueuePageQuery, AppError> {
        let page = PageParams {
            state: self.state.clone(),
            offset: self.offset.clone(),
            limit: self.limit.clone(),
        }
        .parse(Some(JobState::Waiting))?;
        let filter = JobFilterVm {
            name: filter_text("name", self.name.as_deref())?,
            text: filter_text("q", self.q.as_deref())?,
        };
        Ok(QueuePageQuery { page, filter })
    }
}

fn filter_text(param: &str, value: Option<&str>) -> Result<String, AppError> {
    let value = value.unwrap_or("").trim();
    if value.chars().count() > MAX_FILTER_CHARS {
        return Err(AppError::bad_request(format!(
            "the {param} filter is limited to {MAX_FILTER_CHARS} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::bad_request(format!(
            "the {param} filter must not contain control characters"
        )));
    }
    Ok(value.to_string())
}

/// One page of a state's jobs, possibly filtered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The page's jobs, newest first.
    pub jobs: Vec<JobRow>,
    /// Jobs in the state, or matches found when filtering.
    pub total: u64,
    /// What a filtered search covered.
    pub search_note: Option<String>,
    /// When it was loaded (ms): ages on the page are measured from here, so
    /// an unchanged table renders the same and is not sent again (the page
    /// script keeps ages current in the browser).
    pub loaded_at: i64,
}

/// Lists a page of jobs. Unfiltered, this is one backend call for the page;
/// filtered, it scans at most [`SEARCH_LIMIT`] of the newest jobs in pages
/// and says how far it looked.
pub async fn listing(
    queues: &Queues,
    queue: &QueueName,
    query: &QueuePageQuery,
) -> Result<Listing, CoordError> {
    let PageRequest {
        state,
        offset,
        limit,
    } = query.page;
    if !query.filter.is_active() {
        let page = queues.list(queue, state, offset, limit).await?;
        return Ok(Listing {
            jobs: page.jobs.iter().map(job_row).collect(),
            total: page.total,
            search_note: None,
            loaded_at: now_ms(),
        });
    }
    let name = query.filter.name.to_lowercase();
    let text = query.filter.text.to_lowercase();
    let mut matched = 0u64;
    let mut jobs = Vec::new();
    let mut scanned = 0u64;
    let mut total = 0u64;
    while scanned < SEARCH_LIMIT {
        let chunk = MAX_PAGE.min(SEARCH_LIMIT - scanned);
        let page = queues.list(queue, state, scanned, chunk).await?;
        total = page.total;
        let fetched = page.jobs.len() as u64;
        for job in &page.jobs {
            let name_ok = name.is_empty() || job.name.to_lowercase().contains(&name);
            let text_ok = text.is_empty()
                || job.data.to_string().to_lowercase().contains(&text)
                || job
                    .failed_reason
                    .as_deref()
                    .is_some_and(|r| r.to_lowercase().contains(&text));
            if name_ok && text_ok {
                if matched >= offset && (jobs.len() as u64) < limit {
                    jobs.push(job_row(job));
                }
                matched += 1;
            }
        }
        scanned += fetched;
        if fetched < chunk || scanned >= total {
            break;
        }
    }
    let state_name = state.as_str();
    let verb = if matched == 1 { "matches" } else { "match" };
    let note = if scanned >= total {
        format!(
            "Searched all {} {state_name} jobs: {} {verb}.",
            app::format_count(total),
            app::format_count(matched)
        )
    } else {
        format!(
            "Searched the newest {} of {} {state_name} jobs: {} {verb}. Narrow the filter or remove old jobs to search further.",
            app::format_count(scanned),
            app::format_count(total),
            app::format_count(matched)
        )
    };
    Ok(Listing {
        jobs,
        total: matched,
        search_note: Some(note),
        loaded_at: now_ms(),
    })
}

/// A queue's row from fresh counts, with rates and badge from the snapshot
/// (rates need history, which only the hub keeps).
pub fn queue_row(snapshot: &Snapshot, queue: &QueueName, counts: &QueueCounts) -> QueueRow {
    let known = snapshot.row(queue.as_str());
    let failure_rate = known.and_then(|r| r.failure_rate);
    let health = match snapshot.thresholds {
        Some(t) => t.health(counts, failure_rate),
        None => known.map(|r| r.health).unwrap_or_default(),
    };
    QueueRow {
        name: queue.to_string(),
        counts: state_counts(counts),
        paused: counts.paused,
        jobs_per_min: known.and_then(|r| r.jobs_per_min),
        failure_rate,
        health,
    }
}

/// The queue page's view model from its parts.
pub fn queue_page(
    row: QueueRow,
    query: &QueuePageQuery,
    listing: Listing,
    snapshot: &Snapshot,
) -> QueuePageVm {
    let progress = snapshot.progress.get(&row.name).cloned();
    QueuePageVm {
        state: query.page.state.as_str().to_string(),
        jobs: listing.jobs,
        total: listing.total,
        offset: query.page.offset,
        limit: query.page.limit,
        filter: query.filter.clone(),
        search_note: listing.search_note,
        progress,
        notice: None,
        queue: row,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_trimmed_and_bounded() {
        let params = QueuePageParams {
            name: Some("  send  ".into()),
            q: Some("x".repeat(201)),
            ..QueuePageParams::default()
        };
        let err = params.parse().expect_err("too long");
        assert!(err.message().contains("200 characters"), "{err}");
        let ok = QueuePageParams {
            name: Some("  send  ".into()),
            ..QueuePageParams::default()
        }
        .parse()
        .expect("valid");
        assert_eq!(ok.filter.name, "send");
        assert_eq!(ok.page.state, JobState::Waiting);
        let err = QueuePageParams {
            q: Some("a\u{7}b".into()),
            ..QueuePageParams::default()
        }
        .parse()
        .expect_err("control");
        assert!(err.message().contains("control characters"), "{err}");
    }
}
