-- Deletes a job that is not active. ARGV[4] job id.
-- Returns { 'ok' } or { 'missing' } or { 'active' }.

local id = ARGV[4]
local jk = jobPrefix .. id
local state = redis.call('HGET', jk, 'state')
if not state then
  return { 'missing' }
end
if state == 'active' then
  return { 'active' }
end
if state == 'failed' then
  leaveGroupsOf({ id })
end
redis.call('DEL', jk, logsPrefix .. id)
local setKey = ({
  waiting = waitingKey,
  active = activeKey,
  delayed = delayedKey,
  completed = completedKey,
  failed = failedKey,
})[state]
if setKey then
  redis.call('ZREM', setKey, id)
end
if state == 'waiting' or state == 'delayed' then
  redis.call('ZREM', retryingKey, id)
end
emit('removed', { id })
publish()
return { 'ok' }
