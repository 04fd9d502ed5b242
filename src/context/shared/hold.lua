-- Reserves (or, with negative amounts, gives back) documents and bytes an author holds, within
-- its bounds. KEYS: 1 the author's holdings (hash d, b). ARGV: 1 documents, 2 bytes,
-- 3 most documents (0: none), 4 most bytes (0: none). Returns 1, or 0 documents / -1 bytes.
local d = tonumber(redis.call('HGET', KEYS[1], 'd') or '0') + tonumber(ARGV[1])
local b = tonumber(redis.call('HGET', KEYS[1], 'b') or '0') + tonumber(ARGV[2])
if tonumber(ARGV[1]) > 0 and tonumber(ARGV[3]) > 0 and d > tonumber(ARGV[3]) then return 0 end
if tonumber(ARGV[2]) > 0 and tonumber(ARGV[4]) > 0 and b > tonumber(ARGV[4]) then return -1 end
redis.call('HSET', KEYS[1], 'd', math.max(d, 0), 'b', math.max(b, 0))
return 1
