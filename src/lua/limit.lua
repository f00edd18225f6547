-- limit.lua: the deployment-wide state of a provider instance that every
-- worker honours (docs/design.md §8): an open circuit breaker, a pause
-- after a 429 with Retry-After, and which worker holds the half-open probe.
-- Redis time.  Read by claim.lua for every job (per batch).
-- KEYS[1] {P}:limit:<instance>   hash: open_until opened_by pause_until
--                                       probe probe_until
-- KEYS[2] {P}:pause:<instance>   an operator's pause (until; 0: until resumed)
-- ARGV[1] op: 'fail' | 'ok' | 'close' | 'pause' | 'probe' | 'read'
-- ARGV[2] holder   ARGV[3] ms (fail: cooldown; pause: length; probe: its ttl)
-- ARGV[4] fail: the breaker's threshold
-- The breaker counts the deployment's transient failures of cancellation
-- calls in a row ('fail'; a worker whose call then works says 'ok'): at the
-- threshold, or when the failure is the half-open probe's, it opens for
-- every worker.
-- Returns {open ms left, pause ms left (-1: an operator's, until resumed),
-- 1 when a probe was granted or the op took effect, else 0}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op, holder, ms = ARGV[1], ARGV[2], tonumber(ARGV[3] or '0')
local r = redis.call('HMGET', KEYS[1], 'open_until', 'pause_until', 'probe', 'probe_until',
                     'fails')
local open_until, pause_until = tonumber(r[1] or '0'), tonumber(r[2] or '0')
local done = 0
if op == 'fail' then
  local fails = tonumber(r[5] or '0') + 1
  local probing = r[3] == holder and open_until > 0
  if open_until > now then
    fails = 0 -- open already: a late failure of a call sent before
  elseif probing or fails >= tonumber(ARGV[4]) then
    open_until = now + ms
    redis.call('HSET', KEYS[1], 'open_until', open_until, 'opened_by', holder)
    redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
    fails, done = 0, 1
  end
  redis.call('HSET', KEYS[1], 'fails', fails)
elseif op == 'ok' then
  redis.call('HSET', KEYS[1], 'fails', 0)
  done = 1
elseif op == 'close' then
  redis.call('HSET', KEYS[1], 'fails', 0)
  if open_until > 0 then
    redis.call('HDEL', KEYS[1], 'open_until', 'opened_by', 'probe', 'probe_until')
    open_until = 0
    done = 1
  end
elseif op == 'pause' then
  if now + ms > pause_until then
    pause_until = now + ms
    redis.call('HSET', KEYS[1], 'pause_until', pause_until, 'paused_by', holder)
    done = 1
  end
elseif op == 'probe' then
  -- the cooldown is over and nobody holds a live probe: this worker's
  if open_until <= now and (not r[3] or tonumber(r[4] or '0') < now or r[3] == holder) then
    redis.call('HSET', KEYS[1], 'probe', holder, 'probe_until', now + ms)
    done = 1
  end
end
redis.call('PEXPIRE', KEYS[1], 86400000)
local open_left, pause_left = open_until - now, pause_until - now
if open_left < 0 then open_left = 0 end
if pause_left < 0 then pause_left = 0 end
local ops = redis.call('HGET', KEYS[2], 'until')
if ops then
  local u = tonumber(ops) or 0
  if u == 0 then pause_left = -1 elseif u - now > pause_left then pause_left = u - now end
end
return {open_left, pause_left, done}
