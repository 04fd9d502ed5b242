-- Admits one request and reserves what it may use under every limit of one key, atomically,
-- after settling the key's requests this replica finished since its last call (settle_fn.lua,
-- prepended to this script).
-- KEYS: 1 q (hash), 2 leases (zset id -> expiry ms), 3 held (hash id -> "tokens cost"),
--       4 days (hash t:<day>, c:<day>), 5 gone (zset of expired lease ids -> ms),
--       6 rate (zset of the last minute's admissions -> ms), 7 models
-- ARGV: 1 lease id, 2 lease ms, 3 requests_per_minute, 4 max_concurrent, 5 tokens_per_minute,
--       6 tokens_per_day, 7 budget (picodollars), 8 first day of the budget period, 9 today,
--       10 tokens reserved, 11 cost reserved (picodollars); limits of 0 are absent;
--       12 settlements to apply first, then 7 each: lease id, model, day, input tokens,
--       output tokens, cost, 1 to charge (0 to release the hold only); all held leases.
-- Returns {0, requests left, tokens left this minute, tokens used today, money spent} or
-- {refusal, figure}: 1 max_concurrent (in flight), 2 rate (ms to wait), 3 tokens_per_day
-- (used), 4 budget (spent), 5 tokens_per_minute (tokens left).
local q, leases, held, days, gone, rate = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local k = {q = q, leases = leases, held = held, days = days, gone = gone, models = KEYS[7]}
local id, lease = ARGV[1], tonumber(ARGV[2])
local rpm, conc, tpm = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tpd, budget = tonumber(ARGV[6]), tonumber(ARGV[7])
local first, today = tonumber(ARGV[8]), tonumber(ARGV[9])
local tokens, cost = tonumber(ARGV[10]), tonumber(ARGV[11])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

for i = 0, tonumber(ARGV[12] or '0') - 1 do
  local at = 13 + i * 7
  settle_one(k, now, {
    id = ARGV[at], model = ARGV[at + 1], day = tonumber(ARGV[at + 2]), input = ARGV[at + 3],
    output = ARGV[at + 4], cost = ARGV[at + 5], tpm = tpm, charge = ARGV[at + 6] == '1',
    leased = true,
  })
end

-- Leases of replicas that died (or lost Redis) give their holds back, a bounded batch per call.
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 64)
for _, lost in ipairs(expired) do
  local h = redis.call('HGET', held, lost)
  if h then
    local ht, hc = string.match(h, '^(%d+) (%d+)$')
    if ht ~= '0' then redis.call('HINCRBY', q, 'rt', '-' .. ht) end
    if hc ~= '0' then redis.call('HINCRBY', q, 'rc', '-' .. hc) end
    redis.call('HDEL', held, lost)
  end
  redis.call('ZREM', leases, lost)
  redis.call('ZADD', gone, now, lost)
end

local state = redis.call('HMGET', q, 'bl', 'bt', 'rt', 'rc', 'cd')
local reserved_tokens = tonumber(state[3] or '0')
local reserved_cost = tonumber(state[4] or '0')
tidy(k, now, today, state[5])

if conc > 0 then
  local in_flight = redis.call('ZCARD', leases)
  if in_flight >= conc then return {1, in_flight} end
end

-- A sliding window: never more than the limit in any 60 s, however long a burst lasts.
local rpm_left = -1
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', rate, '-inf', now - 60000)
  local count = redis.call('ZCARD', rate)
  if count >= rpm then
    local oldest = redis.call('ZRANGE', rate, 0, 0, 'WITHSCORES')
    return {2, math.max(1, tonumber(oldest[2]) + 60000 - now)}
  end
  rpm_left = rpm - count - 1
end

-- Today's tokens and the budget period's money in one read.
local fields = {'t:' .. today}
if budget > 0 then
  for day = first, today do fields[#fields + 1] = 'c:' .. day end
end
local used = (tpd > 0 or budget > 0) and redis.call('HMGET', days, unpack(fields)) or {}

local used_today = -1
if tpd > 0 then
  used_today = tonumber(used[1] or '0') + reserved_tokens
  if tokens > tpd or used_today + tokens > tpd then return {3, used_today} end
  used_today = used_today + tokens
end

local spent = -1
if budget > 0 then
  spent = reserved_cost
  for i = 2, #fields do spent = spent + tonumber(used[i] or '0') end
  if cost > budget or spent + cost > budget then return {4, spent} end
  spent = spent + cost
end

local level = -1
if tpm > 0 then
  level = tonumber(state[1] or tpm)
  local at = tonumber(state[2] or now)
  level = math.min(tpm, level + math.max(0, now - at) * tpm / 60000)
  if tokens > tpm or level < tokens then
    redis.call('HSET', q, 'bl', string.format('%.3f', level), 'bt', now)
    return {5, math.floor(level)}
  end
  level = level - tokens
  redis.call('HSET', q, 'bl', string.format('%.3f', level), 'bt', now)
end

if rpm > 0 then
  redis.call('ZADD', rate, now, id)
  redis.call('PEXPIRE', rate, 60000)
end
redis.call('ZADD', leases, now + lease, id)
redis.call('HSET', held, id, ARGV[10] .. ' ' .. ARGV[11])
if tokens > 0 then redis.call('HINCRBY', q, 'rt', ARGV[10]) end
if cost > 0 then redis.call('HINCRBY', q, 'rc', ARGV[11]) end
return {0, rpm_left, math.floor(level), used_today, spent}
