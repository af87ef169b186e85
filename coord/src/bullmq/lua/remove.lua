-- Deletes one job that no worker holds: its place in its state, its keys,
-- and its claim on a parent (a parent whose last pending child goes
-- becomes ready, as in BullMQ).
--
-- KEYS[1..8] as in common.lua, KEYS[9] completed, KEYS[10] failed,
-- KEYS[11] delayed, KEYS[12] waiting-children
-- ARGV[1] key base, ARGV[2] job id
-- Answers {1, previous state}, or {-1, ""} (no such job in any of the
-- queue's states), {-2, why}
-- (active or locked) or {-4, "waiting-children"} (children pending).
local base = ARGV[1]
local jobId = ARGV[2]
local jobKey = base .. jobId
if not sy_is_job(jobKey) then
  return {-1, ""}
end
if rcall("EXISTS", jobKey .. ":lock") == 1 then
  return {-2, "locked"}
end
if rcall("LPOS", KEYS[2], jobId) then
  return {-2, "active"}
end
if rcall("SCARD", jobKey .. ":dependencies") > 0 then
  return {-4, "waiting-children"}
end

local prev = "unknown"
local sets = {
  {KEYS[9], "completed"}, {KEYS[10], "failed"}, {KEYS[11], "delayed"},
  {KEYS[5], "prioritized"}, {KEYS[12], "waiting-children"},
}
for _, set in ipairs(sets) do
  if rcall("ZREM", set[1], jobId) == 1 then
    prev = set[2]
    break
  end
end
if prev == "unknown" then
  if rcall("LREM", KEYS[3], 1, jobId) == 1 then
    prev = "wait"
  elseif rcall("LREM", KEYS[4], 1, jobId) == 1 then
    prev = "paused"
  end
end
-- In none of the queue's states: not a job of this queue (nothing was
-- changed above, since every removal missed).
if prev == "unknown" then
  return {-1, ""}
end

-- The parent no longer waits for this child.
local parentKey = rcall("HGET", jobKey, "parentKey")
local parentJson = rcall("HGET", jobKey, "parent")
if parentKey and parentJson
  and rcall("SREM", parentKey .. ":dependencies", jobKey) == 1
  and rcall("SCARD", parentKey .. ":dependencies") == 0 then
  local ok, parent = pcall(cjson.decode, parentJson)
  if ok and type(parent) == "table" and type(parent["id"]) == "string"
    and type(parent["queueKey"]) == "string" then
    local pb = parent["queueKey"] .. ":"
    local pid = parent["id"]
    if rcall("ZREM", pb .. "waiting-children", pid) == 1 then
      local list, hold = sy_ready_list(pb .. "meta", pb .. "active", pb .. "wait", pb .. "paused")
      rcall("RPUSH", list, pid)
      sy_wake(pb .. "marker", hold)
      sy_emit(pb .. "events", pb .. "meta", "event", "waiting", "jobId", pid,
        "prev", "waiting-children")
    end
  end
end

sy_delete_job(base, jobId)
sy_emit(KEYS[8], KEYS[1], "event", "removed", "jobId", jobId, "prev", prev)
return {1, prev}
