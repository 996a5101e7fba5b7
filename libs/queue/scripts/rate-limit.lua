-- Sliding-log rate limit for one client: the times (ms, Redis' clock, so API replicas with skewed clocks agree) of
-- its requests in the last window. Exact: never more than `limit` requests in any window-long span. Memory: one
-- entry per counted request, at most `limit`. A refused request is not recorded, so hammering does not extend the wait.
-- KEYS: log
-- ARGV: windowMs limit
-- RETURNS: {'allowed', remaining, 0} or {'limited', 0, retryAfterMs}
local win = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
local c = redis.call('ZCARD', KEYS[1])
if c < limit then
  -- unique member: within one ms the count only grows (nothing that old is removed in between)
  redis.call('ZADD', KEYS[1], now, now .. ':' .. c)
  redis.call('PEXPIRE', KEYS[1], win)
  return {'allowed', limit - c - 1, 0}
end
-- allowed again once the (c - limit + 1) oldest requests have left the window
local e = redis.call('ZRANGE', KEYS[1], c - limit, c - limit, 'WITHSCORES')
return {'limited', 0, math.max(tonumber(e[2]) + win - now, 1)}
