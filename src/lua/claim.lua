-- claim.lua: claim the idempotency keys of a batch of jobs before calling
-- their providers (docs/design.md §7); one verdict per job, in order.
-- Time is Redis server time (TIME), never a worker's clock.
-- KEYS[1] {P}:inflight:<w>   hash: the worker's held jobs (ownership)
-- KEYS[1 + i] {P}:idem:<key of job i>   hash: state owner id worker hash
--                                       lease_until unknown status finished_at
-- ARGV[1] holder: this worker process ("<worker id>/<incarnation>")
-- ARGV[2] record TTL ms (a safety net; ends release or overwrite the record)
-- then per job i: ARGV count (7), handle, owner token (stable across the
-- job's retries), job id, params hash ("s2:" + SHA-256/128), claim lease
-- ms, unknown ('1': the job itself says an earlier call's outcome is
-- unknown), and the params hash as records written before 0.2 carry it
-- (FNV-1a, no "s2:" tag: compared with such records only)
-- Returns an array with one element per job:
--   {'claimed', check}      no record: call (check '1': look status up first)
--   {'held', check}         this process holds the claim already: extended
--   {'reclaimed', check}    this job's own claim, released or run out
--   {'takeover', check, id} another job's claim whose lease ran out
--   {'duplicate', id, status, finished_at}   already carried out
--   {'busy', id}            another live claim holds the key: wait
--   {'conflict', id}        same key, different params
--   {'not_ours'}            the job is no longer in this worker's inflight hash
--   an error reply          this job's key could not be read or written
-- A claim is taken over only after its lease_until has passed.  'check' is
-- kept in the record (unknown=1) so a lost reply, a crash or a shutdown
-- cannot lose it: every later taker looks the status up first.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder = ARGV[1]
local out = {}
local a = 3
local function same_params(rec, hash, v1)
  if rec == hash then return true end
  return string.sub(rec or '', 1, 3) ~= 's2:' and rec == v1
end
local function claim_one(key, handle, owner, id, hash, lease, unknown, v1)
  if redis.call('HEXISTS', KEYS[1], handle) == 0 then return {'not_ours'} end
  local r = redis.pcall('HMGET', key, 'state', 'owner', 'hash', 'id', 'status',
                        'finished_at', 'lease_until', 'worker', 'unknown')
  if r.err then return r end
  local function take(verdict, check, extra)
    local ok = redis.pcall('HSET', key, 'state', 'inflight', 'owner', owner, 'id', id,
                           'worker', holder, 'hash', hash, 'lease_until', now + lease,
                           'unknown', check)
    if type(ok) == 'table' and ok.err then return ok end
    redis.call('PEXPIRE', key, ARGV[2])
    if extra then return {verdict, check, extra} end
    return {verdict, check}
  end
  if not r[1] then return take('claimed', unknown) end
  if not same_params(r[3], hash, v1) then return {'conflict', r[4] or ''} end
  if r[1] == 'done' then return {'duplicate', r[4] or '', r[5] or '', r[6] or ''} end
  local check = (r[9] == '1' or unknown == '1') and '1' or '0'
  if r[2] == owner and r[8] == holder then return take('held', check) end
  if tonumber(r[7] or '0') >= now then return {'busy', r[4] or ''} end
  -- lapsed: a worker that still held it (r[8] not '') vanished, maybe mid-call
  if (r[8] or '') ~= '' then check = '1' end
  if r[2] == owner then return take('reclaimed', check) end
  return take('takeover', check, r[4] or '')
end
for i = 2, #KEYS do
  local n = tonumber(ARGV[a])
  out[i - 1] = claim_one(KEYS[i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4],
                         tonumber(ARGV[a + 5]), ARGV[a + 6], ARGV[a + 7])
  a = a + n + 1
end
return out
