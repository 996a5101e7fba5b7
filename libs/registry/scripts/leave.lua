-- One worker process of a node leaves: drop its membership, and deregister the node only when no live process is left
-- (several processes may share a NODE_ID; SIGTERM of one must not make the node vanish and its pinned jobs rehome).
-- Entries of `procs`: field = process id, value = "slots|expiresAtMs"; expired ones (a crashed process) count as gone.
-- KEYS: node nodes procs
-- ARGV: nodeId procId nowMs
-- RETURNS: {'gone', 0} when the node was deregistered, {'stays', liveProcesses} otherwise
local now = tonumber(ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[2])
local entries = redis.call('HGETALL', KEYS[3])
local live = 0
for i = 1, #entries, 2 do
  local exp = string.match(entries[i + 1], '^%d+|(%d+)$')
  if exp ~= nil and tonumber(exp) > now then live = live + 1 else redis.call('HDEL', KEYS[3], entries[i]) end
end
if live > 0 then return {'stays', live} end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return {'gone', 0}
