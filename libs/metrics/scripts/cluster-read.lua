--!df flags=allow-undeclared-keys
-- Everything a scrape reads from Redis, in one call: several hashes (the queue registry, recently seen nodes, cache
-- counters, the nodes' reservations, the stored metrics), then every queue's numbers (BullMQ 6.7's layout, as
-- libs/queue/bullmq-internals.ts reads it; test/metrics.int.test.ts checks the counts against real jobs): jobs without
-- a priority (`wait`), active, delayed, waiting for children, BullMQ's completed and failed counts (the `metrics:*`
-- hashes its workers keep with the metrics option), waiting jobs per priority band (the `prioritized` score is
-- priority * 2^32 + counter, as in BullMQ's getCountsPerPriority), and the earliest add time among the first `heads`
-- jobs of each non-empty band (jobs aging promoted sit first in a band, in id order).
--
-- Each hash comes back as ONE string, its HGETALL's fields and values joined by NUL: a scrape reads ~1,000 of them,
-- and the API decodes one bulk string far more cheaply than 1,000 (no field or value Hydra writes holds a NUL: label
-- values are cleaned of it, the rest are numbers and JSON).
--
-- Undeclared keys: the job hashes of the heads (jobPrefix .. id), whose ids only this script learns. Redis Cluster
-- runs this only because every Hydra and BullMQ key shares the `{hydra}` hash tag (as peek-heads.lua); the `--!df`
-- line lets Dragonfly run it.
-- KEYS: key...
--   the first ARGV[1] are hashes; then 7 per queue: wait prioritized active delayed waitingChildren metricsCompleted
--   metricsFailed
-- ARGV: hashes bands heads [jobPrefix]...
-- RETURNS: one string per hash (NUL-joined fields and values, '' for a missing key), then per queue {wait, active,
--   delayed, waitingChildren, completed, failed, band 1..bands counts..., earliest head add time in ms (0 if none)}
local nh = tonumber(ARGV[1])
local bands = tonumber(ARGV[2])
local heads = tonumber(ARGV[3])
local out = {}
for i = 1, nh do out[i] = table.concat(redis.call('HGETALL', KEYS[i]), '\0') end
for q = 0, (#KEYS - nh) / 7 - 1 do
  local k = nh + q * 7
  local row = {
    redis.call('LLEN', KEYS[k + 1]),
    redis.call('LLEN', KEYS[k + 3]),
    redis.call('ZCARD', KEYS[k + 4]),
    redis.call('ZCARD', KEYS[k + 5]),
    tonumber(redis.call('HGET', KEYS[k + 6], 'count') or '0'),
    tonumber(redis.call('HGET', KEYS[k + 7], 'count') or '0'),
  }
  local earliest = 0
  for p = 1, bands do
    local lo, hi = p * 0x100000000, (p + 1) * 0x100000000 - 1
    local n = redis.call('ZCOUNT', KEYS[k + 2], lo, hi)
    row[#row + 1] = n
    if n > 0 and heads > 0 then
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[k + 2], lo, hi, 'LIMIT', 0, heads)) do
        local t = tonumber(redis.call('HGET', ARGV[4 + q] .. id, 'timestamp'))
        if t and (earliest == 0 or t < earliest) then earliest = t end
      end
    end
  end
  row[#row + 1] = earliest
  out[#out + 1] = row
end
return out
