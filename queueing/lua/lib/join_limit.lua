-- lib/join_limit: sliding-window limits on join attempts per account, device and address,
-- and the record of which accounts tried from which device and address (the staff's
-- "suspicious" panel). Included by join_limit.lua (a challenge fetch) and queue_join.lua
-- (the join itself, in the same step as the place is taken: one round trip).
--
-- keys: 7 key names from `first` on:
--   attempts of the account, of the device, of the address (zsets: one member per
--   attempt, score = ms); accounts of the device (set), accounts per device (zset:
--   device -> accounts), accounts of the address (set), accounts per address (zset)
-- args: 8 values from `first` on: window ms (0: no limits at all), account limit, user
--   id, device limit (0: no device known), device id, address limit (0: no address
--   known), address, a random nonce (the attempt's member in the windows)
--
-- Returns refused_by ("" when allowed) and retry_after_ms. An attempt over any limit is
-- refused and not counted (a refused script can't extend its own ban); an allowed one is
-- counted in every window that applies. A sliding log, not fixed buckets: no burst of
-- twice the limit across a bucket edge.
local function join_limit(keys, kfirst, args, afirst, now_ms)
  local window = tonumber(args[afirst])
  if window == 0 then return '', 0 end
  local user = args[afirst + 2]
  local checks = {
    {keys[kfirst], tonumber(args[afirst + 1]), 'account'},
    {keys[kfirst + 1], tonumber(args[afirst + 3]), 'device'},
    {keys[kfirst + 2], tonumber(args[afirst + 5]), 'address'},
  }
  for _, check in ipairs(checks) do
    local key, limit, name = check[1], check[2], check[3]
    if limit > 0 then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window)
      if redis.call('ZCARD', key) >= limit then
        local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        return name, math.max(1, tonumber(oldest[2]) + window - now_ms)
      end
    end
  end
  local member = now_ms .. ':' .. args[afirst + 7]
  for _, check in ipairs(checks) do
    if check[2] > 0 then
      redis.call('ZADD', check[1], now_ms, member)
      redis.call('PEXPIRE', check[1], window)
    end
  end
  if tonumber(args[afirst + 3]) > 0 and redis.call('SADD', keys[kfirst + 3], user) == 1 then
    redis.call('ZINCRBY', keys[kfirst + 4], 1, args[afirst + 4])
  end
  if tonumber(args[afirst + 5]) > 0 and redis.call('SADD', keys[kfirst + 5], user) == 1 then
    redis.call('ZINCRBY', keys[kfirst + 6], 1, args[afirst + 6])
  end
  return '', 0
end
