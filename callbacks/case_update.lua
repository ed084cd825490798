-- Record the first contact back (response time) or close a case.
-- KEYS[1] case hash, KEYS[2] open cases zset
-- ARGV[1] case id, ARGV[2] 'contact' or 'close', ARGV[3] outcome / note, ARGV[4] retention s
-- Returns 1, or 0 if the case does not exist or is closed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'closed' then return 0 end
if redis.call('HSETNX', KEYS[1], 'first_contact', now) == 1 then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened'))
  redis.call('HSET', KEYS[1], 'response_ms', now - opened, 'status', 'contacted')
end
if ARGV[2] == 'close' then
  redis.call('HSET', KEYS[1], 'status', 'closed', 'closed', now, 'outcome', ARGV[3])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
end
return 1
