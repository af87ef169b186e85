-- Job queues of the embedded backend (coord::queue::sql::SqlBackend).
--
-- One row per queue holds its settings, its id and sequence counters and a
-- counter per job state. Every transition updates those counters in the
-- same transaction as the job row, so counts are O(1) and always equal to
-- the number of rows in each state.
CREATE TABLE queues (
    name TEXT NOT NULL PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0,
    -- Last generated job id (ids are its decimal text).
    next_id INTEGER NOT NULL DEFAULT 0,
    -- Last sequence number given to a waiting job (FIFO within a priority).
    seq INTEGER NOT NULL DEFAULT 0,
    waiting INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 0,
    delayed INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    completed_total INTEGER NOT NULL DEFAULT 0,
    failed_total INTEGER NOT NULL DEFAULT 0,
    stalled_total INTEGER NOT NULL DEFAULT 0,
    retried_total INTEGER NOT NULL DEFAULT 0,
    -- Retention; NULL keeps everything.
    keep_completed_count INTEGER,
    keep_completed_age_ms INTEGER,
    keep_failed_count INTEGER,
    keep_failed_age_ms INTEGER,
    created_at INTEGER NOT NULL
);

-- One row per job. `sort_key` orders the jobs of one state:
--   waiting:          priority * 2^40 + sequence number (claim order);
--   active:           lease deadline (ms since the epoch);
--   delayed:          run_at;
--   completed/failed: finished_at.
-- `priority` and `max_attempts` repeat fields of `options` (JSON of
-- JobOptions) so that set-based statements can use them.
CREATE TABLE jobs (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    options TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL,
    sort_key INTEGER NOT NULL,
    attempts_made INTEGER NOT NULL DEFAULT 0,
    stalled_count INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    failed_reason TEXT,
    -- JSON array of strings.
    stacktrace TEXT NOT NULL DEFAULT '[]',
    -- JSON array of AttemptRecord.
    history TEXT NOT NULL DEFAULT '[]',
    -- JSON.
    return_value TEXT,
    created_at INTEGER NOT NULL,
    processed_at INTEGER,
    finished_at INTEGER,
    run_at INTEGER,
    PRIMARY KEY (queue, id)
);

-- Claims, listings, due delayed jobs, expired leases and retention all walk
-- one state of one queue in sort order.
CREATE INDEX jobs_by_state ON jobs (queue, state, sort_key, id);
