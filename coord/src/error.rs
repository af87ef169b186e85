//! One typed error for the coordination layer, so callers (the server, the
//! CLI, embedding services) can tell bad input from a missing record from an
//! unreachable backend and answer each the right way.

use crate::queue::{JobId, JobState, QueueName};

/// Everything that can go wrong in `coord`.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// A queue name that would not be safe in keys, URLs or table rows.
    #[error("invalid queue name {name:?}: {reason}")]
    InvalidQueueName { name: String, reason: &'static str },
    /// A job id that would not be safe in keys, URLs or table rows.
    #[error("invalid job id {id:?}: {reason}")]
    InvalidJobId { id: String, reason: &'static str },
    /// Job options that cannot be honoured (negative delay, zero attempts…).
    #[error("invalid job options: {0}")]
    InvalidOptions(String),
    /// Job data handed over as text that is not JSON.
    #[error("job data is not valid JSON: {0}")]
    MalformedData(String),
    /// Worker settings that cannot run (zero concurrency, zero lease…).
    #[error("invalid worker settings: {0}")]
    InvalidWorker(String),
    /// The queue has never been used on this backend.
    #[error("queue {0} not found")]
    QueueNotFound(QueueName),
    /// The job does not exist (never created, removed, or trimmed by retention).
    #[error("job {job} not found in queue {queue}")]
    JobNotFound { queue: QueueName, job: JobId },
    /// The job exists but the operation does not apply to its current state.
    #[error("job {job} in queue {queue} is {actual}, not {expected}")]
    WrongState {
        queue: QueueName,
        job: JobId,
        actual: JobState,
        expected: JobState,
    },
    /// Stop retrying asked of a job that never failed (it is waiting or
    /// delayed for its first attempt): there is no retry to stop.
    #[error("job {job} in queue {queue} has not failed: it is not being retried")]
    NotRetrying { queue: QueueName, job: JobId },
    /// Active jobs are held by a worker's lease and cannot be removed.
    #[error("job {job} in queue {queue} is active; wait for it to finish or stall")]
    JobActive { queue: QueueName, job: JobId },
    /// No worker of this id is registered (it left, or was forgotten
    /// after it died).
    #[error("worker {0} not found")]
    WorkerNotFound(String),
    /// A schedule that could not run: a bad id, a bad cron expression, an
    /// unknown time zone, an interval of 0, an end before its start…
    #[error("invalid schedule {id:?}: {reason}")]
    InvalidSchedule { id: String, reason: String },
    /// No schedule of this id exists (never made, or removed).
    #[error("schedule {0} not found")]
    ScheduleNotFound(String),
    /// A BullMQ queue with no `meta` hash: BullMQ never made it (a typo),
    /// so nothing is done to it.
    #[error("BullMQ queue {0:?} not found")]
    BullQueueNotFound(String),
    /// A BullMQ job that does not exist (never added, removed, or trimmed
    /// by its queue's retention). BullMQ queue names and job ids follow
    /// BullMQ's rules, not Switchyard's, hence plain strings.
    #[error("BullMQ job {job:?} not found in queue {queue:?}")]
    BullJobNotFound { queue: String, job: String },
    /// No BullMQ job scheduler or legacy repeatable of this key in the
    /// queue's `repeat` set (never made, removed, or past its limit or
    /// end date).
    #[error("BullMQ job scheduler {key:?} not found in queue {queue:?}")]
    BullSchedulerNotFound { queue: String, key: String },
    /// A legacy repeatable keeps its job template only in its current
    /// iteration's job; once that job is gone (removed on completion before
    /// the next was made) there is nothing to run now.
    #[error(
        "BullMQ repeatable {key:?} in queue {queue:?} has no template to run: its current iteration's job is gone"
    )]
    BullTemplateNotFound { queue: String, key: String },
    /// The BullMQ job exists but the operation does not apply to its
    /// current state (retrying a job that is not failed…).
    #[error("BullMQ job {job:?} in queue {queue:?} is {actual}, not {expected}")]
    BullWrongState {
        queue: String,
        job: String,
        actual: &'static str,
        expected: &'static str,
    },
    /// A search query that cannot be run (unknown qualifier, too long…).
    #[error("invalid search {query:?}: {reason}")]
    InvalidSearch { query: String, reason: String },
    /// Only the handler running a job may write its log and progress.
    #[error(
        "job {job} in queue {queue} is not running here; only its handler can write its log and progress"
    )]
    NotRunning { queue: QueueName, job: JobId },
    /// The job's lease expired (another worker may run it now): what the
    /// old attempt reports is not written.
    #[error("job {job} in queue {queue} is no longer held by this worker (its lease expired)")]
    LeaseLost { queue: QueueName, job: JobId },
    /// A BullMQ worker holds the job (active or locked); BullMQ refuses to
    /// remove it until it finishes or stalls.
    #[error("BullMQ job {job:?} in queue {queue:?} is held by a worker; wait for it to finish")]
    BullJobLocked { queue: String, job: String },
    /// A channel name that cannot be used (empty, too long, bad characters).
    #[error("invalid channel name {name:?}: {reason}")]
    InvalidChannel { name: String, reason: String },
    /// An instance name that cannot be used.
    #[error("invalid instance name {name:?}: {reason}")]
    InvalidInstance { name: String, reason: String },
    /// A synced-state key that cannot be used.
    #[error("invalid state key {key:?}: {reason}")]
    InvalidStateKey { key: String, reason: String },
    /// A synced-state status that cannot be stored (empty, too long,
    /// control characters).
    #[error("invalid status {status:?} for state key {key:?}: {reason}")]
    InvalidStateStatus {
        key: String,
        status: String,
        reason: String,
    },
    /// A message on a channel that is not a valid envelope or payload; it
    /// is counted and skipped, never applied.
    #[error("malformed message on channel {channel}: {reason}")]
    MalformedMessage { channel: String, reason: String },
    /// The backend could not be reached when it was needed.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Redis answers, but not as the URL promised: a Redis Cluster node
    /// reached with a plain `redis://` URL (MOVED), or a command spanning
    /// slots (CROSSSLOT). Nothing works until the configuration changes,
    /// so readiness fails with this reason.
    #[error("Redis Cluster misconfiguration: {0}")]
    Misconfigured(String),
    /// The backend answers reads but its writes fail (disk full,
    /// read-only): jobs cannot be enqueued or finished until the operator
    /// frees space; the writer resumes by itself then.
    #[error("writes have been failing for {secs} s: {reason}")]
    WritesFailing {
        secs: i64,
        reason: String,
        fault: Option<crate::sql::StorageFault>,
    },
    /// A Redis command failed (an answer, not an outage: see the
    /// `From<RedisError>` impl).
    #[error("redis: {0}")]
    Redis(redis::RedisError),
    /// An SQL statement failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored record could not be decoded; the record is left untouched.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A rate-limit policy that cannot be enforced (zero limit, window
    /// under a second, bad name…).
    #[error("invalid rate-limit policy {name:?}: {reason}")]
    InvalidPolicy { name: String, reason: String },
    /// A rate-limit key (client id, user, IP) that is empty, too long or
    /// holds control characters.
    #[error("invalid rate-limit key {key:?}: {reason}")]
    InvalidRateKey { key: String, reason: String },
    /// A rate-limit policy name that is not configured.
    #[error("unknown rate-limit policy {0:?}")]
    UnknownPolicy(String),
}

impl CoordError {
    /// True when the error is about the caller's input rather than the
    /// backend, so an HTTP layer can answer 400 instead of 500.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::InvalidQueueName { .. }
                | Self::InvalidJobId { .. }
                | Self::InvalidChannel { .. }
                | Self::InvalidInstance { .. }
                | Self::InvalidStateKey { .. }
                | Self::InvalidStateStatus { .. }
                | Self::InvalidOptions(_)
                | Self::MalformedData(_)
                | Self::InvalidWorker(_)
                | Self::InvalidPolicy { .. }
                | Self::InvalidRateKey { .. }
                | Self::UnknownPolicy(_)
                | Self::InvalidSearch { .. }
                | Self::InvalidSchedule { .. }
        )
    }

    /// True when the named queue or job does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::QueueNotFound(_)
                | Self::JobNotFound { .. }
                | Self::WorkerNotFound(_)
                | Self::ScheduleNotFound(_)
                | Self::BullJobNotFound { .. }
                | Self::BullSchedulerNotFound { .. }
                | Self::BullTemplateNotFound { .. }
                | Self::BullQueueNotFound(_)
        )
    }

    /// The storage fault behind a database error (disk full, read-only),
    /// so that an answer can name it: the operator has to act, and the
    /// writer resumes by itself once they have.
    pub fn storage_fault(&self) -> Option<crate::sql::StorageFault> {
        match self {
            Self::Database(err) => crate::sql::storage_fault(err),
            Self::WritesFailing { fault, .. } => *fault,
            _ => None,
        }
    }

    /// A Redis answer saying the command itself could not run: a script
    /// error, a key of the wrong type, a reply the driver could not read.
    /// That is a bug or a damaged key, not an outage, and its text can
    /// quote scripts and stored keys, so it belongs in the log and never
    /// in an answer to a client.
    pub fn is_internal(&self) -> bool {
        use redis::{ErrorKind, ServerErrorKind};
        let Self::Redis(err) = self else {
            return false;
        };
        matches!(
            err.kind(),
            ErrorKind::Parse
                | ErrorKind::UnexpectedReturnType
                | ErrorKind::Client
                | ErrorKind::Server(
                    ServerErrorKind::ResponseError
                        | ServerErrorKind::ExecAbort
                        | ServerErrorKind::NoScript
                        | ServerErrorKind::CrossSlot
                )
        ) || err.code() == Some("WRONGTYPE")
    }

    /// True when the store could not be reached (rather than refusing the
    /// request): worth retrying later, and a 503 rather than a 500 for a
    /// dashboard, so monitors tell an outage from a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_)
            | Self::Misconfigured(_)
            | Self::Redis(_)
            | Self::WritesFailing { .. } => true,
            Self::Database(err) => crate::sql::is_outage(err),
            _ => false,
        }
    }
}

/// One mapping for every capability: a Redis that cannot be reached (I/O,
/// dropped connection, refusal, timeout) is `Unavailable`, so callers and
/// the dashboard treat it as an outage (503, retry later); anything else
/// Redis answered is kept as it is.
impl From<redis::RedisError> for CoordError {
    fn from(e: redis::RedisError) -> Self {
        use redis::{ErrorKind, ServerErrorKind};
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
        {
            return CoordError::Unavailable(format!("Redis: {e}"));
        }
        match e.kind() {
            // A cluster connection follows redirections itself: one that
            // reaches the caller came over a plain connection to a node.
            ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask) => {
                CoordError::Misconfigured(format!(
                    "the server answered {} — it is a Redis Cluster node; connect with a \
                     redis+cluster:// URL",
                    e.code().unwrap_or("MOVED")
                ))
            }
            ErrorKind::Server(ServerErrorKind::CrossSlot) => CoordError::Misconfigured(format!(
                "a command spanned several cluster slots (CROSSSLOT): {e}"
            )),
            // A failover in progress, or too few masters to serve every
            // slot: an outage that ends by itself.
            ErrorKind::Server(
                ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::BusyLoading,
            ) => CoordError::Unavailable(format!("Redis Cluster: {e}")),
            _ => CoordError::Redis(e),
        }
    }
}

/// Result alias used throughout `coord`.
pub type Result<T, E = CoordError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_apart_from_failures() {
        assert!(CoordError::Unavailable("down".into()).is_unavailable());
        assert!(CoordError::Database(sqlx::Error::PoolClosed).is_unavailable());
        assert!(CoordError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(!CoordError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!CoordError::Corrupt("bad".into()).is_unavailable());
    }
}
