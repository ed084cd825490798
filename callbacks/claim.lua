-- Claim due jobs, and take over expired leases, for one worker, within the outbound rate
-- limit shared by all workers (a token bucket on Redis's clock). A claimed job becomes
-- 'dialling' under a lease, and its dial idempotency mark is written here, before any dial.
--
-- KEYS[1] due zset, KEYS[2] leases zset, KEYS[3] dnc set, KEYS[4] rate hash, KEYS[5] live
-- counter, then for each candidate i: job hash, history list, attempts list
-- ARGV[1] lease token, ARGV[2] lease ms, ARGV[3] calls per second, ARGV[4] burst,
-- ARGV[5] states that may become 'dialling' on a fresh claim (comma-separated),
-- ARGV[6] retention s, ARGV[7] history cap, ARGV[8..] candidate ids (same order as KEYS)
--
-- Returns {now, {id, mode, old_mark, {job fields...}}...}; mode is
--   new     a fresh claim: dial it (attempt and mark already written)
--   recover a lease expired in 'dialling': old_mark tells whether the dial happened
--   stale   an in-progress call past its status deadline: settle it, do not dial
--   dnc     the number is on the do-not-call list: the job was cancelled
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token = ARGV[1]
local lease_ms = tonumber(ARGV[2])
local cps = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local retention = tonumber(ARGV[6])
local cap = tonumber(ARGV[7])
local fresh = {}
for s in string.gmatch(ARGV[5], '[^,]+') do fresh[s] = true end

local bucket = redis.call('HMGET', KEYS[4], 'tokens', 'ts')
local tokens = tonumber(bucket[1]) or burst
local last = tonumber(bucket[2]) or now
if now > last then tokens = math.min(burst, tokens + (now - last) * cps / 1000.0) end

local function history(hist, state, reason)
  if redis.call('RPUSH', hist, cjson.encode({s = state, at = now, r = reason})) > cap then
    redis.call('LTRIM', hist, -cap, -1)
  end
end

-- Every redis.call costs a few microseconds of Redis's one thread beyond its own work, so
-- the reads and the sorted-set writes of the whole batch are one call each.
local n = #ARGV - 7
if n < 1 then return {now, {}} end
local jobs = {}
for i = 1, n do
  local base = 5 + (i - 1) * 3
  local f = redis.call('HMGET', KEYS[base + 1], 'state', 'phone', 'attempt', 'dial_mark')
  jobs[i] = {id = ARGV[7 + i], job = KEYS[base + 1], hist = KEYS[base + 2],
    att = KEYS[base + 3], state = f[1], phone = f[2], attempt = tonumber(f[3]) or 0,
    mark = f[4] or ''}
end
local ids = {}
local phones = {}
for i = 1, n do
  ids[i] = jobs[i].id
  phones[i] = jobs[i].phone or ''
end
local due = redis.call('ZMSCORE', KEYS[1], unpack(ids))
local until_ms = redis.call('ZMSCORE', KEYS[2], unpack(ids))
local dnc = redis.call('SMISMEMBER', KEYS[3], unpack(phones))
local leave_due = {}
local leases = {}

local out = {}
for i = 1, n do
  local j = jobs[i]
  local id, job, hist, att = j.id, j.job, j.hist, j.att
  local state, attempt, mark = j.state, j.attempt, j.mark
  if state and fresh[state] then
    if due[i] and tonumber(due[i]) <= now then
      if dnc[i] == 1 then
        table.insert(leave_due, id)
        redis.call('HSET', job, 'state', 'cancelled', 'outcome', 'do_not_call', 'updated', now)
        redis.call('HDEL', job, 'lease', 'dial_mark')
        history(hist, 'cancelled', 'do_not_call')
        redis.call('DECR', KEYS[5])
        redis.call('EXPIRE', job, retention)
        redis.call('EXPIRE', hist, retention)
        redis.call('EXPIRE', att, retention)
        table.insert(out, {id, 'dnc', '', redis.call('HGETALL', job)})
      elseif tokens >= 1 then
        tokens = tokens - 1
        attempt = attempt + 1
        table.insert(leave_due, id)
        table.insert(leases, now + lease_ms)
        table.insert(leases, id)
        redis.call('HSET', job, 'state', 'dialling', 'lease', token, 'attempt', attempt,
          'dial_mark', 'pending:' .. token, 'dial_at', now, 'updated', now)
        redis.call('RPUSH', att, cjson.encode({n = attempt, at = now}))
        history(hist, 'dialling', 'attempt ' .. attempt)
        table.insert(out, {id, 'new', '', redis.call('HGETALL', job)})
      end
    end
  elseif state == 'dialling' or state == 'in_progress' then
    if until_ms[i] and tonumber(until_ms[i]) <= now then
      if state == 'in_progress' then
        -- hold it for this worker while it settles the call as 'unknown'
        table.insert(leases, now + lease_ms)
        table.insert(leases, id)
        redis.call('HSET', job, 'lease', token)
        table.insert(out, {id, 'stale', mark, redis.call('HGETALL', job)})
      elseif tokens >= 1 then
        tokens = tokens - 1
        table.insert(leases, now + lease_ms)
        table.insert(leases, id)
        local new_mark = mark
        if string.sub(mark, 1, 8) == 'pending:' or mark == '' then new_mark = 'pending:' .. token end
        redis.call('HSET', job, 'lease', token, 'dial_mark', new_mark, 'updated', now)
        history(hist, 'dialling', 'lease expired; recovered')
        table.insert(out, {id, 'recover', mark, redis.call('HGETALL', job)})
      end
    end
  end
end
if #leave_due > 0 then redis.call('ZREM', KEYS[1], unpack(leave_due)) end
if #leases > 0 then redis.call('ZADD', KEYS[2], unpack(leases)) end
redis.call('HSET', KEYS[4], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[4], 60000)
return {now, out}
