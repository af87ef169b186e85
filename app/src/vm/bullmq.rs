//! View models of the BullMQ pages (`/bullmq…`): the BullMQ (Node) queues
//! Switchyard monitors and operates next to its own.
//!
//! Plain data filled by the server from BullMQ's Redis keys, so the pages
//! can be rendered and tested without Redis. Queue names, job ids, names,
//! data and errors come from producers and can hold any text: they are only
//! ever rendered as text and attribute values (which leptos escapes), and
//! as path segments percent-encoded with [`encode_segment`].

use crate::format::encode_query;

/// BullMQ's job states as (name, label), in the order pages show them:
/// the counts of a [`BullQueueRow`], the columns of the queues table and
/// the tabs of a queue's page.
pub const BULL_STATES: [(&str, &str); 8] = [
    ("waiting", "Waiting"),
    ("active", "Active"),
    ("delayed", "Delayed"),
    ("prioritized", "Prioritized"),
    ("waiting-children", "Waiting children"),
    ("completed", "Completed"),
    ("failed", "Failed"),
    ("paused", "Paused"),
];

/// The job actions the pages offer in a state, as the last path segment
/// of `/bullmq/<queue>/jobs/<id>/<action>`: `retry` and `remove` for a
/// failed job, `promote` and `remove` for a delayed one, `remove` for
/// waiting, prioritized, completed and paused ones, none for an active
/// job (its worker holds its lock) or one waiting for its children (its
/// removal would have to decide about the children).
pub fn bull_job_actions(state: &str) -> &'static [&'static str] {
    match state {
        "failed" => &["retry", "remove"],
        "delayed" => &["promote", "remove"],
        "waiting" | "prioritized" | "completed" | "paused" => &["remove"],
        _ => &[],
    }
}

/// The ages a Clean form offers, as (`older_than` value, label).
pub const CLEAN_AGES: [(&str, &str); 3] = [
    ("1h", "older than 1 hour"),
    ("1d", "older than 1 day"),
    ("7d", "older than 7 days"),
];

/// Percent-encodes one path segment (everything but unreserved
/// characters): BullMQ queue names and job ids can hold any character
/// but `:`, including `/`, `?`, `#`, spaces and quotes.
pub fn encode_segment(segment: &str) -> String {
    encode_query(segment)
}

/// A BullMQ queue's page: `/bullmq/<queue>`.
pub fn bull_queue_path(queue: &str) -> String {
    format!("/bullmq/{}", encode_segment(queue))
}

/// A BullMQ queue's page on one state's tab:
/// `/bullmq/<queue>?state=<state>`.
pub fn bull_state_path(queue: &str, state: &str) -> String {
    format!("{}?state={}", bull_queue_path(queue), encode_query(state))
}

/// A state's label (`waiting-children` → `Waiting children`); an unknown
/// state shows as its name.
pub fn bull_state_label(state: &str) -> &str {
    BULL_STATES
        .iter()
        .find(|(s, _)| *s == state)
        .map_or(state, |(_, label)| label)
}

/// A BullMQ job's page: `/bullmq/<queue>/jobs/<id>`.
pub fn bull_job_path(queue: &str, id: &str) -> String {
    format!("{}/jobs/{}", bull_queue_path(queue), encode_segment(id))
}

/// One BullMQ queue with its counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullQueueRow {
    /// The queue's name (any text but `:`).
    pub name: String,
    /// Jobs per state (state name → count), in [`BULL_STATES`] order.
    pub counts: Vec<(String, u64)>,
    /// Whether the queue is paused (workers take no new jobs).
    pub paused: bool,
}

impl BullQueueRow {
    /// Jobs in `state`, 0 for a state the counts lack.
    pub fn count(&self, state: &str) -> u64 {
        self.counts
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n)
    }
}

/// Everything the BullMQ page (`/bullmq`) shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullQueuesVm {
    /// The key prefix queues are found under (`bull` unless configured).
    pub prefix: String,
    /// False when no Redis is configured for BullMQ (neither `--bullmq`
    /// nor `--redis`): the page explains how to turn it on.
    pub enabled: bool,
    /// The page of queues asked for, in the order asked for.
    pub rows: Vec<BullQueueRow>,
    /// The order, name filter and page shown (`?sort=&q=&offset=`).
    pub query: crate::vm::queues::QueuesQuery,
    /// Queues whose names match the filter.
    pub matching: u64,
    /// Queues found.
    pub total: u64,
    /// Rows per page: [`crate::QUEUES_PER_PAGE`] on the BullMQ page, a few
    /// under the native queues on `/queues` (which links the rest).
    pub page_size: u64,
    /// Why the counts could not be read (Redis unreachable…): shown, and
    /// `rows` are the last known ones.
    pub error: Option<String>,
    /// A one-off notice after an action ("Queue emails paused.").
    pub notice: Option<String>,
}

/// One job in a BullMQ queue page's table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullJobRow {
    /// Its id (any text but `:`).
    pub id: String,
    /// Its name (any text).
    pub name: String,
    /// When it was added (ms since the epoch).
    pub timestamp: i64,
    /// When its last attempt started.
    pub processed_on: Option<i64>,
    /// When it completed or failed last.
    pub finished_on: Option<i64>,
    /// Attempts made so far.
    pub attempts_made: u64,
    /// Attempts its options allow.
    pub attempts: u64,
    /// For a failed job, why it stopped (see
    /// [`crate::widgets::queue::FailureBadge`]).
    pub failure: Option<String>,
    /// Its last error, for failed jobs.
    pub failed_reason: Option<String>,
    /// Its data, shortened to a line.
    pub data_preview: String,
    /// When it runs, for delayed jobs.
    pub run_at: Option<i64>,
    /// Its children, on the `waiting-children` tab (read for that tab
    /// only, one pipeline a page).
    pub children: Option<BullChildCounts>,
}

/// How many children a parent job has, and how many it still waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BullChildCounts {
    /// Children not finished yet (BullMQ's `:dependencies`).
    pub pending: u64,
    /// Children of every kind: pending, processed, failed and ignored.
    pub total: u64,
}

/// Everything a BullMQ queue's page (`/bullmq/<queue>`) shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullQueuePageVm {
    /// The key prefix of the queue.
    pub prefix: String,
    /// The queue with its counts, for the header and the tabs.
    pub queue: BullQueueRow,
    /// The state whose jobs are listed (a name from [`BULL_STATES`]).
    pub state: String,
    /// One page of jobs in that state.
    pub jobs: Vec<BullJobRow>,
    /// Position of the first listed job.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// Jobs in that state in all.
    pub total: u64,
    /// A one-off notice after an action ("Job 7 retried.").
    pub notice: Option<String>,
    /// Why the queue could not be read; what is shown is the last known.
    pub error: Option<String>,
    /// Wait and run times from the queue's events stream, as far as it
    /// reaches; `None` when they could not be read.
    pub latency: Option<crate::vm::queues::LatencyVm>,
}

impl BullQueuePageVm {
    /// This page's URL at another `offset`, for the pager.
    pub fn url_with_offset(&self, offset: u64) -> String {
        let mut url = bull_state_path(&self.queue.name, &self.state);
        if offset > 0 {
            url.push_str(&format!("&offset={offset}"));
        }
        url
    }

    /// This page's own URL, for links and for forms to come back to.
    pub fn url(&self) -> String {
        self.url_with_offset(self.offset)
    }
}

/// Everything a BullMQ job's page (`/bullmq/<queue>/jobs/<id>`) shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullJobPageVm {
    /// The key prefix of its queue.
    pub prefix: String,
    /// Its queue's name.
    pub queue: String,
    /// Its id.
    pub id: String,
    /// Its name (any text).
    pub name: String,
    /// Its state (a name from [`BULL_STATES`], or `unknown`).
    pub state: String,
    /// Its data as indented JSON (any text).
    pub data_pretty: String,
    /// Its options as indented JSON.
    pub opts_pretty: String,
    /// When it was added (ms since the epoch).
    pub timestamp: i64,
    /// When its last attempt started.
    pub processed_on: Option<i64>,
    /// When it completed or failed last.
    pub finished_on: Option<i64>,
    /// Attempts made (finished) so far.
    pub attempts_made: u64,
    /// Attempts started so far (stalled ones included).
    pub attempts_started: u64,
    /// Attempts its options allow.
    pub attempts: u64,
    /// For a failed job, why it stopped.
    pub failure: Option<String>,
    /// Its last error.
    pub failed_reason: Option<String>,
    /// The stack traces BullMQ kept, one per failed attempt.
    pub stacktrace: Vec<String>,
    /// What its processor returned, as JSON.
    pub returnvalue: Option<String>,
    /// The progress it reported (a number or JSON).
    pub progress: Option<String>,
    /// The newest lines it logged with `job.log`, oldest first.
    pub logs: Vec<String>,
    /// Logged lines older than `logs`.
    pub logs_earlier: u64,
    /// Its delay (ms) from `timestamp`.
    pub delay: i64,
    /// Its priority (0: none).
    pub priority: i64,
    /// A one-off notice after an action on this job.
    pub notice: Option<String>,
    /// Its parent and children, when it is part of a flow (or the flow
    /// could not be read).
    pub flow: Option<BullFlowVm>,
}

/// The kinds of a parent's children as (kind, heading), in the order the
/// Flow section shows them: what it waits for first.
pub const BULL_CHILD_KINDS: [(&str, &str); 4] = [
    ("pending", "Pending"),
    ("failed", "Failed the parent"),
    ("ignored", "Failed, ignored"),
    ("processed", "Processed"),
];

/// A job named by a flow: the parent or a child.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullFlowJobVm {
    /// Its queue when it is under the page's prefix (then it is linked),
    /// else `None`.
    pub queue: Option<String>,
    /// Its Redis key, shown for a job under another prefix.
    pub key: String,
    /// Its id (any text).
    pub id: String,
    /// Its name (any text), when its hash is still there.
    pub name: Option<String>,
    /// Its state (a name from [`BULL_STATES`]), or `gone` when its hash
    /// was removed (`removeOnComplete`, clean).
    pub state: String,
}

impl BullFlowJobVm {
    /// Its page, when it is under the page's prefix.
    pub fn href(&self) -> Option<String> {
        self.queue
            .as_deref()
            .map(|queue| bull_job_path(queue, &self.id))
    }
}

/// Children of one kind ([`BULL_CHILD_KINDS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullChildGroup {
    /// Its kind (`pending`, `failed`, `ignored`, `processed`).
    pub kind: String,
    /// Children of this kind in all.
    pub total: u64,
    /// Those listed (at most 100).
    pub jobs: Vec<BullFlowJobVm>,
}

impl BullChildGroup {
    /// Children of this kind not listed.
    pub fn more(&self) -> u64 {
        self.total.saturating_sub(self.jobs.len() as u64)
    }
}

/// A BullMQ job's place in its flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BullFlowVm {
    /// Its parent, when it is a child.
    pub parent: Option<BullFlowJobVm>,
    /// What its failure does to the parent, as BullMQ's option in
    /// camelCase without `OnFailure` (`failParent`, `ignoreDependency`,
    /// `removeDependency`, `continueParent`); `None` for BullMQ's default
    /// (the parent waits until the child is retried).
    pub on_failure: Option<String>,
    /// Its children by kind, in [`BULL_CHILD_KINDS`] order, kinds with
    /// none left out.
    pub groups: Vec<BullChildGroup>,
    /// Why the flow could not be read; the rest is then empty.
    pub error: Option<String>,
}

impl BullFlowVm {
    /// Children of one kind in all.
    pub fn total(&self, kind: &str) -> u64 {
        self.groups
            .iter()
            .find(|g| g.kind == kind)
            .map_or(0, |g| g.total)
    }

    /// Children of every kind.
    pub fn children(&self) -> u64 {
        self.groups.iter().map(|g| g.total).sum()
    }
}

impl BullJobPageVm {
    /// This page's own URL.
    pub fn url(&self) -> String {
        bull_job_path(&self.queue, &self.id)
    }
}
