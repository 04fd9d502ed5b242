-- Extends the leases a live replica still holds. KEYS: 1 leases. ARGV: 1 lease ms, 2.. ids.
-- Only existing leases are extended: one that expired was given back and stays so.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', until_ms, ARGV[i])
end
return #ARGV - 1
