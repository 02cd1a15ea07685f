--[[ holds_release: a user lets go of held seats (compare token).

KEYS[1]       seatmap          hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[2]       holds:USER       set     seat ids + one "deadline:<ms>" marker
KEYS[3]       hold_expiries    zset    member seat id, score hold deadline (ms)
KEYS[4]       seatmap_version  string  the seat map's version
KEYS[5..n+4]  seat:S           string  hold of seat S, for the listed seats (none in "all" mode)
ARGV[1] holder token (the user id)
ARGV[2] seat key prefix (prefix .. seat id == seat key; used in "all" mode)
ARGV[3] "all" (every seat in holds:USER) | "listed" (the seat ids below)
ARGV[4..] seat ids ("listed" mode)

Reply: number of holds released.

Only a seat key whose value is the token is deleted: a hold that expired and was
taken by someone else stays theirs. The deadline marker stays, so releasing and
holding again does not restart the countdown. The map turns "a" unless it says "s".

Why atomic: the compare and the delete must be one step (Sentry's delete_lock.lua), or
a hold expiring in between and re-taken by another user would be deleted.
]]

local token = ARGV[1]
local prefix = ARGV[2]
local seats, seat_keys = {}, {}
if ARGV[3] == 'all' then
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if not string.match(member, '^deadline:') then
      seats[#seats + 1] = member
      seat_keys[#seat_keys + 1] = prefix .. member
    end
  end
else
  for i = 4, #ARGV do
    seats[#seats + 1] = ARGV[i]
    seat_keys[#seat_keys + 1] = KEYS[i + 1]
  end
end

local has_map = redis.call('EXISTS', KEYS[1]) == 1
local released = 0
for i, seat in ipairs(seats) do
  if redis.call('GET', seat_keys[i]) == token then
    redis.call('DEL', seat_keys[i])
    redis.call('ZREM', KEYS[3], seat)
    released = released + 1
    if has_map then
      local current = redis.call('HGET', KEYS[1], seat)
      if current and current ~= 's' then redis.call('HSET', KEYS[1], seat, 'a') end
    end
  end
  redis.call('SREM', KEYS[2], seat)
end
if released > 0 and has_map then redis.call('INCR', KEYS[4]) end
return released
