-- Error groups of the embedded backend (coord::errors): failed jobs grouped
-- by their normalised failure reason.
--
-- The Rust code that fails a job writes its group id (the reason's
-- normalised form hashed, which SQL cannot compute) into `error_group`,
-- and every statement that takes a job out of the failed state sets
-- `error_group` too (retry clears it); everything else is kept here, by
-- triggers on `UPDATE OF error_group` and `DELETE`, so that every way a
-- job enters or leaves the failed set (a worker's step, stalled recovery,
-- retry, batch retry, removal, retention, clean) keeps the groups exact
-- and the group list reads O(groups) rows. The triggers name only
-- `error_group`, not `state`: the statements of the hot path (claiming,
-- completing) do not set it, so SQLite leaves the triggers out of their
-- programs altogether (with `state` in the list, every claim and
-- completion paid for evaluating them: 10% of throughput).

-- The group of the job's latest failure; NULL before any.
ALTER TABLE jobs ADD COLUMN error_group TEXT;

-- A group's failed jobs in failure order: its listing, its newest job, its
-- trend, and group-wide retry and remove.
CREATE INDEX jobs_failed_by_group ON jobs (queue, error_group, sort_key, id)
    WHERE state = 'failed';

CREATE TABLE error_groups (
    queue TEXT NOT NULL,
    group_id TEXT NOT NULL,
    -- Jobs of the group now in the failed state; the row goes at 0.
    failed INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    -- The newest failed job and its reason (cut to 1024 bytes).
    sample_job TEXT NOT NULL,
    sample_reason TEXT NOT NULL,
    PRIMARY KEY (queue, group_id)
);

-- No index by last_seen: a queue's groups are read whole through the key
-- and ordered in memory (O(groups)), while such an index cost every
-- failure about 3 µs of upkeep.

-- Failed jobs per group and job name; a row goes at 0.
CREATE TABLE error_group_names (
    queue TEXT NOT NULL,
    group_id TEXT NOT NULL,
    name TEXT NOT NULL,
    failed INTEGER NOT NULL,
    PRIMARY KEY (queue, group_id, name)
);

-- A job leaving a group, written once for the two ways out (a change of
-- state or group, a delete): an insert into this view runs the bookkeeping.
CREATE VIEW error_group_leaves (queue, group_id, name, id) AS
    SELECT NULL, NULL, NULL, NULL WHERE 0;

CREATE TRIGGER error_group_leave INSTEAD OF INSERT ON error_group_leaves
BEGIN
    UPDATE error_groups SET failed = failed - 1
        WHERE queue = NEW.queue AND group_id = NEW.group_id;
    DELETE FROM error_groups
        WHERE queue = NEW.queue AND group_id = NEW.group_id AND failed <= 0;
    -- The sample leaves with its job: the group's newest remaining one
    -- takes its place.
    UPDATE error_groups SET (sample_job, sample_reason) = (
            SELECT id, substr(coalesce(failed_reason, ''), 1, 1024) FROM jobs
            WHERE queue = NEW.queue AND state = 'failed' AND error_group = NEW.group_id
            ORDER BY sort_key DESC, id DESC LIMIT 1)
        WHERE queue = NEW.queue AND group_id = NEW.group_id AND sample_job = NEW.id;
    UPDATE error_group_names SET failed = failed - 1
        WHERE queue = NEW.queue AND group_id = NEW.group_id AND name = NEW.name;
    DELETE FROM error_group_names
        WHERE queue = NEW.queue AND group_id = NEW.group_id AND name = NEW.name
          AND failed <= 0;
END;

CREATE TRIGGER jobs_error_group_enter AFTER UPDATE OF error_group ON jobs
WHEN NEW.state = 'failed' AND NEW.error_group IS NOT NULL
     AND (OLD.state <> 'failed' OR OLD.error_group IS NOT NEW.error_group)
BEGIN
    INSERT INTO error_groups (queue, group_id, failed, first_seen, last_seen,
                              sample_job, sample_reason)
    VALUES (NEW.queue, NEW.error_group, 1, NEW.sort_key, NEW.sort_key, NEW.id,
            substr(coalesce(NEW.failed_reason, ''), 1, 1024))
    ON CONFLICT (queue, group_id) DO UPDATE SET
        failed = failed + 1,
        first_seen = min(first_seen, excluded.first_seen),
        last_seen = max(last_seen, excluded.last_seen),
        sample_job = CASE WHEN excluded.last_seen >= last_seen
                          THEN excluded.sample_job ELSE sample_job END,
        sample_reason = CASE WHEN excluded.last_seen >= last_seen
                             THEN excluded.sample_reason ELSE sample_reason END;
    INSERT INTO error_group_names (queue, group_id, name, failed)
    VALUES (NEW.queue, NEW.error_group, NEW.name, 1)
    ON CONFLICT (queue, group_id, name) DO UPDATE SET failed = failed + 1;
END;

CREATE TRIGGER jobs_error_group_leave AFTER UPDATE OF error_group ON jobs
WHEN OLD.state = 'failed' AND OLD.error_group IS NOT NULL
     AND (NEW.state <> 'failed' OR NEW.error_group IS NOT OLD.error_group)
BEGIN
    INSERT INTO error_group_leaves VALUES (OLD.queue, OLD.error_group, OLD.name, OLD.id);
END;

CREATE TRIGGER jobs_error_group_delete AFTER DELETE ON jobs
WHEN OLD.state = 'failed' AND OLD.error_group IS NOT NULL
BEGIN
    INSERT INTO error_group_leaves VALUES (OLD.queue, OLD.error_group, OLD.name, OLD.id);
END;
