-- Books failed jobs written before error groups existed into their groups
-- (once per queue, in slices: see errors.rs). ARGV[4..] triples: job id,
-- the failure reason the caller read, the group it computed from it. A job
-- is booked only if it is still failed, still in no group and still has
-- that reason; its member score is when it failed (its finished_at), so
-- trends and first/last seen place it where it belongs.
-- Returns how many were booked.

local booked = 0
local byGroup, order = {}, {}
for i = 4, #ARGV, 3 do
  local id, reason, g = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local jk = jobPrefix .. id
  local f = redis.call('HMGET', jk, 'state', 'error_group', 'failed_reason', 'finished_at', 'name')
  if f[1] == 'failed' and (not f[2] or f[2] == '') and (f[3] or '') == reason then
    local at = f[4]
    if not at or at == '' then
      at = redis.call('ZSCORE', failedKey, id) or nowS
    end
    redis.call('HSET', jk, 'error_group', g)
    local e = byGroup[g]
    if not e then
      e = { members = {}, names = {}, first = at, last = at, sample = id, reason = reason }
      byGroup[g] = e
      order[#order + 1] = g
    end
    e.members[#e.members + 1] = at
    e.members[#e.members + 1] = id
    local name = f[5] or ''
    e.names[name] = (e.names[name] or 0) + 1
    if tonumber(at) < tonumber(e.first) then e.first = at end
    if tonumber(at) >= tonumber(e.last) then
      e.last, e.sample, e.reason = at, id, reason
    end
    booked = booked + 1
  end
end
for _, g in ipairs(order) do
  local e = byGroup[g]
  local gk = groupKey(g)
  bulk('ZADD', gk .. ':jobs', e.members)
  local seen = redis.call('HMGET', gk, 'first_seen', 'last_seen')
  if not seen[1] or tonumber(e.first) < tonumber(seen[1]) then
    redis.call('HSET', gk, 'first_seen', e.first)
  end
  if not seen[2] or tonumber(e.last) >= tonumber(seen[2]) then
    redis.call('HSET', gk, 'last_seen', e.last, 'sample_job', e.sample,
      'sample_reason', cutText(e.reason, SAMPLE_BYTES))
    redis.call('ZADD', errorsKey, e.last, g)
  end
  for name, n in pairs(e.names) do
    redis.call('HINCRBY', gk, 'n:' .. name, n)
  end
end
return booked
