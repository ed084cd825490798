-- join: ARGV[2]=CallSid ARGV[3]=queue ARGV[4]=priority ARGV[5]=info JSON
-- ARGV[6]=original join ms to keep a place ('' for now) ARGV[7]='1' to pair at once.
-- Idempotent per CallSid: a second join returns the call's current state unchanged.
local sid, qname, priority = ARGV[2], ARGV[3], tonumber(ARGV[4])
local q = QI[qname]
if not q then return reply({ err = 'unknown_queue', queue = qname }) end
local c = load_call(sid)
if c then
  local pos = nil
  if c.st == 'waiting' then pos = position_of(QI[c.q], sid) end
  return reply({ ok = true, duplicate = true, state = c.st, queue = c.q,
                 position = pos, joined_ms = c.j, pairings = {} })
end
local done = redis.call('HGET', K_DONE, sid)
if done then
  local d = cjson.decode(done)
  return reply({ ok = true, duplicate = true, state = d.st, queue = d.q, joined_ms = d.j,
                 pairings = {} })
end
-- capacity: a new caller beyond max_wait waiting calls is refused (a call keeping its
-- place, ARGV[6] set, never is); the refusal is counted in the interval's statistics
if ARGV[6] == '' and (q.max_wait or 0) > 0 and redis.call('ZCARD', q.wait) >= q.max_wait then
  bump(q, 'refused_full', 1)
  return reply({ err = 'queue_full', queue = qname, max_waiting = q.max_wait })
end
local joined = NOW
if ARGV[6] ~= '' then joined = tonumber(ARGV[6]) end
c = { q = qname, p = priority, j = joined, st = 'waiting', info = cjson.decode(ARGV[5]),
      att = 0 }
save_call(sid, c)
if ARGV[6] == '' then bump(q, 'offered', 1) end
local pairings = {}
local score = score_of(priority, joined)
if ARGV[7] == '1' then
  pairings = pair_some(CFG.max_pairs, { q = q, sid = sid, score = score })
else
  wait_add(q, score, sid)
end
local pos = nil
if c.st == 'waiting' then pos = position_of(q, sid) end -- else paired at once
return reply({ ok = true, duplicate = false, state = c.st, queue = qname, position = pos,
               joined_ms = joined,
               pairings = pairings })
