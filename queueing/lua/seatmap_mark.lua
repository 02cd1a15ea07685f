--[[ seatmap_mark: mark seats sold or available after a database change.

KEYS[1] seatmap          hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[2] hold_expiries    zset    member seat id, score hold deadline (ms)
KEYS[3] seatmap_version  string  the seat map's version
ARGV[1] "s" (sold) | "a" (available)
ARGV[2..] seat ids

Reply: number of seats changed.

Only seats already in the map are touched, and nothing is written when the map is
missing (a partial map would pass for a complete one; the next reader rebuilds it from
the database). "a" does not overwrite a live hold ("h:" not yet expired).

Why a script: the existence check, the read of the current value and the write must be
one step, or a concurrent rebuild or hold could be overwritten.
]]

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local changed = 0
for i = 2, #ARGV do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current and current ~= ARGV[1] then
    local live_hold = string.sub(current, 1, 2) == 'h:' and tonumber(string.sub(current, 3)) >= now_ms
    if ARGV[1] == 's' or not live_hold then
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
      redis.call('ZREM', KEYS[2], ARGV[i])
      changed = changed + 1
    end
  end
end
if changed > 0 then redis.call('INCR', KEYS[3]) end
return changed
