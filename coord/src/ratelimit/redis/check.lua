-- One rate-limit decision, atomically (see ratelimit/redis.rs).
--
-- KEYS (one {policy|shard} hash tag, so one slot):
--   1 log      sorted set of the key's admitted requests, score = time (ms),
--              member = seq
--   2 rej      sorted set of the key's recent rejections (auto-block)
--   3 state    hash: seq (member counter), blocked_until (ms)
--   4 active   shard index: key -> when its newest admission leaves the window
--   5 used     shard index: key -> requests in its window at its last admission
--   6 blocked  shard index: key -> end of its block (ms)
--   7 minutes  shard counters: a:<minute> allowed, r:<minute> rejected
-- ARGV: 1 window ms, 2 capacity (limit + burst), 3 block_after (0 = none),
--       4 block period ms, 5 block time ms, 6 the rate key (index member)
-- Reply: {allowed 0/1, remaining, reset_after ms, retry_after ms (-1 = none),
--         blocked_until ms (-1 = none), now ms (server clock)}

local logKey, rejKey, stateKey = KEYS[1], KEYS[2], KEYS[3]
local activeKey, usedKey, blockedKey, minutesKey = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local window = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local blockAfter = tonumber(ARGV[3])
local blockPeriod = tonumber(ARGV[4])
local blockFor = tonumber(ARGV[5])
local member = ARGV[6]

-- The server's clock, so every instance agrees whatever its own clock says.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local minute = math.floor(now / 60000)

-- Keeps a key at least `ttl` ms longer.
local function keep(key, ttl)
  local current = redis.call('PTTL', key)
  if current < ttl then redis.call('PEXPIRE', key, ttl) end
end

-- Per-minute counters of the shard, an hour deep. A new minute's first
-- count also drops the minutes older than an hour, so the hash stays small.
local function countMinute(kind)
  if redis.call('HINCRBY', minutesKey, kind .. minute, 1) == 1 then
    for _, field in ipairs(redis.call('HKEYS', minutesKey)) do
      local m = tonumber(string.sub(field, 3))
      if m == nil or m < minute - 60 then redis.call('HDEL', minutesKey, field) end
    end
  end
  keep(minutesKey, 3660000)
end

-- A few index entries whose window has passed go at every decision, so
-- the index tracks the active keys even when nobody reads it.
local stale = redis.call('ZRANGEBYSCORE', activeKey, '-inf', now, 'LIMIT', 0, 4)
for _, old in ipairs(stale) do
  redis.call('ZREM', activeKey, old)
  redis.call('ZREM', usedKey, old)
end

redis.call('ZREMRANGEBYSCORE', logKey, '-inf', now - window)
local count = redis.call('ZCARD', logKey)

-- Time until the oldest admitted request leaves the window (0 when none).
local function resetAfter()
  local oldest = redis.call('ZRANGE', logKey, 0, 0, 'WITHSCORES')
  if oldest[2] == nil then return 0 end
  return tonumber(oldest[2]) + window - now
end

local blockedUntil = tonumber(redis.call('HGET', stateKey, 'blocked_until') or '0')
if blockedUntil > now then
  countMinute('r:')
  return {0, math.max(capacity - count, 0), resetAfter(), blockedUntil - now, blockedUntil, now}
end
if blockedUntil > 0 then
  redis.call('HDEL', stateKey, 'blocked_until')
  redis.call('ZREM', blockedKey, member)
end

if count < capacity then
  local seq = redis.call('HINCRBY', stateKey, 'seq', 1)
  redis.call('ZADD', logKey, now, seq)
  redis.call('PEXPIRE', logKey, window)
  keep(stateKey, window)
  redis.call('ZADD', activeKey, now + window, member)
  redis.call('ZADD', usedKey, count + 1, member)
  redis.call('PEXPIRE', activeKey, window)
  redis.call('PEXPIRE', usedKey, window)
  countMinute('a:')
  return {1, capacity - count - 1, resetAfter(), -1, -1, now}
end

countMinute('r:')
local freeIn = math.max(resetAfter(), 1)
if blockAfter > 0 then
  redis.call('ZREMRANGEBYSCORE', rejKey, '-inf', now - blockPeriod)
  local seq = redis.call('HINCRBY', stateKey, 'seq', 1)
  redis.call('ZADD', rejKey, now, seq)
  redis.call('PEXPIRE', rejKey, blockPeriod)
  keep(stateKey, blockPeriod)
  if redis.call('ZCARD', rejKey) >= blockAfter then
    local untilMs = now + blockFor
    redis.call('HSET', stateKey, 'blocked_until', untilMs)
    redis.call('DEL', rejKey)
    keep(stateKey, blockFor)
    redis.call('ZADD', blockedKey, untilMs, member)
    keep(blockedKey, blockFor)
    return {0, 0, freeIn, blockFor, untilMs, now}
  end
end
return {0, 0, freeIn, freeIn, -1, now}
