-- A queue's error groups (read only; see common.lua for the layout), the
-- most recently failed first. KEYS[1] the queue's groups ('<queue>:errors').
-- ARGV[1] the queue's key base ('<p>:{<q>}:'), ARGV[2] most groups.
-- Returns { how many groups, per group { id, failed jobs, HGETALL of its
-- hash } }.

local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local out = {}
for i = 1, #ids do
  local gk = ARGV[1] .. 'error:' .. ids[i]
  out[i] = { ids[i], redis.call('ZCARD', gk .. ':jobs'), redis.call('HGETALL', gk) }
end
return { redis.call('ZCARD', KEYS[1]), out }
