-- Take a queue's next job for a node in one call, where the dispatcher made three: reserve memory and a backend slot
-- for the peeked head's model (reserve.lua, as it is), move the queue's next job to active (BullMQ's own moveToActive,
-- included as the pinned BullMQ ships it: lock, events, priority order, delayed promotion, pause), give the
-- reservation back when no job came, record the job in the process's liveness hash (apps/worker/liveness.ts: so a
-- process killed at any moment after this call has its job requeued at once), and read the taken job's cancel flag.
-- An empty `model` takes without a reservation (admin heads hold no memory); an empty `liveEntry` writes no liveness
-- entry. The job taken may not be the peeked one (node queues mix models and kinds): the caller checks its name and
-- re-reserves or hands it back as before.
-- KEYS: reservations peak fence wait active prioritized events stalled limiter delayed paused meta pc marker liveJobs
-- ARGV: token model mb capacityMb nowMs ttlMs parallel forJobId bullPriority jobPrefix lockDurationMs workerName cancelPrefix liveEntry
-- RETURNS: {'refused', why, n} (reserve.lua's answer when not admitted), {'empty', rateLimitDelay, delayUntil} (the
--   reservation given back), or {'taken', jobData, jobId, rateLimitDelay, delayUntil, cancelled (1/0), left}: `left`
--   is how many jobs the queue still has ready (prioritized + wait, due delayed jobs promoted by moveToActive above)
-- @include reserve
-- @include moveToActive
local reserved = false
if ARGV[2] ~= '' then
  local r = reserve({KEYS[1], KEYS[2], KEYS[3]}, {ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]})
  if r[1] ~= 'admitted' then return {'refused', r[1], r[2]} end
  reserved = true
end
local opts = {token = ARGV[1], lockDuration = tonumber(ARGV[11])}
if ARGV[12] ~= '' then opts['name'] = ARGV[12] end
local m = moveToActive({KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14]}, {ARGV[10], ARGV[5], cmsgpack.pack(opts)})
local jobId = m[2]
if type(jobId) ~= 'string' then
  if reserved then redis.call('HDEL', KEYS[1], ARGV[1]) end
  return {'empty', m[3], m[4]}
end
if ARGV[14] ~= '' then redis.call('HSET', KEYS[15], jobId, ARGV[14]) end
return {'taken', m[1], jobId, m[3], m[4], redis.call('EXISTS', ARGV[13] .. jobId), redis.call('ZCARD', KEYS[6]) + redis.call('LLEN', KEYS[4])}
