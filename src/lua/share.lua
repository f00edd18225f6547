-- share.lua: a worker's share of a provider instance's deployment-wide
-- limits (docs/design.md §8): its concurrency and its rate.  Every worker
-- with work for the instance gets a fair part of `concurrency` (by demand)
-- and of `rate` and `burst` (equal parts); a worker takes no more than what
-- the others hold now leaves free, so the shares never add up to more than
-- the limit: a worker whose fair part grew gets it once the others have
-- shrunk (at their next call), and one that holds requests in flight keeps
-- the slots they use.  Shares of workers that stop calling expire after
-- `ttl` (a dead worker's slots come back after the lease).  Redis time.
-- KEYS[1] {P}:share:<instance>   hash: holder -> "want inflight conc rate burst expiry"
-- ARGV[1] holder   ARGV[2] want (its requests waiting + in flight)
-- ARGV[3] inflight   ARGV[4] concurrency   ARGV[5] rate (per s, 0 = none)
-- ARGV[6] burst   ARGV[7] ttl ms
-- Returns {conc, rate x 1000, burst x 1000, holders with work}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, want, inflight = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local C, R, B, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local others = {}
local kv = redis.call('HGETALL', KEYS[1])
for i = 1, #kv, 2 do
  if kv[i] ~= me then
    local w, f, c, r, b, e = string.match(kv[i + 1], '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
    if e and tonumber(e) >= now then
      others[#others + 1] = {want = tonumber(w), conc = tonumber(c), rate = tonumber(r),
                             burst = tonumber(b)}
    else
      redis.call('HDEL', KEYS[1], kv[i])
    end
  end
end
-- fair concurrency by demand (water-filling over the wants)
local wants = {}
if want > 0 then wants[#wants + 1] = want end
local held_c, held_r, held_b, busy = 0, 0, 0, want > 0 and 1 or 0
for _, o in ipairs(others) do
  held_c, held_r, held_b = held_c + o.conc, held_r + o.rate, held_b + o.burst
  if o.want > 0 then
    wants[#wants + 1] = o.want
    busy = busy + 1
  end
end
table.sort(wants)
local fair, left = 0, C
for i, w in ipairs(wants) do
  local part = math.floor(left / (#wants - i + 1))
  if w <= part then part = w end
  if w == want then fair = part end
  left = left - part
end
if want == 0 then fair = 0 end
local conc = math.min(fair, C - held_c)
if conc < inflight then conc = inflight end
if conc < 0 then conc = 0 end
local rate, burst = 0, 0
if want > 0 and R > 0 then
  rate = math.min(R / busy, R - held_r)
  burst = math.min(B / busy, B - held_b)
  if rate < 0 then rate = 0 end
  if burst < 0 then burst = 0 end
end
redis.call('HSET', KEYS[1], me, string.format('%d %d %d %.6f %.6f %d', want, inflight, conc,
                                                rate, burst, now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return {conc, math.floor(rate * 1000), math.floor(burst * 1000), busy}
