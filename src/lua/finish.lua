-- finish.lua: end a job in one atomic step (DESIGN.md 3, 5, 6, 7): release the
-- inflight entry, publish the outcome, write the dead letter, settle the
-- idempotency record -- only if this worker still owns the job, so a worker
-- presumed dead that comes back cannot publish a second outcome.
-- KEYS[1] {P}:inflight:<w>  KEYS[2] {P}:results  KEYS[3] {P}:dead
-- KEYS[4] {P}:idem:<key> (any key of the deployment when the job has none)
-- ARGV[1] handle   ARGV[2] results MAXLEN (~)   ARGV[3] dead entry JSON or ''
-- ARGV[4] idem op: 'done' | 'release' | 'none'   ARGV[5] owner token
-- ARGV[6] idem TTL ms   ARGV[7] status   ARGV[8] finished_at   ARGV[9] job id
-- ARGV[10..] outcome field/value pairs
-- Returns 1 when written, 0 when the job is no longer ours (nothing written).
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 10))
if ARGV[3] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[3]) end
if ARGV[4] == 'done' then
  redis.call('HSET', KEYS[4], 'state', 'done', 'owner', ARGV[5], 'id', ARGV[9],
             'status', ARGV[7], 'finished_at', ARGV[8])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
elseif ARGV[4] == 'release' then
  if redis.call('HGET', KEYS[4], 'owner') == ARGV[5] then redis.call('DEL', KEYS[4]) end
end
return 1
