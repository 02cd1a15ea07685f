--[[ queue_status: a user's exact place in the waiting room (the only way to learn of a
pass), and a sign of life for the silent-waiter rule.

KEYS[1] waiting  zset    member user id, score arrival number
KEYS[2] active   zset    member user id, score pass expiry (ms)
KEYS[3] ctl      hash    sold_out, shuffled, preopen_last_seq
KEYS[4] seen     zset    member user id, score when the user last showed up (ms)
KEYS[5] review   zset    buyers held for staff review, score = arrival number
ARGV[1] user id

Reply: {state, position (0 = none), pass_expires_at_ms (0 = none),
        arrival number (0 = none), preopen (0/1), now_ms}
  state: "active" | "waiting" | "sold_out" | "review" (held for staff review) | "none"

Why a script: pass expiry is judged by the Redis clock, and the position, the pass and
the sold-out flag must come from one moment (a user must never read "waiting" after
being admitted by a run between two reads).
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user = ARGV[1]

local pass = redis.call('ZSCORE', KEYS[2], user)
if pass and tonumber(pass) > now_ms then
  return {'active', 0, tonumber(pass), 0, 0, now_ms}
end

local held = redis.call('ZSCORE', KEYS[5], user)
if held then
  redis.call('ZADD', KEYS[4], now_ms, user)
  return {'review', 0, 0, tonumber(held), 0, now_ms}
end

local sold_out = redis.call('HGET', KEYS[3], 'sold_out') == '1'
local rank = redis.call('ZRANK', KEYS[1], user)
if rank then
  local seq = tonumber(redis.call('ZSCORE', KEYS[1], user))
  local preopen = 0
  if redis.call('HGET', KEYS[3], 'shuffled') ~= '1'
      and seq <= tonumber(redis.call('HGET', KEYS[3], 'preopen_last_seq') or '0') then
    preopen = 1
  end
  redis.call('ZADD', KEYS[4], now_ms, user)
  return {sold_out and 'sold_out' or 'waiting', rank + 1, 0, seq, preopen, now_ms}
end
return {sold_out and 'sold_out' or 'none', 0, 0, 0, 0, now_ms}
