-- Recovers active jobs whose lease expired: back to waiting, or to failed
-- when stalled too often or out of attempts.
-- ARGV[4] max stalls allowed; ARGV[5], ARGV[6] the reason (and its error
-- group) of a job stalled too often, ARGV[7], ARGV[8] of one stalled with
-- no attempts left. Returns { requeued ids, failed ids }.

local maxStalled = tonumber(ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', activeKey, '-inf', '(' .. nowS, 'LIMIT', 0, 1000)
local requeued, failed, stalled = {}, {}, {}
local failedGroups, failedNames, failedReasons = {}, {}, {}
if #expired > 0 then
  local seq = takeSeqs(#expired)
  local waitingAdd, failedAdd = {}, {}
  for i = 1, #expired do
    local id = expired[i]
    local jk = jobPrefix .. id
    local f = redis.call('HMGET', jk, 'stalled_count', 'attempts_made', 'max_attempts',
      'priority', 'history', 'processed_at', 'name')
    if f[2] then
      local stalls = (tonumber(f[1]) or 0) + 1
      local attempts = tonumber(f[2]) or 0
      stalled[#stalled + 1] = id
      local reason, group = nil, nil
      if stalls > maxStalled then
        reason, group = ARGV[5], ARGV[6]
      elseif attempts >= (tonumber(f[3]) or 1) then
        reason, group = ARGV[7], ARGV[8]
      end
      if reason then
        local started = f[6]
        if not started or started == '' then started = nowS end
        local record = '{"attempt":' .. num(attempts) .. ',"startedAt":' .. started ..
          ',"finishedAt":' .. nowS .. ',"error":' .. cjson.encode(reason) .. ',"chain":[]}'
        redis.call('HSET', jk, 'state', 'failed', 'stalled_count', num(stalls),
          'finished_at', nowS, 'failed_reason', reason, 'stacktrace', '[]',
          'history', appendHistory(f[5], record), 'token', '', 'error_group', group)
        failedGroups[#failed + 1] = group
        failedNames[#failed + 1] = f[7]
        failedReasons[#failed + 1] = reason
        failedAdd[#failedAdd + 1] = nowS
        failedAdd[#failedAdd + 1] = id
        failed[#failed + 1] = id
      else
        redis.call('HSET', jk, 'state', 'waiting', 'stalled_count', num(stalls), 'token', '')
        waitingAdd[#waitingAdd + 1] = waitingScore(f[4], seq + i)
        waitingAdd[#waitingAdd + 1] = id
        requeued[#requeued + 1] = id
      end
    end
  end
  bulk('ZREM', activeKey, expired)
  bulk('ZADD', waitingKey, waitingAdd)
  bulk('ZADD', failedKey, failedAdd)
  if #stalled > 0 then
    redis.call('HINCRBY', metaKey, 'stalled_total', #stalled)
  end
  if #failed > 0 then
    redis.call('HINCRBY', metaKey, 'failed_total', #failed)
    joinGroups(failed, failedGroups, failedNames, failedReasons)
  end
  emit('stalled', stalled)
  emit('failed', failed)
  publish()
end
return { requeued, failed }
