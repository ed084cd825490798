-- Move a call's session forward by one step, once.
-- KEYS[1] session hash {seq, data}; KEYS[2] hash seq -> TwiML already answered
-- ARGV[1] expected current seq (-1: the session must not exist yet)
-- ARGV[2] new seq; ARGV[3] new session JSON; ARGV[4] the TwiML answer; ARGV[5] TTL s
-- ARGV[6] how many answers to keep for retries
-- Returns {1} when applied, or {0, answer-for-new-seq or false} when another request won.
local current = redis.call('HGET', KEYS[1], 'seq')
local expected = tonumber(ARGV[1])
if (current == false and expected ~= -1) or (current ~= false and tonumber(current) ~= expected) then
  return {0, redis.call('HGET', KEYS[2], ARGV[2])}
end
redis.call('HSET', KEYS[1], 'seq', ARGV[2], 'data', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local stale = tonumber(ARGV[2]) - tonumber(ARGV[6])
if stale >= 0 then
  redis.call('HDEL', KEYS[2], tostring(stale))
end
return {1}
