--[[ pass_get: the expiry of a user's pass if it is still live (read only).

KEYS[1] active  zset  member user id, score pass expiry (ms)
ARGV[1] user id

Reply: pass expiry in ms, or 0 when there is no live pass.

Why a script: "live" is judged by the Redis clock (the same clock that set the expiry),
not by the web server's clock, in one round trip.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pass = redis.call('ZSCORE', KEYS[1], ARGV[1])
if pass and tonumber(pass) > now_ms then
  return tonumber(pass)
end
return 0
