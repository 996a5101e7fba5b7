-- Compare-and-set of a node's circuit-breaker state (the policy itself runs in the worker, in TypeScript): the write
-- lands only if nobody changed the state since the caller read it, so two processes of one node never lose a failure.
-- `breaker` is a hash {v = version token, s = JSON state}; absent = closed with no failures (v = '').
-- KEYS: breaker
-- ARGV: expectedVersion newVersion stateJson ttlMs
-- RETURNS: {'ok', newVersion, stateJson} or {'conflict', currentVersion, currentJson}
local cur = redis.call('HGET', KEYS[1], 'v') or ''
if cur ~= ARGV[1] then return {'conflict', cur, redis.call('HGET', KEYS[1], 's') or ''} end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return {'ok', ARGV[2], ARGV[3]}
