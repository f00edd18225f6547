-- release.lua: give a job back without an outcome: to {P}:delayed for a retry
-- (due > 0), or to the taking end of {P}:jobs (due = 0: shutdown, unknown
-- handles after a reconnect).  Only if this worker still owns it.
-- KEYS[1] {P}:inflight:<w>   KEYS[2] {P}:delayed   KEYS[3] {P}:jobs
-- ARGV[1] handle   ARGV[2] due ms (0 = now)   ARGV[3] item (envelope) or '' to
-- push the stored item unchanged
-- Returns 1 when moved, 0 when the job is no longer ours.
local item = ARGV[3]
if item == '' then
  item = redis.call('HGET', KEYS[1], ARGV[1])
  if not item then return 0 end
end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] == '0' then
  redis.call('RPUSH', KEYS[3], item)
else
  redis.call('ZADD', KEYS[2], ARGV[2], item)
end
return 1
