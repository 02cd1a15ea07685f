--[[ seatmap_load: replace the whole seat map from the database's statuses.

KEYS[1]      seatmap   hash  seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[2..n+1] seat:S    string hold of seat S (same order as the seat ids in ARGV)
ARGV         seat id, status code ("a" | "s"), seat id, status code, ...

Reply: number of seats written.

A seat the database calls available whose hold key is still set keeps
"h:<now + PTTL>" so a rebuild never shows a held seat as free; sold wins over a hold.

Why atomic: DEL + HSET in one step, so no reader (the seat picker, the admission stop)
ever sees a missing or half-written map, and no hold taken meanwhile is lost.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local CHUNK = 500 -- stay far below Lua's unpack() stack limit

redis.call('DEL', KEYS[1])
local flat = {}
local seats = #ARGV / 2
for i = 1, seats do
  local seat_id = ARGV[2 * i - 1]
  local value = ARGV[2 * i]
  if value ~= 's' then
    local ttl = redis.call('PTTL', KEYS[i + 1])
    if ttl > 0 then
      value = 'h:' .. string.format('%d', now_ms + ttl)
    end
  end
  flat[#flat + 1] = seat_id
  flat[#flat + 1] = value
end
for i = 1, #flat, 2 * CHUNK do
  redis.call('HSET', KEYS[1], unpack(flat, i, math.min(i + 2 * CHUNK - 1, #flat)))
end
return seats
