--[[ queue_status: a user's place in the waiting room (read only).

KEYS[1] waiting     zset    member user id, score arrival seq
KEYS[2] active      zset    member user id, score pass expiry (ms)
KEYS[3] ctl         hash    sold_out
KEYS[4] admissions  zset    per-second admission records "<s>:<admitted>:<waiting>:<active>"
ARGV[1] user id
ARGV[2] rate window (s)

Reply: {state, position (0 = none), pass_expires_at_ms (0 = none), 0,
        admitted_in_window, window_start_s (0 = no record), now_s}
  state: "active" | "waiting" | "sold_out" | "none"

Why a script: pass expiry is judged by the Redis clock, and the position, the sold-out
flag and the admission rate must come from one moment (a user must never read
"waiting" after being admitted by a run between two reads).
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_s = tonumber(t[1])
local user = ARGV[1]

local records = redis.call('ZRANGEBYSCORE', KEYS[4], now_s - tonumber(ARGV[2]) + 1, '+inf')
local admitted, first = 0, 0
for _, record in ipairs(records) do
  local second, count = string.match(record, '^(%d+):(%d+):')
  admitted = admitted + tonumber(count)
  if first == 0 or tonumber(second) < first then first = tonumber(second) end
end

local pass = redis.call('ZSCORE', KEYS[2], user)
if pass and tonumber(pass) > now_ms then
  return {'active', 0, tonumber(pass), 0, admitted, first, now_s}
end

local sold_out = redis.call('HGET', KEYS[3], 'sold_out') == '1'
local rank = redis.call('ZRANK', KEYS[1], user)
if rank then
  return {sold_out and 'sold_out' or 'waiting', rank + 1, 0, 0, admitted, first, now_s}
end
return {sold_out and 'sold_out' or 'none', 0, 0, 0, admitted, first, now_s}
