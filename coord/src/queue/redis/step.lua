-- The worker's round trip: record outcomes, apply retention, move due
-- delayed jobs to waiting, claim waiting jobs, report the next due time.
-- ARGV[4] lease ms, ARGV[5] jobs to claim, ARGV[6] lease token base,
-- ARGV[7] number of outcomes; then per outcome: id, lease token, the
-- attempt record's JSON after its "attempt" field, 'c' (completed) and the
-- return value JSON, or 'f' (failed) and the error message, cause chain
-- JSON, retryable ('1'/'0'), retry delay ms, error group id.
-- Returns { claimed jobs as pairs of (id, attempts_made, stalled_count,
-- history, created_at, stacktrace, data, opts, name joined by NUL) and
-- failed_reason; a claimed job's token is '<token base>.<id>', the claim
-- time, next due ms or '', stale outcome ids }.
--
-- Numbers are not turned into text per job: Lua formats them with
-- sprintf, about 0.7 µs each, more than an HGET. Hence tokens built from
-- the id rather than a counter, and the attempt count memoised.

local rcall = redis.call
local leaseMs = tonumber(ARGV[4])
local claim = tonumber(ARGV[5])
local tokenBase = ARGV[6]
local outcomes = tonumber(ARGV[7])

-- (1) Outcomes, only for jobs still held under the presented lease. The
-- loop runs for every job, so its tables are filled through counters
-- rather than `#t + 1`, and `redis.call` is a local.
local stale, completed, retrying, failed = {}, {}, {}, {}
-- Of the failed jobs: error group, name and reason, for joinGroups.
local failedGroups, failedNames, failedReasons = {}, {}, {}
local activeRem, completedAdd, failedAdd, delayedAdd, waitingAdd = {}, {}, {}, {}, {}
local nStale, nDone, nRetry, nFailed, nRem, nDelayed, nWaiting = 0, 0, 0, 0, 0, 0, 0
local b = 8
for _ = 1, outcomes do
  local id = ARGV[b]
  local kind = ARGV[b + 3]
  local jk = jobPrefix .. id
  -- Every move out of active clears the token, so a matching token
  -- means the job is still active under this lease.
  local f = rcall('HMGET', jk, 'token', 'attempts_made', 'history')
  if f[1] ~= ARGV[b + 1] or f[1] == '' then
    nStale = nStale + 1
    stale[nStale] = id
  else
    nRem = nRem + 1
    activeRem[nRem] = id
    -- appendHistory, written out: one concatenation instead of three.
    local history = f[3]
    if not history or history == '' or history == '[]' then
      history = '[{"attempt":' .. (f[2] or '0') .. ARGV[b + 2] .. ']'
    else
      history = string.sub(history, 1, -2) .. ',{"attempt":' .. (f[2] or '0') .. ARGV[b + 2] .. ']'
    end
    if kind == 'c' then
      rcall('HSET', jk, 'state', 'completed', 'finished_at', nowS,
        'return_value', ARGV[b + 4], 'history', history, 'token', '')
      completedAdd[2 * nDone + 1] = nowS
      completedAdd[2 * nDone + 2] = id
      nDone = nDone + 1
      completed[nDone] = id
    elseif ARGV[b + 6] == '1'
        and (tonumber(f[2]) or 0) < (tonumber(rcall('HGET', jk, 'max_attempts')) or 1) then
      local delay = tonumber(ARGV[b + 7]) or 0
      if delay > 0 then
        local runAt = num(now + delay)
        rcall('HSET', jk, 'state', 'delayed', 'run_at', runAt, 'failed_reason', ARGV[b + 4],
          'stacktrace', ARGV[b + 5], 'history', history, 'token', '', 'error_group', ARGV[b + 8])
        rcall('ZADD', retryingKey, runAt, id)
        delayedAdd[2 * nDelayed + 1] = runAt
        delayedAdd[2 * nDelayed + 2] = id
        nDelayed = nDelayed + 1
      else
        rcall('HSET', jk, 'state', 'waiting', 'failed_reason', ARGV[b + 4],
          'stacktrace', ARGV[b + 5], 'history', history, 'token', '', 'error_group', ARGV[b + 8])
        rcall('ZADD', retryingKey, 0, id)
        waitingAdd[2 * nWaiting + 1] = waitingScore(rcall('HGET', jk, 'priority'),
          takeSeqs(1) + 1)
        waitingAdd[2 * nWaiting + 2] = id
        nWaiting = nWaiting + 1
      end
      nRetry = nRetry + 1
      retrying[nRetry] = id
    else
      rcall('HSET', jk, 'state', 'failed', 'finished_at', nowS, 'failed_reason', ARGV[b + 4],
        'stacktrace', ARGV[b + 5], 'history', history, 'token', '', 'error_group', ARGV[b + 8])
      failedAdd[2 * nFailed + 1] = nowS
      failedAdd[2 * nFailed + 2] = id
      nFailed = nFailed + 1
      failed[nFailed] = id
      failedGroups[nFailed] = ARGV[b + 8]
      failedNames[nFailed] = rcall('HGET', jk, 'name')
      failedReasons[nFailed] = ARGV[b + 4]
    end
  end
  if kind == 'c' then b = b + 5 else b = b + 9 end
end
bulk('ZREM', activeKey, activeRem)
bulk('ZADD', completedKey, completedAdd)
bulk('ZADD', failedKey, failedAdd)
bulk('ZADD', delayedKey, delayedAdd)
bulk('ZADD', waitingKey, waitingAdd)
if nDone > 0 then
  rcall('HINCRBY', metaKey, 'completed_total', nDone)
end
if nFailed > 0 then
  rcall('HINCRBY', metaKey, 'failed_total', nFailed)
  joinGroups(failed, failedGroups, failedNames, failedReasons)
end
emit('completed', completed)
emit('retrying', retrying)
emit('failed', failed)

-- (2) Retention, bounded per call.
local m = redis.call('HMGET', metaKey, 'paused', 'keep_completed_count', 'keep_completed_age_ms',
  'keep_failed_count', 'keep_failed_age_ms')
applyRetention(1000, { m[2], m[3], m[4], m[5] })

-- (3) Delayed jobs that fell due become waiting. Most steps find none:
-- one look at the earliest decides.
local first = redis.call('ZRANGE', delayedKey, 0, 0, 'WITHSCORES')
if first[2] and tonumber(first[2]) <= now then
  local due = redis.call('ZRANGEBYSCORE', delayedKey, '-inf', nowS, 'LIMIT', 0, 1000)
  local seq = takeSeqs(#due)
  local adds, promoted = {}, {}
  for i = 1, #due do
    local id = due[i]
    local jk = jobPrefix .. id
    local priority = redis.call('HGET', jk, 'priority')
    if priority then
      redis.call('HSET', jk, 'state', 'waiting', 'run_at', '')
      adds[#adds + 1] = waitingScore(priority, seq + i)
      adds[#adds + 1] = id
      promoted[#promoted + 1] = id
    end
  end
  bulk('ZREM', delayedKey, due)
  bulk('ZADD', waitingKey, adds)
  emit('promoted', promoted)
  first = redis.call('ZRANGE', delayedKey, 0, 0, 'WITHSCORES')
end

-- (4) Claim, highest priority then oldest, unless paused.
local claimed = {}
if claim > 0 and m[1] ~= '1' then
  -- ZRANGE + ZREMRANGEBYRANK rather than ZPOPMIN: no scores to format.
  local popped = redis.call('ZRANGE', waitingKey, 0, claim - 1)
  if #popped > 0 then
    redis.call('ZREMRANGEBYRANK', waitingKey, 0, #popped - 1)
  end
  local deadline = num(now + leaseMs)
  local activeAdd, ids = { '+inf', ACTIVE_ANCHOR }, {}
  local c, n = 0, 0
  -- Reused for every job's record: no table per job.
  local parts = {}
  -- Attempts made as text to the text after it ('0' to '1'): one
  -- conversion per distinct count in the batch.
  local nextAttempt = {}
  for j = 1, #popped do
    local id = popped[j]
    local jk = jobPrefix .. id
    -- Fields in the order enqueue stores them: hash lookups scan.
    local f = rcall('HMGET', jk, 'attempts_made', 'history', 'stalled_count', 'created_at',
      'name', 'data', 'opts')
    if f[5] then
      -- Only a job with past attempts can carry an error.
      local reason, stack = false, false
      if f[2] ~= '[]' then
        local e = rcall('HMGET', jk, 'failed_reason', 'stacktrace')
        reason, stack = e[1], e[2]
        if reason and reason ~= '' then
          rcall('ZREM', retryingKey, id)
        end
      end
      local made = f[1] or '0'
      local attempts = nextAttempt[made]
      if not attempts then
        -- A small integer: tostring prints it exactly, faster than num().
        attempts = tostring((tonumber(made) or 0) + 1)
        nextAttempt[made] = attempts
      end
      n = n + 1
      ids[n] = id
      rcall('HSET', jk, 'token', tokenBase .. '.' .. id, 'attempts_made', attempts,
        'state', 'active', 'processed_at', nowS)
      activeAdd[2 * n + 1] = deadline
      activeAdd[2 * n + 2] = id
      -- One string per job (and the error apart): far cheaper to return
      -- and to parse than ten values. Only the name can hold a NUL (JSON
      -- cannot, ids and numbers do not), so it goes last.
      parts[1], parts[2], parts[3], parts[4], parts[5] = id, attempts, f[3] or '0', f[2] or '',
        f[4] or ''
      parts[6], parts[7], parts[8], parts[9] = stack or '', f[6] or '', f[7] or '', f[5]
      claimed[c + 1] = table.concat(parts, '\0')
      claimed[c + 2] = reason
      c = c + 2
    end
  end
  if n > 0 then
    bulk('ZADD', activeKey, activeAdd)
  end
  emit('active', ids)
end

-- (5) When the next delayed job falls due (looked up in step 3).
publish()
return { claimed, nowS, first[2] or '', stale }
