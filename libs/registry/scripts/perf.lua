-- Fold one finished job's measurements into a node's figures for a model: EWMAs whose n-th sample weighs
-- max(alpha, 1/n), so the first 1/alpha samples are a plain mean (the same step as foldSample in
-- libs/scheduling/perf.ts). One script, so concurrent jobs of the node's processes never lose a sample.
-- Value: "tokensPerS|ttftMs|jobMs|samples|loadMs|loadSamples|updatedAtMs". loadMs '' = the job loaded nothing.
-- KEYS: perf
-- ARGV: model alpha tokensPerS ttftMs jobMs loadMs nowMs ttlMs
-- RETURNS: the model's sample count after this one
local tps, ttft, job, n, ld, nld = 0, 0, 0, 0, 0, 0
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local a, b, c, d, e, f = string.match(cur, '^([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)|')
  if a then tps, ttft, job, n, ld, nld = tonumber(a), tonumber(b), tonumber(c), tonumber(d), tonumber(e), tonumber(f) end
end
local alpha = tonumber(ARGV[2])
local function step(v, x, k)
  return v + math.max(alpha, 1 / k) * (x - v)
end
n = n + 1
tps = step(tps, tonumber(ARGV[3]), n)
ttft = step(ttft, tonumber(ARGV[4]), n)
job = step(job, tonumber(ARGV[5]), n)
if ARGV[6] ~= '' then
  nld = nld + 1
  ld = step(ld, tonumber(ARGV[6]), nld)
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.17g|%.17g|%.17g|%d|%.17g|%d|%.0f', tps, ttft, job, n, ld, nld, tonumber(ARGV[7])))
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return n
