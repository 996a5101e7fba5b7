-- Put up, refresh or take down a node's fence for the most urgent job it could serve that does not fit now (see
-- reserve.lua). One node fences a given job: `claim` names the node that does, so the other nodes that could serve it
-- keep running their own work instead of all draining for one job.
-- `claim` is the fenced job's claim key. `op` is 'set' or 'clear' ('clear' reads only nodeId and jobId).
-- KEYS: fence claim
-- ARGV: op nodeId jobId model mb bullPriority nowMs ttlMs
-- RETURNS: {'fenced'} (this node now fences jobId), {'claimed', otherNodeId} (another node fences it) or {'cleared'}
local op, node, job = ARGV[1], ARGV[2], ARGV[3]
if op == 'clear' then
  local cur = redis.call('GET', KEYS[1])
  if cur and string.sub(cur, 1, #job + 1) == job .. '|' then redis.call('DEL', KEYS[1]) end
  if redis.call('GET', KEYS[2]) == node then redis.call('DEL', KEYS[2]) end
  return {'cleared'}
end
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= node then return {'claimed', owner} end
local ttl = tonumber(ARGV[8])
redis.call('SET', KEYS[2], node, 'PX', ttl)
redis.call('SET', KEYS[1], job .. '|' .. ARGV[4] .. '|' .. ARGV[5] .. '|' .. ARGV[6] .. '|' .. (tonumber(ARGV[7]) + ttl), 'PX', ttl)
return {'fenced'}
