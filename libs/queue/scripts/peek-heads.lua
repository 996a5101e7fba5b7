--!df flags=allow-undeclared-keys
-- The head of each queue a node may serve, in one round trip, for the dispatcher to choose from: the first of
-- `prioritized`, else the next of `wait`, else a due `delayed` job. BullMQ's layout that this relies on (key names,
-- score encodings, which end of `wait` is next) is written down and tested in libs/queue/bullmq-internals.ts, which
-- also does the score math on both sides of this call, so it is not spelled twice.
--
-- Undeclared keys: every key known before the call is in KEYS. Two keys per head are not, because their names hold
-- the head's job id, which only this script learns: the job's hash (jobPrefix .. id) and Hydra's exclusion flag
-- (excludedPrefix .. id). Redis Cluster runs this only because every Hydra and BullMQ key shares the `{hydra}` hash
-- tag, so those keys are in the slot of the KEYS (per-queue tags would break it). Dragonfly refuses undeclared keys
-- unless the script allows them: the `--!df` line above is its per-script flag, a plain comment to Redis.
-- KEYS: [prioritized wait delayed]...
-- Session affinity reads two more undeclared keys the same way: the head's session (sessionPrefix .. id) and the node
-- that last ran a job of that session (sessionNodePrefix .. session).
-- ARGV: dueMaxScore excludedPrefix nodeId sessionPrefix sessionNodePrefix [jobPrefix]...
-- RETURNS: flat list, eight entries per queue that has a head (empty queues are left out): the queue's position
--   (1-based, its triple in KEYS), job id, job name, its `prioritized` score ('' when it came from wait or delayed),
--   its hash's priority, its added timestamp (ms, '' if unknown), 'excluded' when this node just failed the job
--   (it then leaves it to other nodes for a while) else 'eligible', and the node its session is on ('' if none)
local dueMax = ARGV[1]
local excludedPrefix = ARGV[2]
local me = ARGV[3]
local out = {}
for q = 1, #KEYS / 3 do
  local prioritized, wait, delayed = KEYS[3 * q - 2], KEYS[3 * q - 1], KEYS[3 * q]
  local id = nil
  local score = ''
  local r = redis.call('ZRANGE', prioritized, 0, 0, 'WITHSCORES')
  if #r > 0 then id = r[1]; score = r[2] end
  if id == nil then
    local w = redis.call('LINDEX', wait, -1)
    if w then id = w end
  end
  if id == nil then
    local d = redis.call('ZRANGEBYSCORE', delayed, 0, dueMax, 'LIMIT', 0, 1)
    if #d > 0 then id = d[1] end
  end
  if id ~= nil then
    local h = redis.call('HMGET', ARGV[5 + q] .. id, 'name', 'timestamp', 'priority')
    out[#out + 1] = q
    out[#out + 1] = id
    out[#out + 1] = h[1] or ''
    out[#out + 1] = score
    out[#out + 1] = h[3] or ''
    out[#out + 1] = h[2] or ''
    if redis.call('GET', excludedPrefix .. id) == me then out[#out + 1] = 'excluded' else out[#out + 1] = 'eligible' end
    local session = redis.call('GET', ARGV[4] .. id)
    local at = false
    if session then at = redis.call('GET', ARGV[5] .. session) end
    out[#out + 1] = at or ''
  end
end
return out
