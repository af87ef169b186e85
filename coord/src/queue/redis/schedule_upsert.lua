-- Stores a schedule's definition (ARGV[1], JSON), paused flag (ARGV[2])
-- and next run (ARGV[3], '' for none), bumping its version and keeping
-- its runs, last run and last job. KEYS[1]: the schedule's hash.
redis.call('HSET', KEYS[1], 'def', ARGV[1], 'paused', ARGV[2], 'next', ARGV[3])
redis.call('HSETNX', KEYS[1], 'runs', '0')
return redis.call('HINCRBY', KEYS[1], 'version', 1)
