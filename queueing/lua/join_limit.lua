--[[ join_limit: sliding-window limits on join attempts per account, device and address,
and the record of which accounts tried from which device and address (the staff's
"suspicious" panel).

KEYS[1] attempts of the account   zset  one member per attempt, score = ms
KEYS[2] attempts of the device    zset  (any key of the event when ARGV[4] is 0)
KEYS[3] attempts of the address   zset  (any key of the event when ARGV[6] is 0)
KEYS[4] accounts of the device    set
KEYS[5] accounts per device       zset  device -> number of accounts
KEYS[6] accounts of the address   set
KEYS[7] accounts per address      zset  address -> number of accounts
ARGV[1] window ms
ARGV[2] account limit   ARGV[3] user id
ARGV[4] device limit (0: no device known)    ARGV[5] device id
ARGV[6] address limit (0: no address known)  ARGV[7] address
ARGV[8] a random nonce: the attempt's member in the windows

Reply: {refused_by ("" when allowed), retry_after_ms}. An attempt over any limit is
refused and not counted (a refused script can't extend its own ban); an allowed one is
counted in all three windows. A sliding log, not fixed buckets: no burst of twice the
limit across a bucket edge.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local checks = {
  {KEYS[1], tonumber(ARGV[2]), 'account'},
  {KEYS[2], tonumber(ARGV[4]), 'device'},
  {KEYS[3], tonumber(ARGV[6]), 'address'},
}

for _, check in ipairs(checks) do
  local key, limit, name = check[1], check[2], check[3]
  if limit > 0 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window)
    if redis.call('ZCARD', key) >= limit then
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      return {name, math.max(1, tonumber(oldest[2]) + window - now_ms)}
    end
  end
end

local member = now_ms .. ':' .. ARGV[8]
for _, check in ipairs(checks) do
  if check[2] > 0 then
    redis.call('ZADD', check[1], now_ms, member)
    redis.call('PEXPIRE', check[1], window)
  end
end
if tonumber(ARGV[4]) > 0 and redis.call('SADD', KEYS[4], ARGV[3]) == 1 then
  redis.call('ZINCRBY', KEYS[5], 1, ARGV[5])
end
if tonumber(ARGV[6]) > 0 and redis.call('SADD', KEYS[6], ARGV[3]) == 1 then
  redis.call('ZINCRBY', KEYS[7], 1, ARGV[7])
end
return {'', 0}
