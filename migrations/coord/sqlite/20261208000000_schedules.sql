-- Repeatable jobs (coord::queue::schedules): one row per schedule, its
-- definition as JSON (`definition`, a `Schedule`), and where it stands.
-- A scheduler fires a tick with a compare-and-set of `next_run_at` and
-- `version` in the transaction that enqueues the tick's job, so each tick
-- fires once however many schedulers run.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    definition TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    next_run_at INTEGER,
    last_run_at INTEGER,
    last_job_id TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
