-- complete: the connected call ARGV[2] ended. Talk time is recorded; the agent goes to
-- timed wrap-up (the queue's wrap_ms) or, with no wrap-up, straight back to ready.
local sid = ARGV[2]
local c = load_call(sid)
if not c then
  local done = redis.call('HGET', K_DONE, sid)
  if done then return reply({ ok = true, already = true, pairings = {} }) end
  return reply({ err = 'unknown_call', call_sid = sid })
end
if c.st ~= 'connected' then
  return reply({ err = 'not_connected', call_sid = sid, state = c.st })
end
local q = QI[c.q]
local talk = NOW - c.aat
bump(q, 'handled', 1)
bump(q, 'talk_ms', talk)
local a = load_agent(c.a)
local pairings = {}
local agent_state = nil
if a and a.call == sid then
  a.n = (a.n or 0) + 1
  a.lq = c.q
  a.wrap_ms = q.wrap_ms
  a.talk = talk
  if q.wrap_ms <= 0 then record_handle(q, talk) end
  local e = transition(c.a, a, q.wrap_ms > 0 and 'wrap_up' or 'ready')
  if e then return reply(e) end
  agent_state = a.s
  if a.s == 'ready' then pairings = pair_some(CFG.max_pairs) end
end
c.talk = talk
finish(sid, c, 'completed', false)
return reply({ ok = true, already = false, talk_ms = talk, agent = c.a,
               agent_state = agent_state, pairings = pairings })
