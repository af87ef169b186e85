-- One page of a state's jobs, highest score first (read only), after
-- read_job.lua. KEYS[1] the state's sorted set. ARGV[1] job key prefix,
-- ARGV[2] offset, ARGV[3] limit, ARGV[4] clip (see read_job; 0: every
-- value whole), ARGV[5] 'asc' for lowest score first, 'list' when KEYS[1]
-- is a list of ids (the name index), read from its head. Scores of +inf
-- are not jobs (see common.lua).
-- Returns { total, flat 17-value job records: the id and read_job's 16 }.

local clip = tonumber(ARGV[4]) or 0
local ids
if ARGV[5] == 'list' then
  local from = tonumber(ARGV[2])
  ids = redis.call('LRANGE', KEYS[1], from, from + tonumber(ARGV[3]) - 1)
elseif ARGV[5] == 'asc' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(+inf', 'LIMIT', ARGV[2], ARGV[3])
else
  ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(+inf', '-inf', 'LIMIT', ARGV[2], ARGV[3])
end
local out = {}
for i = 1, #ids do
  local f = read_job(ARGV[1] .. ids[i], clip)
  if f then
    out[#out + 1] = ids[i]
    for j = 1, 16 do
      out[#out + 1] = f[j]
    end
  end
end
if ARGV[5] == 'list' then
  return { redis.call('LLEN', KEYS[1]), out }
end
return { redis.call('ZCOUNT', KEYS[1], '-inf', '(+inf'), out }
