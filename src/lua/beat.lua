-- beat.lua: a worker's heartbeat, in Redis server time (docs/design.md §7).
-- KEYS[1] {P}:workers   ARGV[1] worker id
-- Returns 1 when the worker was registered already, 0 when this beat
-- registered it again (a reclaim had found it dead: its jobs are gone).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return 1 - redis.call('ZADD', KEYS[1], now, ARGV[1])
