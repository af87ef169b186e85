-- Moves the oldest failed jobs back to waiting. ARGV[4] batch size.
-- Returns how many moved.

local batch = tonumber(ARGV[4])
local ids = redis.call('ZRANGE', failedKey, 0, batch - 1)
if #ids == 0 then
  return 0
end
local seq = takeSeqs(#ids)
local moved = {}
for i = 1, #ids do
  if redis.call('HGET', jobPrefix .. ids[i], 'state') == 'failed' then
    requeueFailed(ids[i], seq + i)
    moved[#moved + 1] = ids[i]
  else
    -- A member without its job record: drop it so the set drains.
    redis.call('ZREM', failedKey, ids[i])
  end
end
if #moved > 0 then
  redis.call('HINCRBY', metaKey, 'retried_total', #moved)
end
emit('retried', moved)
publish()
return #moved
