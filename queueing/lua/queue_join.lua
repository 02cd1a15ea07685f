--[[ queue_join: put a user in the waiting line (idempotent) and report their place.

KEYS[1] seq      string  INCR counter of arrivals
KEYS[2] waiting  zset    member user id, score arrival number
KEYS[3] active   zset    member user id, score pass expiry (ms)
KEYS[4] ctl      hash    sold_out, shuffled, preopen_last_seq
KEYS[5] seen     zset    member user id, score when the user last showed up (ms)
KEYS[6] blocked  set     users staff took off this line: never added again
KEYS[7] pow      string  the proof-of-work solution's single-use marker (any key of the
                         event when ARGV[4] is 0)
ARGV[1] user id
ARGV[2] sales_open_at_ms    an arrival before this (Redis clock) is a pre-opening arrival
ARGV[3] pow: "off", "required" (none given) or "given" (KEYS[7] names it)
ARGV[4] ms the solution stays valid (the marker's TTL) when given
KEYS[8..14], ARGV[5..12]: the join limits, as lib/join_limit.lua describes (ARGV[5] = 0:
                          no limits); counted for newcomers only
KEYS[15] review          zset  buyers held for staff review, score = arrival number
KEYS[16] review_sources  hash  "device:<id>" / "address:<ip>" -> "held" | "cleared"
ARGV[13] review threshold: once this many accounts tried to join from one device or
         address (the join limits' record, KEYS[11] / KEYS[13]), all of them are held for
         review (0 = never)

Reply: {state, position (0 = none), pass_expires_at_ms (0 = none), newly_joined (0/1),
        arrival number (0 = none), preopen (0/1), now_ms, limit, admitted_held}
  state: "active" (live pass), "waiting", "sold_out" (not added, or waiting while sold out),
         "blocked" (taken off this line by staff), "pow_required" (a newcomer without a
         solution), "pow_replayed" (the solution was already spent), "limited" (over a
         join limit: limit = which one, pass_expires_at_ms = ms until it may try again),
         "review" (held for staff review: out of the line, the place kept)
  admitted_held: buyers this join held for review who had a pass (the caller releases
         their seat holds)
  preopen: the arrival number will be re-dealt by the opening shuffle (not drawn yet)

Why atomic: the check "already active / already waiting / sold out" and the
INCR + ZADD NX must be one step, or two tabs of one user could both take a number, and
a burst of joins could interleave INCR and ZADD so positions would not match arrival
order. The solution is spent in the same step as the place is taken: someone already in
line spends nothing (a reload keeps the place), a replayed solution never takes one.
]]

--!include join_limit
--!include review_hold

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user = ARGV[1]


local function preopen(seq)
  if redis.call('HGET', KEYS[4], 'shuffled') == '1' then return 0 end
  local last = tonumber(redis.call('HGET', KEYS[4], 'preopen_last_seq') or '0')
  return (seq <= last) and 1 or 0
end

if redis.call('SISMEMBER', KEYS[6], user) == 1 then
  return {'blocked', 0, 0, 0, 0, 0, now_ms}
end

local sold_out = redis.call('HGET', KEYS[4], 'sold_out') == '1'

local pass = redis.call('ZSCORE', KEYS[3], user)
if pass and tonumber(pass) > now_ms then
  return {'active', 0, tonumber(pass), 0, 0, 0, now_ms}
end

local held = redis.call('ZSCORE', KEYS[15], user)
if held then
  return {'review', 0, 0, 0, tonumber(held), 0, now_ms}
end

local rank = redis.call('ZRANK', KEYS[2], user)
if rank then
  -- Already in line: same place (sold out is reported but the place is kept, so a
  -- cancellation that frees seats lets the line move on in order).
  local seq = tonumber(redis.call('ZSCORE', KEYS[2], user))
  redis.call('ZADD', KEYS[5], now_ms, user)
  return {sold_out and 'sold_out' or 'waiting', rank + 1, 0, 0, seq, preopen(seq), now_ms}
end

if sold_out then
  return {'sold_out', 0, 0, 0, 0, 0, now_ms}
end

-- Only a newcomer's attempt counts against the limits: a re-join by someone already in
-- line (or admitted) changes nothing and costs no more than a poll.
local limited_by, retry_ms = join_limit(KEYS, 8, ARGV, 5, now_ms)
if limited_by ~= '' then
  return {'limited', 0, retry_ms, 0, 0, 0, now_ms, limited_by}
end

if ARGV[3] == 'required' then
  return {'pow_required', 0, 0, 0, 0, 0, now_ms}
end
if ARGV[3] == 'given' and not redis.call('SET', KEYS[7], user, 'NX', 'PX', math.max(1, tonumber(ARGV[4]))) then
  return {'pow_replayed', 0, 0, 0, 0, 0, now_ms}
end

local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], 'NX', seq, user)
redis.call('ZADD', KEYS[5], now_ms, user)
if now_ms < tonumber(ARGV[2]) and redis.call('HGET', KEYS[4], 'shuffled') ~= '1' then
  -- Seqs are handed out in increasing order inside atomic scripts, so the last one
  -- written is the highest pre-opening seq.
  redis.call('HSET', KEYS[4], 'preopen_last_seq', seq)
end
local admitted_held = review_hold(KEYS, ARGV, tonumber(ARGV[13]))
if redis.call('ZSCORE', KEYS[15], user) then
  return {'review', 0, 0, 1, seq, 0, now_ms, '', admitted_held}
end
rank = redis.call('ZRANK', KEYS[2], user)
return {'waiting', rank + 1, 0, 1, seq, preopen(seq), now_ms, '', admitted_held}
