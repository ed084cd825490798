-- Attach a recorded comment (URL, transcript) to a survey already recorded.
-- KEYS[1] survey hash; ARGV field, value pairs (comment_url, comment_text)
-- Returns 1, or 0 if no survey is recorded for this call (nothing is written).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
