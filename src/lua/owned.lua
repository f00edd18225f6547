-- owned.lua: which of a worker's handles are still in its inflight hash
-- (after a fence, before any further request: docs/design.md §7).
-- KEYS[1] {P}:inflight:<w>   ARGV handles
-- Returns an array of 1 (still held) or 0 (taken back), one per handle.
local out = {}
for i = 1, #ARGV do out[i] = redis.call('HEXISTS', KEYS[1], ARGV[i]) end
return out
