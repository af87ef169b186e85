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
use crate::bullmq::BullGroups;
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

/// A queue a group occurs in: a native one or a BullMQ one (whose names
/// follow BullMQ's rules, not ours).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    /// A native queue.
    Native(QueueName),
    /// A BullMQ queue.
    Bull(String),
}

impl Place {
    /// The queue's name.
    pub fn name(&self) -> &str {
        match self {
            Place::Native(q) => q.as_str(),
            Place::Bull(q) => q,
        }
    }

    /// Its error-group page.
    pub fn errors_url(&self) -> String {
        match self {
            Place::Native(q) => app::queue_errors_url(q.as_str()),
            Place::Bull(q) => app::bull_errors_url(q),
        }
    }

    /// A job's page.
    pub fn job_url(&self, id: &str) -> String {
        match self {
            Place::Native(q) => format!("/queues/{q}/jobs/{id}"),
            Place::Bull(q) => app::bull_job_path(q, id),
        }
    }
}

/// One group as a page lists it: the group, the queues it was read from
/// (one on a queue's page) and its trend once read.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The group, summed over its queues.
    pub group: ErrorGroup,
    /// (queue, failed jobs of the group there), the most first.
    pub queues: Vec<(Place, u64)>,
    /// The queue of the group's sample job (the latest failure).
    pub sample_queue: Place,
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
        // Jobs that failed before error groups existed are in none until
        // the backend books them (SQLite when it opens, Redis 1,000 per
        // read of the groups): said, never silently left out.
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
            queues: vec![(Place::Native(queue.clone()), group.failed)],
            sample_queue: Place::Native(queue.clone()),
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

/// A BullMQ queue's page of groups, from the monitor's book; None for a
/// queue the monitor does not follow.
pub fn bull_queue_errors(
    groups: &BullGroups,
    queue: &str,
    query: ErrorsQuery,
) -> Option<GroupsPage> {
    let now = now_ms();
    let (listed, coverage) = groups.read(queue, |book, coverage| {
        let place = Place::Bull(queue.to_owned());
        let read = book.groups(MAX_GROUPS);
        let listed: Vec<Listed> = read
            .groups
            .into_iter()
            .map(|group| Listed {
                queues: vec![(place.clone(), group.failed)],
                sample_queue: place.clone(),
                group,
                trend: Trend::default(),
            })
            .collect();
        let mut notes: Vec<String> = coverage.note().into_iter().collect();
        if read.total > listed.len() as u64 {
            notes.push(format!(
                "Showing the {} most recently failing of {} groups.",
                app::format_count(listed.len() as u64),
                app::format_count(read.total)
            ));
        }
        (listed, notes)
    })?;
    let mut page = paged(listed, query, coverage);
    let ids: Vec<GroupId> = page.groups.iter().map(|l| l.group.id).collect();
    let trends = groups
        .read(queue, |book, _| book.trends(&ids, now))
        .unwrap_or_default();
    for (listed, trend) in page.groups.iter_mut().zip(trends) {
        listed.trend = trend;
    }
    Some(page)
}

/// A page of the groups of every queue with failed jobs (the
/// [`MAX_QUEUES_READ`] native and the [`MAX_QUEUES_READ`] BullMQ queues
/// with the most), merged by group across queues.
pub async fn all_errors(
    queues: &Queues,
    snapshot: &Snapshot,
    bull: Option<&BullGroups>,
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
        add_groups(&mut merged, Place::Native(queue.clone()), read.groups);
    }
    if let Some(bull) = bull {
        let (reads, failing) = bull.read_all(MAX_QUEUES_READ, |queue, book, coverage| {
            (queue.to_owned(), book.groups(MAX_GROUPS), coverage.clone())
        });
        if failing > MAX_QUEUES_READ {
            coverage.push(format!(
                "Read the {} BullMQ queues with the most failed jobs of {} with any; the others' groups are not shown.",
                MAX_QUEUES_READ,
                app::format_count(failing as u64)
            ));
        }
        let partial = reads.iter().filter(|(_, _, c)| c.note().is_some()).count();
        if partial > 0 {
            coverage.push(format!(
                "{partial} BullMQ {} groups that cover only part of {} failed jobs (see {} page).",
                if partial == 1 {
                    "queue has"
                } else {
                    "queues have"
                },
                if partial == 1 { "its" } else { "their" },
                if partial == 1 { "its" } else { "each queue's" },
            ));
        }
        for (queue, read, _) in reads {
            if read.total > read.groups.len() as u64 {
                capped += 1;
            }
            add_groups(&mut merged, Place::Bull(queue), read.groups);
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
    let mut by_queue: HashMap<Place, Vec<(usize, GroupId)>> = HashMap::new();
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
        let trends = match &queue {
            Place::Native(queue) => match queues.error_trends(queue, &ids, now).await {
                Ok(trends) => trends,
                Err(coord::CoordError::QueueNotFound(_)) => continue,
                Err(err) => return Err(err),
            },
            Place::Bull(queue) => {
                match bull.and_then(|b| b.read(queue, |book, _| book.trends(&ids, now))) {
                    Some(trends) => trends,
                    None => continue,
                }
            }
        };
        for ((i, _), trend) in wanted.iter().zip(trends) {
            for (sum, n) in page.groups[*i].trend.iter_mut().zip(trend) {
                *sum = sum.saturating_add(n);
            }
        }
    }
    Ok(page)
}

/// Adds a queue's groups to those merged so far.
fn add_groups(merged: &mut HashMap<GroupId, Listed>, place: Place, groups: Vec<ErrorGroup>) {
    for group in groups {
        let failed = group.failed;
        match merged.get_mut(&group.id) {
            Some(listed) => {
                if group.last_seen > listed.group.last_seen {
                    listed.sample_queue = place.clone();
                }
                merge(&mut listed.group, group);
                listed.queues.push((place.clone(), failed));
            }
            None => {
                merged.insert(
                    group.id,
                    Listed {
                        queues: vec![(place.clone(), failed)],
                        sample_queue: place.clone(),
                        group,
                        trend: Trend::default(),
                    },
                );
            }
        }
    }
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
    queue: Option<&Place>,
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
                sample_job: (listed.sample_queue.name().to_owned(), g.sample_job.clone()),
                sample_href: listed.sample_queue.job_url(&g.sample_job),
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
                        queue: q.name().to_owned(),
                        href: q.errors_url(),
                        bullmq: matches!(q, Place::Bull(_)),
                        failed: *n,
                    })
                    .collect(),
                more_queues: listed.queues.len().saturating_sub(QUEUES_NAMED) as u64,
            }
        })
        .collect();
    app::ErrorsVm {
        queue: queue.map(|q| q.name().to_owned()),
        bullmq: matches!(queue, Some(Place::Bull(_))),
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

/// What a BullMQ group's retry or removal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BullGroupDone {
    /// Jobs retried or removed.
    pub done: u64,
    /// Jobs of the group that had left the failed set (or were locked)
    /// by the time their turn came: left as they were.
    pub skipped: u64,
    /// The group's jobs when the action started.
    pub total: u64,
}

/// Retries or removes every failed job of a BullMQ queue's group, as the
/// monitor holds it when the action starts, [`crate::queues::RETRY_BATCH`]
/// jobs at a time through the same scripts as one job's button (so
/// BullMQ's own invariants hold and events are written); audited with the
/// group, its reason and what was done. A job already gone or no longer
/// failed is skipped, so pressing twice does no harm. 404 for a queue the
/// monitor does not follow.
pub async fn bull_group_action(
    state: &AppState,
    actor: &Actor,
    queue: &str,
    group: GroupId,
    action: GroupAction,
) -> Result<BullGroupDone, AppError> {
    use futures_util::StreamExt;
    let name = match action {
        GroupAction::Retry => "bullmq.retry_group",
        GroupAction::Remove => "bullmq.remove_group",
    };
    let entry = AuditEntry::new(actor, name, "bullmq_queue", queue);
    let monitor = match crate::bullmq::routes::monitor(state) {
        Ok(monitor) => monitor.clone(),
        Err(err) => return state.audit.outcome(entry, Err(err)).await,
    };
    let Some((ids, reason)) = monitor.groups().read(queue, |book, _| {
        (
            book.members(group, crate::bullmq::groups::PER_QUEUE),
            book.reason(group),
        )
    }) else {
        let err = AppError::not_found(format!("BullMQ queue {queue} is not monitored"));
        return state.audit.outcome(entry, Err(err)).await;
    };
    let reason = reason.unwrap_or_else(|| group.to_string());
    let total = ids.len() as u64;
    let client = monitor.client().clone();
    let mut done = 0u64;
    let mut skipped = 0u64;
    let mut failure = None;
    for batch in ids.chunks(crate::queues::RETRY_BATCH) {
        // Built before streaming: a stream holding a closure over borrowed
        // ids would not be `Send` for every lifetime axum asks.
        let jobs: Vec<_> = batch
            .iter()
            .map(|id| act_on_bull_job(client.clone(), queue.to_owned(), id.clone(), action))
            .collect();
        let mut results = futures_util::stream::iter(jobs).buffer_unordered(16);
        while let Some(result) = results.next().await {
            match result {
                Ok(()) => done += 1,
                Err(
                    coord::CoordError::BullJobNotFound { .. }
                    | coord::CoordError::BullWrongState { .. }
                    | coord::CoordError::BullJobLocked { .. },
                ) => skipped += 1,
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    let verb = match action {
        GroupAction::Retry => "retried",
        GroupAction::Remove => "removed",
    };
    let detail = format!(
        "group {group} “{reason}”: {done} of {total} failed jobs {verb}, {skipped} skipped"
    );
    let entry = AuditEntry {
        detail: Some(detail),
        ..entry
    };
    let result = match failure {
        Some(err) => Err(AppError::from(err)),
        None => Ok(BullGroupDone {
            done,
            skipped,
            total,
        }),
    };
    state.audit.outcome(entry, result).await
}

/// One job of a BullMQ group action (owned, so a batch can run at once).
async fn act_on_bull_job(
    client: coord::bullmq::BullMq,
    queue: String,
    id: String,
    action: GroupAction,
) -> Result<(), coord::CoordError> {
    match action {
        GroupAction::Retry => client.retry_job(&queue, &id).await,
        GroupAction::Remove => client.remove(&queue, &id).await,
    }
}
