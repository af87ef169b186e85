//! Alerting's SQL side: rules, alerts, the webhook outbox and the
//! evaluation lease, on SQLite or PostgreSQL with the same statements.
//!
//! Alerts survive restarts and are shared by every dashboard instance: the
//! one holding the lease evaluates and writes; the others read. A state
//! change and the deliveries it causes are written in one transaction (an
//! outbox), so a receiver is told once per firing or resolution whichever
//! instance evaluates, and nothing is lost if the sender stops halfway: a
//! delivery stays pending until it was sent (at least once; a crash between
//! sending and recording repeats one message).

use sqlx::FromRow;

use super::model::{Alert, AlertStatus, Rule, RuleKind, Severity};
use crate::db::{Database, DbError};
use crate::on_pool;

/// Where a rule came from: shipped defaults, the config file, or the UI.
/// Defaults are only ever inserted when absent, so an edit survives
/// restarts; file rules are written at every start (the file wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSource {
    /// Shipped with Switchyard.
    Default,
    /// From the `[[alert_rules]]` of the config file.
    File,
    /// Created or edited on the Alerts page or through the API.
    Ui,
}

impl RuleSource {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSource::Default => "default",
            RuleSource::File => "file",
            RuleSource::Ui => "ui",
        }
    }
}

/// A webhook message waiting to be sent, or sent, or given up on.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Delivery {
    /// Its row id.
    pub id: i64,
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// The alert's rule.
    pub rule: String,
    /// `firing` or `resolved`.
    pub event: String,
    /// The receiver's name (its URL without credentials).
    pub receiver: String,
    /// The JSON body to post, built when the event happened.
    pub payload: String,
    /// `pending`, `sent` or `failed` (gave up).
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<i64>,
    /// When the event happened.
    pub created_at: i64,
    /// When it was delivered.
    pub sent_at: Option<i64>,
}

/// A delivery to create with a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// The alert's rule.
    pub rule: String,
    /// `firing` or `resolved`.
    pub event: &'static str,
    /// The receiver's name.
    pub receiver: String,
    /// The body to post.
    pub payload: String,
}

/// What an evaluation wrote: alerts to insert or update (pending and
/// firing), fingerprints whose pending alert cleared, fingerprints that
/// resolved (with when), and the deliveries those cause.
#[derive(Debug, Clone, Default)]
pub struct Write {
    /// Pending and firing alerts as they are now.
    pub upsert: Vec<Alert>,
    /// Pending alerts whose condition stopped before they fired: deleted.
    pub cleared: Vec<String>,
    /// Alerts that resolved: kept as history.
    pub resolved: Vec<Alert>,
    /// Messages to send.
    pub deliveries: Vec<NewDelivery>,
}

#[derive(FromRow)]
struct RuleRecord {
    name: String,
    kind: String,
    target: String,
    threshold: f64,
    window_secs: i64,
    for_secs: i64,
    severity: String,
    enabled: bool,
}

impl RuleRecord {
    fn into_rule(self) -> Result<Rule, DbError> {
        let bad = |what: String| DbError::Corrupt(format!("alert rule {}: {what}", self.name));
        Ok(Rule {
            kind: self.kind.parse::<RuleKind>().map_err(bad)?,
            severity: self.severity.parse::<Severity>().map_err(bad)?,
            target: self.target,
            threshold: self.threshold,
            window_secs: u64::try_from(self.window_secs).unwrap_or(0),
            for_secs: u64::try_from(self.for_secs).unwrap_or(0),
            enabled: self.enabled,
            name: self.name,
        })
    }
}

#[derive(FromRow)]
struct AlertRecord {
    fingerprint: String,
    rule: String,
    kind: String,
    subject: String,
    status: String,
    severity: String,
    value: f64,
    summary: String,
    pending_since: i64,
    firing_since: Option<i64>,
    resolved_at: Option<i64>,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<i64>,
    silenced_until: Option<i64>,
}

impl AlertRecord {
    fn into_alert(self) -> Result<Alert, DbError> {
        let bad = |what: String| DbError::Corrupt(format!("alert {}: {what}", self.fingerprint));
        Ok(Alert {
            kind: self.kind.parse::<RuleKind>().map_err(bad)?,
            status: self.status.parse::<AlertStatus>().map_err(bad)?,
            severity: self.severity.parse::<Severity>().map_err(bad)?,
            acknowledged: self.acknowledged_by.zip(self.acknowledged_at),
            fingerprint: self.fingerprint,
            rule: self.rule,
            subject: self.subject,
            value: self.value,
            summary: self.summary,
            pending_since: self.pending_since,
            firing_since: self.firing_since,
            resolved_at: self.resolved_at,
            silenced_until: self.silenced_until,
        })
    }
}

const RULE_COLUMNS: &str =
    "name, kind, target, threshold, window_secs, for_secs, severity, enabled";
const ALERT_COLUMNS: &str = "fingerprint, rule, kind, subject, status, severity, value, summary, \
     pending_since, firing_since, resolved_at, acknowledged_by, acknowledged_at, silenced_until";
const DELIVERY_COLUMNS: &str = "id, fingerprint, rule, event, receiver, payload, status, attempts, \
     last_error, next_attempt_at, created_at, sent_at";

const UPSERT_RULE: &str = "INSERT INTO alert_rules \
     (name, kind, target, threshold, window_secs, for_secs, severity, enabled, source, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, target = excluded.target, \
     threshold = excluded.threshold, window_secs = excluded.window_secs, \
     for_secs = excluded.for_secs, severity = excluded.severity, enabled = excluded.enabled, \
     source = excluded.source, updated_at = excluded.updated_at";
const INSERT_RULE_IF_ABSENT: &str = "INSERT INTO alert_rules \
     (name, kind, target, threshold, window_secs, for_secs, severity, enabled, source, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (name) DO NOTHING";

/// The alert tables of one database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlertStore {
    db: Database,
}

impl AlertStore {
    /// The store on `db` (already migrated).
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Every rule, by name.
    pub async fn rules(&self) -> Result<Vec<Rule>, DbError> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY name");
        let records: Vec<RuleRecord> = on_pool!(&self.db, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        records.into_iter().map(RuleRecord::into_rule).collect()
    }

    /// One rule, if it exists.
    pub async fn rule(&self, name: &str) -> Result<Option<Rule>, DbError> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE name = $1");
        let record: Option<RuleRecord> = on_pool!(&self.db, pool => {
            sqlx::query_as(&sql).bind(name).fetch_optional(pool).await?
        });
        record.map(RuleRecord::into_rule).transpose()
    }

    /// Creates or replaces a rule.
    pub async fn save_rule(
        &self,
        rule: &Rule,
        source: RuleSource,
        now: i64,
    ) -> Result<(), DbError> {
        self.write_rule(UPSERT_RULE, rule, source, now)
            .await
            .map(|_| ())
    }

    /// Creates a rule only if none has its name; true if it was created.
    pub async fn add_rule_if_absent(
        &self,
        rule: &Rule,
        source: RuleSource,
        now: i64,
    ) -> Result<bool, DbError> {
        self.write_rule(INSERT_RULE_IF_ABSENT, rule, source, now)
            .await
            .map(|n| n == 1)
    }

    async fn write_rule(
        &self,
        sql: &'static str,
        rule: &Rule,
        source: RuleSource,
        now: i64,
    ) -> Result<u64, DbError> {
        let window = i64::try_from(rule.window_secs).unwrap_or(i64::MAX);
        let for_secs = i64::try_from(rule.for_secs).unwrap_or(i64::MAX);
        let done = on_pool!(&self.db, pool => {
            sqlx::query(sql)
                .bind(&rule.name)
                .bind(rule.kind.as_str())
                .bind(&rule.target)
                .bind(rule.threshold)
                .bind(window)
                .bind(for_secs)
                .bind(rule.severity.as_str())
                .bind(rule.enabled)
                .bind(source.as_str())
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done)
    }

    /// Deletes a rule; true if it existed. Its alerts resolve at the next
    /// evaluation.
    pub async fn delete_rule(&self, name: &str) -> Result<bool, DbError> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM alert_rules WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Pending and firing alerts, firing first, then by rule and subject.
    pub async fn active(&self) -> Result<Vec<Alert>, DbError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE status <> 'resolved' \
             ORDER BY CASE status WHEN 'firing' THEN 0 ELSE 1 END, rule, subject"
        );
        let records: Vec<AlertRecord> = on_pool!(&self.db, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        records.into_iter().map(AlertRecord::into_alert).collect()
    }

    /// Resolved alerts, newest first, one page; and how many there are.
    pub async fn history(&self, offset: u64, limit: u64) -> Result<(Vec<Alert>, u64), DbError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE status = 'resolved' \
             ORDER BY resolved_at DESC, id DESC LIMIT $1 OFFSET $2"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (records, total): (Vec<AlertRecord>, i64) = on_pool!(&self.db, pool => {
            let records = sqlx::query_as(&sql).bind(limit).bind(offset).fetch_all(pool).await?;
            let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alerts WHERE status = 'resolved'")
                .fetch_one(pool)
                .await?;
            (records, total)
        });
        let alerts = records
            .into_iter()
            .map(AlertRecord::into_alert)
            .collect::<Result<_, _>>()?;
        Ok((alerts, u64::try_from(total).unwrap_or(0)))
    }

    /// Writes one evaluation's outcome and its deliveries in one
    /// transaction.
    pub async fn write(&self, write: &Write, now: i64) -> Result<(), DbError> {
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for alert in &write.upsert {
                let updated = sqlx::query(
                    "UPDATE alerts SET status = $2, severity = $3, value = $4, summary = $5, \
                     firing_since = $6, updated_at = $7 \
                     WHERE fingerprint = $1 AND status <> 'resolved'",
                )
                .bind(&alert.fingerprint)
                .bind(alert.status.as_str())
                .bind(alert.severity.as_str())
                .bind(alert.value)
                .bind(&alert.summary)
                .bind(alert.firing_since)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    sqlx::query(
                        "INSERT INTO alerts (fingerprint, rule, kind, subject, status, severity, \
                         value, summary, pending_since, firing_since, acknowledged_by, \
                         acknowledged_at, silenced_until, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    )
                    .bind(&alert.fingerprint)
                    .bind(&alert.rule)
                    .bind(alert.kind.as_str())
                    .bind(&alert.subject)
                    .bind(alert.status.as_str())
                    .bind(alert.severity.as_str())
                    .bind(alert.value)
                    .bind(&alert.summary)
                    .bind(alert.pending_since)
                    .bind(alert.firing_since)
                    .bind(alert.acknowledged.as_ref().map(|(by, _)| by.clone()))
                    .bind(alert.acknowledged.as_ref().map(|(_, at)| *at))
                    .bind(alert.silenced_until)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            for fingerprint in &write.cleared {
                sqlx::query("DELETE FROM alerts WHERE fingerprint = $1 AND status = 'pending'")
                    .bind(fingerprint)
                    .execute(&mut *tx)
                    .await?;
            }
            for alert in &write.resolved {
                sqlx::query(
                    "UPDATE alerts SET status = 'resolved', resolved_at = $2, value = $3, \
                     updated_at = $2 WHERE fingerprint = $1 AND status <> 'resolved'",
                )
                .bind(&alert.fingerprint)
                .bind(alert.resolved_at.unwrap_or(now))
                .bind(alert.value)
                .execute(&mut *tx)
                .await?;
            }
            for d in &write.deliveries {
                sqlx::query(
                    "INSERT INTO alert_deliveries (fingerprint, rule, event, receiver, payload, \
                     status, attempts, next_attempt_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
                )
                .bind(&d.fingerprint)
                .bind(&d.rule)
                .bind(d.event)
                .bind(&d.receiver)
                .bind(&d.payload)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Marks an active alert acknowledged by `by`; false if no pending or
    /// firing alert has that fingerprint.
    pub async fn acknowledge(
        &self,
        fingerprint: &str,
        by: &str,
        now: i64,
    ) -> Result<bool, DbError> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE alerts SET acknowledged_by = $2, acknowledged_at = $3, updated_at = $3 \
                 WHERE fingerprint = $1 AND status <> 'resolved'",
            )
            .bind(fingerprint)
            .bind(by)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Silences an active alert until `until` (ms since the epoch), or
    /// lifts its silence with `None`; false if no pending or firing alert
    /// has that fingerprint.
    pub async fn silence(
        &self,
        fingerprint: &str,
        until: Option<i64>,
        now: i64,
    ) -> Result<bool, DbError> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE alerts SET silenced_until = $2, updated_at = $3 \
                 WHERE fingerprint = $1 AND status <> 'resolved'",
            )
            .bind(fingerprint)
            .bind(until)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Pending deliveries due at `now`, oldest first.
    pub async fn due_deliveries(&self, now: i64, limit: u64) -> Result<Vec<Delivery>, DbError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = on_pool!(&self.db, pool => {
            sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// The newest deliveries, for the Alerts page.
    pub async fn deliveries(&self, limit: u64) -> Result<Vec<Delivery>, DbError> {
        let sql =
            format!("SELECT {DELIVERY_COLUMNS} FROM alert_deliveries ORDER BY id DESC LIMIT $1");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = on_pool!(&self.db, pool => {
            sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Records a successful attempt.
    pub async fn delivery_sent(&self, id: i64, now: i64) -> Result<(), DbError> {
        on_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE alert_deliveries SET status = 'sent', attempts = attempts + 1, \
                 sent_at = $2, next_attempt_at = NULL, last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or given up on
    /// (`failed`) with `None`.
    pub async fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), DbError> {
        let status = if retry_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        on_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE alert_deliveries SET status = $2, attempts = attempts + 1, \
                 last_error = $3, next_attempt_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(error)
            .bind(retry_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`;
    /// true if `holder` has it now. A lease another holder let expire is
    /// taken over.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now: i64,
    ) -> Result<bool, DbError> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO alert_lease (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at \
                 WHERE alert_lease.holder = excluded.holder OR alert_lease.expires_at <= $4",
            )
            .bind(name)
            .bind(holder)
            .bind(now + ttl_ms)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Gives the lease up (on shutdown), so another instance takes over at
    /// once rather than after it expires.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), DbError> {
        on_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM alert_lease WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Who holds the lease at `now`, if anyone.
    pub async fn lease_holder(&self, name: &str, now: i64) -> Result<Option<String>, DbError> {
        let holder = on_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT holder FROM alert_lease WHERE name = $1 AND expires_at > $2")
                .bind(name)
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        Ok(holder)
    }
}
