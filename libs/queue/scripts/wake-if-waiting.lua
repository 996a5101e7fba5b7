-- The staggered wake of a new job (producer.ts `addInference`): the nodes named after the first are woken only while
-- the job still waits in its queue (BullMQ's prioritized set holds every waiting job Hydra adds: they all have a
-- priority). Taken by the first node, the job needs nobody else: woken anyway, each ran a dispatch round that found it
-- gone (a peek, ~0.5 ms of its CPU, on every job; bench/README.md "The hot path, fifth pass").
-- KEYS: prioritized
-- ARGV: jobId queue channel...
-- RETURNS: 'woken' (published on every channel) or 'taken' (not waiting: nothing published)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 'taken' end
for i = 3, #ARGV do redis.call('PUBLISH', ARGV[i], ARGV[2]) end
return 'woken'
