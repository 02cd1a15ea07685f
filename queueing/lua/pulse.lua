--[[ pulse: the event's shared waiting-room state that every web process keeps for a
fraction of a second, plus the signs of life those processes collected meanwhile.

KEYS[1] ctl              hash    serving, sold_out, paused, shuffled
KEYS[2] seq              string  arrival counter (the last arrival number handed out)
KEYS[3] waiting          zset    member user id, score arrival number
KEYS[4] seen             zset    member user id, score when the user last showed up (ms)
KEYS[5] seatmap          hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[6] hold_expiries    zset    member seat id, score hold deadline (ms)
KEYS[7] seatmap_version  string the seat map's version
KEYS[8] admissions       zset    per-second records "<s>:<admitted>:<waiting>:<active>"
ARGV[1] rate window (s)  how far back admissions count for the rate
ARGV[2..] user ids seen polling (answered from the cursor) since the last pulse

Reply: {now_ms, serving, last_seq, waiting, sold_out (0/1), paused (0/1), shuffled (0/1),
        seatmap_version (0 = no seat map), admitted_in_window, window_start_s (0 = none)}

Why one script: the cursor, the line's length and the seat map version must describe
one moment (an estimate mixing two moments could put someone behind the cursor), lapsed
holds must be swept before the version is read (the version is the seat map's ETag),
and it is one round trip per web process a few times a second, whatever the crowd.
]]

--!include sweep_expired_holds

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_s = tonumber(t[1])
local CHUNK = 500

sweep_expired_holds(KEYS[5], KEYS[6], KEYS[7], now_ms)

-- Signs of life: XX keeps a user who left or was admitted meanwhile out of the set.
if #ARGV > 1 then
  local flat = {}
  for i = 2, #ARGV do
    flat[#flat + 1] = now_ms
    flat[#flat + 1] = ARGV[i]
  end
  for i = 1, #flat, 2 * CHUNK do
    redis.call('ZADD', KEYS[4], 'XX', unpack(flat, i, math.min(i + 2 * CHUNK - 1, #flat)))
  end
end

local serving, sold_out, paused, shuffled = unpack(redis.call('HMGET', KEYS[1], 'serving', 'sold_out', 'paused', 'shuffled'))
local version = 0
if redis.call('EXISTS', KEYS[5]) == 1 then
  version = tonumber(redis.call('GET', KEYS[7]) or '0')
end

local admitted, first = 0, 0
for _, record in ipairs(redis.call('ZRANGEBYSCORE', KEYS[8], now_s - tonumber(ARGV[1]) + 1, '+inf')) do
  local second, count = string.match(record, '^(%d+):(%d+):')
  admitted = admitted + tonumber(count)
  if first == 0 or tonumber(second) < first then first = tonumber(second) end
end

return {
  now_ms,
  tonumber(serving or '0'),
  tonumber(redis.call('GET', KEYS[2]) or '0'),
  redis.call('ZCARD', KEYS[3]),
  sold_out == '1' and 1 or 0,
  paused == '1' and 1 or 0,
  shuffled == '1' and 1 or 0,
  version,
  admitted,
  first,
}
