-- Store a snapshot built by the holder of the build lock (snapshot.lua), unless the registry changed since it took the
-- lock: a join, leave or routing-relevant change drops the snapshot and the lock together, so a build that read the
-- registry before that change cannot publish a list without it (it would stand for a whole max age).
-- KEYS: snapshot lock
-- ARGV: token at body ttlMs
-- RETURNS: 1 stored, 0 not (the lock is gone or another's)
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[2], 'body', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('DEL', KEYS[2])
return 1
