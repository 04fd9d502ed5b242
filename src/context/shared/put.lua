-- Writes one context document if the client's precondition (and, for a bounded author, the state
-- its holdings were reserved against) still holds. KEYS: 1 document (hash), 2 index (zset of
-- the namespace's keys), 3 expiries (zset key -> ms).
-- ARGV: 1 JSON, 2 owner ('' for none), 3 precondition (none|exists|absent|versions),
--       4 versions (comma separated), 5 TTL in ms (0: none), 6 document key, 7 change channel,
--       8 namespace, 9 expectation (any|absent|version), 10 expected version.
-- Returns {1, version, created, old owner, old size}, {0, current version or -1} when the
-- precondition fails, {-1} when the expectation moved (the caller retries).
local doc, index, expiries = KEYS[1], KEYS[2], KEYS[3]
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
local cur = redis.call('HMGET', doc, 'v', 'x', 'o', 'n')
local version = tonumber(cur[1] or '')
if version and cur[2] and cur[2] ~= '' and tonumber(cur[2]) <= now_ms then version = nil end
if ARGV[9] == 'absent' and version then return {-1} end
if ARGV[9] == 'version' and version ~= tonumber(ARGV[10]) then return {-1} end
local pre, ok = ARGV[3], false
if pre == 'none' then ok = true
elseif pre == 'exists' then ok = version ~= nil
elseif pre == 'absent' then ok = version == nil
elseif version then
  for v in string.gmatch(ARGV[4], '%d+') do
    if tonumber(v) == version then ok = true end
  end
end
if not ok then return {0, version or -1} end
local old_owner, old_size = '', 0
if version then old_owner, old_size = cur[3] or '', tonumber(cur[4] or '0') end
-- Never repeating, across deletes and restarts: a stale ETag can never match a newer document.
local next_version = math.max(now_us, tonumber(cur[1] or '0') + 1)
local json = ARGV[1]
redis.call('HSET', doc, 'j', json, 'v', string.format('%.0f', next_version), 'o', ARGV[2], 'n', #json)
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  local at = now_ms + ttl
  -- Removed by the sweep, not by Redis: the sweep must know whose it was, to tell and count.
  redis.call('HSET', doc, 'x', at)
  redis.call('ZADD', expiries, at, ARGV[6])
else
  redis.call('HSET', doc, 'x', '')
  redis.call('ZREM', expiries, ARGV[6])
end
redis.call('ZADD', index, 0, ARGV[6])
local created = version == nil and 1 or 0
redis.call('PUBLISH', ARGV[7], ARGV[8] .. '\n' .. ARGV[6] .. '\n' .. created)
return {1, string.format('%.0f', next_version), created, old_owner, old_size}
