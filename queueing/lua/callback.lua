-- callback: the waiting call ARGV[2] takes a callback that keeps its place; ARGV[3] is the
-- number to dial. It stays in the queue with its original join time; when it reaches an
-- agent the pairing says kind='callback' and the service dials the customer.
local sid, number = ARGV[2], ARGV[3]
local c = load_call(sid)
if not c then return reply({ err = 'unknown_call', call_sid = sid }) end
if c.st ~= 'waiting' then return reply({ err = 'not_waiting', call_sid = sid, state = c.st }) end
if c.cb then return reply({ ok = true, already = true }) end
c.cb = true
c.cbn = number
c.cbat = NOW
save_call(sid, c)
bump(QI[c.q], 'callbacks', 1)
return reply({ ok = true, already = false, position = position_of(QI[c.q], sid) })
