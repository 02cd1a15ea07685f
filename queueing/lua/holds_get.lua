--[[ holds_get: a user's live holds and their shared deadline (read only).

KEYS[1] holds:USER  set  seat ids + one "deadline:<ms>" marker
ARGV[1] holder token (the user id)
ARGV[2] seat key prefix (prefix .. seat id == seat key; the members are not known to
        the caller in advance)

Reply: {deadline_ms (0 = none), seat id, ...}  only seats whose key still carries the token

Why a script: membership alone is not proof of a hold (it may have expired or been
dropped by the reconciler); each seat key must be checked at the same moment.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = 0
local seats = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local marked = string.match(member, '^deadline:(%d+)$')
  if marked then
    deadline = tonumber(marked)
  elseif redis.call('GET', ARGV[2] .. member) == ARGV[1] then
    seats[#seats + 1] = member
  end
end
if deadline <= now_ms then return {0} end
local reply = {deadline}
for _, id in ipairs(seats) do reply[#reply + 1] = id end
return reply
