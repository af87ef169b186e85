-- Synced state (coord::sync): a versioned key/value registry that every
-- instance of a fleet syncs from. Kept identical to the PostgreSQL table of
-- the same name so one set of statements serves both databases.
--
-- One row per key. `version` is the change number of the row's last write,
-- taken from the single counter below, so "what changed since version V"
-- is one range scan of the version index. A delete keeps the row as a
-- tombstone (`deleted` = TRUE) with a new version, so instances that sync
-- by version learn of it. `value` is JSON text.
CREATE TABLE synced_state (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    -- Milliseconds since the Unix epoch.
    updated_at BIGINT NOT NULL,
    -- Name of the instance that made the change.
    updated_by TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE UNIQUE INDEX synced_state_by_version ON synced_state (version);

-- The registry-wide change counter: exactly one row. Every write bumps it
-- in its own transaction, which serialises writers, so versions increase
-- strictly in commit order and a reader never sees a later version before
-- an earlier one.
CREATE TABLE synced_state_counter (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);

INSERT INTO synced_state_counter (id, version) VALUES (1, 0);
