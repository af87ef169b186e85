-- Adds one job from a job scheduler's (or legacy repeatable's) template,
-- ready now, the way BullMQ's `queue.add` adds a standard job: the next id
-- of the queue's counter, the hash fields workers read (name, data, opts,
-- timestamp, delay, priority), `wait` (or `paused`, or `prioritized`), the
-- marker, and the `added` and `waiting` events. The entry itself (its next
-- run, its iteration count, its pending iteration) is not touched, so the
-- schedule goes on as if nothing happened.
--
-- The job carries neither `rjk` nor `repeat` options: a worker taking a
-- job with either asks BullMQ to schedule the next iteration from it,
-- which would add a second iteration (legacy) or fail the fetch
-- (scheduler, no `repeat` options to read).
--
-- KEYS[1..8] as in common.lua, KEYS[9] repeat, KEYS[10] id
-- ARGV[1] key base, ARGV[2] scheduler id or repeatable key,
-- ARGV[3] timestamp (ms)
-- Answers {1, job id}, {-1, ""} (no such entry) or {-2, ""} (a legacy
-- repeatable whose current iteration's job, its only template, is gone).
local base = ARGV[1]
local key = ARGV[2]
local next = rcall("ZSCORE", KEYS[9], key)
if not next then
  return {-1, ""}
end
local schedulerKey = KEYS[9] .. ":" .. key
local iterationKey = base .. "repeat:" .. key .. ":" .. next
local name, data, opts
if rcall("HEXISTS", schedulerKey, "ic") == 1 then
  local fields = rcall("HMGET", schedulerKey, "name", "data", "opts")
  name, data, opts = fields[1], fields[2], fields[3]
  if not data and sy_is_job(iterationKey) then
    data = rcall("HGET", iterationKey, "data")
  end
elseif sy_is_job(iterationKey) then
  local fields = rcall("HMGET", iterationKey, "name", "data", "opts")
  name, data, opts = fields[1], fields[2], fields[3]
else
  return {-2, ""}
end
name = name or rcall("HGET", schedulerKey, "name") or ""
data = data or "{}"

-- What only makes sense for a scheduled iteration goes: its id, delay and
-- time, its repeat bookkeeping, and its deduplication id (a run asked for
-- by hand must not be swallowed by, or swallow, a scheduled one).
local decoded = {}
if opts then
  local ok, value = pcall(cjson.decode, opts)
  if ok and type(value) == "table" then
    decoded = value
  end
end
local dropped = false
for _, field in ipairs({"repeat", "jobId", "delay", "timestamp", "prevMillis",
    "repeatJobKey", "de"}) do
  if decoded[field] ~= nil then
    decoded[field] = nil
    dropped = true
  end
end
if dropped or not opts then
  opts = cjson.encode(decoded)
end
local priority = tonumber(decoded["priority"]) or 0

local jobId = tostring(rcall("INCR", KEYS[10]))
local jobKey = base .. jobId
rcall("HMSET", jobKey, "name", name, "data", data, "opts", opts,
  "timestamp", ARGV[3], "delay", 0, "priority", priority)
sy_emit(KEYS[8], KEYS[1], "event", "added", "jobId", jobId, "name", name)
sy_make_ready(jobId, jobKey, decoded["lifo"] == true and "RPUSH" or "LPUSH")
sy_emit(KEYS[8], KEYS[1], "event", "waiting", "jobId", jobId)
return {1, jobId}
