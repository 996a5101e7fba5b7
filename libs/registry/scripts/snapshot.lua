-- The registry as one shared snapshot (NodeRegistry.shared): every worker process needs the whole node list about once
-- a second; reading it each (1 ZRANGE + 4 reads per node) cost 4 x nodes x processes commands a second, 4 x N^2 with
-- one process per node. Now one caller per `maxAgeMs` builds it (list) and stores it here; the others read one key.
-- Ages are in Redis's clock (TIME), so processes on machines with skewed clocks agree on them.
-- KEYS: snapshot lock
-- ARGV: maxAgeMs lockMs haveAt token
-- RETURNS: {code, nowMs, at, body}: 'same' when the snapshot is fresh and the caller holds it already (`haveAt`, no
--          body sent); 'fresh'; 'build': the caller took the build lock (holding `token`) and builds (body: the
--          stale one or ''; it stores with snapshot-store.lua);
--          'stale': too old but someone else builds; 'none': no snapshot, someone else builds (at, body: '')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'at', 'body')
local at = tonumber(v[1])
local nowS = tostring(now)
if at ~= nil and now - at < tonumber(ARGV[1]) then
  if ARGV[3] == v[1] then return {'same', nowS, v[1], ''} end
  return {'fresh', nowS, v[1], v[2] or '[]'}
end
if redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[2]) then return {'build', nowS, v[1] or '', v[2] or ''} end
if at ~= nil then return {'stale', nowS, v[1], v[2] or '[]'} end
return {'none', nowS, '', ''}
