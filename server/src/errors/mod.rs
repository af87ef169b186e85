//! Error groups: the failed jobs of one queue, or of every queue, grouped
//! by normalised reason (kept by `coord`, read here O(groups)), and the
//! actions on a whole group. The page, the live stream and the API all
//! build their answer with [`queue_errors`] or [`all_errors`]; a group's
//! retry or removal starts through [`start_group_action`] alone.

pub mod routes;

use std::collections::HashMap;

use coord::errors::{ErrorGroup, GroupAction, GroupId, MAX_GROUPS, Trend};
use coord::queue::{QueueName, Queues};
use coord::time::now_ms;
use serde::Deserialize;

use crate::audit::{Actor, AuditEntry, Outcome};
use crate::http::error::AppError;
use crate::live::Snapshot;
use crate::queues::figures::{BulkAction, RetryProgress};
use crate::state::AppState;

/// Queues the all-queues page reads groups of: those with the most failed
/// jobs. Each is one read of its groups, so this bounds the page's cost at
/// 10,000 queues; the page says when queues were left out.
pub const MAX_QUEUES_READ: usize = 100;

/// Queues named per group on the all-queues page.
const QUEUES_NAMED: usize = 5;

/// Most groups per page.
pub const MAX_LIMIT: u64 = 200;

/// Raw `?sort=&offset=&limit=`, kept as text so a bad value is refused
/// with a reason of our own.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorsParams {
    sort: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

/// How the groups are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    /// Most failed jobs first (the default: the biggest problem first).
    Failed,
    /// Most recent failure first.
    Recent,
}

impl Sort {
    fn as_str(self) -> &'static str {
        match self {
            Sort::Failed => "failed",
            Sort::Recent => "recent",
        }
    }
}

/// A validated request for a page of groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorsQuery {
    /// The order.
    pub sort: Sort,
    /// Groups to skip.
    pub offset: u64,
    /// Page size, 1..=[`MAX_LIMIT`].
    pub limit: u64,
}

impl ErrorsParams {
    /// Validates the parameters, a 400 with the reason for a bad one.
    pub fn parse(&self) -> Result<ErrorsQuery, AppError> {
        let sort = match self.sort.as_deref().map(str::trim) {
            None | Some("") | Some("failed") => Sort::Failed,
            Some("recent") => Sort::Recent,
            Some(other) => {
                return Err(AppError::bad_request(format!(
                    "sort must be failed or recent (got {other:?})"
                )));
            }
        };
        let offset = match self.offset.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(t) => t.parse::<u64>().map_err(|_| {
                AppError::bad_request(format!("offset must be a whole number (got {t:?})"))
            })?,
        };
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => app::GROUPS_PER_PAGE,
            Some(t) => t
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    AppError::bad_request(format!(
                        "limit must be a whole number between 1 and {MAX_LIMIT} (got {t:?})"
                    ))
                })?,
        };
        Ok(ErrorsQuery {
            sort,
            offset,
            limit,
        })
    }
}

/// One group as a page lists it: the group, the queues it was read from
/// (one on a queue's page) and its trend once read.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The group, summed over its queues.
    pub group: ErrorGroup,
    /// (queue, failed jobs of the group there), the most first.
    pub queues: Vec<(QueueName, u64)>,
    /// The queue of the group's sample job (the latest failure).
    pub sample_queue: QueueName,
    /// Its last hour, summed over the queues named (the five with the
    /// most of its jobs).
    pub trend: Trend,
}

/// A page of groups and what it covers.
#[derive(Debug, Clone)]
pub struct GroupsPage {
    /// The page.
    pub groups: Vec<Listed>,
    /// Groups in all, of those read.
    pub total: u64,
    /// Failed jobs in those groups.
    pub failed: u64,
    /// What was not read, in words (never hidden).
    pub coverage: Vec<String>,
    /// The page asked for.
    pub query: ErrorsQuery,
}

/// A page of one queue's groups, with the trend of those shown.
pub async fn queue_errors(
    queues: &Queues,
    queue: &QueueName,
    query: ErrorsQuery,
) -> Result<GroupsPage, coord::CoordError> {
    let read = queues.error_groups(queue, MAX_GROUPS).await?;
    let mut coverage = Vec::new();
    if read.total > read.groups.len() as u64 {
        coverage.push(format!(
            "Showing the {} most recently failing of {} groups.",
            app::format_count(read.groups.len() as u64),
            app::format_count(read.total)
        ));
    } else {
        // Jobs that failed before error groups existed (on Redis, which
        // has no backfill) are in none: said, never silently left out.
        let grouped: u64 = read.groups.iter().map(|g| g.failed).sum();
        let failed = queues.counts(queue).await?.failed;
        if failed > grouped {
            let n = failed - grouped;
            coverage.push(format!(
                "{} failed {} in no group: {} failed before error groups were kept; the failed tab lists {}.",
                app::format_count(n),
                if n == 1 { "job is" } else { "jobs are" },
                if n == 1 { "it" } else { "they" },
                if n == 1 { "it" } else { "them" }
            ));
        }
    }
    let listed = read
        .groups
        .into_iter()
        .map(|group| Listed {
            queues: vec![(queue.clone(), group.failed)],
            sample_queue: queue.clone(),
            group,
            trend: Trend::default(),
        })
        .collect();
    let mut page = paged(listed, query, coverage);
    let ids: Vec<GroupId> = page.groups.iter().map(|l| l.group.id).collect();
    if !ids.is_empty() {
        let trends = queues.error_trends(queue, &ids, now_ms()).await?;
        for (listed, trend) in page.groups.iter_mut().zip(trends) {
            listed.trend = trend;
        }
    }
    Ok(page)
}

/// A page of the groups of every queue with failed jobs (the
/// [`MAX_QUEUES_READ`] with the most), merged by group across queues.
pub async fn all_errors(
    queues: &Queues,
    snapshot: &Snapshot,
    query: ErrorsQuery,
) -> Result<GroupsPage, coord::CoordError> {
    // Names in the snapshot are the backend's own, so valid; one that is
    // not is skipped rather than failing the page.
    let mut failing: Vec<(QueueName, u64)> = snapshot
        .queues
        .iter()
        .filter(|q| q.counts.failed > 0)
        .filter_map(|q| Some((QueueName::new(q.name.as_str()).ok()?, q.counts.failed)))
        .collect();
    failing.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut coverage = Vec::new();
    if failing.len() > MAX_QUEUES_READ {
        coverage.push(format!(
            "Read the {} queues with the most failed jobs of {} with any; the others' groups are not shown.",
            MAX_QUEUES_READ,
            app::format_count(failing.len() as u64)
        ));
        failing.truncate(MAX_QUEUES_READ);
    }
    let mut merged: HashMap<GroupId, Listed> = HashMap::new();
    let mut capped = 0usize;
    for (queue, _) in &failing {
        let read = match queues.error_groups(queue, MAX_GROUPS).await {
            Ok(read) => read,
            // Emptied or gone since the snapshot: nothing to show.
            Err(coord::CoordError::QueueNotFound(_)) => continue,
            Err(err) => return Err(err),
        };
        if read.total > read.groups.len() as u64 {
            capped += 1;
        }
        for group in read.groups {
            let failed = group.failed;
            match merged.get_mut(&group.id) {
                Some(listed) => {
                    if group.last_seen > listed.group.last_seen {
                        listed.sample_queue = queue.clone();
                    }
                    merge(&mut listed.group, group);
                    listed.queues.push((queue.clone(), failed));
                }
                None => {
                    merged.insert(
                        group.id,
                        Listed {
                            queues: vec![(queue.clone(), failed)],
                            sample_queue: queue.clone(),
                            group,
                            trend: Trend::default(),
                        },
                    );
                }
            }
        }
    }
    if capped > 0 {
        coverage.push(format!(
            "{capped} {} more than {} groups: only the most recently failing were read there.",
            if capped == 1 {
                "queue has"
            } else {
                "queues have"
            },
            app::format_count(MAX_GROUPS as u64)
        ));
    }
    let mut page = paged(merged.into_values().collect(), query, coverage);
    // Trends of the page's groups, one read per queue they are named in.
    let mut by_queue: HashMap<QueueName, Vec<(usize, GroupId)>> = HashMap::new();
    for (i, listed) in page.groups.iter_mut().enumerate() {
        listed
            .queues
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (queue, _) in listed.queues.iter().take(QUEUES_NAMED) {
            by_queue
                .entry(queue.clone())
                .or_default()
                .push((i, listed.group.id));
        }
    }
    let now = now_ms();
    for (queue, wanted) in by_queue {
        let ids: Vec<GroupId> = wanted.iter().map(|(_, id)| *id).collect();
        let trends = match queues.error_trends(&queue, &ids, now).await {
            Ok(trends) => trends,
            Err(coord::CoordError::QueueNotFound(_)) => continue,
            Err(err) => return Err(err),
        };
        for ((i, _), trend) in wanted.iter().zip(trends) {
            for (sum, n) in page.groups[*i].trend.iter_mut().zip(trend) {
                *sum = sum.saturating_add(n);
            }
        }
    }
    Ok(page)
}

/// Adds `other` (the same group in another queue) into `into`.
fn merge(into: &mut ErrorGroup, other: ErrorGroup) {
    into.failed += other.failed;
    into.first_seen = into.first_seen.min(other.first_seen);
    if other.last_seen > into.last_seen {
        into.last_seen = other.last_seen;
        into.sample_job = other.sample_job;
        into.sample_reason = other.sample_reason;
    }
    let mut names: HashMap<String, u64> = into.names.drain(..).collect();
    for (name, n) in other.names {
        *names.entry(name).or_default() += n;
    }
    into.names = names.into_iter().collect();
    let total = into.names_total.max(other.names_total);
    into.keep_top_names();
    into.names_total = into.names_total.max(total);
}

/// Orders the groups as asked and cuts the page.
fn paged(mut groups: Vec<Listed>, query: ErrorsQuery, coverage: Vec<String>) -> GroupsPage {
    match query.sort {
        Sort::Failed => groups.sort_by(|a, b| {
            b.group
                .failed
                .cmp(&a.group.failed)
                .then_with(|| b.group.last_seen.cmp(&a.group.last_seen))
                .then_with(|| a.group.id.cmp(&b.group.id))
        }),
        Sort::Recent => groups.sort_by(|a, b| {
            b.group
                .last_seen
                .cmp(&a.group.last_seen)
                .then_with(|| a.group.id.cmp(&b.group.id))
        }),
    }
    let total = groups.len() as u64;
    let failed = groups.iter().map(|l| l.group.failed).sum();
    let groups = groups
        .into_iter()
        .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(query.limit).unwrap_or(usize::MAX))
        .collect();
    GroupsPage {
        groups,
        total,
        failed,
        coverage,
        query,
    }
}

/// The view model of a page of groups.
pub fn errors_vm(
    page: &GroupsPage,
    queue: Option<&QueueName>,
    progress: Option<&RetryProgress>,
) -> app::ErrorsVm {
    let groups = page
        .groups
        .iter()
        .map(|listed| {
            let g = &listed.group;
            app::ErrorGroupRow {
                id: g.id.to_string(),
                reason: g.normalised(),
                sample_reason: g.sample_reason.clone(),
                sample_job: (listed.sample_queue.to_string(), g.sample_job.to_string()),
                failed: g.failed,
                first_seen: g.first_seen,
                last_seen: g.last_seen,
                names: g.names.clone(),
                more_names: g.names_total.saturating_sub(g.names.len() as u64),
                trend: listed.trend.to_vec(),
                queues: listed
                    .queues
                    .iter()
                    .take(QUEUES_NAMED)
                    .map(|(q, n)| app::GroupQueueVm {
                        queue: q.to_string(),
                        failed: *n,
                    })
                    .collect(),
                more_queues: listed.queues.len().saturating_sub(QUEUES_NAMED) as u64,
            }
        })
        .collect();
    app::ErrorsVm {
        queue: queue.map(ToString::to_string),
        groups,
        total: page.total,
        offset: page.query.offset,
        limit: page.query.limit,
        sort: page.query.sort.as_str().to_owned(),
        failed: page.failed,
        coverage: page.coverage.clone(),
        progress: progress.map(crate::queues::vm::progress),
        notice: None,
    }
}

/// Whether a group action was started.
#[derive(Debug)]
pub enum GroupActionStart {
    /// It runs on the hub; the receiver answers its final progress.
    Started(tokio::sync::watch::Receiver<Option<RetryProgress>>),
    /// Another bulk run is going on this queue; nothing was started.
    AlreadyRunning,
    /// The group has no failed job (any more): nothing to do.
    Empty,
}

/// Starts retrying or removing every failed job of a group in the
/// background, in batches, with progress on the queue's pages; audited
/// with the group, its reason and its size. 404 for an unknown queue.
pub async fn start_group_action(
    state: &AppState,
    actor: &Actor,
    queue: &QueueName,
    group: GroupId,
    action: GroupAction,
) -> Result<GroupActionStart, AppError> {
    let name = match action {
        GroupAction::Retry => "queue.retry_group",
        GroupAction::Remove => "queue.remove_group",
    };
    let entry = AuditEntry::new(actor, name, "queue", queue.as_str());
    // The group's size, and its reason for the progress line and the
    // record (read from its newest job, as the list shows it): one read.
    let newest = match state
        .queues
        .list_error_group(queue, group, 0, 1, coord::errors::MAX_SAMPLE as u32)
        .await
    {
        Ok(page) => page,
        Err(err) => return state.audit.outcome(entry, Err(err.into())).await,
    };
    let size = newest.total;
    let reason = newest
        .jobs
        .first()
        .and_then(|job| job.failed_reason.as_deref())
        .map(coord::errors::normalise)
        .unwrap_or_else(|| group.to_string());
    let detail = format!("group {group} “{reason}”, {size} failed jobs");
    if size == 0 {
        state
            .audit
            .note(entry.ended(Outcome::Refused, Some(format!("{detail}: nothing to do"))))
            .await;
        return Ok(GroupActionStart::Empty);
    }
    let bulk = BulkAction::Group {
        group,
        action,
        reason,
    };
    let (start, outcome, detail) = match state.hub.start_bulk(queue.clone(), bulk) {
        Some(done) => {
            tracing::info!(%queue, %group, action = action.as_str(), size, "error group action started");
            (GroupActionStart::Started(done), Outcome::Ok, detail)
        }
        None => (
            GroupActionStart::AlreadyRunning,
            Outcome::Refused,
            format!("{detail}: another bulk action is running on the queue"),
        ),
    };
    state.audit.note(entry.ended(outcome, Some(detail))).await;
    Ok(start)
}
