-- A node's loaded models at one heartbeat, against the set stored at the previous one (by any process of the node):
-- each model new in the list is a load, each one gone from it an unload (evicted, or unloaded when idle). The set
-- keeps a marker member "\0" so "seen with nothing loaded" differs from "never seen"; the first sighting only stores.
-- Model label values are capped as in record.lua.
-- KEYS: models loaded loads unloads
-- ARGV: cap nodeId ttlMs model...
-- RETURNS: {'observed', changes} or {'first', 0}
local cap = tonumber(ARGV[1])
local node = ARGV[2]
local function label(m)
  if redis.call('SISMEMBER', KEYS[1], m) == 1 then return m end
  if redis.call('SCARD', KEYS[1]) < cap then
    redis.call('SADD', KEYS[1], m)
    return m
  end
  return 'other'
end
local now = {}
for i = 4, #ARGV do now[ARGV[i]] = true end
local existed = redis.call('EXISTS', KEYS[2]) == 1
local changes = 0
if existed then
  local was = {}
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if m ~= '\0' then
      was[m] = true
      if not now[m] then
        redis.call('HINCRBY', KEYS[4], node .. '|' .. label(m), 1)
        changes = changes + 1
      end
    end
  end
  for i = 4, #ARGV do
    if not was[ARGV[i]] then
      redis.call('HINCRBY', KEYS[3], node .. '|' .. label(ARGV[i]), 1)
      changes = changes + 1
    end
  end
end
redis.call('DEL', KEYS[2])
redis.call('SADD', KEYS[2], '\0')
for i = 4, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
if existed then return {'observed', changes} end
return {'first', 0}
