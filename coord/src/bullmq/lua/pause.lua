-- Pauses or resumes a queue the way BullMQ's `queue.pause()` and
-- `queue.resume()` do: the meta field `paused` is the switch workers
-- check, ready jobs move between `wait` and `paused`, and the marker is
-- dropped on pause and set again on resume so sleeping workers wake.
--
-- KEYS[1..8] as in common.lua, KEYS[9] delayed
-- ARGV[1] "paused" or "resumed"
-- Returns 1, or 0 (and changes nothing) when the queue has no meta hash.

-- Moves every job of list `src` to list `dst`, behind the jobs `dst`
-- already holds (workers take from the right).
local function move_all(src, dst)
  if rcall("EXISTS", src) == 0 then
    return
  end
  if rcall("EXISTS", dst) == 0 then
    rcall("RENAME", src, dst)
    return
  end
  while rcall("LMOVE", src, dst, "RIGHT", "LEFT") do
  end
end

-- BullMQ writes a meta hash for every queue: without one there is no
-- such queue, and pausing must not make one up.
if rcall("EXISTS", KEYS[1]) == 0 then
  return 0
end

if ARGV[1] == "paused" then
  rcall("HSET", KEYS[1], "paused", 1)
  move_all(KEYS[3], KEYS[4])
  rcall("DEL", KEYS[7])
else
  rcall("HDEL", KEYS[1], "paused")
  move_all(KEYS[4], KEYS[3])
  if rcall("LLEN", KEYS[3]) > 0 or rcall("ZCARD", KEYS[5]) > 0 then
    rcall("ZADD", KEYS[7], 0, "0")
  else
    -- Only delayed jobs: wake workers when the first one is due
    -- (delayed scores are due time * 4096 + a sequence).
    local first = rcall("ZRANGE", KEYS[9], 0, 0, "WITHSCORES")
    local score = tonumber(first[2])
    if score then
      rcall("ZADD", KEYS[7], math.floor(score / 4096), "1")
    end
  end
end
sy_emit(KEYS[8], KEYS[1], "event", ARGV[1])
return 1
