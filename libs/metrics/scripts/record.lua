-- Record the metrics of one finished job (or one cancellation) in one call: HINCRBY / HINCRBYFLOAT of hash fields.
-- `models` is the set of model names with their own label value: a model not in it joins while it has fewer than `cap`
-- members, else it is recorded as "other" (bounded label cardinality, the same cut for every process).
-- A field holds "\0" where the model label goes: label values never contain "\0" (the caller replaces it).
-- KEYS: models metric...
-- ARGV: cap model [hashIndex field op amount]...
-- RETURNS: {'recorded', modelLabel}
local m = ARGV[2]
if m ~= '' and redis.call('SISMEMBER', KEYS[1], m) == 0 then
  if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SADD', KEYS[1], m) else m = 'other' end
end
for i = 3, #ARGV, 4 do
  local key, field, op, amount = KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local at = string.find(field, '\0', 1, true)
  if at then field = string.sub(field, 1, at - 1) .. m .. string.sub(field, at + 1) end
  if op == 'f' then redis.call('HINCRBYFLOAT', key, field, amount) else redis.call('HINCRBY', key, field, amount) end
end
return {'recorded', m}
