-- Failed jobs back to waiting (or prioritized), the way a BullMQ
-- `job.retry()` does it: the finish marks go, the attempt counters stay.
--
-- KEYS[1..8] as in common.lua, KEYS[9] failed
-- ARGV[1] key base "<prefix>:<queue>:"
-- ARGV[2] "one" or "batch"
-- ARGV[3] job id ("one") or batch size ("batch")
-- ARGV[4] ("batch") only jobs failed at or before this time (ms)
--
-- "one" answers 1, or -1 (no such job) or -3 (job not failed).
-- "batch" answers {retried, examined}.
local base = ARGV[1]

-- Whether a job asked to be run last-in-first-out: only then is its
-- options' JSON decoded (a retry of 100,000 jobs would otherwise decode
-- 100,000 option strings to find one flag).
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

-- A batch: what is the same for every job (where ready jobs go, whether
-- workers are woken, how long the event stream is kept) is read once,
-- the ready ids are pushed in one call per end of the list, and each job
-- costs one HMGET, one HDEL and its event.
local ids = rcall("ZRANGEBYSCORE", KEYS[9], "-inf", ARGV[4], "LIMIT", 0, tonumber(ARGV[3]))
if #ids == 0 then
  return {0, 0}
end
local list, hold = sy_ready_list(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
local cap = tonumber(rcall("HGET", KEYS[1], "opts.maxLenEvents")) or 10000
local fifo, lifo = {}, {}
local retried = 0
for _, jobId in ipairs(ids) do
  local jobKey = base .. jobId
  -- pcall: a key that is no hash (damaged by hand) must not stop the
  -- script half-way, with the jobs before it changed and still in
  -- `failed`; it is treated as a missing job.
  local fields = redis.pcall("HMGET", jobKey, "opts", "priority", "parentKey", "timestamp")
  -- Every job has `timestamp`; an id whose hash is gone (removed by hand)
  -- has nothing to run and is only dropped from `failed` below.
  if type(fields) == "table" and not fields.err and fields[4] then
    rcall("HDEL", jobKey, "finishedOn", "processedOn", "failedReason")
    local priority = tonumber(fields[2]) or 0
    if priority > 0 then
      local seq = rcall("INCR", KEYS[6])
      rcall("ZADD", KEYS[5], priority * 4294967296 + (seq % 4294967296), jobId)
    elseif is_lifo(fields[1]) then
      lifo[#lifo + 1] = jobId
    else
      fifo[#fifo + 1] = jobId
    end
    reopen_parent(jobKey, fields[3])
    rcall("XADD", KEYS[8], "MAXLEN", "~", cap, "*", "event", "waiting", "jobId", jobId,
      "prev", "failed")
    retried = retried + 1
  end
end
rcall("ZREM", KEYS[9], unpack(ids))
if #fifo > 0 then
  rcall("LPUSH", list, unpack(fifo))
end
if #lifo > 0 then
  rcall("RPUSH", list, unpack(lifo))
end
if retried > 0 then
  sy_wake(KEYS[7], hold)
end
return {retried, #ids}
