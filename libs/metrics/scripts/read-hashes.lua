-- Read several hashes in one call (a scrape's stored metrics, the cache counters, the nodes' reservations): cheaper
-- for the caller than a pipeline of HGETALLs, which costs a client-side pipeline object per scrape.
-- KEYS: hash...
-- ARGV: (none)
-- RETURNS: one flat field/value array per key, in order (empty for a missing key)
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end
return out
