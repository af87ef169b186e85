-- A job's progress and newest log lines, in one snapshot. KEYS[1] the
-- job's hash, KEYS[2] its log list; ARGV[1] how many lines (at least 1).
-- Returns {} for a missing job, else { progress or false, kept, dropped,
-- lines... }.

local f = redis.call('HMGET', KEYS[1], 'state', 'progress', 'logs_dropped')
if not f[1] then
  return {}
end
local out = { f[2], redis.call('LLEN', KEYS[2]), tonumber(f[3]) or 0 }
for _, line in ipairs(redis.call('LRANGE', KEYS[2], -tonumber(ARGV[1]), -1)) do
  out[#out + 1] = line
end
return out
