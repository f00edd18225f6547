-- fetch.lua: take up to N jobs from the queue into this worker's inflight
-- hash, atomically, so a crash at any instant leaves each job in exactly one
-- place.  Handles come from a counter in Redis, never from the client: a
-- fetch sent again after its reply was lost takes new jobs under new
-- handles and cannot overwrite the first batch (which the worker then finds
-- and returns).  Only a registered worker fetches: one whose heartbeat was
-- taken away (a reclaim found it dead) re-registers first, so an inflight
-- hash never grows behind the reclaim's back.  {P}:holders records when
-- each worker last fetched (Redis time), so an inflight hash whose worker
-- is not registered is found and taken back (reclaim.lua).
-- KEYS[1] {P}:jobs   list, producers LPUSH, we take from the right
-- KEYS[2] {P}:inflight:<w>   hash, handle -> item
-- KEYS[3] {P}:seq:<w>   string counter
-- KEYS[4] {P}:workers   KEYS[5] {P}:holders
-- ARGV[1] N (max items)   ARGV[2] worker id
-- Returns {first handle number, item1, item2, ...}; item i has handle
-- "h" .. (first + i - 1); {-1} when this worker is not registered.
if not redis.call('ZSCORE', KEYS[4], ARGV[2]) then return {-1} end
local items = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not items then return {0} end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[5], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[2])
local last = redis.call('INCRBY', KEYS[3], #items)
local base = last - #items + 1
local args = {}
local out = {base}
for i, v in ipairs(items) do
  args[#args + 1] = 'h' .. (base + i - 1)
  args[#args + 1] = v
  out[#out + 1] = v
end
redis.call('HSET', KEYS[2], unpack(args))
return out
