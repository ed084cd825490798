-- answer: the agent of reservation ARGV[3] picked up call ARGV[2]; records the wait.
local sid, res = ARGV[2], tonumber(ARGV[3])
local c = load_call(sid)
if not c or c.res ~= res or (c.st ~= 'reserved' and c.st ~= 'ringing') then
  return reply({ err = 'stale_reservation', call_sid = sid, state = c and c.st })
end
local a = load_agent(c.a)
if not a or a.res ~= res then
  return reply({ err = 'stale_reservation', call_sid = sid, agent = c.a })
end
a.pick = NOW
local e = transition(c.a, a, 'on_call')
if e then return reply(e) end
local q = QI[c.q]
local waited = NOW - c.j
local incs = { { 'answered', 1 }, { 'wait_answered_ms', waited } }
if waited <= q.target_ms then incs[#incs + 1] = { 'answered_in_target', 1 } end
if c.via ~= c.q then incs[#incs + 1] = { 'answered_overflow', 1 } end
if c.cb then incs[#incs + 1] = { 'answered_callback', 1 } end
bump_many(q, incs, { { 'max_wait_answered_ms', waited } })
redis.call('ZREM', K_LEASES, sid)
c.st = 'connected'
c.aat = NOW
c.waited = waited
save_call(sid, c)
return reply({ ok = true, agent = c.a, waited_ms = waited, queue = c.q })
