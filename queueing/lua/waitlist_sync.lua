--[[ waitlist_sync: the Redis side of one waiting-list tick (booking.waiting_list).

KEYS[1] wl:gate          string  present while the list takes every seat that comes back
KEYS[2] wl:pool          zset    seats taken back and not offered yet, score = when back (ms)
KEYS[3] seatmap          hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[4] hold_expiries    zset    member seat id, score hold deadline (ms)
KEYS[5] seatmap_version  string  the seat map's version
ARGV[1] "open" | "closed"   whether the list takes returned seats now
ARGV[2] ttl (ms) of the list's seat keys and of the gate; refreshed every tick
ARGV[3] "now" of the caller (ms): the score of seats that come back in this tick
ARGV[4] seat key prefix (prefix .. seat id == seat key)
ARGV[5] n: how many seat ids follow that are out on offers (kept the list's)
ARGV[6 .. n+5]  seats out on offers
ARGV[n+6 ..]    seats whose offer just ended (declined, expired, withdrawn): back to the pool

Reply: the pool, flat: seat id, when back (ms), ...

The list is one more holder: its seats have a seat key with the token "w" (a user's
token is a number) and read "h:<deadline>" in the map, so every other script (holds,
the sweep, a rebuild) treats them as held. Open: the gate is up (seats_hold.lua holds no
newly free seat), every free seat goes into the pool, pool and offered seats are kept.
Closed (list empty, paused, sales over): the gate is down and the pool's seats are free
again. Seats stay the list's for at most the ttl when ticks stop (no worker): then the
sale simply takes them back.

Why atomic: taking a free seat must be one step with checking that nobody holds it, or a
buyer's hold taken in between would be overwritten.
]]
--!include sweep_expired_holds

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open = ARGV[1] == 'open'
local ttl = tonumber(ARGV[2])
local returned_at = ARGV[3]
local prefix = ARGV[4]
local offered_count = tonumber(ARGV[5])
local deadline = now_ms + ttl
local map_value = 'h:' .. string.format('%d', deadline)
local changed = 0

sweep_expired_holds(KEYS[3], KEYS[4], KEYS[5], now_ms)

local function is_free(value)
  if value == 'a' then return true end
  return value and string.sub(value, 1, 2) == 'h:' and tonumber(string.sub(value, 3)) < now_ms
end

-- Makes (or keeps) a seat the list's. A seat the map calls sold is left as it is.
local function take(seat)
  local old = redis.call('HGET', KEYS[3], seat)
  if not old or old == 's' then return false end
  redis.call('SET', prefix .. seat, 'w', 'PX', ttl)
  if is_free(old) then changed = changed + 1 end
  redis.call('HSET', KEYS[3], seat, map_value)
  redis.call('ZADD', KEYS[4], deadline, seat)
  return true
end

local function ours(seat)
  local holder = redis.call('GET', prefix .. seat)
  return not holder or holder == 'w'
end

-- An offered seat keeps its key; it leaves the pool when its offer commits (the caller's
-- ZREM). Should it still be pooled, the database refuses to offer it again.
for i = 6, 5 + offered_count do
  local seat = ARGV[i]
  if ours(seat) then take(seat) end
end
for i = 6 + offered_count, #ARGV do
  local seat = ARGV[i]
  if ours(seat) and take(seat) then redis.call('ZADD', KEYS[2], returned_at, seat) end
end

if open then
  redis.call('SET', KEYS[1], '1', 'PX', ttl)
  for _, seat in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if not (ours(seat) and take(seat)) then redis.call('ZREM', KEYS[2], seat) end
  end
  local flat = redis.call('HGETALL', KEYS[3])
  for i = 1, #flat, 2 do
    local seat = flat[i]
    if is_free(flat[i + 1]) and redis.call('EXISTS', prefix .. seat) == 0 then
      take(seat)
      redis.call('ZADD', KEYS[2], 'NX', returned_at, seat)
    end
  end
else
  redis.call('DEL', KEYS[1])
  for _, seat in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if redis.call('GET', prefix .. seat) == 'w' then
      redis.call('DEL', prefix .. seat)
      redis.call('ZREM', KEYS[4], seat)
      if redis.call('HGET', KEYS[3], seat) ~= 's' then
        redis.call('HSET', KEYS[3], seat, 'a')
        changed = changed + 1
      end
    end
  end
  redis.call('DEL', KEYS[2])
end

if changed > 0 then redis.call('INCR', KEYS[5]) end
return redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
