-- Settles one request (see settle_one in settle_fn.lua, prepended to this script).
-- KEYS: 1 q, 2 leases, 3 held, 4 days, 5 gone, 6 models (hash r:|i:|o:|c:<model>)
-- ARGV: 1 lease id, 2 model, 3 day, 4 input tokens, 5 output tokens, 6 cost (picodollars),
--       7 tokens_per_minute (0: none), 8 1 to charge a request, 0 to release the hold only,
--       9 1 if the request held a lease, 0 if its key has no limits and it took none
-- Returns 1 when applied, 0 for a settlement already applied.
local k = {q = KEYS[1], leases = KEYS[2], held = KEYS[3], days = KEYS[4], gone = KEYS[5],
           models = KEYS[6]}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local day = tonumber(ARGV[3])
local applied = settle_one(k, now, {
  id = ARGV[1], model = ARGV[2], day = day, input = ARGV[4], output = ARGV[5],
  cost = ARGV[6], tpm = tonumber(ARGV[7]), charge = ARGV[8] == '1', leased = ARGV[9] == '1',
})
tidy(k, now, day, redis.call('HGET', k.q, 'cd'))
return applied
