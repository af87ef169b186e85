-- One page of a state's jobs, highest score first (read only).
-- KEYS[1] the state's sorted set. ARGV[1] job key prefix, ARGV[2] offset,
-- ARGV[3] limit, ARGV[4] clip: values longer than this many bytes are left
-- out (0: every value whole). Their length is read with HSTRLEN, so a
-- megabyte value is never copied, neither into the script nor onto the
-- wire. Scores of +inf are not jobs (see common.lua).
-- Returns { total, flat 17-value job records: the id, 15 fields, and which
-- values were left out with their whole lengths
-- ("data=1048576;history=20480", or false) }.

local clip = tonumber(ARGV[4]) or 0
local fields = { 'name', 'data', 'opts', 'state', 'attempts_made', 'stalled_count',
  'failed_reason', 'stacktrace', 'history', 'return_value', 'created_at', 'processed_at',
  'finished_at', 'run_at', 'token' }
-- The fields that can be long, by their index in `fields`.
local clippable = { 2, 7, 8, 9, 10 }

local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(+inf', '-inf', 'LIMIT', ARGV[2], ARGV[3])
local out = {}
for i = 1, #ids do
  local id = ids[i]
  local key = ARGV[1] .. id
  local clipped = {}
  local f
  if clip > 0 then
    local wanted = {}
    local skip = {}
    for _, j in ipairs(clippable) do
      local len = redis.call('HSTRLEN', key, fields[j])
      if len > clip then
        skip[j] = true
        clipped[#clipped + 1] = fields[j] .. '=' .. len
      end
    end
    for j = 1, #fields do
      if not skip[j] then wanted[#wanted + 1] = fields[j] end
    end
    local got = redis.call('HMGET', key, unpack(wanted))
    f = {}
    local k = 1
    for j = 1, #fields do
      if skip[j] then
        f[j] = ''
      else
        f[j] = got[k]
        k = k + 1
      end
    end
  else
    f = redis.call('HMGET', key, unpack(fields))
  end
  if f[1] then
    out[#out + 1] = id
    for j = 1, 15 do
      out[#out + 1] = f[j]
    end
    if #clipped > 0 then
      out[#out + 1] = table.concat(clipped, ';')
    else
      out[#out + 1] = false
    end
  end
end
return { redis.call('ZCOUNT', KEYS[1], '-inf', '(+inf'), out }
