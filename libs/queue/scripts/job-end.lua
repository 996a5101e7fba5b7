-- End a completed job in one call, where the worker made ten: BullMQ's own moveToFinished (included as the pinned
-- BullMQ ships it: the lock checked and released, the completed set and its retention, events, metrics), then, only if
-- BullMQ completed it, the token stream's end with its last tokens (stream-end.lua), the count retention of its side
-- keys (retire.lua), the node's memory reservation and the process's liveness entry for it, then the writes that ride
-- along (end-writes.lua: the job metrics, the node's speed figures, the activity entry, the history record, the done
-- message last). A run that lost its lock gets BullMQ's code and writes nothing. The stream's last tokens come first
-- among the repeated arguments (`tailCount` of them), the writes' arguments after them; the writes' keys follow the
-- fixed KEYS.
-- KEYS: wait active prioritized events stalled limiter delayed paused meta pc completed job metrics marker stream retired reservations liveJobs writeKey...
-- ARGV: jobId timestamp prop value target fetchNext prefix opts fields maxlen event data ttl cap batch token tailCount layout arg...
-- RETURNS: {code} (BullMQ's negative code: nothing written), or {0, 'ended' or 'already', retiredCount, retired jobId...,
--   reply of each write...} (a failed write's reply is its error)
-- @include moveToFinished
-- @include streamEnd
-- @include retire
-- @include endWrites
local r = moveToFinished({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14]},
  {ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]})
if type(r) == 'number' and r < 0 then return {r} end
local tailEnd = 18 + tonumber(ARGV[17])
local se = {ARGV[10], ARGV[11], ARGV[12], ARGV[13]}
for i = 19, tailEnd do se[#se + 1] = ARGV[i] end
local ended = streamEnd({KEYS[15]}, se)
local gone = retire({KEYS[16]}, {ARGV[1], ARGV[14], ARGV[15]})
redis.call('HDEL', KEYS[17], ARGV[16])
redis.call('HDEL', KEYS[18], ARGV[1])
local out = {0, ended, #gone}
for i = 1, #gone do out[#out + 1] = gone[i] end
local wk, wa = {}, {ARGV[18]}
for i = 19, #KEYS do wk[#wk + 1] = KEYS[i] end
for i = tailEnd + 1, #ARGV do wa[#wa + 1] = ARGV[i] end
local replies = endWrites(wk, wa)
for i = 1, #replies do out[#out + 1] = replies[i] end
return out
