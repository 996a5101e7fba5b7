-- Record a finished job in its queue's retired list (newest first) and, once the list holds `cap + batch` ids, pop
-- the oldest down to `cap` and return them: the caller deletes their side keys (lifecycle.ts `retire`). Batching keeps
-- this to one call per job and one deletion per `batch` jobs; the list never holds fewer than `cap`, so a job BullMQ
-- still keeps (its own count retention, same cap) keeps its side keys.
-- KEYS: retired
-- ARGV: jobId cap batch
-- RETURNS: the ids that left the retention (oldest first), or an empty list
local n = redis.call('LPUSH', KEYS[1], ARGV[1])
local cap = tonumber(ARGV[2])
if n < cap + tonumber(ARGV[3]) then return {} end
return redis.call('RPOP', KEYS[1], n - cap)
