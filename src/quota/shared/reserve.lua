-- Admits one request and reserves what it may use under every limit of one key, atomically,
-- after settling the key's requests this replica finished since its last call (their holds and
-- unused tokens come back before anything is counted). settle_fn.lua is prepended.
-- KEYS: 1 q (hash), 2 leases (zset id -> expiry ms), 3 held (hash id -> "tokens cost"),
--       4 days (hash t:<day>, c:<day>), 5 gone (zset of expired lease ids -> ms),
--       6 rate (zset of the last minute's admissions -> ms), 7 models
-- ARGV: 1 lease id, 2 lease ms, 3 requests_per_minute, 4 max_concurrent, 5 tokens_per_minute,
--       6 tokens_per_day, 7 budget (picodollars), 8 first day of the budget period, 9 today,
--       10 tokens reserved, 11 cost reserved (picodollars); limits of 0 are absent;
--       12 ms ahead: a reservation made ahead of its request (0: for a request now) counts in
--       the rate window as admitted that much later, the latest its request may come;
--       13 settlements to apply first, then 8 each: lease id, model, day, input tokens,
--       output tokens, cost, 1 to charge (0 to release the hold only, 2 to release one made
--       ahead and never used, which leaves the rate window too), the hold as reserved
--       ("tokens cost"; empty when not known); all held leases.
-- Returns {0, requests left, tokens left this minute, tokens used today, money spent, requests
-- in flight (this one included)} or
-- {refusal, figure}: 1 max_concurrent (in flight), 2 rate (ms to wait), 3 tokens_per_day
-- (used), 4 budget (spent), 5 tokens_per_minute (tokens left).
local q, leases, held, days, gone, rate = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local k = {q = q, leases = leases, held = held, days = days, gone = gone, models = KEYS[7],
           rate = rate}
local id, lease = ARGV[1], tonumber(ARGV[2])
local rpm, conc, tpm = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tpd, budget = tonumber(ARGV[6]), tonumber(ARGV[7])
local first, today = tonumber(ARGV[8]), tonumber(ARGV[9])
local tokens, cost = tonumber(ARGV[10]), tonumber(ARGV[11])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
-- Numbers reach Redis as strings. Lua's own conversion ('..', a number argument) formats a
-- double (about 1 µs here); integers are formatted once with %d (half that) and reused.
local now_s = string.format('%d', now)

-- What the settlements and expiries below give back, written once with this request's own.
local back_tokens, back_cost, refund = 0, 0, 0
-- What the settlements below charged: {day, cost} each.
local charged = {}

for i = 0, tonumber(ARGV[13] or '0') - 1 do
  local at = 14 + i * 8
  local s = {
    id = ARGV[at], model = ARGV[at + 1], day = tonumber(ARGV[at + 2]), day_s = ARGV[at + 2],
    input = ARGV[at + 3], output = ARGV[at + 4], cost = ARGV[at + 5], charge = ARGV[at + 6] == '1',
    unused = ARGV[at + 6] == '2', leased = true,
    hold = ARGV[at + 7] ~= '' and ARGV[at + 7] or nil,
  }
  local applied, ht, hc = settle_hold(k, s)
  if applied and s.charge then charged[#charged + 1] = {s.day, tonumber(s.cost)} end
  if ht then
    back_tokens = back_tokens + tonumber(ht)
    back_cost = back_cost + tonumber(hc)
    refund = refund + tonumber(ht) - tonumber(s.input) - tonumber(s.output)
  end
end

-- q's fields: bucket level and ms, reserved tokens and money, the day tidied, the ms swept,
-- the ms the rate window's expiry was last pushed, and the money of the budget period's days
-- before today (its first day, its last day, the sum; see below).
local state = redis.call('HMGET', q, 'bl', 'bt', 'rt', 'rc', 'cd', 'sw', 'rx', 'pf', 'pt', 'pv')

-- At most once a second per key: leases of replicas that died (or lost Redis) give their holds
-- back, a bounded batch, and the rate window sheds what left it. The counts below read only
-- what is live, so nothing waits on this; it keeps the reserved totals and the sets small.
local swept = nil
if now - tonumber(state[6] or '0') >= 1000 then
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now_s, 'LIMIT', 0, 64)
  for _, lost in ipairs(expired) do
    local h = redis.call('HGET', held, lost)
    if h then
      local ht, hc = string.match(h, '^(%d+) (%d+)$')
      back_tokens = back_tokens + tonumber(ht)
      back_cost = back_cost + tonumber(hc)
      redis.call('HDEL', held, lost)
    end
    redis.call('ZREM', leases, lost)
    redis.call('ZADD', gone, now_s, lost)
  end
  if rpm > 0 then redis.call('ZREMRANGEBYSCORE', rate, '-inf', now - 60000) end
  -- A whole batch: more may have expired, and the next call sweeps again.
  if #expired < 64 then swept = now_s end
end
local rate_kept, period_kept = nil, nil

-- The money of a budget period's days before today, as a call summed it (pf its first day, pt
-- its last, pv the sum; written once a day per key), with what the settlements above charged to
-- those days. The range is the stored one, not this call's: a replica whose clock is still on
-- yesterday charges a day another replica's sum holds.
local pf, pt = tonumber(state[8] or '-1'), tonumber(state[9] or '-1')
local pv, pv_moved = tonumber(state[10] or '0'), false
for _, c in ipairs(charged) do
  if pf <= c[1] and c[1] <= pt then pv, pv_moved = pv + c[2], true end
end
local reserved_tokens = tonumber(state[3] or '0') - back_tokens
local reserved_cost = tonumber(state[4] or '0') - back_cost
tidy(k, now, today, state[5])

-- The bucket of tokens_per_minute as of now, with what the settlements gave back.
local level = -1
if tpm > 0 then
  level = tonumber(state[1] or tpm)
  local at = tonumber(state[2] or now)
  level = math.min(tpm, level + math.max(0, now - at) * tpm / 60000 + refund)
end

-- Writes what this call changed of q: the holds given back, plus `t` tokens and `c` money
-- reserved, the bucket at `l`, and when this call swept or pushed the rate window's expiry.
local function keep(t, c, l)
  local dt, dc = t - back_tokens, c - back_cost
  if dt ~= 0 then redis.call('HINCRBY', q, 'rt', string.format('%d', dt)) end
  if dc ~= 0 then redis.call('HINCRBY', q, 'rc', string.format('%d', dc)) end
  local fields = {}
  if tpm > 0 then
    fields[#fields + 1] = 'bl'
    fields[#fields + 1] = string.format('%.3f', l)
    fields[#fields + 1] = 'bt'
    fields[#fields + 1] = now_s
  end
  if swept then
    fields[#fields + 1] = 'sw'
    fields[#fields + 1] = swept
  end
  if rate_kept then
    fields[#fields + 1] = 'rx'
    fields[#fields + 1] = rate_kept
  end
  if period_kept then
    fields[#fields + 1] = 'pf'
    fields[#fields + 1] = first
    fields[#fields + 1] = 'pt'
    fields[#fields + 1] = today - 1
    fields[#fields + 1] = 'pv'
    fields[#fields + 1] = string.format('%.0f', period_kept)
  elseif pv_moved then
    fields[#fields + 1] = 'pv'
    fields[#fields + 1] = string.format('%.0f', pv)
  end
  if #fields > 0 then redis.call('HSET', q, unpack(fields)) end
end

local in_flight = -1
if conc > 0 then
  -- Live leases only: one past its expiry frees its slot at once, swept or not.
  in_flight = redis.call('ZCOUNT', leases, '(' .. now_s, '+inf')
  if in_flight >= conc then
    keep(0, 0, level)
    return {1, in_flight}
  end
end

-- A sliding window: never more than the limit in any 60 s, however long a burst lasts.
local rpm_left = -1
if rpm > 0 then
  local window = '(' .. string.format('%d', now - 60000)
  local count = redis.call('ZCOUNT', rate, window, '+inf')
  if count >= rpm then
    keep(0, 0, level)
    local oldest = redis.call('ZRANGEBYSCORE', rate, window, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    return {2, math.max(1, tonumber(oldest[2]) + 60000 - now)}
  end
  rpm_left = rpm - count - 1
end

-- Today's tokens and money in one read. The money of the period's days before today is summed
-- once a day (pv above), so a month's last day reads two fields, not 31; until then it is read
-- with today's. A charge to one of those days after the sum (a request begun before midnight)
-- is added to it where it is applied (above, settle.lua), and an import drops it.
local fields = {'t:' .. ARGV[9], 'c:' .. ARGV[9]}
local past = nil
if budget > 0 and first < today then
  if pf == first and pt == today - 1 then
    past = pv
  else
    for day = first, today - 1 do fields[#fields + 1] = 'c:' .. day end
  end
end
local used = (tpd > 0 or budget > 0) and redis.call('HMGET', days, unpack(fields)) or {}
if budget > 0 and first < today and not past then
  past = 0
  for i = 3, #fields do past = past + tonumber(used[i] or '0') end
  period_kept = past
end

local used_today = -1
if tpd > 0 then
  used_today = tonumber(used[1] or '0') + reserved_tokens
  if tokens > tpd or used_today + tokens > tpd then
    keep(0, 0, level)
    return {3, used_today}
  end
  used_today = used_today + tokens
end

local spent = -1
if budget > 0 then
  spent = reserved_cost + (past or 0) + tonumber(used[2] or '0')
  if cost > budget or spent + cost > budget then
    keep(0, 0, level)
    return {4, spent}
  end
  spent = spent + cost
end

if tpm > 0 and (tokens > tpm or level < tokens) then
  keep(0, 0, level)
  return {5, math.floor(level)}
end

if rpm > 0 then
  local ahead = tonumber(ARGV[12])
  redis.call('ZADD', rate, ahead > 0 and string.format('%d', now + ahead) or now_s, id)
  -- The window outlives its last admission by a minute: its expiry is pushed to 62 s at most
  -- once a second, so every admission (up to a second ahead) is within a second of a push.
  if now - tonumber(state[7] or '0') >= 1000 then
    redis.call('PEXPIRE', rate, 62000)
    rate_kept = now_s
  end
end
redis.call('ZADD', leases, string.format('%d', now + lease), id)
redis.call('HSET', held, id, ARGV[10] .. ' ' .. ARGV[11])
keep(tokens, cost, level - tokens)
if tpm > 0 then level = math.floor(level - tokens) end
return {0, rpm_left, level, used_today, spent, in_flight + 1}
