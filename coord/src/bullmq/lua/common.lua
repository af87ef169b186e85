-- Shared helpers for Switchyard's BullMQ scripts (prepended to each).
--
-- Scripts that make jobs ready again take the same first eight keys:
--   KEYS[1] meta   KEYS[2] active  KEYS[3] wait    KEYS[4] paused
--   KEYS[5] prioritized  KEYS[6] pc  KEYS[7] marker  KEYS[8] events
local rcall = redis.call

-- Where a job that is ready to run belongs, and whether workers must be
-- left asleep: a paused queue (meta field `paused`) parks ready jobs in the
-- `paused` list; a queue at its global concurrency keeps them in `wait`
-- without waking anyone.
local function sy_ready_list(meta, active, wait, paused)
  local attrs = rcall("HMGET", meta, "paused", "concurrency")
  if attrs[1] then
    return paused, true
  end
  local limit = tonumber(attrs[2])
  if limit and rcall("LLEN", active) >= limit then
    return wait, true
  end
  return wait, false
end

-- Workers sleep on BZPOPMIN of the marker zset; member "0" at score 0
-- means "a job is ready now".
local function sy_wake(marker, hold)
  if not hold then
    rcall("ZADD", marker, 0, "0")
  end
end

-- Appends one event to a queue's stream, trimmed (approximately) to the
-- queue's configured length, 10000 when none is configured.
local function sy_emit(events, meta, ...)
  local cap = tonumber(rcall("HGET", meta, "opts.maxLenEvents")) or 10000
  rcall("XADD", events, "MAXLEN", "~", cap, "*", ...)
end

-- Puts a job where workers will take it: the prioritized zset when it has
-- a priority (score = priority * 2^32 + a queue-wide sequence, so equal
-- priorities stay FIFO), else the wait (or paused) list with `push`.
local function sy_make_ready(jobId, jobKey, push)
  local list, hold = sy_ready_list(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
  if priority > 0 then
    local seq = rcall("INCR", KEYS[6])
    rcall("ZADD", KEYS[5], priority * 4294967296 + (seq % 4294967296), jobId)
  else
    rcall(push, list, jobId)
  end
  sy_wake(KEYS[7], hold)
end

-- Deletes a job's own keys, and its deduplication key if that still points
-- at this job (so an equal job can be added again).
local function sy_delete_job(base, jobId)
  local jobKey = base .. jobId
  local dedup = rcall("HGET", jobKey, "deid")
  if dedup then
    local dedupKey = base .. "de:" .. dedup
    if rcall("GET", dedupKey) == jobId then
      rcall("DEL", dedupKey)
    end
  end
  return rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies",
    jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful")
end

-- Whether a key holds a job: a hash with the `timestamp` field every
-- BullMQ job is stored with. The queue's own keys share the job keys'
-- prefix (`<prefix>:<queue>:meta`, a job's `:logs` list, a repeat
-- config), so a script never takes an id for a job without this check.
local function sy_is_job(jobKey)
  return rcall("TYPE", jobKey)["ok"] == "hash"
    and rcall("HEXISTS", jobKey, "timestamp") == 1
end
