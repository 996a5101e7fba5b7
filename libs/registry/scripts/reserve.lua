-- Reserve memory for one job on a node, atomically across every worker process sharing the node id.
-- Entries of `reservations`: field = job id, value = "model|mb|expiresAtMs". Memory counts once per distinct model
-- (concurrent requests share a loaded model); idle loaded models are not counted because the backend evicts them to
-- make room. Expired entries (a crashed worker) are dropped here. `peak` keeps the highest total ever admitted (MB).
-- KEYS: reservations peak
-- ARGV: jobId model mb capacityMb nowMs ttlMs
-- RETURNS: {'admitted', usedMb} (usedMb includes this job) or {'full', usedMb} (usedMb without it)
local now = tonumber(ARGV[5])
local entries = redis.call('HGETALL', KEYS[1])
local perModel = {}
local total = 0
for i = 1, #entries, 2 do
  local f, v = entries[i], entries[i + 1]
  local model, mb, exp = string.match(v, '^(.*)|(%d+)|(%d+)$')
  if model == nil or tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], f)
  elseif f ~= ARGV[1] then
    mb = tonumber(mb)
    local cur = perModel[model]
    if cur == nil then perModel[model] = mb; total = total + mb
    elseif cur < mb then perModel[model] = mb; total = total + mb - cur end
  end
end
local need = tonumber(ARGV[3])
local cur = perModel[ARGV[2]]
local add = need
if cur ~= nil then add = math.max(0, need - cur) end
if total + add > tonumber(ARGV[4]) then return {'full', total} end
local ttl = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. (now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl * 4)
local used = total + add
if used > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], used) end
return {'admitted', used}
