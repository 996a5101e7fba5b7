-- Settle one workflow step, add the steps its settling spawns, and claim the steps that become ready.
-- KEYS: meta steps deps defs rdeps sat res stream order
-- ARGV: step outcome recordJson now newStepsJson errorJson eventJson maxlen
-- RETURNS: JSON {result, status, pending, ready: [{id, def}], states: {step: state}, error}; result is
--   'settled', 'already_settled' (the step is not queued: a redelivered completion, a second repair) or
--   'unknown' (no such workflow or step). states and error come only with 'settled'; error (JSON) while not running.
--
-- Idempotent: only a `queued` step settles, so dependents are never counted down twice. New steps (the orchestrator's
-- next stage) are added before this step settles, so `pending` never touches 0 between a stage and the one it spawns.
-- A satisfied step (completed, or optional and failed) counts down its dependents; one that reaches 0 is claimed
-- (`queued`) here, so exactly one caller enqueues it. A required step that fails turns the workflow to `failing` and
-- skips every step that has not started.
local id, outcome = ARGV[1], ARGV[2]
local cur = redis.call('HGET', KEYS[2], id)
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not cur then return cjson.encode({result = 'unknown', status = status or '', pending = 0}) end
if cur ~= 'queued' then
  return cjson.encode({result = 'already_settled', status = status, pending = tonumber(redis.call('HGET', KEYS[1], 'pending') or '0')})
end
local pending = tonumber(redis.call('HGET', KEYS[1], 'pending'))
local ready = {}
local function optional(sid)
  local d = redis.call('HGET', KEYS[4], sid)
  return d ~= false and cjson.decode(d).optional == true
end
if ARGV[5] ~= '' and status == 'running' then
  local added = 0
  for _, ns in ipairs(cjson.decode(ARGV[5])) do
    if redis.call('HSETNX', KEYS[4], ns.id, ns.def) == 1 then
      added = added + 1
      redis.call('RPUSH', KEYS[9], ns.id)
      local unmet = 0
      for _, d in ipairs(ns.deps) do
        local rd = cjson.decode(redis.call('HGET', KEYS[5], d) or '[]')
        table.insert(rd, ns.id)
        redis.call('HSET', KEYS[5], d, cjson.encode(rd))
        if redis.call('SISMEMBER', KEYS[6], d) == 0 then unmet = unmet + 1 end
      end
      redis.call('HSET', KEYS[3], ns.id, unmet)
      if unmet == 0 then
        redis.call('HSET', KEYS[2], ns.id, 'queued')
        table.insert(ready, ns.id)
      else
        redis.call('HSET', KEYS[2], ns.id, 'waiting')
      end
    end
  end
  pending = pending + added
end
redis.call('HSET', KEYS[2], id, outcome)
redis.call('HSET', KEYS[7], id, ARGV[3])
pending = pending - 1
local sat = outcome == 'completed' or optional(id)
if sat then redis.call('SADD', KEYS[6], id) end
if status == 'running' then
  if sat then
    local rd = redis.call('HGET', KEYS[5], id)
    if rd then
      for _, dep in ipairs(cjson.decode(rd)) do
        local n = redis.call('HINCRBY', KEYS[3], dep, -1)
        if n <= 0 and redis.call('HGET', KEYS[2], dep) == 'waiting' then
          redis.call('HSET', KEYS[2], dep, 'queued')
          table.insert(ready, dep)
        end
      end
    end
  else
    status = 'failing'
    redis.call('HSET', KEYS[1], 'status', status, 'error', ARGV[6], 'failed_step', id)
    local all = redis.call('HGETALL', KEYS[2])
    for i = 1, #all, 2 do
      if all[i + 1] == 'waiting' then
        redis.call('HSET', KEYS[2], all[i], 'skipped')
        pending = pending - 1
      end
    end
    for _, r in ipairs(ready) do
      redis.call('HSET', KEYS[2], r, 'skipped')
      pending = pending - 1
    end
    ready = {}
  end
end
redis.call('HSET', KEYS[1], 'pending', pending, 'updated_at', ARGV[4])
redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[8], '*', 'e', 'step', 'd', ARGV[7])
local out = {result = 'settled', status = status, pending = pending, ready = {}, states = {}}
for _, r in ipairs(ready) do table.insert(out.ready, {id = r, def = redis.call('HGET', KEYS[4], r)}) end
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do out.states[all[i]] = all[i + 1] end
if status ~= 'running' then out.error = redis.call('HGET', KEYS[1], 'error') end
return cjson.encode(out)
