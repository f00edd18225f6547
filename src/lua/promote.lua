-- promote.lua: move due retries from {P}:delayed to the taking end of
-- {P}:jobs.  Atomic, so several daemons promoting at once move each job once.
-- KEYS[1] {P}:delayed   KEYS[2] {P}:jobs
-- ARGV[1] now ms   ARGV[2] max items
-- Returns {moved, next due ms or -1}.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, item in ipairs(due) do
  redis.call('ZREM', KEYS[1], item)
  redis.call('RPUSH', KEYS[2], item)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then return {#due, tonumber(nxt[2])} end
return {#due, -1}
