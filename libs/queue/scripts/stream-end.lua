-- End a job's or a workflow's token stream: append its terminal entry (done or error) unless the last entry is one
-- already, and let the stream expire. A stream ends once even when the write is sent twice: ioredis resends a command
-- whose reply was lost, and Redis shutting down (SIGTERM) runs the commands of its last event-loop turn without
-- answering them, so after a restart the same end arrived again (test/redis-outage.int.test.ts saw two `done`s).
-- Entries still to write before the end (the answer's last tokens) may come with it, in order: written only with it.
-- KEYS: stream
-- ARGV: maxlen event data ttl [entryEvent entryData]...
-- RETURNS: 'ended', or 'already' when the stream had ended (nothing written)
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last then
  local f = last[2]
  for i = 1, #f, 2 do
    if f[i] == 'e' and (f[i + 1] == 'done' or f[i + 1] == 'error') then return 'already' end
  end
end
for i = 5, #ARGV, 2 do redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i], 'd', ARGV[i + 1]) end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[2], 'd', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 'ended'
