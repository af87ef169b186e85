-- Sets the progress of a job held under a lease. KEYS[1] the job's hash;
-- ARGV[1] lease token, ARGV[2] the progress as JSON. Returns 1, or 0 when
-- the job is not held under the token.

if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
