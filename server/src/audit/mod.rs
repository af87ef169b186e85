//! The audit log: who did what to which queue, job, rate-limit key or
//! alert, when, from where, and how it ended.
//!
//! Every state-changing handler records one entry, also when it refused
//! (a 4xx, a race notice) or failed (a 5xx, a backend error): an operator
//! asking "who paused emails?" or "why did my retry do nothing?" needs the
//! attempts as much as the successes. Entries live in the server's own SQL
//! tables, so every dashboard instance of a deployment writes and shows the
//! same log. Recording never makes an action fail: the action has already
//! happened, so a database error is logged and the answer goes out anyway.

pub mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use coord::time::now_ms;
use sqlx::FromRow;

use crate::db::{Database, DbError};
use crate::http::error::{AppError, one_line};
use crate::on_pool;

/// Who acts while nobody can sign in: an honest name, not a guess.
pub const ANONYMOUS: &str = "anonymous";

/// Every action the server records, for the Audit page's filter: one
/// name per kind of change, the same for a form button and its API twin.
pub const ACTIONS: [&str; 48] = [
    "bullmq.pause",
    "bullmq.resume",
    "bullmq.retry_all",
    "bullmq.retry",
    "bullmq.remove",
    "bullmq.promote",
    "bullmq.clean",
    "bullmq.scheduler_run",
    "bullmq.scheduler_remove",
    "user.sign_in",
    "user.sign_out",
    "queue.pause",
    "queue.resume",
    "queue.retry_selected",
    "queue.retry_all",
    "queue.retry_group",
    "queue.remove_group",
    "queue.retry_matching",
    "queue.remove_matching",
    "job.enqueue",
    "job.retry",
    "job.remove",
    "job.promote",
    "ratelimit.unblock",
    "cache.invalidate",
    "cache.invalidate_all",
    "worker.quiet",
    "worker.resume",
    "worker.stop",
    "schedule.pause",
    "schedule.resume",
    "schedule.run",
    "schedule.remove",
    "schedule.create",
    "schedule.update",
    "schedule.save",
    "alert.ack",
    "alert.silence",
    "alert.unsilence",
    "alert_rule.create",
    "alert_rule.update",
    "alert_rule.delete",
    "user.create",
    "user.set_role",
    "user.disable",
    "user.enable",
    "session.revoke",
    "session.revoke_all",
];

/// Longest text kept per field: a rate-limit key or a backend error can be
/// any length, and a log that one request can bloat is a liability.
const MAX_FIELD: usize = 500;

/// How long an action waits for its entry to be written before it answers
/// anyway: a slow database must not hold an operator's click.
const RECORD_TIMEOUT: Duration = Duration::from_secs(3);

/// How an action ended, as the log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It did what was asked.
    Ok,
    /// Nothing was done, and the reason is the request's or the state's
    /// (unknown queue, a job no longer failed, a bad value).
    Refused,
    /// The server or a backend could not do it.
    Failed,
}

impl Outcome {
    /// Every outcome, for filters and error messages.
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Refused, Outcome::Failed];

    /// The stored (and filtered-on) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    /// The outcome an error answer stands for: the client's or the
    /// state's doing (4xx) is a refusal, the server's (5xx) a failure.
    pub fn of_status(status: StatusCode) -> Self {
        if status.is_server_error() {
            Outcome::Failed
        } else if status.is_client_error() {
            Outcome::Refused
        } else {
            Outcome::Ok
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| format!("unknown outcome {text:?} (expected ok, refused or failed)"))
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its row id (assigned when recorded; ignored by [`AuditLog::record`]).
    pub id: i64,
    /// When it happened (ms since the epoch).
    pub at: i64,
    /// Who acted: a user name once sign-in exists, [`ANONYMOUS`] until then.
    pub actor: String,
    /// The client's IP address, when the connection told it.
    pub address: Option<String>,
    /// What was done (`queue.pause`, `job.retry`, …).
    pub action: String,
    /// What kind of thing it was done to (`queue`, `job`, `ratelimit_key`,
    /// `alert`, `alert_rule`).
    pub target_kind: String,
    /// Which one (`emails`, `emails/42`, `api/10.0.0.1`, …).
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// One line: why it was refused or failed, or what it amounted to.
    pub detail: Option<String>,
}

impl AuditEntry {
    /// An entry by `actor` now, with its outcome and detail still to set.
    pub fn new(actor: &Actor, action: &str, target_kind: &str, target: &str) -> Self {
        Self {
            id: 0,
            at: now_ms(),
            actor: actor.name.clone(),
            address: actor.address.clone(),
            action: action.to_owned(),
            target_kind: target_kind.to_owned(),
            target: target.to_owned(),
            outcome: Outcome::Ok,
            detail: None,
        }
    }

    /// The same entry with its outcome and detail.
    pub fn ended(mut self, outcome: Outcome, detail: Option<String>) -> Self {
        self.outcome = outcome;
        self.detail = detail;
        self
    }
}

/// Which entries to list; every field narrows, `None` matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exactly this action.
    pub action: Option<String>,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Exactly this kind of target.
    pub target_kind: Option<String>,
    /// Exactly this outcome.
    pub outcome: Option<Outcome>,
    /// Targets containing this text (case-insensitive for ASCII): a queue
    /// name finds its jobs' entries too (`emails/42`).
    pub q: Option<String>,
}

/// Who is acting, for the log: the user's name and the client's address.
/// Extracting it never fails, so no action is refused for want of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user's name, or [`ANONYMOUS`].
    pub name: String,
    /// The client's IP address, when the server was started with connect
    /// info (it always is; in-process tests may not be).
    pub address: Option<String>,
}

/// The signed-in user's name, left in the request's extensions by the
/// authentication layer; [`Actor`] reads it, so handlers need not change
/// when sign-in arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            name: parts
                .extensions
                .get::<ActorName>()
                .map_or_else(|| ANONYMOUS.to_owned(), |n| n.0.clone()),
            address: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        })
    }
}

#[derive(FromRow)]
struct EntryRecord {
    id: i64,
    at: i64,
    actor: String,
    address: Option<String>,
    action: String,
    target_kind: String,
    target: String,
    outcome: String,
    detail: Option<String>,
}

impl EntryRecord {
    fn into_entry(self) -> Result<AuditEntry, DbError> {
        let outcome = self
            .outcome
            .parse::<Outcome>()
            .map_err(|e| DbError::Corrupt(format!("audit entry {}: {e}", self.id)))?;
        Ok(AuditEntry {
            id: self.id,
            at: self.at,
            actor: self.actor,
            address: self.address,
            action: self.action,
            target_kind: self.target_kind,
            target: self.target,
            outcome,
            detail: self.detail,
        })
    }
}

const INSERT_ENTRY: &str = "INSERT INTO audit_log \
     (at, actor, address, action, target_kind, target, outcome, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const ENTRY_COLUMNS: &str = "id, at, actor, address, action, target_kind, target, outcome, detail";

/// Text kept to [`MAX_FIELD`] characters, on one line.
fn clip(text: &str) -> String {
    // Control characters (a NUL, which PostgreSQL refuses in text) never
    // reach the table: one such field would fail its whole batch.
    let line: String = one_line(text).chars().filter(|c| !c.is_control()).collect();
    match line.char_indices().nth(MAX_FIELD) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

/// A `LIKE` pattern matching `text` anywhere, with `%`, `_` and the escape
/// character itself taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The `WHERE` clause of a filter and the text values it binds, in order
/// (`$1`, `$2`, …).
fn where_clause(filter: &AuditFilter) -> (String, Vec<String>) {
    let mut conditions = Vec::new();
    let mut binds = Vec::new();
    let mut exact = |column: &str, value: Option<&str>| {
        if let Some(value) = value {
            binds.push(value.to_owned());
            conditions.push(format!("{column} = ${}", binds.len()));
        }
    };
    exact("action", filter.action.as_deref());
    exact("actor", filter.actor.as_deref());
    exact("target_kind", filter.target_kind.as_deref());
    exact("outcome", filter.outcome.map(Outcome::as_str));
    if let Some(q) = filter.q.as_deref() {
        binds.push(contains_pattern(q));
        conditions.push(format!("LOWER(target) LIKE ${} ESCAPE '\\'", binds.len()));
    }
    let clause = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    (clause, binds)
}

/// Entries waiting for the writer, at most: a burst (a sign-in flood)
/// waits here in a bounded line instead of as one database write each.
const QUEUE: usize = 4096;
/// Entries the writer puts in one transaction.
const BATCH: usize = 256;
/// How long the writer retries a batch the database refuses before it
/// counts the batch as lost.
const WRITE_PATIENCE: Duration = Duration::from_secs(30);

/// An entry on its way to the writer, with who waits for it.
type Queued = (AuditEntry, tokio::sync::oneshot::Sender<Result<(), String>>);

/// The log's store, on the server's database. Entries go through one
/// writer task and a bounded queue: concurrent actions share a
/// transaction instead of contending for the database one row each, a
/// full queue makes callers wait (back-pressure), and an entry is only
/// ever dropped when the queue stayed full or the database refused it for
/// long; each such loss is counted ([`AuditLog::lost`]), logged and shown
/// on the Audit page, never silent.
#[derive(Clone, Debug)]
pub struct AuditLog {
    db: Database,
    queue: tokio::sync::mpsc::Sender<Queued>,
    lost: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl AuditLog {
    /// The log in `db` (migrated already), with its writer task started.
    pub fn new(db: Database) -> Self {
        let (queue, incoming) = tokio::sync::mpsc::channel(QUEUE);
        let lost = std::sync::Arc::default();
        tokio::spawn(write_batches(
            db.clone(),
            incoming,
            std::sync::Arc::clone(&lost),
        ));
        Self { db, queue, lost }
    }

    /// Entries that could not be written since this server started.
    pub fn lost(&self) -> u64 {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records an entry for an action that has happened (or was refused)
    /// already, waiting up to [`RECORD_TIMEOUT`] for it to be written. A
    /// slow or failing database is logged, never passed on, so the
    /// operator still gets the action's answer; an entry still queued at
    /// the deadline is written later.
    pub async fn note(&self, entry: AuditEntry) {
        let deadline = tokio::time::Instant::now() + RECORD_TIMEOUT;
        let (action, target) = (entry.action.clone(), entry.target.clone());
        let (done, written) = tokio::sync::oneshot::channel();
        match tokio::time::timeout_at(deadline, self.queue.send((entry, done))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => {
                self.lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(
                    %action,
                    %target,
                    "audit entry lost: the audit writer's queue stayed full for {RECORD_TIMEOUT:?}"
                );
                return;
            }
        }
        match tokio::time::timeout_at(deadline, written).await {
            Ok(Ok(Ok(()))) => {}
            // The writer counted and logged the loss.
            Ok(Ok(Err(_))) => {}
            // The writer is gone with the entry (it ended or panicked):
            // nobody counted it.
            Ok(Err(_)) => {
                self.lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(%action, %target, "audit entry lost: the audit writer stopped");
            }
            Err(_) => tracing::warn!(
                %action,
                %target,
                "the audit entry is not written yet after {RECORD_TIMEOUT:?}; it stays queued"
            ),
        }
    }

    /// Records how a handler's `result` ended (ok; refused or failed by
    /// the error's status, with its reason) and hands the result back, so
    /// a handler records with one line around its body.
    pub async fn outcome<T>(
        &self,
        entry: AuditEntry,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Ok, entry.detail.clone()),
            Err(err) => (Outcome::of_status(err.status()), Some(err.message().into())),
        };
        self.note(entry.ended(outcome, detail)).await;
        result
    }

    /// One page of entries matching `filter`, newest first, and how many
    /// match in all.
    pub async fn list(
        &self,
        filter: &AuditFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<AuditEntry>, u64), DbError> {
        let (clause, binds) = where_clause(filter);
        let n = binds.len();
        let select = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log{clause} \
             ORDER BY at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let count = format!("SELECT COUNT(*) FROM audit_log{clause}");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (records, total): (Vec<EntryRecord>, i64) = on_pool!(&self.db, pool => {
            let mut query = sqlx::query_as(&select);
            for value in &binds {
                query = query.bind(value);
            }
            let records = query.bind(limit).bind(offset).fetch_all(pool).await?;
            let mut query = sqlx::query_scalar(&count);
            for value in &binds {
                query = query.bind(value);
            }
            let total: i64 = query.fetch_one(pool).await?;
            (records, total)
        });
        let entries = records
            .into_iter()
            .map(EntryRecord::into_entry)
            .collect::<Result<_, _>>()?;
        Ok((entries, u64::try_from(total).unwrap_or(0)))
    }
}

/// The writer: takes what is queued, up to [`BATCH`] entries, and writes
/// them in one transaction. When that fails, each entry is tried alone,
/// so one entry the database refuses costs only itself: it is counted
/// lost at once. While the database is unreachable (an outage), the
/// entries are retried with back-off and counted lost after
/// [`WRITE_PATIENCE`].
async fn write_batches(
    db: Database,
    mut incoming: tokio::sync::mpsc::Receiver<Queued>,
    lost: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(BATCH);
    while incoming.recv_many(&mut batch, BATCH).await > 0 {
        let entries: Vec<&AuditEntry> = batch.iter().map(|(entry, _)| entry).collect();
        if insert(&db, &entries).await.is_ok() {
            for (_, done) in batch.drain(..) {
                let _ = done.send(Ok(()));
            }
            continue;
        }
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(50);
        let mut pending: Vec<Queued> = std::mem::take(&mut batch);
        loop {
            let mut failed = Vec::new();
            let mut outage = false;
            let mut last_error = String::new();
            for (entry, done) in pending {
                match insert(&db, &[&entry]).await {
                    Ok(()) => {
                        let _ = done.send(Ok(()));
                    }
                    Err(err) => {
                        outage |= matches!(&err, DbError::Sql(e) if coord::sql::is_outage(e));
                        last_error = err.to_string();
                        failed.push((entry, done));
                    }
                }
            }
            if failed.is_empty() {
                break;
            }
            // Only an outage is worth waiting for; an entry the database
            // refuses for what it holds would be refused forever.
            if !outage || started.elapsed() >= WRITE_PATIENCE {
                lost.fetch_add(failed.len() as u64, std::sync::atomic::Ordering::Relaxed);
                for (entry, done) in failed {
                    tracing::error!(
                        error = %last_error,
                        action = %entry.action,
                        target = %entry.target,
                        "audit entry lost: the database refused it"
                    );
                    let _ = done.send(Err(last_error.clone()));
                }
                break;
            }
            tracing::warn!(error = %last_error, entries = failed.len(), "cannot write the audit log; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            pending = failed;
        }
    }
}

/// Writes entries in one transaction (their `id`s are assigned here).
/// Long fields are clipped and kept on one line, so one request cannot
/// bloat the log or break its layout.
async fn insert(db: &Database, entries: &[&AuditEntry]) -> Result<(), DbError> {
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for entry in entries {
            sqlx::query(INSERT_ENTRY)
                .bind(entry.at)
                .bind(clip(&entry.actor))
                .bind(entry.address.as_deref().map(clip))
                .bind(clip(&entry.action))
                .bind(clip(&entry.target_kind))
                .bind(clip(&entry.target))
                .bind(entry.outcome.as_str())
                .bind(entry.detail.as_deref().map(clip))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_parse_and_follow_the_status() {
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(o));
        }
        assert!("done".parse::<Outcome>().unwrap_err().contains("refused"));
        assert_eq!(Outcome::of_status(StatusCode::NOT_FOUND), Outcome::Refused);
        assert_eq!(Outcome::of_status(StatusCode::CONFLICT), Outcome::Refused);
        assert_eq!(
            Outcome::of_status(StatusCode::SERVICE_UNAVAILABLE),
            Outcome::Failed
        );
    }

    #[test]
    fn patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("Em_a%l\\"), "%em\\_a\\%l\\\\%");
    }

    #[test]
    fn filters_bind_in_order() {
        let filter = AuditFilter {
            action: Some("queue.pause".into()),
            outcome: Some(Outcome::Refused),
            q: Some("emails".into()),
            ..AuditFilter::default()
        };
        let (clause, binds) = where_clause(&filter);
        assert_eq!(
            clause,
            " WHERE action = $1 AND outcome = $2 AND LOWER(target) LIKE $3 ESCAPE '\\'"
        );
        assert_eq!(binds, ["queue.pause", "refused", "%emails%"]);
        assert_eq!(where_clause(&AuditFilter::default()).0, "");
    }

    #[test]
    fn long_fields_are_clipped_to_one_line() {
        assert_eq!(clip("a\nb"), "a b");
        let long = "x".repeat(MAX_FIELD + 10);
        assert_eq!(clip(&long).chars().count(), MAX_FIELD + 1);
    }

    #[tokio::test]
    async fn the_actor_is_anonymous_without_sign_in_and_named_with_it() {
        let (mut parts, ()) = axum::http::Request::new(()).into_parts();
        let actor = Actor::from_request_parts(&mut parts, &()).await.unwrap();
        assert_eq!(actor.name, ANONYMOUS);
        assert_eq!(actor.address, None);
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 7], 5000))));
        parts.extensions.insert(ActorName("ada".into()));
        let actor = Actor::from_request_parts(&mut parts, &()).await.unwrap();
        assert_eq!(actor.name, "ada");
        assert_eq!(actor.address.as_deref(), Some("10.0.0.7"));
    }
}
