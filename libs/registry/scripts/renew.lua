-- Push the expiry of this process's live reservations forward (lock renewal); entries already gone stay gone.
-- KEYS: reservations
-- ARGV: expiresAtMs ttlMs jobId...
-- RETURNS: how many entries were renewed
local exp = ARGV[1]
local renewed = 0
for i = 3, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local model, mb = string.match(v, '^(.*)|(%d+)|%d+$')
    redis.call('HSET', KEYS[1], ARGV[i], model .. '|' .. mb .. '|' .. exp)
    renewed = renewed + 1
  end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 4)
return renewed
