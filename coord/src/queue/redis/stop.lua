-- An operator's Stop retrying: a job that failed and waits for another
-- attempt (waiting or delayed, with attempts made and a last error) goes
-- to the failed set now, in its error group, its options marked with when
-- (`retriesStoppedAt`, which the dashboard reads while it equals
-- `finished_at`). ARGV[4] job id, ARGV[5] the last error the caller read
-- (the group ARGV[6] was computed from it).
-- Returns { 'ok' }, { 'missing' }, { 'state', actual state },
-- { 'fresh' } (never failed: nothing to stop) or { 'changed' } (its
-- error changed since the caller read it: read again).

local id = ARGV[4]
local jk = jobPrefix .. id
local f = redis.call('HMGET', jk, 'state', 'attempts_made', 'failed_reason', 'opts', 'name')
if not f[1] then
  return { 'missing' }
end
if f[1] ~= 'waiting' and f[1] ~= 'delayed' then
  return { 'state', f[1] }
end
if (tonumber(f[2]) or 0) == 0 or not f[3] or f[3] == '' then
  return { 'fresh' }
end
if f[3] ~= ARGV[5] then
  return { 'changed' }
end
-- The options are the producer's JSON object: the mark replaces an
-- earlier one or opens the object (cjson would round large numbers).
local opts = f[4] or '{}'
local mark = '"retriesStoppedAt":' .. nowS
local marked, n = string.gsub(opts, '"retriesStoppedAt":%-?%d+', mark, 1)
if n == 0 then
  if string.match(opts, '^%s*{%s*}%s*$') then
    marked = '{' .. mark .. '}'
  else
    marked = string.gsub(opts, '^%s*{', '{' .. mark .. ',', 1)
  end
end
redis.call('ZREM', f[1] == 'waiting' and waitingKey or delayedKey, id)
redis.call('ZREM', retryingKey, id)
redis.call('HSET', jk, 'state', 'failed', 'finished_at', nowS, 'run_at', '', 'opts', marked,
  'error_group', ARGV[6])
redis.call('ZADD', failedKey, nowS, id)
redis.call('HINCRBY', metaKey, 'failed_total', 1)
joinGroups({ id }, { ARGV[6] }, { f[5] }, { f[3] })
emit('failed', { id })
publish()
return { 'ok' }
