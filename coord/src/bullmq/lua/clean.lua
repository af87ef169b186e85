-- Deletes finished jobs (completed or failed) that finished at or before
-- a time, oldest first, as BullMQ's `queue.clean()` does; one `cleaned`
-- event with the count.
--
-- KEYS[1] the finished set (score = finishedOn), KEYS[2] events,
-- KEYS[3] meta
-- ARGV[1] key base, ARGV[2] cut-off time (ms), ARGV[3] most jobs to delete
-- Answers how many were deleted.
local base = ARGV[1]
local ids = rcall("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[2], "LIMIT", 0, tonumber(ARGV[3]))
for _, jobId in ipairs(ids) do
  sy_delete_job(base, jobId)
  rcall("ZREM", KEYS[1], jobId)
end
sy_emit(KEYS[2], KEYS[3], "event", "cleaned", "count", #ids)
return #ids
