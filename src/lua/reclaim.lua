-- reclaim.lua: return the inflight jobs of dead workers to {P}:retry
-- (docs/design.md §3).  A worker is dead when its heartbeat is older than
-- the lease in Redis server time; a restarted daemon also takes back its
-- own leftovers at once (ARGV[3]).  An inflight hash whose worker is not
-- registered at all (a worker reclaimed while alive that then died before
-- its next heartbeat) is taken back once it has not fetched for a lease
-- ({P}:holders), so no job is orphaned.
-- Each job comes back in an envelope marked unknown = 1 (its worker may have
-- called the provider): a job taken from {P}:retry (handle "r<N>") keeps its
-- envelope and owner token; one a producer pushed (handle "h<N>") is
-- wrapped as it is, never read as an envelope (docs/design.md §3).
-- KEYS[1] {P}:workers   KEYS[2] {P}:retry   KEYS[3] {P}:holders
-- ARGV[1] lease ms   ARGV[2] key prefix "{P}:"
-- ARGV[3] a worker id to reclaim regardless of its heartbeat ('' = none)
-- ARGV[4] this worker's id (never reclaimed by the lease rule)
-- Returns the number of jobs returned.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cutoff = now - tonumber(ARGV[1])
local function mark(item, handle)
  if string.sub(handle, 1, 1) == 'r' then
    local ok, e = pcall(cjson.decode, item)
    if ok and type(e) == 'table' and type(e._cq) == 'table' and type(e.job) == 'string' then
      e._cq.unknown = 1
      return cjson.encode(e)
    end
  end
  return cjson.encode({_cq = {unknown = 1}, job = item})
end
local function take(wid)
  local key = ARGV[2] .. 'inflight:' .. wid
  local kv = redis.call('HGETALL', key)
  for i = 1, #kv, 2 do
    redis.call('RPUSH', KEYS[2], mark(kv[i + 1], kv[i]))
  end
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[3], wid)
  return #kv / 2
end
local n = 0
for _, wid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)) do
  if wid ~= ARGV[4] then
    n = n + take(wid)
    redis.call('ZREM', KEYS[1], wid)
  end
end
for _, wid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. cutoff)) do
  if wid ~= ARGV[4] and not redis.call('ZSCORE', KEYS[1], wid) then n = n + take(wid) end
end
if ARGV[3] ~= '' then n = n + take(ARGV[3]) end
return n
