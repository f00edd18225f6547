-- identity.lua: is a worker id's heartbeat fresh, in Redis server time?  A
-- starting daemon refuses to run beside a live process with its id
-- (docs/design.md §3).
-- KEYS[1] {P}:workers   ARGV[1] worker id   ARGV[2] lease ms
-- Returns -1 when the id has no heartbeat, -2 when it is older than the
-- lease, else the heartbeat's score (watch it: if it moves, someone is alive).
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now - tonumber(s) > tonumber(ARGV[2]) then return -2 end
return tonumber(s)
