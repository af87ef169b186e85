-- Failed jobs back to waiting: the finish marks go, the attempt counters
-- stay. "one" does what BullMQ's `job.retry()` does (LIFO jobs pushed at
-- the head, a failed child pending for its parent again), and keeps a
-- priority (`prioritized`); "batch" is BullMQ's `retryJobs` plus parents
-- (see there).
--
-- KEYS[1..8] as in common.lua, KEYS[9] failed
-- ARGV[1] key base "<prefix>:<queue>:"
-- ARGV[2] "one" or "batch"
-- ARGV[3] job id ("one") or batch size ("batch", at most 1000)
--
-- "one" answers 1, or -1 (no such job) or -3 (job not failed).
-- "batch" answers {retried, examined}.
local base = ARGV[1]

-- Whether a job asked to be run last-in-first-out: only then is its
-- options' JSON decoded.
local function is_lifo(opts)
  if not opts or not string.find(opts, "lifo", 1, true) then
    return false
  end
  local ok, decoded = pcall(cjson.decode, opts)
  return ok and type(decoded) == "table" and decoded["lifo"] == true
end

-- A child counted as failed by its parent is pending again.
local function reopen_parent(jobKey, parentKey)
  if parentKey and rcall("EXISTS", parentKey) == 1 then
    local wasFailed = rcall("ZREM", parentKey .. ":unsuccessful", jobKey) == 1
    if not wasFailed then
      wasFailed = rcall("HDEL", parentKey .. ":failed", jobKey) == 1
    end
    if wasFailed then
      rcall("SADD", parentKey .. ":dependencies", jobKey)
    end
  end
end

if ARGV[2] == "one" then
  local jobId = ARGV[3]
  local jobKey = base .. jobId
  if not sy_is_job(jobKey) then
    return -1
  end
  if not rcall("ZSCORE", KEYS[9], jobId) then
    return -3
  end
  rcall("ZREM", KEYS[9], jobId)
  rcall("HDEL", jobKey, "finishedOn", "processedOn", "failedReason")
  local push = is_lifo(rcall("HGET", jobKey, "opts")) and "RPUSH" or "LPUSH"
  sy_make_ready(jobId, jobKey, push)
  reopen_parent(jobKey, rcall("HGET", jobKey, "parentKey"))
  sy_emit(KEYS[8], KEYS[1], "event", "waiting", "jobId", jobId, "prev", "failed")
  return 1
end

-- A batch puts every job in `wait` (or `paused`), as BullMQ's own
-- retryJobs and `job.retry()` do, priority or not; unlike retryJobs it
-- also makes a failed child pending for its parent again. What is the
-- same for every job (where ready jobs go, whether workers are woken, how
-- long the event stream is kept) is read once, the ids are pushed in one
-- call, the stream trimmed once, and one SORT reads the batch's ids with
-- each job's parent: a job costs its HDEL and its event, as in retryJobs,
-- which this must not be slower than (docs/PERFORMANCE.md).
local n = tonumber(ARGV[3])
local rows
if not string.find(base, "*", 1, true) then
  -- SORT's GET pattern shares the queue's prefix, so it stays in its slot
  -- on a cluster; a key that is no hash reads as nil (false here). Redis
  -- Cluster before 7.4 refuses GET altogether: then, as for a '*', below.
  rows = redis.pcall("SORT", KEYS[9], "BY", "nosort", "LIMIT", 0, n, "GET", "#",
    "GET", base .. "*->parentKey")
end
if rows == nil or rows.err then
  -- A '*' in the prefix or name would be SORT's wildcard: read each job.
  rows = {}
  for _, jobId in ipairs(rcall("ZRANGE", KEYS[9], 0, n - 1)) do
    local parentKey = redis.pcall("HGET", base .. jobId, "parentKey")
    rows[#rows + 1] = jobId
    rows[#rows + 1] = type(parentKey) == "string" and parentKey
  end
end
if #rows == 0 then
  return {0, 0}
end

-- The loop runs a thousand times per call, so what it touches is local,
-- counted (no `#`) and compared without calls; every argument of a Redis
-- call costs, which is why the batch leaves `failed` by rank and not by
-- naming its ids.
local list, hold = sy_ready_list(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
local events = KEYS[8]
local pcall_redis = redis.pcall
local ready = {}
local retried = 0
for i = 1, #rows, 2 do
  local jobId = rows[i]
  local jobKey = base .. jobId
  -- A failed job has its finish marks, so HDEL counts one to three; none
  -- means its hash is gone (removed by hand), and an error table that the
  -- key is no hash: either way it has nothing to run and only leaves
  -- `failed`.
  local removed = pcall_redis("HDEL", jobKey, "finishedOn", "processedOn", "failedReason")
  if removed == 1 or removed == 2 or removed == 3 then
    retried = retried + 1
    ready[retried] = jobId
    if rows[i + 1] then
      reopen_parent(jobKey, rows[i + 1])
    end
    rcall("XADD", events, "*", "event", "waiting", "jobId", jobId, "prev", "failed")
  end
end
-- The rows are `failed`'s first by rank, and nothing else ran meanwhile.
local examined = #rows / 2
rcall("ZREMRANGEBYRANK", KEYS[9], 0, examined - 1)
if retried > 0 then
  rcall("LPUSH", list, unpack(ready))
  local cap = rcall("HGET", KEYS[1], "opts.maxLenEvents") or "10000"
  rcall("XTRIM", events, "MAXLEN", "~", cap)
  sy_wake(KEYS[7], hold)
end
return {retried, examined}
