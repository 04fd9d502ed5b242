-- Settles one request: its hold comes back, what it used is charged, once whatever the retries
-- (settle_hold in settle_fn.lua, prepended to this script).
-- KEYS: 1 q, 2 leases, 3 held, 4 days, 5 gone, 6 models (hash r:|i:|o:|c:<model>), 7 rate
-- ARGV: 1 lease id, 2 model, 3 day, 4 input tokens, 5 output tokens, 6 cost (picodollars),
--       7 tokens_per_minute (0: none), 8 1 to charge a request, 0 to release the hold only, 2 to
--       release a reservation made ahead and never used (it leaves the rate window too),
--       9 1 if the request held a lease, 0 if its key has no limits and it took none
-- Returns 1 when applied, 0 for a settlement already applied.
local k = {q = KEYS[1], leases = KEYS[2], held = KEYS[3], days = KEYS[4], gone = KEYS[5],
           models = KEYS[6], rate = KEYS[7]}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local day, tpm = tonumber(ARGV[3]), tonumber(ARGV[7])
local s = {
  id = ARGV[1], model = ARGV[2], day = day, day_s = ARGV[3], input = ARGV[4], output = ARGV[5],
  cost = ARGV[6], charge = ARGV[8] == '1', unused = ARGV[8] == '2', leased = ARGV[9] == '1',
}
local applied, ht, hc = settle_hold(k, s)
if ht then
  if ht ~= '0' then redis.call('HINCRBY', k.q, 'rt', '-' .. ht) end
  if hc ~= '0' then redis.call('HINCRBY', k.q, 'rc', '-' .. hc) end
  local refund = tonumber(ht) - tonumber(s.input) - tonumber(s.output)
  if tpm > 0 and refund ~= 0 then
    local b = redis.call('HMGET', k.q, 'bl', 'bt')
    local level = tonumber(b[1] or tpm)
    local at = tonumber(b[2] or now)
    level = math.min(tpm, level + math.max(0, now - at) * tpm / 60000 + refund)
    redis.call('HSET', k.q, 'bl', string.format('%.3f', level), 'bt', now)
  end
end
-- q's day tidied, and the days and sum of the budget period's money before today that
-- reserve.lua keeps: a charge to one of those days is added to the sum.
local kept = redis.call('HMGET', k.q, 'cd', 'pf', 'pt')
if applied and s.charge and kept[2] and tonumber(kept[2]) <= day and day <= tonumber(kept[3] or '-1') then
  redis.call('HINCRBY', k.q, 'pv', s.cost)
end
tidy(k, now, day, kept[1])
if applied then return 1 end
return 0
