-- reclaim.lua: return the inflight jobs of dead workers to {P}:jobs (docs/design.md §3).
-- A worker is dead when its heartbeat is older than the lease; a restarted
-- daemon also takes back its own leftovers at once (ARGV[4]).
-- Each job comes back in an envelope marked unknown = 1 (its worker may have
-- called the provider) with the owner token it had, so its idempotency claim
-- is still recognised as its own.
-- KEYS[1] {P}:workers   KEYS[2] {P}:jobs
-- ARGV[1] now ms   ARGV[2] lease ms   ARGV[3] key prefix "{P}:"
-- ARGV[4] a worker id to reclaim regardless of its heartbeat ('' = none)
-- ARGV[5] this worker's id (never reclaimed by the lease rule)
-- Returns the number of jobs returned.
local function mark(item, wid, handle)
  local ok, t = pcall(cjson.decode, item)
  if ok and type(t) == 'table' and type(t._cq) == 'table' and type(t.job) == 'string' then
    t._cq.unknown = 1
    if not t._cq.tok then t._cq.tok = wid .. '/' .. handle end
    return cjson.encode(t)
  end
  return cjson.encode({_cq = {unknown = 1, tok = wid .. '/' .. handle}, job = item})
end
local function take(wid)
  local key = ARGV[3] .. 'inflight:' .. wid
  local kv = redis.call('HGETALL', key)
  for i = 1, #kv, 2 do
    redis.call('RPUSH', KEYS[2], mark(kv[i + 1], wid, kv[i]))
  end
  redis.call('DEL', key)
  return #kv / 2
end
local n = 0
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(ARGV[1]) - tonumber(ARGV[2])))
for _, wid in ipairs(dead) do
  if wid ~= ARGV[5] then
    n = n + take(wid)
    redis.call('ZREM', KEYS[1], wid)
  end
end
if ARGV[4] ~= '' then n = n + take(ARGV[4]) end
return n
