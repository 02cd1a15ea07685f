-- lib/review_hold: the automatic review of shared sources, for queue_join.lua once a
-- newcomer has taken a place. When the accounts that tried to join from one device or
-- address reach the event's threshold, every one of them is held for staff review: out of
-- the waiting line (keeping its arrival number) and out of the active queue (a pass is
-- taken back), into the review zset, where admission never reaches them. Later accounts
-- from a held source go there too. A source staff let through ("cleared") is never held
-- again. Acting in the join itself means the accounts of a script operator are held
-- before staff could even look, and nobody is removed: an office behind one address waits
-- for one click instead.
--
-- keys: the join's KEYS (waiting 2, active 3, accounts of the device 11 and of the
--   address 13, review 15, review sources 16); args: the join's ARGV (device limit 8,
--   device 9, address limit 10, address 11: a source is only recorded while its limit is
--   on). Returns the held accounts that had a pass.
local function review_hold(keys, args, threshold)
  local admitted_held = {}
  if threshold <= 0 then return admitted_held end
  local function hold(member)
    local seq = redis.call('ZSCORE', keys[2], member)
    if seq then
      redis.call('ZREM', keys[2], member)
      redis.call('ZADD', keys[15], 'NX', seq, member)
    elseif redis.call('ZREM', keys[3], member) == 1 then
      redis.call('ZADD', keys[15], 'NX', 0, member)
      admitted_held[#admitted_held + 1] = member
    end
  end
  local sources = {
    {keys[11], 'device:' .. args[9], tonumber(args[8])},
    {keys[13], 'address:' .. args[11], tonumber(args[10])},
  }
  for _, source in ipairs(sources) do
    local accounts, name, recorded = source[1], source[2], source[3]
    if recorded > 0 then
      local state = redis.call('HGET', keys[16], name)
      if state == 'held' then
        hold(args[7])
      elseif not state and redis.call('SCARD', accounts) >= threshold then
        redis.call('HSET', keys[16], name, 'held')
        for _, member in ipairs(redis.call('SMEMBERS', accounts)) do hold(member) end
      end
    end
  end
  return admitted_held
end
