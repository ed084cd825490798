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
  redis.call('RPUSH', hist, cjson.encode({s = state, at = now, r = reason}))
  redis.call('LTRIM', hist, -cap, -1)
end

local out = {}
for i = 8, #ARGV do
  local id = ARGV[i]
  local base = 5 + (i - 8) * 3
  local job, hist, att = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
  local f = redis.call('HMGET', job, 'state', 'phone', 'attempt', 'dial_mark')
  local state, phone = f[1], f[2]
  local attempt = tonumber(f[3]) or 0
  local mark = f[4] or ''
  if state and fresh[state] then
    local due = redis.call('ZSCORE', KEYS[1], id)
    if due and tonumber(due) <= now then
      if redis.call('SISMEMBER', KEYS[3], phone) == 1 then
        redis.call('ZREM', KEYS[1], id)
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
        redis.call('ZREM', KEYS[1], id)
        redis.call('ZADD', KEYS[2], now + lease_ms, id)
        redis.call('HSET', job, 'state', 'dialling', 'lease', token, 'attempt', attempt,
          'dial_mark', 'pending:' .. token, 'dial_at', now, 'updated', now)
        redis.call('RPUSH', att, cjson.encode({n = attempt, at = now}))
        history(hist, 'dialling', 'attempt ' .. attempt)
        table.insert(out, {id, 'new', '', redis.call('HGETALL', job)})
      end
    end
  elseif state == 'dialling' or state == 'in_progress' then
    local until_ms = redis.call('ZSCORE', KEYS[2], id)
    if until_ms and tonumber(until_ms) <= now then
      if state == 'in_progress' then
        -- hold it for this worker while it settles the call as 'unknown'
        redis.call('ZADD', KEYS[2], now + lease_ms, id)
        redis.call('HSET', job, 'lease', token)
        table.insert(out, {id, 'stale', mark, redis.call('HGETALL', job)})
      elseif tokens >= 1 then
        tokens = tokens - 1
        redis.call('ZADD', KEYS[2], now + lease_ms, id)
        local new_mark = mark
        if string.sub(mark, 1, 8) == 'pending:' or mark == '' then new_mark = 'pending:' .. token end
        redis.call('HSET', job, 'lease', token, 'dial_mark', new_mark, 'updated', now)
        history(hist, 'dialling', 'lease expired; recovered')
        table.insert(out, {id, 'recover', mark, redis.call('HGETALL', job)})
      end
    end
  end
end
redis.call('HSET', KEYS[4], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[4], 60000)
return {now, out}
