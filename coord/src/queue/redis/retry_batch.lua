-- Moves the oldest failed jobs back to waiting. ARGV[4] batch size.
-- Returns how many moved.
--
-- Each job leaves its error group (common.lua: leaveGroups, per group).
--
-- A retry of 100,000 jobs must not be slower than BullMQ's own retryJobs
-- (docs/PERFORMANCE.md), and every argument of a Redis call costs: one
-- SORT reads the batch's ids with each job's priority (its GET pattern is
-- built from the queue's job prefix, which may not hold a '*', so it stays
-- in the queue's slot), a job then costs one HSET, the batch leaves the
-- failed set by rank and enters waiting with one ZADD per chunk.
--
-- Redis Cluster before 7.4 refuses SORT's GET option altogether; there the
-- batch reads each job's priority with its own HGET instead.

local batch = tonumber(ARGV[4])
local rows = redis.pcall('SORT', failedKey, 'BY', 'nosort', 'LIMIT', 0, batch, 'GET', '#',
  'GET', jobPrefix .. '*->priority', 'GET', jobPrefix .. '*->error_group',
  'GET', jobPrefix .. '*->name')
if rows.err then
  rows = {}
  for _, id in ipairs(redis.call('ZRANGE', failedKey, 0, batch - 1)) do
    rows[#rows + 1] = id
    local f = redis.pcall('HMGET', jobPrefix .. id, 'priority', 'error_group', 'name')
    if f.err then
      -- Keep the row's width: a key that is no hash has no fields.
      f = { false, false, false }
    end
    rows[#rows + 1] = f[1]
    rows[#rows + 1] = f[2]
    rows[#rows + 1] = f[3]
  end
end
if #rows == 0 then
  return 0
end
local WIDTH = 4
local examined = #rows / WIDTH
local seq = takeSeqs(examined)
local pcallRedis = redis.pcall
local moved, scored = {}, {}
local n = 0
-- Out of their error groups first, per group, while the records exist.
leaveGroups(rows, WIDTH, 2, 3)
for i = 1, #rows, WIDTH do
  local id = rows[i]
  local jk = jobPrefix .. id
  -- Membership of the failed set is kept in the same scripts as a job's
  -- state, so only a record removed by hand can be missing: then HSET
  -- made a new hash of just these fields (it counts them all as added),
  -- which goes again. A failed job has them all (0 added; an older record
  -- lacking some, such as error_group, still counts as a job); a key that is no hash
  -- answers an error table and is only dropped from the set.
  local added = resetFailed(jk, pcallRedis)
  if added == 0 or (added ~= RESET_FIELDS and type(added) == 'number') then
    n = n + 1
    moved[n] = id
    -- A number, not text: ZADD reads Redis's exact rendering of it.
    scored[2 * n - 1] = (tonumber(rows[i + 1]) or 0) * SHIFT + seq + (i + WIDTH - 1) / WIDTH
    scored[2 * n] = id
  elseif added == RESET_FIELDS then
    redis.call('DEL', jk, logsPrefix .. id)
  end
end
-- The rows are the set's first by rank, and nothing else ran meanwhile.
redis.call('ZREMRANGEBYRANK', failedKey, 0, examined - 1)
if n > 0 then
  bulk('ZADD', waitingKey, scored)
  redis.call('HINCRBY', metaKey, 'retried_total', n)
end
emit('retried', moved)
publish()
return n
