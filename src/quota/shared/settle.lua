-- Settles one request: its hold comes back, what it used is charged, once whatever the retries.
-- KEYS: 1 q, 2 leases, 3 held, 4 days, 5 gone, 6 models (hash r:|i:|o:|c:<model>)
-- ARGV: 1 lease id, 2 model, 3 day, 4 input tokens, 5 output tokens, 6 cost (picodollars),
--       7 tokens_per_minute (0: none), 8 1 to charge a request, 0 to release the hold only,
--       9 1 if the request held a lease, 0 if its key has no limits and it took none
-- Returns 1 when applied, 0 for a settlement already applied.
local q, leases, held, days, gone, models = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, model, day = ARGV[1], ARGV[2], tonumber(ARGV[3])
local input, output, tpm, charge = ARGV[4], ARGV[5], tonumber(ARGV[7]), ARGV[8] == '1'
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local h = redis.call('HGET', held, id)
if h then
  local ht, hc = string.match(h, '^(%d+) (%d+)$')
  if ht ~= '0' then redis.call('HINCRBY', q, 'rt', '-' .. ht) end
  if hc ~= '0' then redis.call('HINCRBY', q, 'rc', '-' .. hc) end
  redis.call('HDEL', held, id)
  redis.call('ZREM', leases, id)
  local refund = tonumber(ht) - tonumber(input) - tonumber(output)
  if tpm > 0 and refund ~= 0 then
    local b = redis.call('HMGET', q, 'bl', 'bt')
    local level = tonumber(b[1] or tpm)
    local at = tonumber(b[2] or now)
    level = math.min(tpm, level + math.max(0, now - at) * tpm / 60000 + refund)
    redis.call('HSET', q, 'bl', string.format('%.3f', level), 'bt', now)
  end
elseif ARGV[9] == '1' and redis.call('ZREM', gone, id) == 0 then
  -- Neither held nor expired: this settlement was applied before (a retry after a timeout).
  return 0
end

if charge then
  redis.call('HINCRBY', days, 't:' .. day, tonumber(input) + tonumber(output))
  redis.call('HINCRBY', days, 'c:' .. day, ARGV[6])
  redis.call('HINCRBY', models, 'r:' .. model, 1)
  redis.call('HINCRBY', models, 'i:' .. model, input)
  redis.call('HINCRBY', models, 'o:' .. model, output)
  redis.call('HINCRBY', models, 'c:' .. model, ARGV[6])
  -- The longest budget period is a month: 62 days cover it and the month before.
  redis.call('HDEL', days, 't:' .. (day - 62), 'c:' .. (day - 62))
end
-- Leases that expired a day ago will not be settled any more.
redis.call('ZREMRANGEBYSCORE', gone, '-inf', now - 86400000)
return 1
