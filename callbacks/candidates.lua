-- Read-only: ids of due jobs and of expired leases, by Redis's clock.
-- KEYS[1] due zset, KEYS[2] leases zset
-- ARGV[1] how many of each
-- Returns {now_ms, {due ids...}, {expired lease ids...}}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, n)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, n)
return {now, due, expired}
