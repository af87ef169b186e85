-- Alerting (server/src/alerts/store.rs): rules, alerts (pending and firing
-- ones, and resolved ones as history), the webhook outbox, and the lease
-- that lets one dashboard instance evaluate at a time. Kept in step with
-- migrations/postgres/20261123000003_alerts.sql: one set of statements
-- serves both databases.
CREATE TABLE IF NOT EXISTS alert_rules (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    window_secs BIGINT NOT NULL,
    for_secs BIGINT NOT NULL,
    severity TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    source TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    summary TEXT NOT NULL,
    pending_since BIGINT NOT NULL,
    firing_since BIGINT,
    resolved_at BIGINT,
    acknowledged_by TEXT,
    acknowledged_at BIGINT,
    silenced_until BIGINT,
    updated_at BIGINT NOT NULL
);
-- At most one pending or firing alert per rule and subject.
CREATE UNIQUE INDEX IF NOT EXISTS alerts_active ON alerts (fingerprint) WHERE status <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_history ON alerts (resolved_at) WHERE status = 'resolved';

CREATE TABLE IF NOT EXISTS alert_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    event TEXT NOT NULL,
    receiver TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at BIGINT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (status, next_attempt_at);

CREATE TABLE IF NOT EXISTS alert_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
