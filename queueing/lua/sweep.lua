-- sweep: return calls whose reservation lease expired to their original place (agent to
-- not_ready, reason 'lease_expired'), end timed wrap-ups, trim ended-call records, pair.
-- ARGV[2] = max items per kind.
local limit = tonumber(ARGV[2])
local expired, wrapped = {}, {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', fmt(NOW), 'LIMIT', 0, limit)) do
  local c = load_call(sid)
  redis.call('ZREM', K_LEASES, sid)
  if c and (c.st == 'reserved' or c.st == 'ringing') then
    local a = load_agent(c.a)
    if a and a.res == c.res then transition(c.a, a, 'not_ready', 'lease_expired') end
    bump(QI[c.q], 'lease_expired', 1)
    expired[#expired + 1] = { call_sid = sid, agent = c.a, reservation = c.res }
    requeue(sid, c)
  end
end
for _, aid in ipairs(redis.call('ZRANGEBYSCORE', K_WRAP, '-inf', fmt(NOW), 'LIMIT', 0, limit)) do
  local a = load_agent(aid)
  if a and a.s == 'wrap_up' then
    transition(aid, a, 'ready')
    wrapped[#wrapped + 1] = aid
  else
    redis.call('ZREM', K_WRAP, aid)
  end
end
local old = redis.call('ZRANGEBYSCORE', K_DONE_IDX, '-inf', fmt(NOW - CFG.done_keep_ms),
                       'LIMIT', 0, limit)
for _, sid in ipairs(old) do
  redis.call('HDEL', K_DONE, sid)
  redis.call('ZREM', K_DONE_IDX, sid)
end
return reply({ ok = true, expired = expired, wrapped = wrapped, trimmed = #old,
               pairings = pair_some(CFG.max_pairs) })
