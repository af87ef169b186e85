-- Moves one failed job back to waiting. ARGV[4] job id.
-- Returns { 'ok' } or { 'missing' } or { 'state', actual state }.

local id = ARGV[4]
local state = redis.call('HGET', jobPrefix .. id, 'state')
if not state then
  return { 'missing' }
end
if state ~= 'failed' then
  return { 'state', state }
end
requeueFailed(id, takeSeqs(1) + 1)
redis.call('HINCRBY', metaKey, 'retried_total', 1)
emit('retried', { id })
publish()
return { 'ok' }
