-- Per-minute metrics history (server/src/metrics/history.rs): one value per
-- series, subject (queue, channel or policy) and minute (minutes since the
-- Unix epoch). Kept in step with migrations/sqlite/20261123000003_metrics.sql:
-- one set of statements serves both databases. The primary key makes the
-- sampler's upsert idempotent when several dashboards write the same minute.
CREATE TABLE IF NOT EXISTS metrics_samples (
    series TEXT NOT NULL,
    subject TEXT NOT NULL,
    minute BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series, subject, minute)
);
-- Retention deletes the oldest minutes first.
CREATE INDEX IF NOT EXISTS metrics_samples_by_minute ON metrics_samples (minute);
