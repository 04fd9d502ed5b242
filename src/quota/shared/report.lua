-- What /admin/usage shows of one key. KEYS: 1 q, 2 leases, 3 days, 4 models, 5 rate.
-- ARGV: 1 first day of the budget period (or today), 2 today.
-- Returns {models (flat field/value list), tokens today, money spent in the period,
--          reserved tokens, reserved money, leases in flight, admissions in the last minute,
--          bucket level, bucket ms, now}.
local q, leases, days, models, rate = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local first, today = tonumber(ARGV[1]), tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local spent = 0
for day = first, today do
  spent = spent + tonumber(redis.call('HGET', days, 'c:' .. day) or '0')
end
local s = redis.call('HMGET', q, 'rt', 'rc', 'bl', 'bt')
return {
  redis.call('HGETALL', models),
  redis.call('HGET', days, 't:' .. today) or '0',
  string.format('%.0f', spent),
  s[1] or '0', s[2] or '0',
  redis.call('ZCOUNT', leases, now, '+inf'),
  redis.call('ZCOUNT', rate, now - 60000, '+inf'),
  s[3] or '', s[4] or '', tostring(now),
}
