-- Appends lines to the log of a job held under a lease, dropping the
-- oldest beyond the caps and counting them (coord::queue::report).
-- KEYS[1] the job's hash, KEYS[2] its log list (same slot: the job key
-- plus ':logs'). ARGV[1] lease token, ARGV[2] most lines, ARGV[3] most
-- bytes, ARGV[4..] the lines. Returns 1, or 0 when the job is not held
-- under the token (every move out of active clears it).

local f = redis.call('HMGET', KEYS[1], 'token', 'log_bytes')
if f[1] ~= ARGV[1] then
  return 0
end
local maxLines = tonumber(ARGV[2])
local maxBytes = tonumber(ARGV[3])
local bytes = tonumber(f[2]) or 0
local lines = {}
for i = 4, #ARGV do
  lines[#lines + 1] = ARGV[i]
  bytes = bytes + #ARGV[i]
end
local kept = redis.call('RPUSH', KEYS[2], unpack(lines))
local dropped = 0
while kept > maxLines or bytes > maxBytes do
  local old = redis.call('LPOP', KEYS[2])
  if not old then
    break
  end
  kept = kept - 1
  bytes = bytes - #old
  dropped = dropped + 1
end
redis.call('HSET', KEYS[1], 'log_bytes', bytes)
if dropped > 0 then
  redis.call('HINCRBY', KEYS[1], 'logs_dropped', dropped)
end
return 1
