--[[ queue_leave: a user gives up their place and their pass.

KEYS[1] waiting  zset
KEYS[2] active   zset
KEYS[3] seen     zset
KEYS[4] review   zset    (held for staff review)
ARGV[1] user id

Reply: number of entries removed from waiting, active and review (0..2).

Why atomic: an admission run between two separate ZREMs could move the user from
waiting to active after the first one, leaving a pass for someone who left.
]]

redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
  + redis.call('ZREM', KEYS[4], ARGV[1])
