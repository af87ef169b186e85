-- Jobs that failed and will run again: waiting or delayed with a failure
-- recorded. A job's last error stays on its row until a retry from the
-- failed set resets it, so these are exactly the jobs a worker's step sent
-- back after a failure. The queue's Retrying view lists them through this
-- index (due ones first, then by run time); a job that never failed is
-- never in it, so claims and completions of healthy jobs skip it.
CREATE INDEX jobs_retrying ON jobs (queue, run_at, id)
    WHERE state IN ('waiting', 'delayed') AND attempts_made > 0 AND failed_reason IS NOT NULL;
