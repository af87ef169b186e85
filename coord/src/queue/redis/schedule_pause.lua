-- Pauses (ARGV[1] '1') or resumes ('0') a schedule, setting its next run
-- (ARGV[2], '' for none) and bumping its version so that a fire planned
-- before is refused. KEYS[1]: the schedule's hash. Answers 0 when it does
-- not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'paused', ARGV[1], 'next', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
