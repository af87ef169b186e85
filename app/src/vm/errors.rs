//! View model of the error-group pages: `/errors` (every queue) and
//! `/queues/{queue}/errors` (one queue). A group is the failed jobs whose
//! reasons read alike once numbers, ids and quoted values are folded.
//!
//! Reasons, names and queue names come from workers and producers: they
//! are only ever rendered as text and attribute values, which leptos
//! escapes.

use crate::format::encode_query;
use crate::vm::bullmq::bull_queue_path;
use crate::vm::queues::BulkProgressVm;

/// Groups per page when none is asked for.
pub const GROUPS_PER_PAGE: u64 = 50;

/// Orders of the group list, as (value, label).
pub const GROUP_SORTS: [(&str, &str); 2] = [("failed", "Most failed"), ("recent", "Most recent")];

/// Where a group occurs, on the all-queues page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupQueueVm {
    /// The queue.
    pub queue: String,
    /// Its error-group page.
    pub href: String,
    /// Whether it is a BullMQ queue.
    pub bullmq: bool,
    /// Its failed jobs in the group.
    pub failed: u64,
}

/// One error group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorGroupRow {
    /// Its stable id (16 hex digits), in URLs.
    pub id: String,
    /// The reason as the group shares it (`card declined for order #`).
    pub reason: String,
    /// The newest failure's reason as written.
    pub sample_reason: String,
    /// The newest failed job: (queue, id).
    pub sample_job: (String, String),
    /// Its page.
    pub sample_href: String,
    /// Failed jobs in the group now.
    pub failed: u64,
    /// When its first current failure happened (ms since the epoch).
    pub first_seen: i64,
    /// When its latest failure happened.
    pub last_seen: i64,
    /// Job names with their failed jobs, the most first.
    pub names: Vec<(String, u64)>,
    /// Names beyond those listed.
    pub more_names: u64,
    /// Its failed jobs per five minutes over the last hour, oldest first
    /// (empty when not read).
    pub trend: Vec<u32>,
    /// The queues it occurs in (the all-queues page), the most first.
    pub queues: Vec<GroupQueueVm>,
    /// Queues beyond those listed.
    pub more_queues: u64,
}

impl ErrorGroupRow {
    /// Its failures over the last hour.
    pub fn last_hour(&self) -> u64 {
        self.trend.iter().map(|&n| u64::from(n)).sum()
    }
}

/// An error-group page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorsVm {
    /// The queue whose groups these are; None for every queue.
    pub queue: Option<String>,
    /// Whether that queue is a BullMQ queue.
    pub bullmq: bool,
    /// One page of groups.
    pub groups: Vec<ErrorGroupRow>,
    /// Groups in all (of those read).
    pub total: u64,
    /// Position of the first group shown.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// `failed` or `recent` (see [`GROUP_SORTS`]).
    pub sort: String,
    /// Failed jobs of the queue (or of every queue read) in all.
    pub failed: u64,
    /// What the list covers when it is not everything ("read the 200
    /// queues with the most failed jobs of 340"): never hidden.
    pub coverage: Vec<String>,
    /// A bulk run on the queue (a group's retry or removal, retry all).
    pub progress: Option<BulkProgressVm>,
    /// A one-off notice after an action.
    pub notice: Option<String>,
}

impl ErrorsVm {
    /// The page's own path.
    pub fn path(&self) -> String {
        match &self.queue {
            Some(queue) => format!("{}/errors", self.queue_path(queue)),
            None => "/errors".to_owned(),
        }
    }

    /// The page of the queue (a native or a BullMQ one).
    pub fn queue_path(&self, queue: &str) -> String {
        if self.bullmq {
            bull_queue_path(queue)
        } else {
            format!("/queues/{queue}")
        }
    }

    /// The failed jobs of a group: a native queue's failed tab filters to
    /// it; BullMQ's failed tab has no such filter, so it lists them all.
    pub fn group_jobs(&self, queue: &str, group: &str) -> String {
        if self.bullmq {
            format!("{}?state=failed", self.queue_path(queue))
        } else {
            group_jobs_url(queue, group)
        }
    }

    /// This page at another offset, its order and size kept.
    pub fn url_at(&self, offset: u64) -> String {
        format!(
            "{}?sort={}&limit={}&offset={offset}",
            self.path(),
            encode_query(&self.sort),
            self.limit
        )
    }

    /// Where a group's actions post, on a queue's page.
    pub fn action_url(&self, group: &str, action: &str) -> String {
        format!("{}/{group}/{action}", self.path())
    }
}

/// The failed tab of a queue filtered to one group.
pub fn group_jobs_url(queue: &str, group: &str) -> String {
    format!("/queues/{queue}?state=failed&group={group}")
}

/// A native queue's error-group page.
pub fn queue_errors_url(queue: &str) -> String {
    format!("/queues/{queue}/errors")
}

/// A BullMQ queue's error-group page.
pub fn bull_errors_url(queue: &str) -> String {
    format!("{}/errors", bull_queue_path(queue))
}
