-- Reserve memory and a backend slot for one job on a node, atomically across every worker process sharing the node id.
-- Entries of `reservations`: field = reservation token, value = "model|mb|expiresAtMs". Memory counts once per
-- distinct model (concurrent requests share a loaded model); idle loaded models are not counted because the backend
-- evicts them to make room. Expired entries (a crashed worker) are dropped here. `peak` keeps the highest total ever
-- admitted (MB).
-- Backend slots: at most `parallel` entries per model (the backend's own per-model limit, OLLAMA_NUM_PARALLEL or the
-- server's slots), so nothing queues inside a backend where other nodes cannot take it.
-- Fence: `fence` holds "jobId|model|mb|priority|expiresAtMs" for the most urgent job this node could serve that does
-- not fit now (fence.lua). While it stands, another job is admitted only if the fenced job would still fit beside it
-- (backfilling: it cannot delay the fenced one), or when it is more urgent (lower BullMQ priority). Admitting the
-- fenced job itself (forJobId) lifts the fence.
-- KEYS: reservations peak fence
-- ARGV: token model mb capacityMb nowMs ttlMs parallel forJobId bullPriority
-- RETURNS: {'admitted', usedMb} (usedMb includes this job), {'full', usedMb}, {'busy', inFlightOfModel} or
--   {'fenced', usedMb} (usedMb without it)
local now = tonumber(ARGV[5])
local entries = redis.call('HGETALL', KEYS[1])
local perModel = {}
local count = {}
local total = 0
for i = 1, #entries, 2 do
  local f, v = entries[i], entries[i + 1]
  local model, mb, exp = string.match(v, '^(.*)|(%d+)|(%d+)$')
  if model == nil or tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], f)
  elseif f ~= ARGV[1] then
    mb = tonumber(mb)
    count[model] = (count[model] or 0) + 1
    local cur = perModel[model]
    if cur == nil then perModel[model] = mb; total = total + mb
    elseif cur < mb then perModel[model] = mb; total = total + mb - cur end
  end
end
local model = ARGV[2]
local need = tonumber(ARGV[3])
local capacity = tonumber(ARGV[4])
local parallel = tonumber(ARGV[7])
if (count[model] or 0) >= parallel then return {'busy', count[model]} end
local cur = perModel[model]
local add = need
if cur ~= nil then add = math.max(0, need - cur) end
if total + add > capacity then return {'full', total} end
local fence = redis.call('GET', KEYS[3])
if fence then
  local fJob, fModel, fMb, fPrio, fExp = string.match(fence, '^(.*)|(.*)|(%d+)|(%d+)|(%d+)$')
  if fJob == nil or tonumber(fExp) <= now then
    redis.call('DEL', KEYS[3])
  elseif fJob == ARGV[8] then
    redis.call('DEL', KEYS[3])
  elseif tonumber(ARGV[9]) >= tonumber(fPrio) then
    -- Memory the fenced job still needs beside what is then running (its model may be loaded and in use already).
    local fAdd = tonumber(fMb)
    local fCur = perModel[fModel]
    if fModel == model then fCur = math.max(fCur or 0, need) end
    if fCur ~= nil then fAdd = math.max(0, fAdd - fCur) end
    if total + add + fAdd > capacity then return {'fenced', total} end
  end
end
local ttl = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], ARGV[1], model .. '|' .. ARGV[3] .. '|' .. (now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl * 4)
local used = total + add
if used > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], used) end
return {'admitted', used}
