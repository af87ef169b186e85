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

local function retry(jobId)
  local jobKey = base .. jobId
  rcall("ZREM", KEYS[9], jobId)
  rcall("HDEL", jobKey, "finishedOn", "processedOn", "failedReason")
  local push = "LPUSH"
  local opts = rcall("HGET", jobKey, "opts")
  if opts then
    local ok, decoded = pcall(cjson.decode, opts)
    if ok and type(decoded) == "table" and decoded["lifo"] == true then
      push = "RPUSH"
    end
  end
  sy_make_ready(jobId, jobKey, push)
  -- A child counted as failed by its parent is pending again.
  local parentKey = rcall("HGET", jobKey, "parentKey")
  if parentKey and rcall("EXISTS", parentKey) == 1 then
    local wasFailed = rcall("ZREM", parentKey .. ":unsuccessful", jobKey) == 1
    if not wasFailed then
      wasFailed = rcall("HDEL", parentKey .. ":failed", jobKey) == 1
    end
    if wasFailed then
      rcall("SADD", parentKey .. ":dependencies", jobKey)
    end
  end
  sy_emit(KEYS[8], KEYS[1], "event", "waiting", "jobId", jobId, "prev", "failed")
end

if ARGV[2] == "one" then
  local jobId = ARGV[3]
  if not sy_is_job(base .. jobId) then
    return -1
  end
  if not rcall("ZSCORE", KEYS[9], jobId) then
    return -3
  end
  retry(jobId)
  return 1
end

local ids = rcall("ZRANGEBYSCORE", KEYS[9], "-inf", ARGV[4], "LIMIT", 0, tonumber(ARGV[3]))
local retried = 0
for _, jobId in ipairs(ids) do
  if rcall("EXISTS", base .. jobId) == 1 then
    retry(jobId)
    retried = retried + 1
  else
    -- The hash is gone (removed by hand): nothing to run, drop the id.
    rcall("ZREM", KEYS[9], jobId)
  end
end
return {retried, #ids}
