-- Fires schedules of one queue: put between common.lua and enqueue.lua,
-- so the jobs are written by the enqueue script itself, in the same atomic
-- step as the compare-and-sets below. KEYS[7..6+n]: the schedules'
-- hashes ('<p>:{<queue>}:schedule:<id>', under the target queue's hash
-- tag, so the whole script touches one cluster slot). ARGV[4]: n; then 5
-- per schedule: mode ('cas' for a tick, 'manual' for a run-now), the
-- expected next run and version, the new next run ('' for none), '1' when
-- it has a job; then 7 per job as enqueue.lua takes them, in order.
-- A schedule whose hash is gone, or (mode 'cas') whose next run or
-- version differs or that is paused, is left as it is and its job is not
-- enqueued: someone else fired or edited it first.
-- Answers {'none'} when no job is enqueued, otherwise enqueue's answer
-- for the jobs of the schedules that fired (the caller reads back the
-- others).

local fireCount = tonumber(ARGV[4])
local fireJobArg = 5 + fireCount * 5
local fireJobs = { ARGV[1], ARGV[2], ARGV[3], '0', '0' }
local fireWinners = 0
for i = 1, fireCount do
  local b = 5 + (i - 1) * 5
  local key = KEYS[6 + i]
  local mode, hasJob = ARGV[b], ARGV[b + 4] == '1'
  local jobAt = fireJobArg
  if hasJob then
    fireJobArg = fireJobArg + 7
  end
  local s = redis.call('HMGET', key, 'version', 'next', 'paused')
  if s[1] and (mode ~= 'cas' or (s[3] ~= '1' and s[2] == ARGV[b + 1] and s[1] == ARGV[b + 2])) then
    if mode == 'cas' then
      redis.call('HSET', key, 'next', ARGV[b + 3])
      if hasJob then
        redis.call('HINCRBY', key, 'runs', 1)
      end
    end
    if hasJob then
      redis.call('HSET', key, 'last_run', nowS, 'last_job', ARGV[jobAt])
      for k = 0, 6 do
        fireJobs[#fireJobs + 1] = ARGV[jobAt + k]
      end
      fireWinners = fireWinners + 1
    end
  end
end
if fireWinners == 0 then
  return { 'none' }
end
fireJobs[4] = tostring(fireWinners)
-- enqueue.lua follows and reads its arguments from here.
local ARGV = fireJobs
