-- Park a final status that arrived before the dial was recorded.
-- KEYS[1] call -> job key, KEYS[2] early status key
-- ARGV[1] JSON {status, answered_by}, ARGV[2] TTL s
-- Returns 1 if parked, 0 if the call is already recorded (handle it normally).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
