-- The worker registry (coord::queue::workers): a row per running worker,
-- its latest report as JSON, when that report stops counting as alive
-- (`expires_at`, the writer's clock plus its time to live) and what the
-- operator asked of it (`quiet`, `stop`, or NULL).
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    report TEXT NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    command TEXT
) WITHOUT ROWID;
