-- leave: the caller hung up while queued (ARGV[3]='abandoned') or the call was withdrawn
-- (ARGV[3]='cancelled', e.g. a callback the customer no longer wants). ARGV[2]=CallSid.
-- A call ringing at an agent is abandoned too: the agent goes back to ready. A virtual
-- callback is not abandoned by its caller's hang-up (ignored); 'cancelled' withdraws it.
local sid, why = ARGV[2], ARGV[3]
local c = load_call(sid)
if not c then
  local done = redis.call('HGET', K_DONE, sid)
  if done then
    return reply({ ok = true, already = true, state = cjson.decode(done).st, pairings = {} })
  end
  return reply({ err = 'unknown_call', call_sid = sid })
end
if c.cb and why == 'abandoned' then
  -- a virtual callback: the caller hung up on purpose and keeps the place; not abandoned
  return reply({ ok = true, already = false, ignored = true, state = c.st, callback = true,
                 pairings = {} })
end
if c.st == 'connected' then
  return reply({ err = 'connected', call_sid = sid, agent = c.a })
end
local q = QI[c.q]
local waited = NOW - c.j
wait_rem(q, sid)
local pairings = {}
if c.st == 'reserved' or c.st == 'ringing' then
  local a = load_agent(c.a)
  if a and a.call == sid then
    local e = transition(c.a, a, 'ready')
    if e then return reply(e) end
  end
end
if why == 'abandoned' then
  bump(q, 'abandoned', 1)
  bump(q, 'wait_abandoned_ms', waited)
  if waited < q.short_ms then
    bump(q, 'abandoned_short', 1)
  elseif waited > q.target_ms then
    bump(q, 'abandoned_after_target', 1)
  end
  local entry = { call_sid = sid, queue = c.q, priority = c.p, joined_ms = c.j,
                  waited_ms = waited, at_ms = NOW, info = c.info, callback = c.cb and true or false }
  redis.call('LPUSH', K_ABANDONED, cjson.encode(entry))
  redis.call('LTRIM', K_ABANDONED, 0, CFG.abandoned_max - 1)
else
  bump(q, 'cancelled', 1)
end
c.waited = waited
finish(sid, c, why)
pairings = pair_some(CFG.max_pairs)
return reply({ ok = true, already = false, state = why, waited_ms = waited,
               pairings = pairings })
