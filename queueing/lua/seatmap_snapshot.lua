--[[ seatmap_snapshot: the whole seat map and its version, at one moment (read, after
the sweep of lapsed holds).

KEYS[1] seatmap          hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[2] hold_expiries    zset    member seat id, score hold deadline (ms)
KEYS[3] seatmap_version  string  the seat map's version

Reply: {version, now_ms, {seat id, value, seat id, value, ...}}  (version 0 and an empty
list when the map is missing)

Why a script: the body published under a version must be exactly the map at that
version; reading the version and the hash in two steps could pair a newer map with an
older version (two different bodies under one ETag). The sweep first, so a hold that
lapsed without a write has already moved the version.
]]

--!include sweep_expired_holds

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, now_ms, {}}
end
sweep_expired_holds(KEYS[1], KEYS[2], KEYS[3], now_ms)
return {tonumber(redis.call('GET', KEYS[3]) or '0'), now_ms, redis.call('HGETALL', KEYS[1])}
