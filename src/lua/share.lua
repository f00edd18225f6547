-- share.lua: a worker's share of a provider instance's deployment-wide
-- limits (docs/design.md §8): its concurrency and its rate.  Every worker
-- with work for the instance gets a fair part of `concurrency` (by demand,
-- and what no demand asked for in equal parts)
-- and of `rate` and `burst` (equal parts); a worker takes no more than what
-- the others hold now leaves free, so the shares never add up to more than
-- the limit: a worker whose fair part grew gets it once the others have
-- shrunk (at their next call); one above its fair part keeps the slots its
-- requests in flight use, starts nothing new until it is below, then asks
-- again and gives the rest back.  Shares of workers that stop calling expire after
-- `ttl` (a dead worker's slots come back after the lease).  When the burst
-- has fewer whole tokens than workers with work, its tokens go one to a
-- worker, in turns: a holder keeps its token while nobody waits, or for
-- `hold` (two of its token periods, at least 2 s); then the worker that
-- has waited longest takes it.  Redis time.
-- KEYS[1] {P}:share:<instance>   hash: holder ->
--   "want inflight conc rate burst expiry since" (since: when its token of
--   a split burst was granted, or since when it has waited for one; 0 else)
-- KEYS[2] {P}:limit:<instance>   KEYS[3] {P}:pause:<instance> (read only,
--   as claim.lua reads them: a worker with work learns of a breaker or a
--   pause within a heartbeat even when it claims nothing new)
-- ARGV[1] holder   ARGV[2] want (its requests waiting + in flight)
-- ARGV[3] inflight   ARGV[4] concurrency   ARGV[5] rate (per s, 0 = none)
-- ARGV[6] burst   ARGV[7] ttl ms
-- Returns {conc, rate x 1000, burst x 1000, holders with work, breaker
-- open ms, pause ms (-1: an operator's, until resumed)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, want, inflight = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local C, R, B, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local others, my_burst, my_since = {}, 0, nil
local kv = redis.call('HGETALL', KEYS[1])
for i = 1, #kv, 2 do
  local w, f, c, r, b, e, s = string.match(kv[i + 1],
                                           '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) ?(%S*)$')
  if not (e and tonumber(e) >= now) then
    redis.call('HDEL', KEYS[1], kv[i])
  elseif kv[i] == me then
    my_burst, my_since = tonumber(b), tonumber(s)
  else
    others[#others + 1] = {want = tonumber(w), conc = tonumber(c), rate = tonumber(r),
                           burst = tonumber(b), since = tonumber(s) or 0}
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
-- what no demand asked for is split among the workers with work, so a
-- worker whose queue grows does not wait for its next share request
if want > 0 and left > 0 then fair = fair + math.floor(left / busy) end
-- conc: what this worker may start up to (its target); hold: what counts
-- against the others, its requests in flight included, so a worker above
-- its fair part drains to it (and asks again) before others get its slots
local conc = math.min(fair, C - held_c)
if conc < 0 then conc = 0 end
local hold = math.max(conc, inflight)
-- the burst split in whole tokens, in turns: keep mine, or take a free one
-- when no other worker has waited longer; returns rate, burst, since
local function in_turns()
  local units = math.floor(B)
  local hold = math.max(2000, 2000 * units / R)
  local waiting = nil -- since when the longest-waiting other has waited
  for _, o in ipairs(others) do
    if o.want > 0 and o.burst < 1 and (waiting == nil or o.since < waiting) then
      waiting = o.since
    end
  end
  local since
  if my_burst >= 1 and my_since then
    if waiting == nil or now - my_since < hold then since = my_since end
    -- else: my turn is over, I wait from now (behind the others)
  elseif B - held_b >= 1 and (waiting == nil or (my_since or now) <= waiting) then
    since = now
  end
  local r = math.min(R / units, R - held_r)
  if since == nil or r <= 0 or B - held_b < 1 then
    local waited = (my_burst < 1 and my_since) or now
    return 0, 0, waited
  end
  return r, 1, since
end
local rate, burst, since = 0, 0, 0
if want > 0 and R > 0 then
  if B >= busy then
    rate = math.min(R / busy, R - held_r)
    burst = math.min(B / busy, B - held_b)
    -- a bucket below one token never lets a request go: no share until the
    -- others have shrunk (so the bursts never add up to more than B)
    if rate <= 0 or burst < 1 then
      rate, burst = 0, 0
    else -- held since (kept if the burst has to be split in turns later)
      since = (my_burst >= 1 and my_since and my_since > 0) and my_since or now
    end
  else
    rate, burst, since = in_turns()
  end
end
redis.call('HSET', KEYS[1], me, string.format('%d %d %d %.6f %.6f %d %d', want, inflight, hold,
                                                rate, burst, now + ttl, since))
redis.call('PEXPIRE', KEYS[1], ttl * 2)
-- the instance's breaker and pauses (as in claim.lua)
local open, pause = 0, 0
local l = redis.pcall('HMGET', KEYS[2], 'open_until', 'pause_until')
if type(l) == 'table' and not l.err then
  open = math.max(0, tonumber(l[1] or '0') - now)
  pause = math.max(0, tonumber(l[2] or '0') - now)
end
local p = redis.pcall('HGET', KEYS[3], 'until')
if type(p) == 'string' then
  local u = tonumber(p) or 0
  if u == 0 then pause = -1 elseif u - now > pause then pause = u - now end
end
return {conc, math.floor(rate * 1000), math.floor(burst * 1000), busy, open, pause}
