-- Register a worker process's liveness connection (its CLIENT ID) and the jobs it runs, keeping in its jobs hash only
-- entries whose job lock still holds their token: the jobs it runs now (`[jobId entry]...`), and any job a take
-- (take.lua) recorded that the process has not heard back about yet. An entry left behind by a job that ended (its
-- removal lost with a connection) goes; a job taken just before this call stays, so a death right after it is still
-- seen. Entries are JSON {q: queue, n: node, t: token}; a job's lock is `<jobPrefix><q>:<jobId>:lock` (BullMQ's).
-- KEYS: live jobs
-- ARGV: procId clientId queuePrefix [jobId entry]...
-- RETURNS: 'registered'
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
  local ok, e = pcall(cjson.decode, flat[i + 1])
  if not ok or type(e) ~= 'table' or redis.call('GET', ARGV[3] .. tostring(e.q) .. ':' .. flat[i] .. ':lock') ~= e.t then
    redis.call('HDEL', KEYS[2], flat[i])
  end
end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 'registered'
