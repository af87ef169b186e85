-- Adds a batch of jobs atomically.
-- ARGV[4]: number of jobs; ARGV[5]: the lowest id the generator may hand
-- out next, minus one (the caller's highest generated id: after Redis lost
-- its data, ids never start over below what this caller already handed
-- out); then 7 per job: id ('' = generate), name, data JSON, options JSON,
-- priority, delay ms, attempts.
-- Returns '1' when the queue had no meta hash before (new, or its data was
-- lost: the caller registers it again and restores its settings) or '0',
-- then the ids in input order; an existing id is kept as it is.
-- Fields are stored hottest first and pre-created empty: a small hash is a
-- list that every field lookup scans from the front.

local count = tonumber(ARGV[4])
local idFloor = tonumber(ARGV[5]) or 0
local FIELDS = 7
local FIRST = 6
local queueIsNew = redis.call('EXISTS', metaKey) == 0
if queueIsNew then
  -- Every failure of a queue made now joins its error group as it fails:
  -- nothing from before error groups to book (see errors.rs, backfill).
  redis.call('HSET', metaKey, 'groups_backfilled', '1')
end
if idFloor > 0 and (tonumber(redis.call('HGET', metaKey, 'id')) or 0) < idFloor then
  redis.call('HSET', metaKey, 'id', num(idFloor))
end

-- Reserve generated ids and waiting sequence numbers in one call each.
local generate = 0
for i = 0, count - 1 do
  if ARGV[FIRST + i * FIELDS] == '' then generate = generate + 1 end
end
local nextId = 0
if generate > 0 then
  nextId = redis.call('HINCRBY', metaKey, 'id', generate) - generate
end
local lastId = nextId + generate
local seq = takeSeqs(count)

local ids = { queueIsNew and '1' or '0' }
local added = {}
-- Per name, the ids of its new jobs, for the name index.
local byName, names = {}, {}
local waitingAdd = {}
local delayedAdd = {}
for i = 0, count - 1 do
  local b = FIRST + i * FIELDS
  local id = ARGV[b]
  local fresh = true
  if id == '' then
    -- A caller-given id may already hold a number: skip past it.
    repeat
      nextId = nextId + 1
      if nextId > lastId then
        lastId = redis.call('HINCRBY', metaKey, 'id', 1)
        nextId = lastId
      end
      id = num(nextId)
    until redis.call('EXISTS', jobPrefix .. id) == 0
  elseif redis.call('EXISTS', jobPrefix .. id) == 1 then
    fresh = false
  end
  ids[#ids + 1] = id
  if fresh then
    local jk = jobPrefix .. id
    local priority = ARGV[b + 4]
    local delay = tonumber(ARGV[b + 5]) or 0
    if delay > 0 then
      local runAt = num(now + delay)
      redis.call('HSET', jk, 'token', '', 'attempts_made', '0', 'history', '[]', 'state', 'delayed',
        'stalled_count', '0', 'created_at', nowS, 'name', ARGV[b + 1], 'data', ARGV[b + 2],
        'opts', ARGV[b + 3], 'failed_reason', '', 'stacktrace', '[]', 'processed_at', '',
        'priority', priority, 'max_attempts', ARGV[b + 6], 'run_at', runAt)
      delayedAdd[#delayedAdd + 1] = runAt
      delayedAdd[#delayedAdd + 1] = id
    else
      seq = seq + 1
      redis.call('HSET', jk, 'token', '', 'attempts_made', '0', 'history', '[]', 'state', 'waiting',
        'stalled_count', '0', 'created_at', nowS, 'name', ARGV[b + 1], 'data', ARGV[b + 2],
        'opts', ARGV[b + 3], 'failed_reason', '', 'stacktrace', '[]', 'processed_at', '',
        'priority', priority, 'max_attempts', ARGV[b + 6])
      waitingAdd[#waitingAdd + 1] = waitingScore(priority, seq)
      waitingAdd[#waitingAdd + 1] = id
    end
    added[#added + 1] = id
    local name = ARGV[b + 1]
    local e = byName[name]
    if not e then
      e = {}
      byName[name] = e
      names[#names + 1] = name
    end
    e[#e + 1] = id
  end
end
-- The name index (see common.lua): one call per name in the batch, the
-- ids pushed at the head of the name's list (O(1), unlike a sorted set's
-- insert, which cost single enqueues a fifth of their rate). The length
-- the push returns decides the rest, per name: equal to what was pushed,
-- the list is new and the name joins the names; past NAME_JOBS + 64, the
-- list is trimmed back; crossing a multiple of 64, the name's place by
-- last use is renewed. So a list holds at most NAME_JOBS + 64 ids however
-- the queue's names interleave.
for _, name in ipairs(names) do
  local nk = queueBase .. 'name:' .. name
  local pushed = byName[name]
  local len = 0
  for from = 1, #pushed, CHUNK do
    len = redis.call('LPUSH', nk, unpack(pushed, from, math.min(from + CHUNK - 1, #pushed)))
  end
  if len > NAME_JOBS + 64 then
    redis.call('LTRIM', nk, 0, NAME_JOBS - 1)
  end
  local fresh = len == #pushed
  local renew = math.floor((len - #pushed) / 64) ~= math.floor(len / 64)
  if (fresh or renew) and redis.call('ZADD', namesKey, now, name) == 1
    and redis.call('ZCARD', namesKey) > NAMES then
    for _, old in ipairs(redis.call('ZRANGE', namesKey, 0, -(NAMES + 1))) do
      redis.call('UNLINK', queueBase .. 'name:' .. old)
    end
    redis.call('ZREMRANGEBYRANK', namesKey, 0, -(NAMES + 1))
  end
end
bulk('ZADD', waitingKey, waitingAdd)
bulk('ZADD', delayedKey, delayedAdd)
emit('enqueued', added)
publish()
return ids
