-- Prelude shared by every state-changing script of the Redis backend; it is
-- concatenated in front of each of them at compile time.
--
-- KEYS (all of one queue, so they share its {queue} hash tag and one slot):
--   1 meta hash, 2 waiting, 3 active, 4 delayed, 5 completed, 6 failed.
-- ARGV 1..3: job key prefix ("<p>:{<q>}:job:"), queue name, event channel.
-- Script-specific arguments start at ARGV[4].
--
-- Queue names and job ids are restricted to characters that need no JSON
-- escaping, which is why events are written with plain concatenation.

local metaKey = KEYS[1]
local waitingKey = KEYS[2]
local activeKey = KEYS[3]
local delayedKey = KEYS[4]
local completedKey = KEYS[5]
local failedKey = KEYS[6]
local jobPrefix = ARGV[1]
local queueName = ARGV[2]
local channel = ARGV[3]

-- A member kept in the active set with score +inf, never a job (ids cannot
-- hold '~'): longer than any listpack entry may be, it makes Redis keep
-- the set as a skip list, whose updates do not scan the whole set. The
-- active set changes by two members per job, and stays small, which is
-- where a listpack is slowest. Readers skip scores of +inf.
local ACTIVE_ANCHOR = string.rep('~', 130)

-- PRIORITY_SHIFT (2^40): priority * SHIFT + seq stays exact in a double.
local SHIFT = 1099511627776
-- Arguments per variadic call: below Lua's C stack limit, and even so that
-- score/member pairs are never split.
local CHUNK = 4000

-- The server's clock, so that every process sharing the queue agrees.
-- Reading it before writing needs effects replication, the default since
-- Redis 5.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- Integers as exact decimal text (Lua's default formatting would switch to
-- an exponent for large values).
local function num(n)
  return string.format('%.0f', n)
end
local nowS = num(now)

-- Runs a variadic command over a long argument list in bounded chunks.
-- `key` false means the arguments are the keys themselves (DEL).
local function bulk(cmd, key, args)
  local n = #args
  local i = 1
  while i <= n do
    local j = math.min(i + CHUNK - 1, n)
    if key then
      redis.call(cmd, key, unpack(args, i, j))
    else
      redis.call(cmd, unpack(args, i, j))
    end
    i = j + 1
  end
end

local events = {}

-- Queues one event for the ids; nothing for an empty list.
local function emit(kind, ids)
  if #ids > 0 then
    events[#events + 1] = '{"queue":"' .. queueName .. '","kind":"' .. kind ..
      '","jobIds":["' .. table.concat(ids, '","') .. '"],"at":' .. nowS .. '}'
  end
end

-- Queues a queue-wide event (pause, resume).
local function emitQueue(kind)
  events[#events + 1] = '{"queue":"' .. queueName .. '","kind":"' .. kind ..
    '","jobIds":[],"at":' .. nowS .. '}'
end

-- Sends every queued event as one message.
local function publish()
  if #events > 0 then
    redis.call('PUBLISH', channel, '[' .. table.concat(events, ',') .. ']')
  end
end

-- Reserves n sequence numbers; returns the one before the first.
local function takeSeqs(n)
  return redis.call('HINCRBY', metaKey, 'seq', n) - n
end

-- Sort score of a waiting job: priority first, then arrival.
local function waitingScore(priority, seq)
  return num((tonumber(priority) or 0) * SHIFT + seq)
end

-- Appends one JSON object to a JSON array kept as text, without decoding it.
local function appendHistory(history, record)
  if not history or history == '' or history == '[]' then
    return '[' .. record .. ']'
  end
  return string.sub(history, 1, -2) .. ',' .. record .. ']'
end

-- Deletes the oldest jobs of a finished set beyond its count or older than
-- its age, at most `budget`; appends their ids to `removed`.
local function trimSet(setKey, count, age, budget, removed)
  if budget <= 0 or (not count and not age) then
    return 0
  end
  local n = 0
  if count then
    local excess = redis.call('ZCARD', setKey) - count
    if excess > n then n = excess end
  end
  if age then
    local old = redis.call('ZCOUNT', setKey, '-inf', '(' .. num(now - age))
    if old > n then n = old end
  end
  if n > budget then n = budget end
  if n <= 0 then
    return 0
  end
  local ids = redis.call('ZRANGE', setKey, 0, n - 1)
  local keys = {}
  for i = 1, #ids do
    keys[i] = jobPrefix .. ids[i]
    removed[#removed + 1] = ids[i]
  end
  bulk('DEL', false, keys)
  redis.call('ZREMRANGEBYRANK', setKey, 0, n - 1)
  return #ids
end

-- Applies the retention settings (HMGET of keep_completed_count,
-- keep_completed_age_ms, keep_failed_count, keep_failed_age_ms) removing at
-- most `budget` jobs; returns how many went.
local function applyRetention(budget, s)
  if not (s[1] or s[2] or s[3] or s[4]) then
    return 0
  end
  local removed = {}
  local n = trimSet(completedKey, tonumber(s[1]), tonumber(s[2]), budget, removed)
  trimSet(failedKey, tonumber(s[3]), tonumber(s[4]), budget - n, removed)
  emit('removed', removed)
  return #removed
end

local function retentionSettings()
  return redis.call('HMGET', metaKey, 'keep_completed_count', 'keep_completed_age_ms',
    'keep_failed_count', 'keep_failed_age_ms')
end

-- Gives a failed job's record a fresh attempt budget, keeping its
-- history; the caller moves its id between the sets. Answers HSET's count
-- of fields it added (see retry_batch.lua), through `call` (redis.pcall
-- there) or redis.call.
local function resetFailed(jk, call)
  -- Emptied rather than deleted: fields keep their place in the hash. The
  -- token and run_at are empty already: every move out of active clears
  -- the token, and a job reaches active only with run_at cleared.
  return (call or redis.call)('HSET', jk, 'attempts_made', '0', 'state', 'waiting',
    'failed_reason', '', 'stacktrace', '[]', 'finished_at', '')
end

-- Puts a failed job back to waiting. The caller has checked it is failed.
local function requeueFailed(id, seq)
  local jk = jobPrefix .. id
  local priority = redis.call('HGET', jk, 'priority')
  redis.call('ZREM', failedKey, id)
  resetFailed(jk)
  redis.call('ZADD', waitingKey, waitingScore(priority, seq), id)
end

