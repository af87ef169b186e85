-- One page of a queue's job schedulers and legacy repeatables, soonest
-- next run first, read in one call so the page cannot mix two versions of
-- an entry (the entry, its hash and its current iteration's job are all
-- read at once).
--
-- Both kinds share the `repeat` sorted set (member = id or key, score =
-- next run in ms) and a hash `repeat:<key>` beside it. A v5 job scheduler's
-- hash holds the `ic` iteration count, which BullMQ itself uses to tell
-- the kinds apart, and its template (`data`, `opts`; `{}` is not stored).
-- A legacy repeatable's hash holds only its schedule: its template lives in
-- its current iteration's job, `repeat:<key>:<next>`.
--
-- KEYS[1] repeat
-- ARGV[1] key base, ARGV[2] offset, ARGV[3] most entries,
-- ARGV[4] most bytes of a template's data or opts returned
-- Answers {total, {entry...}}, each entry {key, next, kind, fields, data,
-- data bytes, opts, opts bytes}: `fields` the hash's flat field/value
-- pairs less data and opts, data and opts cut to ARGV[4] bytes (false when
-- there is no template to read).
local base = ARGV[1]
local first = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local clip = tonumber(ARGV[4])

local function cut(value)
  if not value then
    return false, 0
  end
  return string.sub(value, 1, clip), #value
end

local total = rcall("ZCARD", KEYS[1])
local page = {}
if count <= 0 then
  return {total, page}
end
local members = rcall("ZRANGE", KEYS[1], first, first + count - 1, "WITHSCORES")
for i = 1, #members, 2 do
  local key = members[i]
  local next = members[i + 1]
  local hashKey = KEYS[1] .. ":" .. key
  local flat = rcall("HGETALL", hashKey)
  local fields = {}
  local hash = {}
  for j = 1, #flat, 2 do
    hash[flat[j]] = flat[j + 1]
    if flat[j] ~= "data" and flat[j] ~= "opts" then
      fields[#fields + 1] = flat[j]
      fields[#fields + 1] = flat[j + 1]
    end
  end
  local kind, data, opts
  local jobKey = base .. "repeat:" .. key .. ":" .. next
  if hash["ic"] then
    kind = "scheduler"
    data = hash["data"]
    -- Schedulers made before BullMQ stored the template's data keep it
    -- only in their iteration's job, as BullMQ's own update script knows.
    if not data and sy_is_job(jobKey) then
      data = rcall("HGET", jobKey, "data")
    end
    data = data or "{}"
    opts = hash["opts"] or "{}"
  else
    kind = "repeatable"
    if sy_is_job(jobKey) then
      local job = rcall("HMGET", jobKey, "data", "opts")
      data = job[1] or "{}"
      opts = job[2] or "{}"
    end
  end
  local dataCut, dataBytes = cut(data)
  local optsCut, optsBytes = cut(opts)
  page[#page + 1] = {key, next, kind, fields, dataCut, dataBytes, optsCut, optsBytes}
end
return {total, page}
