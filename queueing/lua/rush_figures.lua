--[[ rush_figures: the staff dashboard's numbers at one moment (read only).

KEYS[1] waiting     zset
KEYS[2] active      zset    score pass expiry (ms)
KEYS[3] ctl         hash
KEYS[4] seatmap     hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[5] admissions  zset    per-second records "<s>:<admitted>:<waiting>:<active>"
ARGV[1] history window (s)

Reply: a JSON object {now_s, waiting, active, ctl: {...}, has_map (0/1), available,
        held, sold, history: [record, ...]}

Why a script: every figure must describe the same instant (a chart where active +
waiting jumps between two reads misleads staff), live passes and holds are judged by
the Redis clock, and it is one round trip for a page polled every second.
]]

--!include seat_counts

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_s = tonumber(t[1])

local ctl = {}
local flat = redis.call('HGETALL', KEYS[3])
for i = 1, #flat, 2 do ctl[flat[i]] = flat[i + 1] end

local available, held, sold = 0, 0, 0
local has_map = redis.call('EXISTS', KEYS[4])
if has_map == 1 then
  available, held, sold = seat_counts(KEYS[4], now_ms)
end

return cjson.encode({
  now_s = now_s,
  waiting = redis.call('ZCARD', KEYS[1]),
  active = redis.call('ZCOUNT', KEYS[2], '(' .. string.format('%d', now_ms), '+inf'),
  ctl = ctl,
  has_map = has_map,
  available = available,
  held = held,
  sold = sold,
  history = redis.call('ZRANGEBYSCORE', KEYS[5], now_s - tonumber(ARGV[1]) + 1, '+inf'),
})
