-- Reads one job hash for a listing or a job page (read only), shared by
-- list.lua and job.lua. With clip > 0, a value longer than clip bytes is
-- left out: its length is read with HSTRLEN, never the value, so a
-- megabyte value is copied neither into the script nor onto the wire.
-- Returns nil when the job does not exist, else the 15 fields of `fields`
-- and which values were left out with their whole lengths
-- ("data=1048576;history=20480", or false).

local fields = { 'name', 'data', 'opts', 'state', 'attempts_made', 'stalled_count',
  'failed_reason', 'stacktrace', 'history', 'return_value', 'created_at', 'processed_at',
  'finished_at', 'run_at', 'token' }
-- The fields that can be long, by their index in `fields`.
local clippable = { 2, 7, 8, 9, 10 }

local function read_job(key, clip)
  local clipped = {}
  local f
  if clip > 0 then
    local wanted = {}
    local skip = {}
    for _, j in ipairs(clippable) do
      local len = redis.call('HSTRLEN', key, fields[j])
      if len > clip then
        skip[j] = true
        clipped[#clipped + 1] = fields[j] .. '=' .. len
      end
    end
    for j = 1, #fields do
      if not skip[j] then wanted[#wanted + 1] = fields[j] end
    end
    local got = redis.call('HMGET', key, unpack(wanted))
    f = {}
    local k = 1
    for j = 1, #fields do
      if skip[j] then
        f[j] = ''
      else
        f[j] = got[k]
        k = k + 1
      end
    end
  else
    f = redis.call('HMGET', key, unpack(fields))
  end
  if not f[1] then
    return nil
  end
  if #clipped > 0 then
    f[16] = table.concat(clipped, ';')
  else
    f[16] = false
  end
  return f
end
