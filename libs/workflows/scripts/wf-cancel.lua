-- Cancel a workflow: a running one turns `cancelling`, steps that have not started are skipped, and the queued ones
-- are returned so the caller cancels their jobs (each then settles as cancelled).
-- KEYS: meta steps stream
-- ARGV: now errorJson maxlen
-- RETURNS: JSON {status, pending, queued: [step], error}; status is 'unknown' (no such workflow), the status it
--   already had when final, or 'cancelling' / 'failing' (a failing workflow keeps its failure); error (JSON): why it
--   winds down.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return cjson.encode({status = 'unknown', pending = 0, queued = {}}) end
local pending = tonumber(redis.call('HGET', KEYS[1], 'pending'))
local queued = {}
if status == 'running' or status == 'failing' then
  if status == 'running' then
    status = 'cancelling'
    redis.call('HSET', KEYS[1], 'status', status, 'error', ARGV[2])
  end
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if all[i + 1] == 'waiting' then
      redis.call('HSET', KEYS[2], all[i], 'skipped')
      pending = pending - 1
    elseif all[i + 1] == 'queued' then
      table.insert(queued, all[i])
    end
  end
  redis.call('HSET', KEYS[1], 'pending', pending, 'updated_at', ARGV[1])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'e', 'cancelling', 'd', ARGV[2])
end
return cjson.encode({status = status, pending = pending, queued = queued, error = redis.call('HGET', KEYS[1], 'error')})
