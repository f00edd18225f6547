-- dlq_requeue.lua: put a dead letter's job back on the queue (cancelqctl dlq
-- requeue, docs/design.md §6) in one atomic step: the entry leaves {P}:dead only
-- when its job lands on {P}:jobs.  The job's idempotency record is released
-- so the retry calls the provider -- unless another job holds a live claim
-- on the key (two calls at once) or carried the key out since ('done': the
-- daemon answers 'duplicate'; released too when ARGV[3] is 'redo').
-- Every check that can fail runs before the first write: a script that
-- errors half-way is not rolled back.
-- KEYS[1] {P}:dead   KEYS[2] {P}:jobs   KEYS[3] {P}:idem:<key>
-- ARGV[1] the entry, exactly as stored   ARGV[2] the job text to push (bare:
-- attempts start again)   ARGV[3] 'release' | 'redo'
-- (a claim's lease is compared with Redis server time)
-- Returns {0, 'gone'} when the entry is no longer in the list, else
-- {1, what, holder job id, holder status, holder params hash} with what one
-- of 'absent' (no record), 'released', 'kept_done', 'kept_busy'.
local jt = redis.call('TYPE', KEYS[2]).ok
if jt ~= 'list' and jt ~= 'none' then return redis.error_reply(KEYS[2] .. ' is not a list') end
local it = redis.call('TYPE', KEYS[3]).ok
if it ~= 'hash' and it ~= 'none' then return redis.error_reply(KEYS[3] .. ' is not a hash') end
local r = redis.call('HMGET', KEYS[3], 'state', 'id', 'status', 'lease_until', 'hash')
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return {0, 'gone'} end
redis.call('LPUSH', KEYS[2], ARGV[2])
if it == 'none' then return {1, 'absent', '', '', ''} end
local id, st, h = r[2] or '', r[3] or '', r[5] or ''
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if r[1] == 'inflight' and tonumber(r[4] or '0') >= now then
  return {1, 'kept_busy', id, st, h}
end
if r[1] == 'done' and ARGV[3] ~= 'redo' then return {1, 'kept_done', id, st, h} end
redis.call('DEL', KEYS[3])
return {1, 'released', id, st, h}
