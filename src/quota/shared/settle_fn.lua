-- Shared by settle.lua and reserve.lua (prepended to each): settling one request of a key, and
-- the once-a-day tidying of what its settlements leave behind.

-- Charges what one request used to its key's day and model.
local function charge(k, s)
  local model = s.model
  -- As strings: Lua's own conversion of a number formats a double, twice the cost of %d.
  local day = s.day_s
  local tokens = string.format('%d', tonumber(s.input) + tonumber(s.output))
  redis.call('HINCRBY', k.days, 't:' .. day, tokens)
  redis.call('HINCRBY', k.days, 'c:' .. day, s.cost)
  redis.call('HINCRBY', k.models, 'r:' .. model, '1')
  redis.call('HINCRBY', k.models, 'i:' .. model, s.input)
  redis.call('HINCRBY', k.models, 'o:' .. model, s.output)
  redis.call('HINCRBY', k.models, 'c:' .. model, s.cost)
end

-- Takes one finished request's hold off its key and charges what it used, once whatever the
-- retries. k: {q, leases, held, days, gone, models, rate}; s: {id, model, day (and day_s, as
-- sent), input, output, cost, charge (bool), unused (bool: made ahead and never used, so it
-- leaves the rate window as if never admitted), leased (bool), hold ("tokens cost" as
-- reserved, or nil when the caller does not know it)}. Returns whether it applied (false:
-- applied before, a retry after a timeout), and the tokens and money its hold reserved, as
-- strings, when it was still held (not for one that expired): the caller gives them back to q.
local function settle_hold(k, s)
  local h
  if s.hold then
    -- The replica that reserved it knows the hold: one call fewer than reading it.
    if redis.call('HDEL', k.held, s.id) == 1 then h = s.hold end
  else
    h = redis.call('HGET', k.held, s.id)
    if h then redis.call('HDEL', k.held, s.id) end
  end
  if h then
    redis.call('ZREM', k.leases, s.id)
  elseif s.leased and redis.call('ZREM', k.gone, s.id) == 0 then
    return false
  end
  if s.charge then charge(k, s) end
  if s.unused then redis.call('ZREM', k.rate, s.id) end
  if h then return true, string.match(h, '^(%d+) (%d+)$') end
  return true
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
