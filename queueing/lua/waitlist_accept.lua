--[[ waitlist_accept: the seats of an accepted waiting-list offer become the buyer's holds.

KEYS[1]       seatmap          hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[2]       holds:USER       set     seat ids held + one "deadline:<ms>" marker
KEYS[3]       hold_expiries    zset    member seat id, score hold deadline (ms)
KEYS[4]       seatmap_version  string  the seat map's version
KEYS[5]       wl:pool          zset    the waiting list's seats not offered yet
KEYS[6..n+5]  seat:S           string  hold of seat S (same order as the seat ids in ARGV)
ARGV[1] holder token (the user id)
ARGV[2] hold length in ms (a fresh countdown to pay)
ARGV[3] seat key prefix
ARGV[4..n+3] seat ids

Reply: {"ok", deadline_ms, held seat id, ...}   every seat the user holds now
       {"err", "seat_unavailable", seat id, ...}  seats someone else holds

Called inside the database transaction that flips the offer to accepted (it rolls back
on an error). A seat key still carrying the list's token "w" (or gone: Redis lost it) is
handed over; a seat somebody else holds is not taken from them.

Why atomic: the check and the hand-over must be one step, as in seats_hold.lua.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token = ARGV[1]
local hold_ms = tonumber(ARGV[2])
local prefix = ARGV[3]
local first_seat_arg = 4
local seat_count = #ARGV - first_seat_arg + 1

local taken = {'err', 'seat_unavailable'}
for i = 1, seat_count do
  local holder = redis.call('GET', KEYS[5 + i])
  if holder and holder ~= 'w' and holder ~= token then taken[#taken + 1] = ARGV[first_seat_arg + i - 1] end
end
if #taken > 2 then return taken end

local live = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if string.match(member, '^deadline:') then
    redis.call('SREM', KEYS[2], member)
  elseif redis.call('GET', prefix .. member) == token then
    live[#live + 1] = member
  else
    redis.call('SREM', KEYS[2], member)
  end
end

local deadline = now_ms + hold_ms
local map_value = 'h:' .. string.format('%d', deadline)
redis.call('SADD', KEYS[2], 'deadline:' .. string.format('%d', deadline))
for i = 1, seat_count do
  local seat = ARGV[first_seat_arg + i - 1]
  redis.call('SET', KEYS[5 + i], token, 'PX', hold_ms)
  redis.call('SADD', KEYS[2], seat)
  redis.call('HSET', KEYS[1], seat, map_value)
  redis.call('ZADD', KEYS[3], deadline, seat)
  redis.call('ZREM', KEYS[5], seat)
  live[#live + 1] = seat
end
redis.call('INCR', KEYS[4])
redis.call('PEXPIREAT', KEYS[2], deadline)

local reply = {'ok', deadline}
for _, id in ipairs(live) do reply[#reply + 1] = id end
return reply
