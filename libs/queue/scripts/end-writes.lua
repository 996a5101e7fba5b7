-- The writes a job's end makes beside BullMQ's own (libs/queue/end-write.ts `EndWrite`): the node's speed figures, the
-- job metrics, the activity entry, the history record, the done message. Included by job-end.lua, where they run only
-- once BullMQ completed the job; called on its own after a final failure (BullMQ's moveToFailed comes first there).
-- `layout`: ",kind:nkeys:nargs" per write: kind c (a command: its name, then its keys, then the rest of its arguments),
-- m (jobMetrics) or p (nodePerf); each write's keys and arguments follow in turn. A write that fails is answered with
-- its error and the ones after it still run (each in pcall).
-- KEYS: writeKey...
-- ARGV: layout arg...
-- RETURNS: the reply of each write, in order (a failed write's is its error)
-- @include jobMetrics
-- @include nodePerf
local scripts = {m = jobMetrics, p = nodePerf}
local out = {}
local k, a = 0, 1
for kind, nk, na in string.gmatch(ARGV[1], ',(%a):(%d+):(%d+)') do
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
