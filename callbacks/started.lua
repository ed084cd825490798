-- The carrier accepted the calls (or recovery found that it had): dialling -> in_progress,
-- for one or more jobs in one round trip (the scheduler batches the dials that finished
-- together).
-- KEYS[1] leases zset, then per item i (0-based) at 2 + 5i: job hash, history list,
--   attempts list, call -> job key, early status key (a final status that came first)
-- ARGV[1] ms to wait for a final status, ARGV[2] call key TTL s, ARGV[3] history cap,
-- ARGV[4] states that may become in_progress, then per item at 5 + 3i: job id, lease
--   token, CallSid
-- Returns a flat list: per item 1, early status JSON or '' ; or 0, '' if this worker no
-- longer holds the job.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait_ms = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local sources = {}
for s in string.gmatch(ARGV[4], '[^,]+') do sources[s] = true end
local out = {}
local leases = {}  -- one ZADD for the batch (each redis.call costs Redis's thread)
local n = (#ARGV - 4) / 3
for i = 0, n - 1 do
  local id, lease, sid = ARGV[5 + 3 * i], ARGV[6 + 3 * i], ARGV[7 + 3 * i]
  local job, hist, att = KEYS[2 + 5 * i], KEYS[3 + 5 * i], KEYS[4 + 5 * i]
  local call, early_key = KEYS[5 + 5 * i], KEYS[6 + 5 * i]
  local f = redis.call('HMGET', job, 'state', 'lease')
  if not sources[f[1]] or f[2] ~= lease then
    table.insert(out, 0)
    table.insert(out, '')
  else
    redis.call('HSET', job, 'state', 'in_progress', 'call_sid', sid, 'dial_mark', sid,
      'updated', now)
    table.insert(leases, now + wait_ms)
    table.insert(leases, id)
    redis.call('SET', call, id, 'EX', ttl)
    local last = redis.call('LINDEX', att, -1)
    if last then
      local a = cjson.decode(last)
      a.sid = sid
      redis.call('LSET', att, -1, cjson.encode(a))
    end
    if redis.call('RPUSH', hist, cjson.encode({s = 'in_progress', at = now, r = sid})) > cap then
      redis.call('LTRIM', hist, -cap, -1)
    end
    local early = redis.call('GET', early_key)
    if early then redis.call('DEL', early_key) else early = '' end
    table.insert(out, 1)
    table.insert(out, early)
  end
end
if #leases > 0 then redis.call('ZADD', KEYS[1], unpack(leases)) end
return out
