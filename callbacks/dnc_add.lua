-- Add numbers to the do-not-call set, up to its bound.
-- KEYS[1] dnc set; ARGV[1] max members, ARGV[2..] numbers
-- Returns {added, refused}.
local max = tonumber(ARGV[1])
local added, refused = 0, 0
for i = 2, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then
    if redis.call('SCARD', KEYS[1]) < max then
      added = added + redis.call('SADD', KEYS[1], ARGV[i])
    else
      refused = refused + 1
    end
  end
end
return {added, refused}
