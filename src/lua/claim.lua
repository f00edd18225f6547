-- claim.lua: claim an idempotency key before calling a provider (DESIGN.md 7).
-- KEYS[1] {P}:idem:<key>  hash: state owner id worker hash lease_until status finished_at
-- ARGV[1] owner token (stable across retries of one job)   ARGV[2] job id
-- ARGV[3] worker id   ARGV[4] params hash   ARGV[5] now ms   ARGV[6] claim lease ms
-- ARGV[7] record TTL ms (a safety net; ends release or overwrite the record)
-- Returns {verdict, ...}:
--   {'claimed'}                      no record: call the provider
--   {'reclaimed'}                    already ours (a retry, or a job taken back
--                                    from a dead worker): call, after a status
--                                    check if the last attempt's outcome is unknown
--   {'takeover', old_id}             another job's claim whose lease ran out:
--                                    its worker died, maybe mid-call: check first
--   {'duplicate', id, status, finished_at}   already carried out
--   {'busy', id}                     another live job holds the key: wait
--   {'conflict', id}                 same key, different params
local r = redis.call('HMGET', KEYS[1], 'state', 'owner', 'hash', 'id', 'status',
                     'finished_at', 'lease_until')
local now = tonumber(ARGV[5])
local function take(verdict, extra)
  redis.call('HSET', KEYS[1], 'state', 'inflight', 'owner', ARGV[1], 'id', ARGV[2],
             'worker', ARGV[3], 'hash', ARGV[4], 'lease_until', now + tonumber(ARGV[6]))
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  if extra then return {verdict, extra} end
  return {verdict}
end
if not r[1] then return take('claimed') end
if r[3] ~= ARGV[4] then return {'conflict', r[4] or ''} end
if r[1] == 'done' then return {'duplicate', r[4] or '', r[5] or '', r[6] or ''} end
if r[2] == ARGV[1] then return take('reclaimed') end
if tonumber(r[7] or '0') < now then return take('takeover', r[4] or '') end
return {'busy', r[4] or ''}
