-- Pushes lease deadlines of jobs still held under their token.
-- ARGV[4] lease ms; then pairs of job id, lease token.
-- Returns the ids whose lease was lost.

local deadline = num(now + tonumber(ARGV[4]))
local lost = {}
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  local f = redis.call('HMGET', jobPrefix .. id, 'token', 'state')
  if f[1] == ARGV[i + 1] and f[2] == 'active' then
    redis.call('ZADD', activeKey, 'XX', deadline, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
