-- Link a follow-up job to its case (only once).
-- KEYS[1] case hash; ARGV[1] job id. Returns 1, or 0 if the case is missing or linked.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'job_id', ARGV[1])
