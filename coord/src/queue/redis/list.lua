-- One page of a state's jobs, highest score first (read only).
-- KEYS[1] the state's sorted set. ARGV[1] job key prefix, ARGV[2] offset,
-- ARGV[3] limit, ARGV[4] clip: values longer than this many bytes are cut
-- to it (on a UTF-8 character boundary), 0 for whole values. Scores of
-- +inf are not jobs (see common.lua).
-- Returns { total, flat 17-value job records: the id, 15 fields, and which
-- values were cut with their whole lengths ("data=1048576;history=20480",
-- or false) }.

local clip = tonumber(ARGV[4]) or 0
-- Fields that can be cut: index in the HMGET reply, name, and whether the
-- start of it is worth sending (a cut JSON array is not).
local clippable = {
  { 2, 'data', true }, { 7, 'failed_reason', true }, { 8, 'stacktrace', false },
  { 9, 'history', false }, { 10, 'return_value', true },
}

-- The first n bytes of v, backed off to a character boundary.
local function cut(v, n)
  while n > 0 do
    local b = string.byte(v, n + 1)
    if b == nil or b < 128 or b >= 192 then break end
    n = n - 1
  end
  return string.sub(v, 1, n)
end

local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(+inf', '-inf', 'LIMIT', ARGV[2], ARGV[3])
local out = {}
for i = 1, #ids do
  local id = ids[i]
  local f = redis.call('HMGET', ARGV[1] .. id, 'name', 'data', 'opts', 'state', 'attempts_made',
    'stalled_count', 'failed_reason', 'stacktrace', 'history', 'return_value', 'created_at',
    'processed_at', 'finished_at', 'run_at', 'token')
  if f[1] then
    local clipped = {}
    if clip > 0 then
      for _, c in ipairs(clippable) do
        local v = f[c[1]]
        if v and #v > clip then
          clipped[#clipped + 1] = c[2] .. '=' .. #v
          if c[3] then f[c[1]] = cut(v, clip) else f[c[1]] = '' end
        end
      end
    end
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
