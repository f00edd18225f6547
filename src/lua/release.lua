-- release.lua: give a batch of jobs back without an outcome, each in one
-- step (docs/design.md §3, §7): to {P}:delayed for a retry or a deferral
-- (delay > 0), or to {P}:retry (delay 0: shutdown, handles no task holds),
-- the daemon's own list: what goes back there is trusted as an envelope.  Only if this worker still holds the job.  The job's
-- idempotency claim, when this job owns it, is parked: no worker holds it,
-- its lease ends after `hold` ms (0: at once; a request that may still be
-- running keeps it), and `unknown` says whether the next taker must look
-- the status up first.  Due times are Redis server time.
-- KEYS[1] {P}:inflight:<w>   KEYS[2] {P}:delayed   KEYS[3] {P}:retry
-- KEYS[3 + i] {P}:idem:<key of job i> (any key of the deployment when none)
-- then per job i: ARGV count (6), handle, delay ms, item (envelope) or ''
-- to push the stored item (marked unknown when unknown is '1'; an item a
-- producer pushed, handle "h<N>", is wrapped as it is, never read as an
-- envelope), owner
-- token ('' = no claim to park), unknown ('0' | '1'), hold ms
-- Returns an array with one element per job: 1 when moved, 0 when the job
-- is no longer ours.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function mark(item, handle)
  if string.sub(handle, 1, 1) ~= 'r' then return cjson.encode({_cq = {unknown = 1}, job = item}) end
  local ok, e = pcall(cjson.decode, item)
  if ok and type(e) == 'table' and type(e._cq) == 'table' and type(e.job) == 'string' then
    e._cq.unknown = 1
    return cjson.encode(e)
  end
  return cjson.encode({_cq = {unknown = 1}, job = item})
end
local out = {}
local a = 1
for i = 4, #KEYS do
  local n = tonumber(ARGV[a])
  local handle, delay, item = ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  local owner, unknown, hold = ARGV[a + 4], ARGV[a + 5], tonumber(ARGV[a + 6])
  if item == '' then
    item = redis.call('HGET', KEYS[1], handle)
    if item and unknown == '1' then item = mark(item, handle) end
  end
  if not item or redis.call('HDEL', KEYS[1], handle) == 0 then
    out[i - 3] = 0
  else
    if delay == 0 then
      redis.call('RPUSH', KEYS[3], item)
    else
      redis.call('ZADD', KEYS[2], now + delay, item)
    end
    if owner ~= '' then
      local r = redis.pcall('HMGET', KEYS[i], 'owner', 'state')
      if type(r) == 'table' and not r.err and r[1] == owner and r[2] == 'inflight' then
        redis.call('HSET', KEYS[i], 'worker', '', 'lease_until', now + hold, 'unknown', unknown)
      end
    end
    out[i - 3] = 1
  end
  a = a + n + 1
end
return out
