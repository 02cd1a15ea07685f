--[[ holds_drop_for_seats: the reconciler force-releases holds on seats the database
says are sold.

KEYS[1]       seatmap          hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[2]       hold_expiries    zset    member seat id, score hold deadline (ms)
KEYS[3]       seatmap_version  string  the seat map's version
KEYS[4..n+3]  seat:S           string  hold of seat S (same order as the seat ids in ARGV)
ARGV[1..n] seat ids

Reply: number of hold keys deleted.

No token check: the database is the judge, and a sold seat must not stay held by
anyone. The holders' sets are pruned lazily by seats_hold (their members no longer
carry the holder's token).

Why atomic: the map must say "s" at the moment the hold goes, or a hold request in
between would see a free seat and take it.
]]

local has_map = redis.call('EXISTS', KEYS[1]) == 1
local deleted, marked = 0, 0
for i = 1, #ARGV do
  deleted = deleted + redis.call('DEL', KEYS[i + 3])
  redis.call('ZREM', KEYS[2], ARGV[i])
  if has_map then
    local current = redis.call('HGET', KEYS[1], ARGV[i])
    if current and current ~= 's' then
      redis.call('HSET', KEYS[1], ARGV[i], 's')
      marked = marked + 1
    end
  end
end
if marked > 0 then redis.call('INCR', KEYS[3]) end
return deleted
