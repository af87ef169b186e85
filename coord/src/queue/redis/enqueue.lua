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
  end
end
bulk('ZADD', waitingKey, waitingAdd)
bulk('ZADD', delayedKey, delayedAdd)
emit('enqueued', added)
publish()
return ids
