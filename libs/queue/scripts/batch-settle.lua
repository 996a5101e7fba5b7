-- Count the end of item `index` of a batch (POST /v1/batches) once: a redelivered end, or a cancel racing the job's
-- own end, counts nothing twice (HSETNX on the item's end state). When it was the last open item the batch ends:
-- ended_at and state are set, and its keys expire `ttlEnded` seconds later (JOB_RETENTION_S).
-- KEYS: batch ends items
-- ARGV: index state nowMs ttlOpen ttlEnded
-- RETURNS: {'gone'} (no such batch), {'again'} (already counted), {'open'}, or {'ended', batch state, callback url or ''}
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return {'again'} end
if redis.call('HLEN', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
local left = redis.call('HINCRBY', KEYS[1], 'remaining', -1)
if left > 0 then return {'open'} end
local state = 'completed'
if redis.call('HEXISTS', KEYS[1], 'cancelled_at') == 1 then state = 'cancelled' end
redis.call('HSET', KEYS[1], 'ended_at', ARGV[3], 'state', state)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {'ended', state, redis.call('HGET', KEYS[1], 'callback_url') or ''}
