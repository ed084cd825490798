-- The carrier accepted the call (or recovery found that it had): dialling -> in_progress.
-- KEYS[1] job hash, KEYS[2] history list, KEYS[3] attempts list, KEYS[4] leases zset,
-- KEYS[5] call -> job key, KEYS[6] early status key (a final status that came first)
-- ARGV[1] job id, ARGV[2] lease token, ARGV[3] CallSid, ARGV[4] ms to wait for a final
-- status, ARGV[5] call key TTL s, ARGV[6] history cap, ARGV[7] states that may become
-- in_progress
-- Returns {1, early status JSON or ''}, or {0, ''} if this worker no longer holds the job.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[1], 'state', 'lease')
local allowed = false
for s in string.gmatch(ARGV[7], '[^,]+') do if s == f[1] then allowed = true end end
if not allowed or f[2] ~= ARGV[2] then return {0, ''} end
redis.call('HSET', KEYS[1], 'state', 'in_progress', 'call_sid', ARGV[3], 'dial_mark', ARGV[3],
  'updated', now)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), ARGV[1])
redis.call('SET', KEYS[5], ARGV[1], 'EX', tonumber(ARGV[5]))
local last = redis.call('LINDEX', KEYS[3], -1)
if last then
  local a = cjson.decode(last)
  a.sid = ARGV[3]
  redis.call('LSET', KEYS[3], -1, cjson.encode(a))
end
redis.call('RPUSH', KEYS[2], cjson.encode({s = 'in_progress', at = now, r = ARGV[3]}))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[6]), -1)
local early = redis.call('GET', KEYS[6])
if early then redis.call('DEL', KEYS[6]) else early = '' end
return {1, early}
