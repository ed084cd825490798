-- Open a care case once (its id is derived from the call it is about).
-- KEYS[1] case hash, KEYS[2] open cases zset, KEYS[3] cases index zset
-- ARGV[1] case id, ARGV[2] response target ms, ARGV[3] retention s, ARGV[4..] field pairs
-- Returns {1, opened ms} or {0, 0} if the case exists.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 0} end
local fields = {'id', ARGV[1], 'status', 'open', 'opened', now,
  'deadline', now + tonumber(ARGV[2])}
for i = 4, #ARGV do table.insert(fields, ARGV[i]) end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]) * 1000)
return {1, now}
