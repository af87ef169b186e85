-- Applies retention now. ARGV[4] most jobs to remove. Returns how many went.

local removed = applyRetention(tonumber(ARGV[4]), retentionSettings())
publish()
return removed
