--[[ seats_hold: hold all requested seats for a user, or none.

KEYS[1]       active           zset    member user id, score pass expiry (ms)
KEYS[2]       seatmap          hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[3]       holds:USER       set     seat ids held + one "deadline:<ms>" marker; PEXPIREAT deadline
KEYS[4]       hold_expiries    zset    member seat id, score hold deadline (ms)
KEYS[5]       seatmap_version  string  the seat map's version (moves when a seat is taken)
KEYS[6]       wl:gate          string  present while the waiting list takes every seat that comes back
KEYS[7..n+6]  seat:S           string  hold of seat S (same order as the seat ids in ARGV)
ARGV[1] holder token (the user id)
ARGV[2] hold length in ms (used only when the user has no live deadline)
ARGV[3] per-user cap (seats held at once)
ARGV[4] seat key prefix (prefix .. seat id == seat key; to look at the user's
        existing holds, which the caller cannot list in KEYS without a read first)
ARGV[5..n+4] seat ids, no duplicates

Reply: {"ok", deadline_ms, held seat id, ...}   every seat the user holds now
       {"err", code, seat id, ...}             code: not_admitted | no_seatmap |
          invalid_seats (unknown ids) | seat_unavailable (taken ids) |
          limit_exceeded (the seats that would be new)

While the waiting list's gate is up, no seat that is free now can be held: it is on its
way to the first buyer on the waiting list (booking.waiting_list takes it at its next
tick). A seat the user already holds stays theirs.

Deadline: the first hold sets it (now + hold length); while it is live, later holds
get the same one, and a seat already held is not extended, so clicking again never
resets the countdown.

Why atomic: checking that every seat is free and taking them all must be one step, or
two users could each take part of the other's selection (or the same seat); the cap
count, the seat map, its version and the expiry index must agree with the keys set.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token = ARGV[1]
local hold_ms = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local prefix = ARGV[4]
local first_seat_arg = 5
local seat_count = #ARGV - first_seat_arg + 1

local function err(code, ids)
  local reply = {'err', code}
  for _, id in ipairs(ids or {}) do reply[#reply + 1] = id end
  return reply
end

local pass = redis.call('ZSCORE', KEYS[1], token)
if not pass or tonumber(pass) <= now_ms then return err('not_admitted') end

if redis.call('EXISTS', KEYS[2]) == 0 then return err('no_seatmap') end

local seat_ids = {}
for i = 1, seat_count do seat_ids[i] = ARGV[first_seat_arg + i - 1] end
local map_values = redis.call('HMGET', KEYS[2], unpack(seat_ids))

local invalid = {}
for i = 1, seat_count do
  if not map_values[i] then invalid[#invalid + 1] = seat_ids[i] end
end
if #invalid > 0 then return err('invalid_seats', invalid) end

-- The seat key is the lock; the map only adds "sold" (a sold seat has no key).
local taken, new_seats = {}, {}
for i = 1, seat_count do
  local holder = redis.call('GET', KEYS[6 + i])
  if map_values[i] == 's' or (holder and holder ~= token) then
    taken[#taken + 1] = seat_ids[i]
  elseif not holder then
    new_seats[#new_seats + 1] = i
  end
end
if #taken > 0 then return err('seat_unavailable', taken) end
if #new_seats > 0 and redis.call('EXISTS', KEYS[6]) == 1 then
  local ids = {}
  for _, i in ipairs(new_seats) do ids[#ids + 1] = seat_ids[i] end
  return err('seat_unavailable', ids)
end

-- Prune members whose hold expired or was dropped, and find the live deadline.
local deadline, marker, live = 0, nil, {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local marked = string.match(member, '^deadline:(%d+)$')
  if marked then
    deadline, marker = tonumber(marked), member
  elseif redis.call('GET', prefix .. member) == token then
    live[#live + 1] = member
  else
    redis.call('SREM', KEYS[3], member)
  end
end

if #live + #new_seats > cap then
  local ids = {}
  for _, i in ipairs(new_seats) do ids[#ids + 1] = seat_ids[i] end
  return err('limit_exceeded', ids)
end

if deadline <= now_ms then
  if marker then redis.call('SREM', KEYS[3], marker) end
  deadline = now_ms + hold_ms
  redis.call('SADD', KEYS[3], 'deadline:' .. string.format('%d', deadline))
end
local ttl = deadline - now_ms
local map_value = 'h:' .. string.format('%d', deadline)
for _, i in ipairs(new_seats) do
  redis.call('SET', KEYS[6 + i], token, 'PX', ttl, 'NX')
  redis.call('SADD', KEYS[3], seat_ids[i])
  redis.call('HSET', KEYS[2], seat_ids[i], map_value)
  redis.call('ZADD', KEYS[4], deadline, seat_ids[i])
  live[#live + 1] = seat_ids[i]
end
if #new_seats > 0 then redis.call('INCR', KEYS[5]) end
redis.call('PEXPIREAT', KEYS[3], deadline)

local reply = {'ok', deadline}
for _, id in ipairs(live) do reply[#reply + 1] = id end
return reply
