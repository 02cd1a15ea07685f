-- lib/sweep_expired_holds: included by scripts that must see every lapsed hold as free
-- (``--!include sweep_expired_holds`` in queueing.scripts). Defines one function.
--
-- A hold lapses by its TTL without anybody writing; this is where the seat map catches
-- up: each hold whose deadline has passed turns "a" in the map once, and the map's
-- version moves, so an O(1) version check (the ETag) sees the change. hold_expiries
-- holds one member per held seat (score = its deadline), so the work is proportional to
-- the holds that lapsed, never to the seats of the event.
--
-- A seat key expires when the clock is *past* its deadline (Redis: now > when); the
-- sweep takes the same view, so a seat never reads free while its hold key still lives.
local function sweep_expired_holds(seatmap_key, expiries_key, version_key, now_ms)
  local due = redis.call('ZRANGEBYSCORE', expiries_key, '-inf', '(' .. string.format('%d', now_ms),
    'LIMIT', 0, 1000)
  if #due == 0 then return 0 end
  local changed = 0
  for _, seat in ipairs(due) do
    local value = redis.call('HGET', seatmap_key, seat)
    if value and string.sub(value, 1, 2) == 'h:' and tonumber(string.sub(value, 3)) < now_ms then
      redis.call('HSET', seatmap_key, seat, 'a')
      changed = changed + 1
    end
  end
  redis.call('ZREM', expiries_key, unpack(due))
  if changed > 0 then redis.call('INCR', version_key) end
  return changed
end
