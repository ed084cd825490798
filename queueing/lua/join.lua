-- join: ARGV[3]=CallSid ARGV[4]=queue ARGV[5]=priority ARGV[6]=info JSON
-- ARGV[7]=original join ms to keep a place ('' for now) ARGV[8]='1' to pair at once.
-- Idempotent per CallSid: a second join returns the call's current state unchanged.
local sid, qname, priority = ARGV[3], ARGV[4], tonumber(ARGV[5])
local q = QI[qname]
if not q then return reply({ err = 'unknown_queue', queue = qname }) end
local c = load_call(sid)
if c then
  local pos = nil
  if c.st == 'waiting' then pos = position_of(QI[c.q].wait, sid) end
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
-- place, ARGV[7] set, never is); the refusal is counted in the interval's statistics
if ARGV[7] == '' and (q.max_wait or 0) > 0 and redis.call('ZCARD', q.wait) >= q.max_wait then
  bump(q.stats, 'refused_full', 1)
  return reply({ err = 'queue_full', queue = qname, max_waiting = q.max_wait })
end
local joined = NOW
if ARGV[7] ~= '' then joined = tonumber(ARGV[7]) end
c = { q = qname, p = priority, j = joined, st = 'waiting', info = cjson.decode(ARGV[6]),
      att = 0 }
save_call(sid, c)
redis.call('ZADD', q.wait, fmt(score_of(priority, joined)), sid)
if ARGV[7] == '' then bump(q.stats, 'offered', 1) end
local pairings = {}
if ARGV[8] == '1' then pairings = pair_some(CFG.max_pairs) end
local pos = position_of(q.wait, sid)
return reply({ ok = true, duplicate = false, state = (pos and 'waiting' or 'reserved'),
               queue = qname, position = pos, joined_ms = joined,
               pairings = pairings })
