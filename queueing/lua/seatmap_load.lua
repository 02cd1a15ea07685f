--[[ seatmap_load: replace the whole seat map from the database's statuses.

KEYS[1]      seatmap          hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[2]      hold_expiries    zset    member seat id, score hold deadline (ms)
KEYS[3]      seatmap_version  string  the seat map's version
KEYS[4..n+3] seat:S           string  hold of seat S (same order as the seat ids in ARGV)
ARGV         seat id, status code ("a" | "s"), seat id, status code, ...

Reply: {seats written, version}

A seat the database calls available whose hold key is still set keeps
"h:<now + PTTL>" so a rebuild never shows a held seat as free; sold wins over a hold.
The version moves only when a seat's status (available / held / sold) differs from the
map being replaced, so the reconciler's periodic rebuild does not make every client
download an unchanged map again. A map built from nothing starts its version at the
current time in µs (ms x 1000): versions stay increasing across a Redis that lost its data, so an
old ETag can never match a new map.

Why atomic: DEL + HSET in one step, so no reader (the seat picker, the admission stop)
ever sees a missing or half-written map, and no hold taken meanwhile is lost.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local CHUNK = 500 -- stay far below Lua's unpack() stack limit

local function status(value)
  if value == nil or value == false then return nil end
  if value == 's' then return 's' end
  if string.sub(value, 1, 2) == 'h:' and tonumber(string.sub(value, 3)) >= now_ms then return 'h' end
  return 'a'
end

local old = {}
local old_count = 0
local old_flat = redis.call('HGETALL', KEYS[1])
for i = 1, #old_flat, 2 do
  old[old_flat[i]] = status(old_flat[i + 1])
  old_count = old_count + 1
end

redis.call('DEL', KEYS[1], KEYS[2])
local flat, expiries = {}, {}
local seats = #ARGV / 2
local changed = old_count ~= seats
for i = 1, seats do
  local seat_id = ARGV[2 * i - 1]
  local value = ARGV[2 * i]
  if value ~= 's' then
    local ttl = redis.call('PTTL', KEYS[i + 3])
    if ttl > 0 then
      local deadline = now_ms + ttl
      value = 'h:' .. string.format('%d', deadline)
      expiries[#expiries + 1] = deadline
      expiries[#expiries + 1] = seat_id
    end
  end
  if old[seat_id] ~= status(value) then changed = true end
  flat[#flat + 1] = seat_id
  flat[#flat + 1] = value
end
for i = 1, #flat, 2 * CHUNK do
  redis.call('HSET', KEYS[1], unpack(flat, i, math.min(i + 2 * CHUNK - 1, #flat)))
end
for i = 1, #expiries, 2 * CHUNK do
  redis.call('ZADD', KEYS[2], unpack(expiries, i, math.min(i + 2 * CHUNK - 1, #expiries)))
end

local version = tonumber(redis.call('GET', KEYS[3]) or '0')
if version == 0 then
  version = now_ms * 1000
  redis.call('SET', KEYS[3], string.format('%d', version))
elseif changed then
  version = redis.call('INCR', KEYS[3])
end
return {seats, version}
