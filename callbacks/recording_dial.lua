-- The recording dialer's "carrier": remember the attempt's CallSid and log the dial.
-- KEYS[1] carrier calls hash, KEYS[2] carrier log list
-- ARGV[1] attempt key, ARGV[2] CallSid, ARGV[3] JSON log entry
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
return 1
