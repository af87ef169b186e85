-- One rate-limit decision, atomically (see ratelimit/redis.rs).
--
-- KEYS (one {policy|key} hash tag, so one slot):
--   1 log   sorted set of admitted requests, score = time (ms), member = seq
--   2 rej   sorted set of recent rejections (auto-block), same layout
--   3 state hash: seq (member counter), blocked_until (ms)
-- ARGV: 1 window ms, 2 capacity (limit + burst), 3 block_after (0 = none),
--       4 block period ms, 5 block time ms
-- Reply: {allowed 0/1, remaining, reset_after ms, retry_after ms (-1 = none),
--         blocked_until ms (-1 = none)}

local logKey, rejKey, stateKey = KEYS[1], KEYS[2], KEYS[3]
local window = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local blockAfter = tonumber(ARGV[3])
local blockPeriod = tonumber(ARGV[4])
local blockFor = tonumber(ARGV[5])

-- The server's clock, so every instance agrees whatever its own clock says.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZREMRANGEBYSCORE', logKey, '-inf', now - window)
local count = redis.call('ZCARD', logKey)

-- Time until the oldest admitted request leaves the window (0 when none).
local function resetAfter()
  local oldest = redis.call('ZRANGE', logKey, 0, 0, 'WITHSCORES')
  if oldest[2] == nil then return 0 end
  return tonumber(oldest[2]) + window - now
end

-- Keeps the state hash at least as long as anything it describes.
local function keepState(ttl)
  local current = redis.call('PTTL', stateKey)
  if current < ttl then redis.call('PEXPIRE', stateKey, ttl) end
end

local blockedUntil = tonumber(redis.call('HGET', stateKey, 'blocked_until') or '0')
if blockedUntil > now then
  return {0, math.max(capacity - count, 0), resetAfter(), blockedUntil - now, blockedUntil}
end

if count < capacity then
  local seq = redis.call('HINCRBY', stateKey, 'seq', 1)
  redis.call('ZADD', logKey, now, seq)
  redis.call('PEXPIRE', logKey, window)
  keepState(window)
  return {1, capacity - count - 1, resetAfter(), -1, -1}
end

local freeIn = math.max(resetAfter(), 1)
if blockAfter > 0 then
  redis.call('ZREMRANGEBYSCORE', rejKey, '-inf', now - blockPeriod)
  local seq = redis.call('HINCRBY', stateKey, 'seq', 1)
  redis.call('ZADD', rejKey, now, seq)
  redis.call('PEXPIRE', rejKey, blockPeriod)
  keepState(blockPeriod)
  if redis.call('ZCARD', rejKey) >= blockAfter then
    local untilMs = now + blockFor
    redis.call('HSET', stateKey, 'blocked_until', untilMs)
    redis.call('DEL', rejKey)
    keepState(blockFor)
    return {0, 0, freeIn, blockFor, untilMs}
  end
end
return {0, 0, freeIn, freeIn, -1}
