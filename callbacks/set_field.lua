-- Set one field of an existing hash (never create it).
-- KEYS[1] hash; ARGV[1] field, ARGV[2] value. Returns 1, or 0 if the hash does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
