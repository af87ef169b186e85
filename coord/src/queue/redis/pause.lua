-- Pauses ('1') or resumes ('0') handing out jobs. ARGV[4] the flag.

redis.call('HSET', metaKey, 'paused', ARGV[4])
if ARGV[4] == '1' then
  emitQueue('paused')
else
  emitQueue('resumed')
end
publish()
return 1
