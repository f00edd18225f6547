-- finish.lua: end a batch of jobs, each in one step (docs/design.md §3, §5,
-- §6, §7): release the inflight entry, publish the outcome, write the dead
-- letter, settle the idempotency record -- only if this worker still holds
-- the job, so a worker presumed dead that comes back cannot publish a
-- second outcome.
-- The shared keys' types are checked before the first write: a script that
-- fails half-way is not rolled back, and a job must never leave inflight
-- without its outcome.  An error reply therefore means nothing was written.
-- KEYS[1] {P}:inflight:<w>  KEYS[2] {P}:results  KEYS[3] {P}:dead
-- KEYS[3 + i] {P}:idem:<key of job i> (any key of the deployment when none)
-- ARGV[1] results MAXLEN (~; '0': no trimming here, trim.lua does it)
-- ARGV[2] idem TTL ms   ARGV[3] worker id
-- then per job i: ARGV count, handle, dead entry JSON or '', idem op
-- ('done' | 'release' | 'none'), owner token, params hash, then the
-- outcome's values in the order of FIELDS below (meta '' when the job had
-- none), then optional fields as name, value pairs (a duplicate's
-- original_id, original_status, original_finished_at; raw_sha256 of a job
-- that was not JSON)
-- Returns an array with one element per job: 1 when written, 0 when the job
-- is no longer ours (nothing written), or a string when the outcome is
-- written but the idempotency record was left alone: 'kept' (another job
-- holds it now) or 'record: <error>' (it could not be read or written).
local FIELDS = {'id', 'idempotency_key', 'provider', 'action', 'status', 'attempts',
                'http_status', 'error', 'message', 'duration_ms', 'finished_at'}
local function must_be(key, want)
  local t = redis.call('TYPE', key).ok
  if t ~= want and t ~= 'none' then
    return redis.error_reply(key .. ' is a ' .. t .. ', not a ' .. want)
  end
end
local e = must_be(KEYS[2], 'stream') or must_be(KEYS[3], 'list')
if e then return e end
local function settle(key, op, owner, hash, v)
  if op == 'none' then return 1 end
  local o = redis.pcall('HGET', key, 'owner')
  if type(o) == 'table' and o.err then return 'record: ' .. o.err end
  if o and o ~= owner then return 'kept' end
  if op == 'release' then
    if o then redis.call('DEL', key) end
    return 1
  end
  -- done: id, status and finished_at of the outcome, and the params hash
  -- that later jobs with the same key are compared with
  redis.call('DEL', key)
  redis.call('HSET', key, 'state', 'done', 'owner', owner, 'id', ARGV[v], 'hash', hash,
             'status', ARGV[v + 4], 'finished_at', ARGV[v + 10])
  redis.call('PEXPIRE', key, ARGV[2])
  return 1
end
local out = {}
local a = 4
for i = 1, #KEYS - 3 do
  local n = tonumber(ARGV[a])
  local handle, dead, op, owner, hash = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4],
                                        ARGV[a + 5]
  local v = a + 6 -- the first outcome value
  if redis.call('HDEL', KEYS[1], handle) == 0 then
    out[i] = 0
  else
    local fields = {}
    for f = 1, #FIELDS do
      fields[#fields + 1] = FIELDS[f]
      fields[#fields + 1] = ARGV[v + f - 1]
    end
    fields[#fields + 1] = 'worker'
    fields[#fields + 1] = ARGV[3]
    local meta = ARGV[v + #FIELDS]
    if meta ~= '' then
      fields[#fields + 1] = 'meta'
      fields[#fields + 1] = meta
    end
    for f = v + #FIELDS + 1, a + n, 2 do
      fields[#fields + 1] = ARGV[f]
      fields[#fields + 1] = ARGV[f + 1]
    end
    if ARGV[1] == '0' then
      redis.call('XADD', KEYS[2], '*', unpack(fields))
    else
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
    end
    if dead ~= '' then redis.call('LPUSH', KEYS[3], dead) end
    out[i] = settle(KEYS[3 + i], op, owner, hash, v)
  end
  a = a + n + 1
end
return out
