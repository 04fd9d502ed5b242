-- Up to ARGV[2] live documents of one namespace after the key ARGV[1] ('' for the first).
-- KEYS: 1 index. ARGV: 1 after, 2 limit, 3 prefix of the namespace's document keys.
-- Returns a flat list of key, version, size; one entry more than the limit says more follow.
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local from = '-'
if ARGV[1] ~= '' then from = '(' .. ARGV[1] end
local want = tonumber(ARGV[2]) + 1
local out, found = {}, 0
while found < want do
  local keys = redis.call('ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, want)
  if #keys == 0 then break end
  for _, key in ipairs(keys) do
    local d = redis.call('HMGET', ARGV[3] .. key, 'v', 'n', 'x')
    if d[1] and (not d[3] or d[3] == '' or tonumber(d[3]) > now_ms) and found < want then
      out[#out + 1] = key
      out[#out + 1] = d[1]
      out[#out + 1] = d[2]
      found = found + 1
    end
    from = '(' .. key
  end
end
return out
