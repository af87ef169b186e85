-- Removes a job scheduler or a legacy repeatable with its pending
-- iteration, keeping BullMQ's invariants: the iteration waiting in
-- `delayed` (`repeat:<key>:<next>`) would otherwise run once more and,
-- finding no entry, simply stop; removing it here is what BullMQ's own
-- removal does (a `removed` event, prev `delayed`). An iteration already
-- ready or running is left to finish, as BullMQ leaves it.
--
-- KEYS[1] repeat, KEYS[2] delayed, KEYS[3] events, KEYS[4] meta
-- ARGV[1] key base, ARGV[2] scheduler id or repeatable key
-- Answers 1, or 0 when no such entry exists.
local base = ARGV[1]
local key = ARGV[2]
local next = rcall("ZSCORE", KEYS[1], key)
if not next then
  return 0
end
local jobId = "repeat:" .. key .. ":" .. next
if rcall("ZREM", KEYS[2], jobId) == 1 then
  sy_delete_job(base, jobId)
  sy_emit(KEYS[3], KEYS[4], "event", "removed", "jobId", jobId, "prev", "delayed")
end
rcall("ZREM", KEYS[1], key)
rcall("DEL", KEYS[1] .. ":" .. key)
return 1
