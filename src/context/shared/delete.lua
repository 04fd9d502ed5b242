-- Removes one context document if the client's precondition holds, or, for the expiry sweep,
-- if it has expired. KEYS: 1 document, 2 index, 3 expiries.
-- ARGV: 1 precondition (none|exists|versions|expired), 2 versions, 3 document key,
--       4 change channel, 5 namespace.
-- Returns {1, owner, size}, {0, current version or -1} when the precondition fails, {-1} when
-- there is no (live) document.
local doc, index, expiries = KEYS[1], KEYS[2], KEYS[3]
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local cur = redis.call('HMGET', doc, 'v', 'x', 'o', 'n')
local version = tonumber(cur[1] or '')
local expired = cur[2] and cur[2] ~= '' and tonumber(cur[2]) <= now_ms
local pre = ARGV[1]
if pre == 'expired' then
  -- Renewed since the sweep saw it due: its new expiry stands.
  if version and not expired then return {0, version} end
  -- Another replica's sweep took it first.
  if redis.call('ZREM', expiries, ARGV[3]) == 0 then return {-1} end
else
  if not version or expired then return {-1} end
  local ok = pre == 'none' or pre == 'exists'
  if pre == 'versions' then
    for v in string.gmatch(ARGV[2], '%d+') do
      if tonumber(v) == version then ok = true end
    end
  end
  if not ok then return {0, version} end
  redis.call('ZREM', expiries, ARGV[3])
end
redis.call('DEL', doc)
redis.call('ZREM', index, ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. '\n' .. ARGV[3] .. '\n1')
return {1, cur[3] or '', tonumber(cur[4] or '0')}
