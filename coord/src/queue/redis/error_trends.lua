-- Error groups' trends (read only): per group, its failed jobs in each
-- bucket (lower bound exclusive, upper inclusive, as coord::errors
-- buckets them). KEYS[1] the queue's groups (for the slot). ARGV[1] the
-- queue's key base, ARGV[2] the end of the last bucket (ms), ARGV[3] the
-- bucket width (ms), ARGV[4] buckets, ARGV[5..] group ids.
-- Returns the counts, group after group, oldest bucket first.

local stop = tonumber(ARGV[2])
local width = tonumber(ARGV[3])
local buckets = tonumber(ARGV[4])
local start = stop - width * buckets
local out = {}
for g = 5, #ARGV do
  local members = ARGV[1] .. 'error:' .. ARGV[g] .. ':jobs'
  for b = 0, buckets - 1 do
    out[#out + 1] = redis.call('ZCOUNT', members,
      string.format('(%.0f', start + b * width), string.format('%.0f', start + (b + 1) * width))
  end
end
return out
