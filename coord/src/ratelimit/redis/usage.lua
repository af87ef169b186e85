-- The usage index of one shard of one policy (see ratelimit/redis.rs),
-- read without scanning the keyspace.
--
-- KEYS (one {policy|shard} hash tag): 1 active, 2 used, 3 blocked, 4 minutes
-- ARGV: 1 candidates (top keys by their count at last admission),
--       2 blocked keys listed at most
-- Reply: {now ms, active keys, blocked keys, {key, count, ...} candidates,
--         {key, until, ...} blocked soonest-ending first,
--         {field, count, ...} per-minute counters}

local activeKey, usedKey, blockedKey, minutesKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local candidates = tonumber(ARGV[1])
local listed = tonumber(ARGV[2])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Whatever left its window since the last decision of the shard.
for _, old in ipairs(redis.call('ZRANGEBYSCORE', activeKey, '-inf', now)) do
  redis.call('ZREM', activeKey, old)
  redis.call('ZREM', usedKey, old)
end
redis.call('ZREMRANGEBYSCORE', blockedKey, '-inf', now)

local top = {}
if candidates > 0 then
  top = redis.call('ZREVRANGE', usedKey, 0, candidates - 1, 'WITHSCORES')
end
local blocked = {}
if listed > 0 then
  blocked = redis.call('ZRANGE', blockedKey, 0, listed - 1, 'WITHSCORES')
end
return {
  now,
  redis.call('ZCARD', activeKey),
  redis.call('ZCARD', blockedKey),
  top,
  blocked,
  redis.call('HGETALL', minutesKey),
}
