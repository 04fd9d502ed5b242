-- Adds a key's usage from the embedded data directory, once. KEYS: 1 days, 2 models, 3 marker,
-- 4 q. ARGV: triples of (d|m, field, amount). Returns 1 when imported, 0 if it was imported
-- before.
if not redis.call('SET', KEYS[3], '1', 'NX') then return 0 end
for i = 1, #ARGV, 3 do
  local target = KEYS[1]
  if ARGV[i] == 'm' then target = KEYS[2] end
  if ARGV[i + 2] ~= '0' then redis.call('HINCRBY', target, ARGV[i + 1], ARGV[i + 2]) end
end
-- Past days changed: the budget period's sum reserve.lua keeps is read again.
redis.call('HDEL', KEYS[4], 'pt')
return 1
