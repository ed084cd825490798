-- Schedule a new job, unless the live-job bound is reached.
-- KEYS[1] job hash, KEYS[2] history list, KEYS[3] due zset, KEYS[4] index zset,
-- KEYS[5] live counter
-- ARGV[1] job id, ARGV[2] due ms, ARGV[3] max live jobs, ARGV[4] retention s,
-- ARGV[5..] field, value pairs
-- Returns {1, created_ms}, {0, 'full'} or {0, 'exists'}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 'exists'} end
local live = tonumber(redis.call('GET', KEYS[5]) or '0')
if live >= tonumber(ARGV[3]) then return {0, 'full'} end
local fields = {'id', ARGV[1], 'state', 'scheduled', 'due', ARGV[2], 'created', now,
  'updated', now, 'attempt', 0}
for i = 5, #ARGV do table.insert(fields, ARGV[i]) end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[1])
redis.call('ZADD', KEYS[4], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[4]) * 1000)
redis.call('INCR', KEYS[5])
redis.call('RPUSH', KEYS[2], cjson.encode({s = 'scheduled', at = now, r = 'created'}))
return {1, now}
