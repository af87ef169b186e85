-- Makes a delayed job runnable now. ARGV[4] job id.
-- Returns { 'ok' } or { 'missing' } or { 'state', actual state }.

local id = ARGV[4]
local jk = jobPrefix .. id
local f = redis.call('HMGET', jk, 'state', 'priority')
if not f[1] then
  return { 'missing' }
end
if f[1] ~= 'delayed' then
  return { 'state', f[1] }
end
redis.call('ZREM', delayedKey, id)
redis.call('HSET', jk, 'state', 'waiting', 'run_at', '')
redis.call('ZADD', waitingKey, waitingScore(f[2], takeSeqs(1) + 1), id)
emit('promoted', { id })
publish()
return { 'ok' }
