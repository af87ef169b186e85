-- The audit log (server/src/audit/mod.rs): who did what to which queue,
-- job, key or alert, when, and how it ended. Kept in step with
-- migrations/postgres/20261123000004_audit.sql: one set of statements
-- serves both databases.
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    address TEXT,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed')),
    detail TEXT
);
-- Newest first, unfiltered and by each exact filter.
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at, id);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, at);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, at);
CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target_kind, target, at);
