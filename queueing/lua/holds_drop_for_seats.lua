--[[ holds_drop_for_seats: the reconciler force-releases holds on seats the database
says are sold.

KEYS[1]       seatmap  hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[2..n+1]  seat:S   string  hold of seat S (same order as the seat ids in ARGV)
ARGV[1..n] seat ids

Reply: number of hold keys deleted.

No token check: the database is the judge, and a sold seat must not stay held by
anyone. The holders' sets are pruned lazily by seats_hold (their members no longer
carry the holder's token).

Why atomic: the map must say "s" at the moment the hold goes, or a hold request in
between would see a free seat and take it.
]]

local has_map = redis.call('EXISTS', KEYS[1]) == 1
local deleted = 0
for i = 1, #ARGV do
  deleted = deleted + redis.call('DEL', KEYS[i + 1])
  if has_map and redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], 's')
  end
end
return deleted
