-- noanswer: reservation ARGV[3] of call ARGV[2] was not answered; ARGV[4] says whose fault.
--   agent: the agent goes not_ready (reason no_answer), the call back to its original
--          place with its original join time (the head, in practice), pairing runs.
--   customer: a callback the customer did not pick up: the agent goes back to ready and
--          the callback ends as 'callback_unreached' (the callbacks package retries).
--   system: the redirect failed: agent ready, call back to its place; no pairing now
--          (the sweeper pairs on its next run, so a failing call cannot spin).
local sid, res, party = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local c = load_call(sid)
if not c or c.res ~= res or (c.st ~= 'reserved' and c.st ~= 'ringing') then
  return reply({ err = 'stale_reservation', call_sid = sid, state = c and c.st })
end
local q = QI[c.q]
local a = load_agent(c.a)
if a and a.res == res then
  local new = 'ready'
  if party == 'agent' then new = 'not_ready' end
  local e = transition(c.a, a, new, 'no_answer')
  if e then return reply(e) end
end
c.att = (c.att or 0) + 1
local state = 'waiting'
if party == 'customer' then
  bump(q, 'callback_unreached', 1)
  c.waited = NOW - c.j
  finish(sid, c, 'callback_unreached')
  state = 'callback_unreached'
else
  bump(q, party == 'agent' and 'no_answer' or 'dispatch_failed', 1)
  requeue(sid, c)
end
local pairings = {}
if party ~= 'system' then pairings = pair_some(CFG.max_pairs) end
return reply({ ok = true, state = state, pairings = pairings })
