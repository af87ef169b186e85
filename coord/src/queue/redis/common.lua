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
-- A job's log list: '<p>:{<q>}:logs:<id>' beside its '<p>:{<q>}:job:<id>',
-- a prefix no job key has (an id may hold ':').
local logsPrefix = string.sub(jobPrefix, 1, -5) .. 'logs:'
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

-- Error groups (coord::errors). A failed job whose failure carried a group
-- id (its `error_group` field) is a member of the sorted set
-- '<queue>:error:<group>:jobs', scored by when it failed; the hash
-- '<queue>:error:<group>' holds first_seen, last_seen, sample_job,
-- sample_reason and, per job name, 'n:<name>' with its count; '<queue>:errors'
-- holds the groups scored by last_seen. Every script that moves a job into
-- or out of the failed set calls joinGroups or leaveGroups, so the groups
-- are read without looking at a job. All keys share the queue's hash tag.
local queueBase = string.sub(jobPrefix, 1, -5)
local errorsKey = queueBase .. 'errors'
-- Jobs that failed and will run again (waiting or delayed after a
-- failure), scored by when: 0 for waiting, the run time for delayed. A job
-- leaves it when claimed or removed.
local retryingKey = queueBase .. 'retrying'
local SAMPLE_BYTES = 1024

-- The name index (coord::search): the list '<queue>:name:<name>' holds the
-- newest NAME_JOBS ids enqueued under a name, newest first (up to 64
-- more between trims); '<queue>:names' the newest NAMES names, scored by
-- their last enqueue (a dropped name's list goes with it). Written by enqueue alone: an id whose job is gone, or
-- that a later job with another name took, is told apart by whoever reads
-- it (the job read back, its name checked), so no deleting script pays
-- for it, and the trims bound its memory. Keep in step with
-- coord::queue::redis::search.
local namesKey = queueBase .. 'names'
local NAME_JOBS = 5000
local NAMES = 50

local function groupKey(group)
  return queueBase .. 'error:' .. group
end

-- The first n bytes of s, shortened to end on a whole UTF-8 character.
local function cutText(s, n)
  if #s <= n then
    return s
  end
  local b = string.byte(s, n + 1)
  while n > 0 and b >= 128 and b < 192 do
    n = n - 1
    b = string.byte(s, n + 1)
  end
  return string.sub(s, 1, n)
end

-- Books jobs failed now into their groups: ids[i] (named names[i]) into
-- groups[i] with reasons[i]. Work per group rather than per job (one ZADD
-- of all its jobs, one HSET, one HINCRBY per name): the failures of one
-- step mostly share a few groups.
local function joinGroups(ids, groups, names, reasons)
  local byGroup, order = {}, {}
  for i = 1, #ids do
    local g = groups[i]
    local e = byGroup[g]
    if not e then
      e = { members = {}, names = {}, last = i }
      byGroup[g] = e
      order[#order + 1] = g
    end
    e.members[#e.members + 1] = nowS
    e.members[#e.members + 1] = ids[i]
    local name = names[i] or ''
    e.names[name] = (e.names[name] or 0) + 1
    e.last = i
  end
  for _, g in ipairs(order) do
    local e = byGroup[g]
    local gk = groupKey(g)
    bulk('ZADD', gk .. ':jobs', e.members)
    redis.call('HSETNX', gk, 'first_seen', nowS)
    redis.call('HSET', gk, 'last_seen', nowS, 'sample_job', ids[e.last],
      'sample_reason', cutText(reasons[e.last], SAMPLE_BYTES))
    for name, n in pairs(e.names) do
      redis.call('HINCRBY', gk, 'n:' .. name, n)
    end
    redis.call('ZADD', errorsKey, nowS, g)
  end
end

-- Books jobs out of their groups, given as a flat list of records of
-- `width` values: the job's id first, its group (false or '' for none) at
-- offset `g`, its name at offset `n` (as retry_batch's SORT returns them).
-- Call it while the records still exist. Work per group, as joinGroups:
-- one ZREM of its jobs, one HINCRBY per name; the job's error_group field
-- names its group only while it is a member (the scripts write both
-- together), so there is no per-job membership check. A group goes with
-- its last job; a sample that left is replaced by the newest remaining job.
local function leaveGroups(rows, width, g, n)
  local byGroup, order = {}, {}
  for i = 1, #rows, width do
    local group = rows[i + g]
    if group and group ~= '' then
      local e = byGroup[group]
      if not e then
        e = { members = {}, names = {} }
        byGroup[group] = e
        order[#order + 1] = group
      end
      e.members[#e.members + 1] = rows[i]
      local name = rows[i + n] or ''
      e.names[name] = (e.names[name] or 0) + 1
    end
  end
  for _, group in ipairs(order) do
    local e = byGroup[group]
    local gk = groupKey(group)
    local members = gk .. ':jobs'
    bulk('ZREM', members, e.members)
    if redis.call('ZCARD', members) == 0 then
      redis.call('DEL', gk)
      redis.call('ZREM', errorsKey, group)
    else
      for name, k in pairs(e.names) do
        local field = 'n:' .. name
        if redis.call('HINCRBY', gk, field, -k) <= 0 then
          redis.call('HDEL', gk, field)
        end
      end
      local sample = redis.call('HGET', gk, 'sample_job')
      if sample and not redis.call('ZSCORE', members, sample) then
        local newest = redis.call('ZREVRANGE', members, 0, 0)[1]
        local reason = redis.call('HGET', jobPrefix .. newest, 'failed_reason')
        redis.call('HSET', gk, 'sample_job', newest,
          'sample_reason', cutText(reason or '', SAMPLE_BYTES))
      end
    end
  end
end

-- leaveGroups for jobs known by id only.
local function leaveGroupsOf(ids)
  local rows = {}
  for i = 1, #ids do
    local f = redis.call('HMGET', jobPrefix .. ids[i], 'error_group', 'name')
    rows[3 * i - 2], rows[3 * i - 1], rows[3 * i] = ids[i], f[1], f[2]
  end
  leaveGroups(rows, 3, 1, 2)
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
  if setKey == failedKey then
    leaveGroupsOf(ids)
  end
  -- A job's log list goes with it (most jobs have none: deleting a
  -- missing key is one lookup).
  for i = 1, #ids do
    keys[2 * i - 1] = jobPrefix .. ids[i]
    keys[2 * i] = logsPrefix .. ids[i]
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

-- Fields resetFailed writes: a record it had to create from nothing (a
-- job hash deleted by hand) answers this many added.
local RESET_FIELDS = 6

-- Gives a failed job's record a fresh attempt budget, keeping its
-- history; the caller moves its id between the sets and out of its error
-- group. Answers HSET's count of fields it added (see retry_batch.lua),
-- through `call` (redis.pcall there) or redis.call.
local function resetFailed(jk, call)
  -- Emptied rather than deleted: fields keep their place in the hash. The
  -- token and run_at are empty already: every move out of active clears
  -- the token, and a job reaches active only with run_at cleared.
  return (call or redis.call)('HSET', jk, 'attempts_made', '0', 'state', 'waiting',
    'failed_reason', '', 'stacktrace', '[]', 'finished_at', '', 'error_group', '')
end

-- Puts a failed job back to waiting. The caller has checked it is failed.
local function requeueFailed(id, seq)
  local jk = jobPrefix .. id
  local f = redis.call('HMGET', jk, 'priority', 'error_group', 'name')
  leaveGroups({ id, f[2], f[3] }, 3, 1, 2)
  local priority = f[1]
  redis.call('ZREM', failedKey, id)
  resetFailed(jk)
  redis.call('ZADD', waitingKey, waitingScore(priority, seq), id)
end

