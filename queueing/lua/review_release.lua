--[[ review_release: staff let the accounts of one device or address through review.

KEYS[1] review          zset    buyers held for review, score = arrival number
KEYS[2] waiting         zset    member user id, score arrival number
KEYS[3] seen            zset    member user id, score when the user last showed up (ms)
KEYS[4] review_sources  hash    source -> "held" | "cleared"
KEYS[5] accounts        set     the accounts that tried to join from this source
ARGV[1] source name     "device:<id>" | "address:<ip>"

Reply: the user ids that went back in line (for the audit: exactly these, read in the same
atomic step).

Each held account of the source goes back in line with the arrival number it had (0 for
one who had been admitted: at the head), so it is admitted as if never held; it counts
as seen now, or the silent-waiter rule would drop it for the time it waited for staff.
The source is marked "cleared": accounts that join from it later are not held again.

Why atomic: a join from the same source between reading the review set and marking the
source cleared would be held after the release and stay held.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[4], ARGV[1], 'cleared')
local released = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local seq = redis.call('ZSCORE', KEYS[1], member)
  if seq then
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZADD', KEYS[2], 'NX', seq, member)
    redis.call('ZADD', KEYS[3], now_ms, member)
    released[#released + 1] = member
  end
end
return released
