--[[ join_limit: counts one attempt (a proof-of-work challenge fetch) against the join
limits of lib/join_limit.lua, and records the account's device and address.

KEYS[1..7], ARGV[1..8]: as lib/join_limit.lua describes (keys and args from 1 on).

Reply: {refused_by ("" when allowed), retry_after_ms}.
]]

--!include join_limit

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local refused_by, retry_ms = join_limit(KEYS, 1, ARGV, 1, now_ms)
return {refused_by, retry_ms}
