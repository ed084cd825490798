-- Store one survey's answers (once per surveyed call) and count them into the day and
-- month aggregates of every scope (all, queue, agent).
-- KEYS[1] survey hash, KEYS[2] survey index zset, KEYS[3] day stats hash,
-- KEYS[4] month stats hash
-- ARGV[1] call sid, ARGV[2] answered ms, ARGV[3] retention s, ARGV[4] score ('' = none),
-- ARGV[5] solved ('1', '0' or ''), ARGV[6] scopes (comma-separated, e.g.
-- 'all:*,queue:cards,agent:a7'), ARGV[7..] field, value pairs
-- Returns 1, or 0 if this call's survey was already recorded.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fields = {}
for i = 7, #ARGV do table.insert(fields, ARGV[i]) end
redis.call('HSET', KEYS[1], unpack(fields))
local ttl = tonumber(ARGV[3])
redis.call('EXPIRE', KEYS[1], ttl)
local at = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], at, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', at - ttl * 1000)
local score = tonumber(ARGV[4])
for scope in string.gmatch(ARGV[6], '[^,]+') do
  for k = 3, 4 do
    if score then
      redis.call('HINCRBY', KEYS[k], scope .. ':n', 1)
      redis.call('HINCRBY', KEYS[k], scope .. ':sum', score)
      if score >= 4 then redis.call('HINCRBY', KEYS[k], scope .. ':happy', 1) end
    end
    if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[k], scope .. ':solved', 1) end
    if ARGV[5] == '0' then redis.call('HINCRBY', KEYS[k], scope .. ':unsolved', 1) end
  end
end
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('EXPIRE', KEYS[4], ttl)
return 1
