-- Shared by settle.lua and reserve.lua (prepended to each): settling one request of a key, and
-- the once-a-day tidying of what its settlements leave behind.

-- Charges what one request used to its key's day and model.
local function charge(k, s)
  local model = s.model
  redis.call('HINCRBY', k.days, 't:' .. s.day, tonumber(s.input) + tonumber(s.output))
  redis.call('HINCRBY', k.days, 'c:' .. s.day, s.cost)
  redis.call('HINCRBY', k.models, 'r:' .. model, 1)
  redis.call('HINCRBY', k.models, 'i:' .. model, s.input)
  redis.call('HINCRBY', k.models, 'o:' .. model, s.output)
  redis.call('HINCRBY', k.models, 'c:' .. model, s.cost)
end

-- Settles one request: its hold comes back, what it used is charged, once whatever the retries.
-- k: {q, leases, held, days, gone, models}; s: {id, model, day, input, output, cost, tpm,
-- charge (bool), leased (bool)}. Returns 1 when applied, 0 for a settlement applied before.
local function settle_one(k, now, s)
  local h = redis.call('HGET', k.held, s.id)
  if h then
    local ht, hc = string.match(h, '^(%d+) (%d+)$')
    if ht ~= '0' then redis.call('HINCRBY', k.q, 'rt', '-' .. ht) end
    if hc ~= '0' then redis.call('HINCRBY', k.q, 'rc', '-' .. hc) end
    redis.call('HDEL', k.held, s.id)
    redis.call('ZREM', k.leases, s.id)
    local refund = tonumber(ht) - tonumber(s.input) - tonumber(s.output)
    if s.tpm > 0 and refund ~= 0 then
      local b = redis.call('HMGET', k.q, 'bl', 'bt')
      local level = tonumber(b[1] or s.tpm)
      local at = tonumber(b[2] or now)
      level = math.min(s.tpm, level + math.max(0, now - at) * s.tpm / 60000 + refund)
      redis.call('HSET', k.q, 'bl', string.format('%.3f', level), 'bt', now)
    end
  elseif s.leased and redis.call('ZREM', k.gone, s.id) == 0 then
    -- Neither held nor expired: this settlement was applied before (a retry after a timeout).
    return 0
  end
  if s.charge then charge(k, s) end
  return 1
end

-- Once a day per key (the day it last ran is `cd` in q): days older than the longest budget
-- period and the month before (62 days) are removed, and expired leases a day old, which will
-- not be settled any more.
local function tidy(k, now, today, last)
  if tonumber(last or '0') == today then return end
  local old = {}
  for day = today - 92, today - 62 do
    old[#old + 1] = 't:' .. day
    old[#old + 1] = 'c:' .. day
  end
  redis.call('HDEL', k.days, unpack(old))
  redis.call('ZREMRANGEBYSCORE', k.gone, '-inf', now - 86400000)
  redis.call('HSET', k.q, 'cd', today)
end
