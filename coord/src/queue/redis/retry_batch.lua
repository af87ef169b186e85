-- Moves the oldest failed jobs back to waiting. ARGV[4] batch size.
-- Returns how many moved.
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
  'GET', jobPrefix .. '*->priority')
if rows.err then
  rows = {}
  for _, id in ipairs(redis.call('ZRANGE', failedKey, 0, batch - 1)) do
    rows[#rows + 1] = id
    local priority = redis.pcall('HGET', jobPrefix .. id, 'priority')
    rows[#rows + 1] = type(priority) == 'string' and priority
  end
end
if #rows == 0 then
  return 0
end
local examined = #rows / 2
local seq = takeSeqs(examined)
local pcallRedis = redis.pcall
local moved, scored = {}, {}
local n = 0
for i = 1, #rows, 2 do
  local id = rows[i]
  local jk = jobPrefix .. id
  -- Membership of the failed set is kept in the same scripts as a job's
  -- state, so only a record removed by hand can be missing: then HSET
  -- made a new hash of just these fields (it counts them all as added),
  -- which goes again. A failed job has all five (0 added; fewer than five
  -- from an older record still counts as a job); a key that is no hash
  -- answers an error table and is only dropped from the set.
  local added = resetFailed(jk, pcallRedis)
  if added == 0 or (added ~= 5 and type(added) == 'number') then
    n = n + 1
    moved[n] = id
    -- A number, not text: ZADD reads Redis's exact rendering of it.
    scored[2 * n - 1] = (tonumber(rows[i + 1]) or 0) * SHIFT + seq + (i + 1) / 2
    scored[2 * n] = id
  elseif added == 5 then
    redis.call('DEL', jk)
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
