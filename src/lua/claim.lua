-- claim.lua: claim the idempotency keys of a batch of jobs before calling
-- their providers (docs/design.md §7); one verdict per job, in order.
-- Time is Redis server time (TIME), never a worker's clock.
-- KEYS[1] {P}:inflight:<w>   hash: the worker's held jobs (ownership)
-- then per job i three keys: {P}:idem:<key of job i>   hash: state owner id
-- worker hash lease_until unknown status finished_at; {P}:limit:<its
-- provider instance> (limit.lua: open breaker, 429 pause) and
-- {P}:pause:<instance> (an operator's pause: until, 0 = until resumed),
-- read once per instance per batch, so every worker honours them within
-- one batch of claims (docs/design.md §8)
-- ARGV[1] holder: this worker process ("<worker id>/<incarnation>")
-- ARGV[2] record TTL ms (a safety net; ends release or overwrite the record)
-- then per job i: ARGV count (7), handle, owner token (stable across the
-- job's retries), job id, params hash ("s2:" + SHA-256/128), claim lease
-- ms, unknown ('1': the job itself says an earlier call's outcome is
-- unknown), and the params hash as records written before 0.2 carry it
-- (FNV-1a, no "s2:" tag: compared with such records only)
-- Returns an array with one element per job, each
-- {verdict, check, a, b, c, open ms, pause ms}: the instance's breaker
-- open for that long, its pause (429 or an operator's; -1 = until resumed)
--   'claimed'    no record: call (check '1': look status up first)
--   'held'       this process holds the claim already: extended
--   'reclaimed'  this job's own claim, released or run out
--   'takeover'   another job's claim whose lease ran out (a: its job id)
--   'duplicate'  already carried out (a, b, c: id, status, finished_at)
--   'busy'       another live claim holds the key: wait (a: its job id)
--   'conflict'   same key, different params (a: its job id)
--   'not_ours'   the job is no longer in this worker's inflight hash
--   or an error reply: this job's key could not be read or written
-- A claim is taken over only after its lease_until has passed.  'check' is
-- kept in the record (unknown=1) so a lost reply, a crash or a shutdown
-- cannot lose it: every later taker looks the status up first.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder = ARGV[1]
local out = {}
local a = 3
local limits = {} -- per instance key: {open ms, pause ms}
local function limit_of(lkey, pkey)
  local l = limits[lkey]
  if l then return l end
  local r = redis.pcall('HMGET', lkey, 'open_until', 'pause_until')
  local open, pause = 0, 0
  if type(r) == 'table' and not r.err then
    open = math.max(0, tonumber(r[1] or '0') - now)
    pause = math.max(0, tonumber(r[2] or '0') - now)
  end
  local p = redis.pcall('HGET', pkey, 'until')
  if type(p) == 'string' then
    local u = tonumber(p) or 0
    if u == 0 then pause = -1 elseif u - now > pause then pause = u - now end
  end
  l = {open, pause}
  limits[lkey] = l
  return l
end
local function same_params(rec, hash, v1)
  if rec == hash then return true end
  return string.sub(rec or '', 1, 3) ~= 's2:' and rec == v1
end
local function claim_one(key, handle, owner, id, hash, lease, unknown, v1)
  if redis.call('HEXISTS', KEYS[1], handle) == 0 then return {'not_ours', '0'} end
  local r = redis.pcall('HMGET', key, 'state', 'owner', 'hash', 'id', 'status',
                        'finished_at', 'lease_until', 'worker', 'unknown')
  if r.err then return r end
  local function take(verdict, check, extra)
    local ok = redis.pcall('HSET', key, 'state', 'inflight', 'owner', owner, 'id', id,
                           'worker', holder, 'hash', hash, 'lease_until', now + lease,
                           'unknown', check)
    if type(ok) == 'table' and ok.err then return ok end
    redis.call('PEXPIRE', key, ARGV[2])
    return {verdict, check, extra or ''}
  end
  if not r[1] then return take('claimed', unknown) end
  if not same_params(r[3], hash, v1) then return {'conflict', '0', r[4] or ''} end
  if r[1] == 'done' then return {'duplicate', '0', r[4] or '', r[5] or '', r[6] or ''} end
  local check = (r[9] == '1' or unknown == '1') and '1' or '0'
  if r[2] == owner and r[8] == holder then return take('held', check) end
  if tonumber(r[7] or '0') >= now then return {'busy', '0', r[4] or ''} end
  -- lapsed: a worker that still held it (r[8] not '') vanished, maybe mid-call
  if (r[8] or '') ~= '' then check = '1' end
  if r[2] == owner then return take('reclaimed', check) end
  return take('takeover', check, r[4] or '')
end
for i = 2, #KEYS, 3 do
  local n = tonumber(ARGV[a])
  local v = claim_one(KEYS[i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4],
                      tonumber(ARGV[a + 5]), ARGV[a + 6], ARGV[a + 7])
  if v.err then
    out[#out + 1] = v
  else
    local l = limit_of(KEYS[i + 1], KEYS[i + 2])
    while #v < 5 do v[#v + 1] = '' end
    v[6], v[7] = l[1], l[2]
    out[#out + 1] = v
  end
  a = a + n + 1
end
return out
