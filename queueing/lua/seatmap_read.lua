--[[ seatmap_read: the seat map with the Redis clock (read only).

KEYS[1] seatmap  hash  seat id -> "a" | "s" | "h:<expiry_ms>"

Reply: {now_ms, {seat id, value, seat id, value, ...}}  (empty list: no map)

Why a script: a held seat turns available when its expiry passes on the Redis clock,
which is the clock that set it; reading TIME and the hash together (one round trip)
lets the caller decide without trusting its own clock and without any write.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {now_ms, redis.call('HGETALL', KEYS[1])}
