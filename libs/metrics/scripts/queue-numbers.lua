-- Every number the metrics show of some queues, in one call (BullMQ 6.7's layout, as libs/queue/bullmq-internals.ts
-- reads it; test/metrics.int.test.ts checks the counts against real jobs): waiting jobs per priority band (the
-- `prioritized` score is priority * 2^32 + counter, as in BullMQ's getCountsPerPriority), jobs without a priority
-- (`wait`), active, delayed, waiting for children, BullMQ's completed and failed counts (the `metrics:*` hashes its
-- workers keep with the metrics option), and the ids of the first `heads` jobs of each non-empty band.
-- KEYS: [wait prioritized active delayed waitingChildren metricsCompleted metricsFailed]...
-- ARGV: bands heads
-- RETURNS: per queue {wait, active, delayed, waitingChildren, completed, failed, band 1..bands counts..., headIds...}
local bands = tonumber(ARGV[1])
local heads = tonumber(ARGV[2])
local out = {}
for q = 0, #KEYS / 7 - 1 do
  local k = q * 7
  local row = {
    redis.call('LLEN', KEYS[k + 1]),
    redis.call('LLEN', KEYS[k + 3]),
    redis.call('ZCARD', KEYS[k + 4]),
    redis.call('ZCARD', KEYS[k + 5]),
    tonumber(redis.call('HGET', KEYS[k + 6], 'count') or '0'),
    tonumber(redis.call('HGET', KEYS[k + 7], 'count') or '0'),
  }
  local ids = {}
  for p = 1, bands do
    local lo, hi = p * 0x100000000, (p + 1) * 0x100000000 - 1
    local n = redis.call('ZCOUNT', KEYS[k + 2], lo, hi)
    row[#row + 1] = n
    if n > 0 and heads > 0 then
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[k + 2], lo, hi, 'LIMIT', 0, heads)) do ids[#ids + 1] = id end
    end
  end
  for _, id in ipairs(ids) do row[#row + 1] = id end
  out[#out + 1] = row
end
return out
