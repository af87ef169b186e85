-- One job (read only), after read_job.lua. KEYS[1] the job's hash, ARGV[1]
-- clip (see read_job). Returns read_job's 16 values, or an empty reply
-- when there is no such job.

return read_job(KEYS[1], tonumber(ARGV[1]) or 0) or {}
