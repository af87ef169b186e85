-- A delayed job made ready now, as BullMQ's `job.promote()` does.
--
-- KEYS[1..8] as in common.lua, KEYS[9] delayed
-- ARGV[1] key base, ARGV[2] job id
-- Answers 1, or -1 (no such job) or -3 (job not delayed).
local jobId = ARGV[2]
local jobKey = ARGV[1] .. jobId
if not sy_is_job(jobKey) then
  return -1
end
if rcall("ZREM", KEYS[9], jobId) == 0 then
  return -3
end
sy_make_ready(jobId, jobKey, "LPUSH")
rcall("HSET", jobKey, "delay", 0)
sy_emit(KEYS[8], KEYS[1], "event", "waiting", "jobId", jobId, "prev", "delayed")
return 1
