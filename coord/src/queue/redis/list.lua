-- One page of a state's jobs, highest score first (read only).
-- KEYS[1] the state's sorted set. ARGV[1] job key prefix, ARGV[2] offset,
-- ARGV[3] limit. Scores of +inf are not jobs (see common.lua).
-- Returns { total, flat 16-field job records }.

local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(+inf', '-inf', 'LIMIT', ARGV[2], ARGV[3])
local out = {}
for i = 1, #ids do
  local id = ids[i]
  local f = redis.call('HMGET', ARGV[1] .. id, 'name', 'data', 'opts', 'state', 'attempts_made',
    'stalled_count', 'failed_reason', 'stacktrace', 'history', 'return_value', 'created_at',
    'processed_at', 'finished_at', 'run_at', 'token')
  if f[1] then
    out[#out + 1] = id
    for j = 1, 15 do
      out[#out + 1] = f[j]
    end
  end
end
return { redis.call('ZCOUNT', KEYS[1], '-inf', '(+inf'), out }
