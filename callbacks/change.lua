-- Cancel, reschedule, reassign or put back (a worker that claimed outside the window).
-- KEYS[1] job hash, KEYS[2] history list, KEYS[3] attempts list, KEYS[4] due zset,
-- KEYS[5] leases zset, KEYS[6] live counter
-- ARGV[1] job id, ARGV[2] target state, ARGV[3] states that may become the target,
-- ARGV[4] lease token ('' = no lease check), ARGV[5] new due ms ('' = keep),
-- ARGV[6] reason, ARGV[7] retention s, ARGV[8] history cap, ARGV[9] '1' if terminal,
-- ARGV[10] '1' to undo the claim's attempt (put back before dialling),
-- ARGV[11..] field, value pairs to set ('' value deletes the field)
-- Returns {'ok'}, {'missing'} or {'conflict', current state}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[1], 'state', 'lease', 'attempt')
if not f[1] then return {'missing'} end
local allowed = false
for s in string.gmatch(ARGV[3], '[^,]+') do if s == f[1] then allowed = true end end
if not allowed then return {'conflict', f[1]} end
if ARGV[4] ~= '' and f[2] ~= ARGV[4] then return {'conflict', f[1]} end
local target = ARGV[2]
for i = 11, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if ARGV[10] == '1' then
  redis.call('HSET', KEYS[1], 'attempt', math.max(0, (tonumber(f[3]) or 1) - 1))
  redis.call('RPOP', KEYS[3])
end
redis.call('HSET', KEYS[1], 'state', target, 'updated', now)
redis.call('HDEL', KEYS[1], 'lease', 'dial_mark')
redis.call('ZREM', KEYS[5], ARGV[1])
if ARGV[9] == '1' then
  redis.call('HSET', KEYS[1], 'outcome', ARGV[6])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('DECR', KEYS[6])
  local ttl = tonumber(ARGV[7])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
else
  local due = ARGV[5]
  if due == '' then due = redis.call('HGET', KEYS[1], 'due') end
  redis.call('HSET', KEYS[1], 'due', due)
  redis.call('ZADD', KEYS[4], tonumber(due), ARGV[1])
end
redis.call('RPUSH', KEYS[2], cjson.encode({s = target, at = now, r = ARGV[6]}))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[8]), -1)
return {'ok'}
