-- supervisor_waits: count the queue waits of calls that ended since the last run into the
-- day's wait histogram (queueing/supervisor_stats.py). Atomic, so any number of processes
-- may run it and every ended call is counted once.
-- KEYS[1] route_done hash   KEYS[2] route_done index (CallSid -> end ms)
-- KEYS[3] checkpoint (end ms of the last call counted)
-- KEYS[4] histogram of today   KEYS[5] histogram of yesterday
-- ARGV[1] start of today (ms, UTC)   ARGV[2] histogram TTL (s)
-- ARGV[3] bucket upper bounds in ms, comma-separated, ascending
-- Returns the number of calls counted.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local today = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local bounds = {}
for b in string.gmatch(ARGV[3], '[^,]+') do bounds[#bounds + 1] = tonumber(b) end
local cp = tonumber(redis.call('GET', KEYS[3]) or '-1')
-- up to now - 1: a script running later in this same millisecond may still add an entry
-- scored `now`; it is counted by the next run
local upto = now - 1
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. string.format('%.0f', cp),
                       string.format('%.0f', upto), 'WITHSCORES')
local counted = 0
local touched = {}
for i = 1, #ids, 2 do
  local raw = redis.call('HGET', KEYS[1], ids[i])
  local ended = tonumber(ids[i + 1])
  if raw then
    local c = cjson.decode(raw)
    local outcome = nil
    if c.st == 'completed' then outcome = 'answered' elseif c.st == 'abandoned' then outcome = 'abandoned' end
    local waited = tonumber(c.waited)
    local key = nil
    if ended >= today then key = KEYS[4] elseif ended >= today - 86400000 then key = KEYS[5] end
    if outcome and waited and key and c.q then
      local le = '+Inf'
      for _, b in ipairs(bounds) do
        if waited <= b then le = tostring(b) break end
      end
      local base = c.q .. ':' .. outcome .. ':'
      redis.call('HINCRBY', key, base .. le, 1)
      redis.call('HINCRBY', key, base .. 'count', 1)
      redis.call('HINCRBY', key, base .. 'sum_ms', string.format('%.0f', waited))
      touched[key] = true
      counted = counted + 1
    end
  end
end
for key, _ in pairs(touched) do redis.call('EXPIRE', key, ttl) end
if upto > cp then redis.call('SET', KEYS[3], string.format('%.0f', upto)) end
return counted
