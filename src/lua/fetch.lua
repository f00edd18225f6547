-- fetch.lua: take up to N jobs into this worker's inflight hash, atomically,
-- so a crash at any instant leaves each job in exactly one place: first
-- from {P}:retry (jobs the daemon gave back: their envelopes are the
-- daemon's own), then from {P}:jobs (what producers pushed: never trusted
-- as an envelope).  The handle says where an item came from: "r<N>" from
-- retry, "h<N>" from jobs (docs/design.md §3).  Handles come from a counter
-- in Redis, never from the client: a fetch sent again after its reply was
-- lost takes new jobs under new handles and cannot overwrite the first batch
-- (which the worker then finds and returns).  Only a registered worker
-- fetches: one whose heartbeat was taken away (a reclaim found it dead)
-- re-registers first, so an inflight hash never grows behind the reclaim's
-- back.  {P}:holders records when each worker last fetched (Redis time), so
-- an inflight hash whose worker is not registered is found and taken back
-- (reclaim.lua).
-- KEYS[1] {P}:jobs   KEYS[2] {P}:inflight:<w>   KEYS[3] {P}:seq:<w>
-- KEYS[4] {P}:workers   KEYS[5] {P}:holders   KEYS[6] {P}:retry
-- ARGV[1] N (max items)   ARGV[2] worker id
-- Returns {first handle number, number of retry items, item1, item2, ...}:
-- item i has handle "r" or "h" .. (first + i - 1), the first `retry` of
-- them "r"; {-1} when this worker is not registered.
if not redis.call('ZSCORE', KEYS[4], ARGV[2]) then return {-1} end
local n = tonumber(ARGV[1])
local items = redis.call('RPOP', KEYS[6], n) or {}
local nretry = #items
if nretry < n then
  local fresh = redis.call('RPOP', KEYS[1], n - nretry)
  if fresh then
    for _, v in ipairs(fresh) do items[#items + 1] = v end
  end
end
if #items == 0 then return {0, 0} end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[5], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[2])
local last = redis.call('INCRBY', KEYS[3], #items)
local base = last - #items + 1
local args = {}
local out = {base, nretry}
for i, v in ipairs(items) do
  args[#args + 1] = (i <= nretry and 'r' or 'h') .. (base + i - 1)
  args[#args + 1] = v
  out[#out + 1] = v
end
redis.call('HSET', KEYS[2], unpack(args))
return out
