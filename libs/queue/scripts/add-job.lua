-- Add an inference job in one call, where the API made two round trips (the index with BullMQ's add, then the wake):
-- Hydra's index of the job (and its session key) first, then BullMQ's own addPrioritizedJob (included as the pinned
-- BullMQ ships it; its keys and arguments built by BullMQ's own Job.addJob, producer.ts), then, only if BullMQ added
-- it, the wake of the first node named for it (or of every worker process). Redis runs it whole, so the woken node
-- finds the job there, as before. A resend after a lost reply finds BullMQ's duplicate id: the job stays as it was (the
-- index is written again, the same), and the wake goes out again, as it did when the wake was a command of its own.
-- KEYS: marker meta id prioritized delayed completed active events pc index...
-- ARGV: args data opts queue channel [value ttl]...
-- RETURNS: BullMQ's answer: the job id, or its negative code (a missing parent: nobody woken then)
-- @include addPrioritizedJob
for i = 10, #KEYS do
  local a = 6 + 2 * (i - 10)
  redis.call('SET', KEYS[i], ARGV[a], 'EX', ARGV[a + 1])
end
local r = addPrioritizedJob({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]}, {ARGV[1], ARGV[2], ARGV[3]})
if type(r) == 'number' and r < 0 then return r end
redis.call('PUBLISH', ARGV[5], ARGV[4])
return r
