-- Put the running jobs of a worker process that is gone (its Redis connection closed: SIGKILL, a crash, the OOM killer)
-- back in their queues at once, instead of after their BullMQ locks expire; release their memory reservations and drop
-- the process's registration. Per job it does what BullMQ's moveJobFromActiveToWait does for the lock's owner (lock
-- and stalled-set entry removed, off `active`, to the front of its priority band in `prioritized`, or to `wait` without
-- a priority; the marker; events 'waiting' and, as BullMQ's stalled checker emits, 'stalled').
-- Poison pills: BullMQ's stalled strike (`stc`) is not spent on the first death of a job's worker (a deploy's kill -9,
-- the OOM killer choosing the worker: rarely the job's fault). `hydraDeaths` in the job hash counts the deaths; each
-- one after the first is a strike like a stall, and past maxStalledCount strikes the job gets BullMQ's deferred
-- failure (`defa`), which fails it as a poison pill when it is next taken.
-- Only a job whose lock still holds the dead process's token moves: one it finished, or that another worker took after
-- its lock expired, is left alone. Nothing moves when the process registered again with another connection (it was
-- alive: a reconnect) or when its registration is gone (another checker did this already).
-- KEYS: live jobs [job lock active wait prioritized marker meta events stalled resv]...
-- ARGV: procId clientId maxStalledCount [jobId token]...
-- RETURNS: {'requeued', jobId...} (the jobs moved, maybe none), {'alive'} or {'gone'}
local proc, client = ARGV[1], ARGV[2]
local cur = redis.call('ZSCORE', KEYS[1], proc)
if not cur then return {'gone'} end
if tonumber(cur) ~= tonumber(client) then return {'alive'} end
local maxStalled = tonumber(ARGV[3])
local out = {'requeued'}
for i = 0, (#KEYS - 2) / 10 - 1 do
  local k, a = 2 + 10 * i, 4 + 2 * i
  local job, lock, active, wait, prioritized, marker, meta, events, stalled, resv =
    KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], KEYS[k + 7], KEYS[k + 8], KEYS[k + 9], KEYS[k + 10]
  local id, token = ARGV[a], ARGV[a + 1]
  if redis.call('GET', lock) == token then
    redis.call('DEL', lock)
    redis.call('SREM', stalled, id)
    if redis.call('LREM', active, 1, id) > 0 then
      local deaths = redis.call('HINCRBY', job, 'hydraDeaths', 1)
      if deaths > 1 and redis.call('HINCRBY', job, 'stc', 1) > maxStalled then
        redis.call('HSET', job, 'defa', 'its worker process died ' .. deaths .. ' times while running it')
      end
      -- pushBackJobWithPriority.lua: priority · 2^32 with no add counter, ahead of its band (as a drained job).
      local priority = tonumber(redis.call('HGET', job, 'priority')) or 0
      if priority > 0 then
        redis.call('ZADD', prioritized, priority * 0x100000000, id)
      else
        redis.call('RPUSH', wait, id)
      end
      -- addBaseMarkerIfNeeded.lua: wake a worker blocked on the marker unless the queue is paused or at its limit.
      local m = redis.call('HMGET', meta, 'paused', 'concurrency', 'opts.maxLenEvents')
      if not m[1] and not (m[2] and redis.call('LLEN', active) >= tonumber(m[2])) then redis.call('ZADD', marker, 0, '0') end
      local maxEvents = tonumber(m[3]) or 10000
      redis.call('XADD', events, 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', id, 'prev', 'active')
      redis.call('XADD', events, 'MAXLEN', '~', maxEvents, '*', 'event', 'stalled', 'jobId', id)
      out[#out + 1] = id
    end
  end
  redis.call('HDEL', resv, token)
end
redis.call('ZREM', KEYS[1], proc)
redis.call('DEL', KEYS[2])
return out
