-- claim.lua: claim the idempotency keys of a batch of jobs before calling
-- their providers (docs/design.md §7); one verdict per job, in order.
-- KEYS[i] {P}:idem:<key of job i>  hash: state owner id worker hash lease_until
--                                  status finished_at
-- ARGV[1] worker id   ARGV[2] now ms
-- ARGV[3] record TTL ms (a safety net; ends release or overwrite the record)
-- then per job i: ARGV count (4), owner token (stable across retries of one
-- job), job id, params hash, claim lease ms
-- Returns an array with one element per job:
--   {'claimed'}                      no record: call the provider
--   {'reclaimed'}                    already ours (a retry, or a job taken back
--                                    from a dead worker): call, after a status
--                                    check if the last attempt's outcome is unknown
--   {'takeover', old_id}             another job's claim whose lease ran out:
--                                    its worker died, maybe mid-call: check first
--   {'duplicate', id, status, finished_at}   already carried out
--   {'busy', id}                     another live job holds the key: wait
--   {'conflict', id}                 same key, different params
--   an error reply                   this job's key could not be read or
--                                    written (e.g. not a hash); others go on
local now = tonumber(ARGV[2])
local out = {}
local a = 4
local function claim_one(key, owner, id, hash, lease)
  local r = redis.pcall('HMGET', key, 'state', 'owner', 'hash', 'id', 'status',
                        'finished_at', 'lease_until')
  if r.err then return r end
  local function take(verdict, extra)
    local ok = redis.pcall('HSET', key, 'state', 'inflight', 'owner', owner, 'id', id,
                           'worker', ARGV[1], 'hash', hash, 'lease_until', now + lease)
    if type(ok) == 'table' and ok.err then return ok end
    redis.call('PEXPIRE', key, ARGV[3])
    if extra then return {verdict, extra} end
    return {verdict}
  end
  if not r[1] then return take('claimed') end
  if r[3] ~= hash then return {'conflict', r[4] or ''} end
  if r[1] == 'done' then return {'duplicate', r[4] or '', r[5] or '', r[6] or ''} end
  if r[2] == owner then return take('reclaimed') end
  if tonumber(r[7] or '0') < now then return take('takeover', r[4] or '') end
  return {'busy', r[4] or ''}
end
for i = 1, #KEYS do
  local n = tonumber(ARGV[a])
  out[i] = claim_one(KEYS[i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4]))
  a = a + n + 1
end
return out
