-- End a completed job in one call, where the worker made ten: BullMQ's own moveToFinished (included as the pinned
-- BullMQ ships it: the lock checked and released, the completed set and its retention, events, metrics), then, only if
-- BullMQ completed it, the token stream's end with its last tokens (stream-end.lua), the count retention of its side
-- keys (retire.lua), the node's memory reservation and the process's liveness entry for it, then the writes that ride
-- along (job-end.ts `EndWrite`: the job metrics, the node's speed figures, the activity entry, the history record, the
-- done message last). A run that lost its lock gets BullMQ's code and writes nothing.
-- `layout`: "tailCount" then ",kind:nkeys:nargs" per write: kind c (a command: its name, then its keys, then the rest
-- of its arguments), m (jobMetrics) or p (nodePerf); each write's keys follow the fixed KEYS in turn, its arguments the
-- tail's. A write that fails is answered with its error and the ones after it still run (each in pcall): the job's end
-- stands once BullMQ completed it.
-- KEYS: wait active prioritized events stalled limiter delayed paused meta pc completed job metrics marker stream retired reservations liveJobs writeKey...
-- ARGV: jobId timestamp prop value target fetchNext prefix opts fields maxlen event data ttl cap batch token layout arg...
-- RETURNS: {code} (BullMQ's negative code: nothing written), or {0, 'ended' or 'already', retiredCount, retired jobId...,
--   reply of each write...} (a failed write's reply is its error)
-- @include moveToFinished
-- @include streamEnd
-- @include retire
-- @include jobMetrics
-- @include nodePerf
local r = moveToFinished({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14]},
  {ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]})
if type(r) == 'number' and r < 0 then return {r} end
local parts = {}
for p in string.gmatch(ARGV[17], '[^,]+') do parts[#parts + 1] = p end
local tailEnd = 17 + tonumber(parts[1])
local se = {ARGV[10], ARGV[11], ARGV[12], ARGV[13]}
for i = 18, tailEnd do se[#se + 1] = ARGV[i] end
local ended = streamEnd({KEYS[15]}, se)
local gone = retire({KEYS[16]}, {ARGV[1], ARGV[14], ARGV[15]})
redis.call('HDEL', KEYS[17], ARGV[16])
redis.call('HDEL', KEYS[18], ARGV[1])
local out = {0, ended, #gone}
for i = 1, #gone do out[#out + 1] = gone[i] end
local scripts = {m = jobMetrics, p = nodePerf}
local k, a = 18, tailEnd
for i = 2, #parts do
  local kind, nk, na = string.match(parts[i], '^(%a):(%d+):(%d+)$')
  nk, na = tonumber(nk), tonumber(na)
  local wk, wa = {}, {}
  for j = 1, nk do wk[j] = KEYS[k + j] end
  for j = 1, na do wa[j] = ARGV[a + j] end
  k, a = k + nk, a + na
  local ok, res
  if kind == 'c' then
    local call = {wa[1]}
    for j = 1, nk do call[#call + 1] = wk[j] end
    for j = 2, na do call[#call + 1] = wa[j] end
    ok, res = pcall(redis.call, unpack(call))
  else
    ok, res = pcall(scripts[kind], wk, wa)
  end
  if ok then out[#out + 1] = res else out[#out + 1] = {err = tostring(type(res) == 'table' and res.err or res)} end
end
return out
