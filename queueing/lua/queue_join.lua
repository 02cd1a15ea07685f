--[[ queue_join: put a user in the waiting queue (idempotent) and report their place.

KEYS[1] seq         string  INCR counter of arrivals
KEYS[2] waiting     zset    member user id, score arrival seq
KEYS[3] active      zset    member user id, score pass expiry (ms)
KEYS[4] ctl         hash    sold_out, shuffled, preopen_last_seq
KEYS[5] admissions  zset    per-second admission records "<s>:<admitted>:<waiting>:<active>"
ARGV[1] user id
ARGV[2] sales_open_at_ms    an arrival before this (Redis clock) is a pre-opening arrival
ARGV[3] rate window (s)     how far back admissions count for the ETA

Reply: {state, position (0 = none), pass_expires_at_ms (0 = none), newly_joined (0/1),
        admitted_in_window, window_start_s (0 = no record), now_s}
  state: "active" (live pass), "waiting", "sold_out" (not added, or waiting while sold out)

Why atomic: the check "already active / already waiting / sold out" and the
INCR + ZADD NX must be one step, or two tabs of one user could both take a number, and
a burst of joins could interleave INCR and ZADD so positions would not match arrival
order. The admission-rate read rides along so the ETA needs no second round trip.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_s = tonumber(t[1])
local user = ARGV[1]

local function rate_window()
  local records = redis.call('ZRANGEBYSCORE', KEYS[5], now_s - tonumber(ARGV[3]) + 1, '+inf')
  local admitted, first = 0, 0
  for _, record in ipairs(records) do
    local second, count = string.match(record, '^(%d+):(%d+):')
    admitted = admitted + tonumber(count)
    if first == 0 or tonumber(second) < first then first = tonumber(second) end
  end
  return admitted, first
end

local sold_out = redis.call('HGET', KEYS[4], 'sold_out') == '1'

local pass = redis.call('ZSCORE', KEYS[3], user)
if pass and tonumber(pass) > now_ms then
  local admitted, first = rate_window()
  return {'active', 0, tonumber(pass), 0, admitted, first, now_s}
end

local rank = redis.call('ZRANK', KEYS[2], user)
if rank then
  -- Already in line: same place. Sold out is reported but the place is kept, so a
  -- cancellation that frees seats lets the line move on in order.
  local admitted, first = rate_window()
  return {sold_out and 'sold_out' or 'waiting', rank + 1, 0, 0, admitted, first, now_s}
end

if sold_out then
  local admitted, first = rate_window()
  return {'sold_out', 0, 0, 0, admitted, first, now_s}
end

local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], 'NX', seq, user)
if now_ms < tonumber(ARGV[2]) and redis.call('HGET', KEYS[4], 'shuffled') ~= '1' then
  -- Seqs are handed out in increasing order inside atomic scripts, so the last one
  -- written is the highest pre-opening seq.
  redis.call('HSET', KEYS[4], 'preopen_last_seq', seq)
end
rank = redis.call('ZRANK', KEYS[2], user)
local admitted, first = rate_window()
return {'waiting', rank + 1, 0, 1, admitted, first, now_s}
