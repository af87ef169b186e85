-- Retries or removes the oldest failed jobs of one error group.
-- ARGV[4] group id, ARGV[5] 'retry' or 'remove', ARGV[6] batch size.
-- Returns how many jobs it retried or removed.

local group = ARGV[4]
local retry = ARGV[5] == 'retry'
local ids = redis.call('ZRANGE', groupKey(group) .. ':jobs', 0, tonumber(ARGV[6]) - 1)
if #ids == 0 then
  return 0
end
local seq = 0
if retry then
  seq = takeSeqs(#ids)
end
local moved, scored = {}, {}
local fields, rows = {}, {}
for i = 1, #ids do
  fields[i] = redis.call('HMGET', jobPrefix .. ids[i], 'state', 'priority', 'name')
  -- Membership goes whatever the record says: a member that is not failed
  -- (its record removed or changed by hand) must not stay in the group.
  rows[3 * i - 2], rows[3 * i - 1], rows[3 * i] = ids[i], group, fields[i][3]
end
leaveGroups(rows, 3, 1, 2)
for i = 1, #ids do
  local id = ids[i]
  local jk = jobPrefix .. id
  local f = fields[i]
  if f[1] == 'failed' then
    redis.call('ZREM', failedKey, id)
    if retry then
      resetFailed(jk)
      scored[#scored + 1] = waitingScore(f[2], seq + i)
      scored[#scored + 1] = id
    else
      redis.call('DEL', jk, logsPrefix .. id)
    end
    moved[#moved + 1] = id
  end
end
if retry then
  bulk('ZADD', waitingKey, scored)
  if #moved > 0 then
    redis.call('HINCRBY', metaKey, 'retried_total', #moved)
  end
  emit('retried', moved)
else
  emit('removed', moved)
end
publish()
return #moved
