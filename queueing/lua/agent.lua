-- agent: ARGV[2]=agent id ARGV[3]=op ARGV[4]=reason (not_ready) or eligibility JSON (login)
-- ops: login (ARGV[5]='ready' or 'not_ready'), logout, ready, not_ready, end_wrap.
-- Whenever an agent becomes ready, pairing runs at once.
local aid, op, extra = ARGV[2], ARGV[3], ARGV[4]
local a = load_agent(aid)
if op == 'login' then
  if not a then a = { s = 'offline', since = NOW, n = 0 } end
  if a.s ~= 'offline' then
    return reply({ err = 'invalid_transition', agent = aid, from = a.s, to = ARGV[5] })
  end
  a.q = cjson.decode(extra)
  a.n = 0
  local e = transition(aid, a, ARGV[5], 'login')
  if e then return reply(e) end
elseif not a or a.s == 'offline' then
  -- only login leaves offline (it brings the agent's eligibility); the table allows
  -- offline -> ready / not_ready for login alone
  local to = ({ logout = 'offline', ready = 'ready', not_ready = 'not_ready',
                end_wrap = 'ready' })[op] or op
  return reply({ err = 'invalid_transition', agent = aid, from = 'offline', to = to })
elseif LOCKED[a.s] then
  -- ringing or talking: only the call's events move the agent on
  local to = ({ logout = 'offline', ready = 'ready', not_ready = 'not_ready',
                end_wrap = 'ready' })[op] or op
  return reply({ err = 'invalid_transition', agent = aid, from = a.s, to = to, locked = true })
elseif op == 'logout' then
  local e = transition(aid, a, 'offline')
  if e then return reply(e) end
elseif op == 'ready' then
  local e = transition(aid, a, 'ready')
  if e then return reply(e) end
elseif op == 'not_ready' then
  local e = transition(aid, a, 'not_ready', extra ~= '' and extra or 'busy')
  if e then return reply(e) end
elseif op == 'end_wrap' then
  if a.s ~= 'wrap_up' then
    return reply({ err = 'invalid_transition', agent = aid, from = a.s, to = 'ready' })
  end
  local e = transition(aid, a, 'ready')
  if e then return reply(e) end
else
  return reply({ err = 'unknown_op', op = op })
end
local pairings = {}
if a.s == 'ready' then pairings = pair_some(CFG.max_pairs) end
a = load_agent(aid)
return reply({ ok = true, agent = aid, state = a.s, reason = a.r, since_ms = a.since,
               pairings = pairings })
