-- trim.lua: trim the outcome stream and report how far behind each
-- consumer group is (docs/design.md §5).  Run on every heartbeat.
-- With mode 'maxlen' the stream is trimmed by XADD (MAXLEN ~) and this only
-- reports.  With mode 'acked' nothing a group has not yet been delivered,
-- or has not acknowledged, is trimmed: the stream is cut to about maxlen
-- entries, but never past the oldest entry some group still needs; a
-- stream with no group at all is cut to about maxlen.
-- KEYS[1] {P}:results   ARGV[1] results_maxlen   ARGV[2] 'maxlen' | 'acked'
-- Returns {length, trimmed, unread, group, lag, pending, group, lag, ...}:
-- unread is what the slowest group has not yet acknowledged (entries not
-- delivered + pending), lag a group's entries not yet delivered (entries
-- trimmed before it read them included), pending its entries delivered
-- but not acknowledged.
local ok, info = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1])
if not ok then return {0, 0, 0} end
local function field(t, name)
  for i = 1, #t, 2 do if t[i] == name then return t[i + 1] end end
end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local len = field(info, 'length')
local added = field(info, 'entries-added') or len
local first = field(info, 'first-entry')
local maxlen = tonumber(ARGV[1])
local out = {len, 0, 0}
local keep -- the oldest entry some group still needs
local unread = 0
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, pending = field(g, 'name'), field(g, 'pending')
  local last, read = field(g, 'last-delivered-id'), field(g, 'entries-read')
  -- lag: entries added after what the group last read, trimmed or not
  local lag = field(g, 'lag')
  if not lag then lag = read and (added - read) or len end
  local need = last
  if pending > 0 then
    local p = redis.call('XPENDING', KEYS[1], name)
    if p[2] and less(p[2], need) then need = p[2] end
  end
  if not keep or less(need, keep) then keep = need end
  if lag + pending > unread then unread = lag + pending end
  out[#out + 1] = name
  out[#out + 1] = lag
  out[#out + 1] = pending
end
out[3] = unread
if ARGV[2] == 'acked' and len > maxlen and first then
  -- about maxlen entries: ids are times, so the cut is placed by time
  -- between the first and the last entry (O(1); MINID ~ is approximate
  -- anyway), and never past what a group still needs
  local fm = parse(first[1])
  local lm = parse(field(info, 'last-entry')[1])
  local id = math.floor(fm + (lm - fm) * (len - maxlen) / len) .. '-0'
  if keep and less(keep, id) then id = keep end
  if less(first[1], id) then
    out[2] = redis.call('XTRIM', KEYS[1], 'MINID', '~', id)
    out[1] = redis.call('XLEN', KEYS[1])
  end
end
return out
