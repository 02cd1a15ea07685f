--[[ admit: one admission step (run every second by the admission task).

KEYS[1] waiting        zset    member user id, score arrival number
KEYS[2] active         zset    member user id, score pass expiry (ms)
KEYS[3] ctl            hash    paused, capacity, pass_seconds (staff overrides), sold_out,
                               preopen_last_seq, shuffled, shuffle_seed, admitted_total,
                               dropped_total, serving
KEYS[4] seatmap        hash    seat id -> "a" | "s" | "h:<expiry_ms>"
KEYS[5] admissions     zset    per-second records "<s>:<admitted>:<waiting>:<active>", score s
KEYS[6] seen           zset    member user id, score when the user last showed up (ms)
KEYS[7] hold_expiries  zset    member seat id, score hold deadline (ms)
KEYS[8] seatmap_version string the seat map's version (moves on every change)
KEYS[9] wl:gate        string  present while the waiting list takes every seat that comes back
ARGV[1] capacity            default size of the active queue (ctl capacity wins)
ARGV[2] pass_ms             default pass length in ms (ctl pass_seconds wins)
ARGV[3] shuffle_seed        "" = no shuffle this run; else the seed of the opening shuffle
ARGV[4] silent_ms           a waiter not seen for longer is dropped when reached (0 = never)

Reply: {admitted, expired, active, waiting, sold_out (0/1), paused (0/1),
        shuffled_now (0/1), available_seats (-1 = no seat map), dropped, serving}

Steps: (a) shuffle the pre-opening arrivals once, (b) drop expired passes and lapsed
holds, (c) read the staff overrides, (d) paused admits nobody, (e) count seats neither
sold nor held and stop when none is left, setting sold_out when nothing is even held
(or the held seats can only go to the waiting list),
(f) take the head of the line in arrival order: a waiter who went silent is dropped, the
others get a pass, until min(capacity - active, seats left) are admitted, (g) publish
the serving cursor (the highest arrival number taken off the line) and record the
admissions for the rate, the ETA and the history.

Why atomic: counting active and adding to it must be one step, or two overlapping runs
(a slow beat tick and the next one, or two beats started by mistake) would each see the
same free slots and together exceed capacity. The shuffle must also never interleave
with joins or admissions, and the cursor must never pass an arrival still waiting.
]]

--!include sweep_expired_holds
--!include seat_counts

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_s = tonumber(t[1])
local CHUNK = 500 -- stay far below Lua's unpack() stack limit
local MAX_DROPS = 5000 -- bound one tick's work; the next tick goes on

local function zadd_chunked(key, flat)
  for i = 1, #flat, 2 * CHUNK do
    redis.call('ZADD', key, unpack(flat, i, math.min(i + 2 * CHUNK - 1, #flat)))
  end
end

-- (a) the opening shuffle: once, and only among the pre-opening arrivals. Their own
-- scores are dealt out again in a seeded random permutation (Fisher-Yates), so every
-- later arrival (higher seq) stays behind them and the published seed reproduces it.
local shuffled_now = 0
if ARGV[3] ~= '' and redis.call('HGET', KEYS[3], 'shuffled') ~= '1' then
  local last = tonumber(redis.call('HGET', KEYS[3], 'preopen_last_seq') or '0')
  if last > 0 then
    local flat = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', last, 'WITHSCORES')
    local members, scores = {}, {}
    for i = 1, #flat, 2 do
      members[#members + 1] = flat[i]
      scores[#scores + 1] = flat[i + 1]
    end
    -- Redis' math.randomseed takes a C int; fold the seed into its range.
    math.randomseed(tonumber(ARGV[3]) % 2147483647)
    for i = #scores, 2, -1 do
      local j = math.random(i)
      scores[i], scores[j] = scores[j], scores[i]
    end
    local pairs_flat = {}
    for i = 1, #members do
      pairs_flat[#pairs_flat + 1] = scores[i]
      pairs_flat[#pairs_flat + 1] = members[i]
    end
    zadd_chunked(KEYS[1], pairs_flat)
  end
  redis.call('HSET', KEYS[3], 'shuffled', '1', 'shuffle_seed', ARGV[3])
  shuffled_now = 1
end

-- (b) expired passes free their slots; lapsed holds turn free in the map.
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
sweep_expired_holds(KEYS[4], KEYS[7], KEYS[8], now_ms)

-- (c) staff overrides.
local ctl_capacity, ctl_pass_s, ctl_paused = unpack(redis.call('HMGET', KEYS[3], 'capacity', 'pass_seconds', 'paused'))
local capacity = tonumber(ctl_capacity or ARGV[1]) or tonumber(ARGV[1])
local pass_ms = tonumber(ARGV[2])
if ctl_pass_s and tonumber(ctl_pass_s) then pass_ms = tonumber(ctl_pass_s) * 1000 end
-- (d)
local paused = ctl_paused == '1'

-- (e) stock: seats neither sold nor held by a live hold. Without a map the stock is
-- unknown; admission is then bounded by capacity alone and sold_out is left as it is.
local available = -1
local sold_out = redis.call('HGET', KEYS[3], 'sold_out') == '1'
if redis.call('EXISTS', KEYS[4]) == 1 then
  local held
  available, held = seat_counts(KEYS[4], now_ms)
  -- While the waiting list's gate is up, no held seat can come back to the line (a lapsed
  -- hold or a seat given back goes to the list): nothing left for the line is sold out.
  sold_out = available == 0 and (held == 0 or redis.call('EXISTS', KEYS[9]) == 1)
  if sold_out then
    redis.call('HSET', KEYS[3], 'sold_out', '1')
  else
    redis.call('HDEL', KEYS[3], 'sold_out')
  end
end

-- (f) admission, in arrival order. A waiter whose last sign of life is older than
-- silent_ms is dropped when reached (the page polls; a closed tab does not): the slot
-- goes to the next live person instead of idling for a whole pass.
local silent_ms = tonumber(ARGV[4])
local active = redis.call('ZCARD', KEYS[2])
local want = 0
if not paused then
  want = capacity - active
  if available >= 0 then want = math.min(want, available) end
end
local admitted, dropped, highest = {}, 0, 0
while want > #admitted and dropped < MAX_DROPS do
  local popped = redis.call('ZPOPMIN', KEYS[1], want - #admitted)
  if #popped == 0 then break end
  for i = 1, #popped, 2 do
    local member, score = popped[i], tonumber(popped[i + 1])
    if score > highest then highest = score end
    local seen = redis.call('ZSCORE', KEYS[6], member)
    redis.call('ZREM', KEYS[6], member)
    -- No record at all (joined before the rule existed): treated as present.
    if silent_ms > 0 and seen and tonumber(seen) < now_ms - silent_ms then
      dropped = dropped + 1
    else
      admitted[#admitted + 1] = member
    end
  end
end
local n = #admitted
if n > 0 then
  local expiry = now_ms + pass_ms
  local flat = {}
  for _, member in ipairs(admitted) do
    flat[#flat + 1] = expiry
    flat[#flat + 1] = member
  end
  zadd_chunked(KEYS[2], flat)
  redis.call('HINCRBY', KEYS[3], 'admitted_total', n)
end
if dropped > 0 then redis.call('HINCRBY', KEYS[3], 'dropped_total', dropped) end

-- (g) the serving cursor: nobody at or below it is still waiting, so a poll from
-- further back can be answered "waiting" without asking Redis (events.services.waiting_room).
local serving = tonumber(redis.call('HGET', KEYS[3], 'serving') or '0')
if highest > serving then
  serving = highest
  redis.call('HSET', KEYS[3], 'serving', string.format('%d', serving))
end
active = redis.call('ZCARD', KEYS[2])
local waiting = redis.call('ZCARD', KEYS[1])

-- One record per second: runs within the same second are merged (admissions summed,
-- queue lengths as of the latest run); kept ~10 minutes.
local admitted_this_second = n
local existing = redis.call('ZRANGEBYSCORE', KEYS[5], now_s, now_s)
for _, record in ipairs(existing) do
  local count = string.match(record, '^%d+:(%d+):')
  admitted_this_second = admitted_this_second + tonumber(count)
  redis.call('ZREM', KEYS[5], record)
end
redis.call('ZADD', KEYS[5], now_s,
  string.format('%d:%d:%d:%d', now_s, admitted_this_second, waiting, active))
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now_s - 600)

return {n, expired, active, waiting, sold_out and 1 or 0, paused and 1 or 0, shuffled_now, available,
        dropped, serving}
