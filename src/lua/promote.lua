-- promote.lua: move due retries from {P}:delayed to {P}:retry (the daemon's
-- own list, taken before {P}:jobs).  Atomic, so several daemons promoting at
-- once move each job once.
-- Due times are Redis server time.
-- KEYS[1] {P}:delayed   KEYS[2] {P}:retry
-- ARGV[1] max items
-- Returns {moved, ms until the next is due, or -1 when none waits}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, item in ipairs(due) do
  redis.call('ZREM', KEYS[1], item)
  redis.call('RPUSH', KEYS[2], item)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then
  local left = tonumber(nxt[2]) - now
  if left < 0 then left = 0 end
  return {#due, left}
end
return {#due, -1}
