-- An attempt ended: record its outcome and move the job to its next state.
-- KEYS[1] job hash, KEYS[2] history list, KEYS[3] attempts list, KEYS[4] due zset,
-- KEYS[5] leases zset, KEYS[6] live counter
-- ARGV[1] job id, ARGV[2] target state, ARGV[3] states that may become the target,
-- ARGV[4] expected attempt number, ARGV[5] expected CallSid ('' = check the lease instead),
-- ARGV[6] lease token ('' = none), ARGV[7] outcome, ARGV[8] answered_by,
-- ARGV[9] retry due ms (for retry_scheduled), ARGV[10] reason, ARGV[11] retention s,
-- ARGV[12] history cap, ARGV[13] '1' if the target is terminal
-- Returns 1, or 0 when the job has moved on (a duplicate or late callback: ignored).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'call_sid', 'lease')
local allowed = false
for s in string.gmatch(ARGV[3], '[^,]+') do if s == f[1] then allowed = true end end
if not allowed or tostring(f[2]) ~= ARGV[4] then return 0 end
if ARGV[5] ~= '' and f[3] ~= ARGV[5] then return 0 end
if ARGV[5] == '' and f[4] ~= ARGV[6] then return 0 end
local target = ARGV[2]
local last = redis.call('LINDEX', KEYS[3], -1)
if last then
  local a = cjson.decode(last)
  a.out = ARGV[7]
  if ARGV[8] ~= '' then a.by = ARGV[8] end
  a['end'] = now
  redis.call('LSET', KEYS[3], -1, cjson.encode(a))
end
redis.call('HSET', KEYS[1], 'state', target, 'outcome', ARGV[10], 'updated', now)
redis.call('HDEL', KEYS[1], 'lease', 'dial_mark')
redis.call('ZREM', KEYS[5], ARGV[1])
if target == 'retry_scheduled' then
  redis.call('HSET', KEYS[1], 'due', ARGV[9])
  redis.call('ZADD', KEYS[4], tonumber(ARGV[9]), ARGV[1])
else
  redis.call('ZREM', KEYS[4], ARGV[1])
end
redis.call('RPUSH', KEYS[2], cjson.encode({s = target, at = now, r = ARGV[10]}))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[12]), -1)
if ARGV[13] == '1' then
  redis.call('DECR', KEYS[6])
  local ttl = tonumber(ARGV[11])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
return 1
