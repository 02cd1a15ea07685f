--[[ join_refusable: may nginx answer this user's joins with the sold-out refusal for a
while (deploy/nginx/queue_edge.js), and a sign of life for the silent-waiter rule.

KEYS[1] ctl      hash    sold_out
KEYS[2] active   zset    member user id, score pass expiry (ms)
KEYS[3] blocked  set     users staff took off this line
KEYS[4] review   zset    buyers held for staff review
KEYS[5] seen     zset    member user id, score when the user last showed up (ms)
ARGV[1] user id

Reply: 1 when queue_join would refuse this user's join as "sold out" now (the event is
sold out and the user is neither blocked, nor holding a live pass, nor held for review:
queue_join.lua's first checks, in its order), else 0.

Why a script: the answer must describe one moment, judged by the Redis clock (a pass
expiry), and the sign of life must be written in the same step: nginx asks this at most
once per buyer every QUEUE_EDGE_SECONDS (its cache of the answer lives no longer), so a
buyer in line whose joins nginx answers is still seen by the app that often, as a buyer
whose polls it answers is.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user = ARGV[1]

-- XX: only a user in line has a record (the admission step reads it).
redis.call('ZADD', KEYS[5], 'XX', now_ms, user)

if redis.call('HGET', KEYS[1], 'sold_out') ~= '1' then return 0 end
if redis.call('SISMEMBER', KEYS[3], user) == 1 then return 0 end
local pass = redis.call('ZSCORE', KEYS[2], user)
if pass and tonumber(pass) > now_ms then return 0 end
if redis.call('ZSCORE', KEYS[4], user) then return 0 end
return 1
