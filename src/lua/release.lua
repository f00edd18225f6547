-- release.lua: give a batch of jobs back without an outcome, each in one
-- step: to {P}:delayed for a retry (due > 0), or to the taking end of
-- {P}:jobs (due = 0: shutdown, unknown handles after a reconnect).  Only if
-- this worker still owns the job.
-- KEYS[1] {P}:inflight:<w>   KEYS[2] {P}:delayed   KEYS[3] {P}:jobs
-- then per job i: ARGV count (3), handle, due ms (0 = now), item (envelope)
-- or '' to push the stored item unchanged
-- Returns an array with one element per job: 1 when moved, 0 when the job
-- is no longer ours.
local out = {}
local a = 1
local i = 1
while a <= #ARGV do
  local n = tonumber(ARGV[a])
  local handle, due, item = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  if item == '' then item = redis.call('HGET', KEYS[1], handle) end
  if not item or redis.call('HDEL', KEYS[1], handle) == 0 then
    out[i] = 0
  else
    if tonumber(due) == 0 then
      redis.call('RPUSH', KEYS[3], item)
    else
      redis.call('ZADD', KEYS[2], due, item)
    end
    out[i] = 1
  end
  a = a + n + 1
  i = i + 1
end
return out
