-- The whole registry in one call (NodeRegistry.list): per node its record (JSON) and its reservations, processes and
-- measured speed (hashes). A pipeline of 4 commands per node cost the API 15 ms of CPU per GET /v1/nodes at 200 nodes,
-- most of it ioredis's per-command objects and timers and the garbage they leave; one reply of 4 strings per node is
-- decoded far more cheaply. Each hash comes back as ONE string, its HGETALL's fields and values joined by NUL (no
-- field or value of these hashes holds a NUL: ids, numbers and model names).
-- KEYS: [node resv procs perf]...
-- ARGV: (none)
-- RETURNS: 4 strings per node, in KEYS order: the record ('' when it expired), then the three hashes joined
local out = {}
for i = 1, #KEYS, 4 do
  out[#out + 1] = redis.call('GET', KEYS[i]) or ''
  for j = 1, 3 do out[#out + 1] = table.concat(redis.call('HGETALL', KEYS[i + j]), '\0') end
end
return out
