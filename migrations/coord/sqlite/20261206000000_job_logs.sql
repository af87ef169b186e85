-- Job logs and progress (coord::queue::report): a row per kept log line,
-- and on the job its progress and how many lines and bytes it keeps and
-- has dropped to stay within the caps. Adding columns with constant
-- defaults rewrites no row.
ALTER TABLE jobs ADD COLUMN progress TEXT;
ALTER TABLE jobs ADD COLUMN log_lines INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN logs_dropped INTEGER NOT NULL DEFAULT 0;

-- `seq` counts every line the job ever wrote, so the oldest kept line is
-- the smallest and a dropped one never comes back.
CREATE TABLE job_logs (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (queue, id, seq)
) WITHOUT ROWID;

-- A job's lines go with it, whoever deletes it (removal, retention, clean,
-- a group's removal). Most jobs write none: the condition keeps deleting
-- them as cheap as before.
CREATE TRIGGER job_logs_go_with_their_job AFTER DELETE ON jobs
WHEN OLD.log_lines > 0
BEGIN
    DELETE FROM job_logs WHERE queue = OLD.queue AND id = OLD.id;
END;
