-- dispatched: the service sent the redirect for reservation ARGV[3] of call ARGV[2]; the
-- lease now covers the ring time (ring_ms) instead of the short pairing lease.
local sid, res = ARGV[2], tonumber(ARGV[3])
local c = load_call(sid)
if not c or c.res ~= res or (c.st ~= 'reserved' and c.st ~= 'ringing') then
  return reply({ err = 'stale_reservation', call_sid = sid, state = c and c.st })
end
c.st = 'ringing'
save_call(sid, c)
redis.call('ZADD', K_LEASES, fmt(NOW + CFG.ring_ms), sid)
return reply({ ok = true })
