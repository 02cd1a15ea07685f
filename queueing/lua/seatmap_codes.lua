--[[ seatmap_codes: the seat map as one compact string plus its digest (read only).

KEYS[1] seatmap  hash  seat id -> "a" | "s" | "h:<expiry_ms>"
ARGV[1] the digest the caller already has ("" for none)

Reply: {digest, body}
  body   "id:c,id:c,..." with c = a (available), h (held, unexpired), s (sold)
  digest sha1 of body; body is "" when the digest equals ARGV[1] (nothing changed)
  {"", ""} when the map is missing.

The order is the hash's own iteration order, stable while the map is unchanged; a rare
reordering (a rehash) only costs one full answer instead of a 304.

Why a script: the derived status needs the Redis clock (an expired hold reads as
available with no write), and building the string and its digest next to the data
turns thousands of reply elements into one, so a poll of an unchanged map (the common
case: HTTP 304) costs one short reply.
]]

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then
  return {'', ''}
end
local parts = {}
for i = 1, #flat, 2 do
  local value = flat[i + 1]
  local code = 'a'
  if value == 's' then
    code = 's'
  elseif string.sub(value, 1, 2) == 'h:' and tonumber(string.sub(value, 3)) > now_ms then
    code = 'h'
  end
  parts[#parts + 1] = flat[i] .. ':' .. code
end
local body = table.concat(parts, ',')
local digest = redis.sha1hex(body)
if digest == ARGV[1] then
  return {digest, ''}
end
return {digest, body}
