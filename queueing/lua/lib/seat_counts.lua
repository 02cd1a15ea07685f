-- lib/seat_counts: included by scripts that need the stock (``--!include seat_counts``).
-- Defines one function: the seats of a map that are available, held by a live hold (its
-- deadline not passed on the Redis clock) and sold. A lapsed hold counts as available
-- whether or not the sweep has rewritten it yet. O(seats): run once per admission tick
-- and per dashboard read, never per buyer.
local function seat_counts(seatmap_key, now_ms)
  local available, held, sold = 0, 0, 0
  for _, value in ipairs(redis.call('HVALS', seatmap_key)) do
    if value == 's' then
      sold = sold + 1
    elseif string.sub(value, 1, 2) == 'h:' and tonumber(string.sub(value, 3)) >= now_ms then
      held = held + 1
    else
      available = available + 1
    end
  end
  return available, held, sold
end
