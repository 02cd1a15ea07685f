--[[ holds_consume: after a booking committed, turn the user's holds into sold seats.

KEYS[1]       seatmap          hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[2]       holds:USER       set     seat ids + one "deadline:<ms>" marker
KEYS[3]       hold_expiries    zset    member seat id, score hold deadline (ms)
KEYS[4]       seatmap_version  string  the seat map's version
KEYS[5..n+4]  seat:S           string  hold of seat S (same order as the seat ids in ARGV)
ARGV[1] holder token (the user id)
ARGV[2] seat key prefix (prefix .. seat id == seat key; to count the holds left)
ARGV[3..] seat ids

Reply: number of hold keys deleted.

The database already says sold, so the map says "s" whoever holds the key; only the
user's own hold keys are deleted (compare token). With no hold left the user's set,
and with it the deadline, goes: a later purchase gets a fresh countdown.

Why atomic: compare-and-delete, the set and the map must change together, or a reader
could see a seat neither held nor sold and offer it again.
]]

local token = ARGV[1]
local prefix = ARGV[2]
local has_map = redis.call('EXISTS', KEYS[1]) == 1
local deleted, marked = 0, 0
for i = 3, #ARGV do
  local seat, key = ARGV[i], KEYS[i + 2]
  if redis.call('GET', key) == token then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[3], seat)
    deleted = deleted + 1
  end
  redis.call('SREM', KEYS[2], seat)
  if has_map then
    local current = redis.call('HGET', KEYS[1], seat)
    if current and current ~= 's' then
      redis.call('HSET', KEYS[1], seat, 's')
      marked = marked + 1
    end
  end
end
if marked > 0 then redis.call('INCR', KEYS[4]) end

for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not string.match(member, '^deadline:') and redis.call('GET', prefix .. member) == token then
    return deleted
  end
end
redis.call('DEL', KEYS[2])
return deleted
