-- leave.lua: a clean shutdown removes the worker's heartbeat, but only when it
-- holds no job any more; otherwise the heartbeat is left to age so another
-- worker (or our own restart) reclaims what is left.
-- KEYS[1] {P}:workers   KEYS[2] {P}:inflight:<w>   KEYS[3] {P}:holders
-- ARGV[1] worker id
-- Returns 1 when removed, 0 when jobs remain.
if redis.call('HLEN', KEYS[2]) > 0 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
