"""Every Lua script, one named constant each. Each is one atomic step of a message's life.

All of them start with ``PRELUDE``: the key prefix (ARGV[1]), the public
status of each state byte, and ``move()``, which keeps a campaign's counts
and its number of open messages in step with every state change. Keys are
built inside the scripts from the prefix, so these scripts assume one Redis
(or a Sentinel-managed primary), not Redis Cluster.

State letters are those of ``smsqueue.constants`` (ST_*)::

    q queued   w retry-wait   s scheduled   c claimed   f in flight
    S sent     F failed       X cancelled   U unknown   P provider-scheduled
"""

from __future__ import annotations

from typing import Final

PRELUDE: Final = r"""
local P = ARGV[1]
local PUB = {q='queued', w='queued', s='scheduled', c='sending', f='sending',
             S='sent', F='failed', X='cancelled', U='unknown', P='scheduled'}
local TERMINAL = {S=true, F=true, X=true, U=true, P=true}
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function ckey(cid) return P .. 'c:' .. cid end
local function skey(cid, k) return P .. 'c:' .. cid .. ':s:' .. k end
local function akey(cid, k) return P .. 'c:' .. cid .. ':a:' .. k end
local function rkey(cid, k) return P .. 'c:' .. cid .. ':r:' .. k end
local function split(s, sep)
  local out = {}
  if s == nil or s == '' then return out end
  for part in string.gmatch(s, '([^' .. sep .. ']+)') do out[#out + 1] = part end
  return out
end
-- A finished campaign keeps its records for the retention time, then goes.
local function finish_campaign(cid)
  local c = ckey(cid)
  local st = redis.call('HGET', c, 'status')
  if st == 'active' or st == 'paused' then redis.call('HSET', c, 'status', 'done') end
  redis.call('HSET', c, 'finished_at', tostring(now()))
  local ttl = tonumber(redis.call('HGET', c, 'retention') or '604800')
  local chunks = tonumber(redis.call('HGET', c, 'chunks') or '0')
  for k = 0, chunks - 1 do
    redis.call('EXPIRE', rkey(cid, k), ttl)
    redis.call('EXPIRE', skey(cid, k), ttl)
    redis.call('EXPIRE', akey(cid, k), ttl)
    redis.call('ZREM', P .. 'pending', cid .. ':' .. k)
    redis.call('HDEL', P .. 'resignals', cid .. ':' .. k)
  end
  redis.call('EXPIRE', c, ttl)
  redis.call('EXPIRE', c .. ':n', ttl)
end
-- n messages of campaign cid went from state a to state b.
local function move(cid, a, b, n)
  if n == 0 then return end
  local pa, pb = PUB[a], PUB[b]
  if pa ~= pb then
    redis.call('HINCRBY', ckey(cid) .. ':n', pa, -n)
    redis.call('HINCRBY', ckey(cid) .. ':n', pb, n)
  end
  local ta, tb = TERMINAL[a] or false, TERMINAL[b] or false
  if ta ~= tb then
    local open = redis.call('HINCRBY', ckey(cid), 'open', tb and -n or n)
    if open == 0 and redis.call('HGET', ckey(cid), 'sealed') == '1' then
      finish_campaign(cid)
    end
  end
end
-- Set byte i (0-based) of a state string and account for it.
local function set_state(cid, k, i, b)
  local key = skey(cid, k)
  local a = redis.call('GETRANGE', key, i, i)
  if a == '' or a == b then return a end
  redis.call('SETRANGE', key, i, b)
  move(cid, a, b, 1)
  return a
end
"""

# Seal a campaign once all its chunks are written: from now on, reaching zero
# open messages finishes it. ARGV: prefix, cid.
SEAL: Final = (
    PRELUDE
    + r"""
local cid = ARGV[2]
redis.call('HSET', ckey(cid), 'sealed', '1')
if tonumber(redis.call('HGET', ckey(cid), 'open') or '0') == 0 then finish_campaign(cid) end
return 1
"""
)

# A single send: a campaign of one, written with its idempotency key in one
# step, so a key never points at a message that was not stored.
# ARGV: prefix, cid, idem key ('' for none), idem ttl, row json, state byte,
#       due time ('' for now), then campaign hash field/value pairs.
CREATE_SINGLE: Final = (
    PRELUDE
    + r"""
local cid, idem, ttl, row, st, due = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7]
if idem ~= '' then
  local existing = redis.call('GET', P .. 'idem:' .. idem)
  if existing then return existing end
end
local c = ckey(cid)
for j = 8, #ARGV, 2 do redis.call('HSET', c, ARGV[j], ARGV[j + 1]) end
redis.call('HSET', c, 'total', 1, 'open', 1, 'chunks', 1, 'sealed', '1')
redis.call('HSET', c .. ':n', PUB[st], 1)
redis.call('SET', rkey(cid, 0), row)
redis.call('SET', skey(cid, 0), st)
redis.call('ZADD', P .. 'campaigns', now(), cid)
if due ~= '' then
  redis.call('ZADD', P .. 'due', tonumber(due), cid .. ':0')
else
  redis.call('ZADD', P .. 'pending', now(), cid .. ':0')
end
local mid = cid .. '-0-0'
if idem ~= '' then redis.call('SET', P .. 'idem:' .. idem, mid, 'EX', ttl) end
return mid
"""
)

# Claim every queued recipient of a chunk for one owner, under a lease.
# Refused (negative) when the campaign is not active, the provider's circuit is
# open, or another owner's lease stands (even expired: the sweeper must first
# turn its in-flight messages into 'unknown').
# ARGV: prefix, cid, k, owner, lease seconds. Returns {n, "i,i,..."} or {code}.
CLAIM: Final = (
    PRELUDE
    + r"""
local cid, k, owner, lease = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local chunk = cid .. ':' .. k
local c = ckey(cid)
local status = redis.call('HGET', c, 'status')
if status ~= 'active' then return {-1} end
local t = now()
local probe = redis.call('HGET', P .. 'circuit:' .. redis.call('HGET', c, 'provider'), 'probe_at')
if probe and tonumber(probe) > t then return {-2} end
local holder = redis.call('HGET', P .. 'owners', chunk)
if holder and holder ~= owner then return {-3} end
local s = redis.call('GET', skey(cid, k))
if not s then return {-1} end
local idx = {}
local pos = 1
while true do
  local i = string.find(s, 'q', pos, true)
  if not i then break end
  idx[#idx + 1] = i - 1
  pos = i + 1
end
if #idx == 0 then return {0} end
redis.call('SET', skey(cid, k), (string.gsub(s, 'q', 'c')))
move(cid, 'q', 'c', #idx)
redis.call('ZADD', P .. 'leases', t + lease, chunk)
redis.call('HSET', P .. 'owners', chunk, owner)
redis.call('HDEL', P .. 'resignals', chunk)
return {#idx, table.concat(idx, ',')}
"""
)

# Keep a live worker's lease. ARGV: prefix, lease seconds, owner, then chunk ids.
# Returns the chunks whose lease was lost (swept): their worker must stop.
RENEW: Final = (
    PRELUDE
    + r"""
local t, lease, owner = now(), tonumber(ARGV[2]), ARGV[3]
local lost = {}
for j = 4, #ARGV do
  if redis.call('HGET', P .. 'owners', ARGV[j]) == owner then
    redis.call('ZADD', P .. 'leases', 'XX', t + lease, ARGV[j])
  else
    lost[#lost + 1] = ARGV[j]
  end
end
return lost
"""
)

# Just before the HTTP request: claimed -> in flight, only if the lease is
# still ours, the campaign still active and the provider not paused. A crash
# before this point re-queues the message; after it, the message is 'unknown'.
# While the circuit is open, one request per probe interval goes through as
# the probe. ARGV: prefix, cid, k, owner, probe seconds, "i,i,...".
# Returns {code, "i:attempt,..."}: 1 started, -1 lease lost, -2 not active,
# -4 provider paused.
START: Final = (
    PRELUDE
    + r"""
local cid, k, owner, probe_s, list = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local chunk = cid .. ':' .. k
if redis.call('HGET', P .. 'owners', chunk) ~= owner then return {-1, ''} end
local c = ckey(cid)
if redis.call('HGET', c, 'status') ~= 'active' then return {-2, ''} end
local circuit = P .. 'circuit:' .. redis.call('HGET', c, 'provider')
local probe = redis.call('HGET', circuit, 'probe_at')
if probe then
  local t = now()
  if tonumber(probe) > t then return {-4, ''} end
  redis.call('HSET', circuit, 'probe_at', tostring(t + probe_s))
end
local started = {}
local sk, ak = skey(cid, k), akey(cid, k)
for _, si in ipairs(split(list, ',')) do
  local i = tonumber(si)
  if redis.call('GETRANGE', sk, i, i) == 'c' then
    redis.call('SETRANGE', sk, i, 'f')
    local a = redis.call('GETRANGE', ak, i, i)
    local n = (a == '' and 0 or string.byte(a)) + 1
    if n > 255 then n = 255 end
    redis.call('SETRANGE', ak, i, string.char(n))
    started[#started + 1] = si .. ':' .. n
  end
end
return {1, table.concat(started, ',')}
"""
)

# The provider's answer for one or more messages of a chunk.
# ARGV: prefix, cid, k, retention, then groups of 8:
#   i, kind, smsid, cost, parts, error, delay seconds, to
# kind: sent | scheduled (provider-scheduled) | failed | retry | unknown |
#       paused (account error: back to queued, attempt not counted, circuit opened)
# A late answer to a message the sweeper marked 'unknown' still records the truth.
FINISH: Final = (
    PRELUDE
    + r"""
local cid, k, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local c = ckey(cid)
local provider = redis.call('HGET', c, 'provider')
local sk = skey(cid, k)
local t = now()
local done = 0
for j = 5, #ARGV, 8 do
  local i, kind, smsid, cost, parts = tonumber(ARGV[j]), ARGV[j+1], ARGV[j+2], ARGV[j+3], ARGV[j+4]
  local err, delay, to = ARGV[j+5], tonumber(ARGV[j+6]), ARGV[j+7]
  local cur = redis.call('GETRANGE', sk, i, i)
  local mid = cid .. '-' .. k .. '-' .. i
  local mk = P .. 'm:' .. mid
  local a = redis.call('GETRANGE', akey(cid, k), i, i)
  local attempts = a == '' and 0 or string.byte(a)
  local ok = cur == 'f' or (cur == 'U' and (kind == 'sent' or kind == 'scheduled' or kind == 'failed'))
  if ok then
    done = done + 1
    if kind == 'sent' or kind == 'scheduled' then
      set_state(cid, k, i, kind == 'sent' and 'S' or 'P')
      local rk = P .. 'r:' .. smsid
      redis.call('HSET', rk, 'id', mid, 'campaign', cid, 'provider', provider, 'to', to,
        'status', kind == 'sent' and 'sent' or 'scheduled', 'attempts', attempts, 'parts', parts,
        'cost', cost, 'created_at', redis.call('HGET', c, 'created_at') or '', 'sent_at', tostring(t),
        'smsid', smsid, 'error', '')
      redis.call('EXPIRE', rk, ttl)
      redis.call('HSET', mk, 'smsid', smsid)
      redis.call('HDEL', mk, 'error')
      redis.call('EXPIRE', mk, ttl)
      redis.call('DEL', P .. 'circuit:' .. provider)
      redis.call('HINCRBY', P .. 'stats:' .. provider, 'sent', 1)
    elseif kind == 'failed' or kind == 'unknown' then
      set_state(cid, k, i, kind == 'failed' and 'F' or 'U')
      redis.call('HSET', mk, 'error', err, 'at', tostring(t))
      redis.call('EXPIRE', mk, ttl)
      redis.call('HINCRBY', P .. 'stats:' .. provider, kind, 1)
    elseif kind == 'retry' then
      set_state(cid, k, i, 'w')
      redis.call('ZADD', P .. 'due', t + delay, cid .. ':' .. k .. ':' .. i)
      redis.call('HSET', mk, 'error', err, 'at', tostring(t))
      redis.call('EXPIRE', mk, ttl)
      redis.call('HINCRBY', P .. 'stats:' .. provider, 'retried', 1)
    elseif kind == 'paused' then
      set_state(cid, k, i, 'c')
      if attempts > 0 then redis.call('SETRANGE', akey(cid, k), i, string.char(attempts - 1)) end
      redis.call('HSET', P .. 'circuit:' .. provider, 'reason', err, 'since', tostring(t),
        'probe_at', tostring(t + delay))
    end
  end
end
return done
"""
)

# A worker is done with a chunk (slice over, or the campaign stopped): what it
# claimed and did not start goes back to queued (cancelled if the campaign was
# cancelled); an in-flight message left behind is 'unknown'. The lease goes.
# ARGV: prefix, cid, k, owner. Returns the number of queued messages left
# (the caller then signals the chunk again), or -1 if the lease was not ours.
RELEASE: Final = (
    PRELUDE
    + r"""
local cid, k, owner = ARGV[2], ARGV[3], ARGV[4]
local chunk = cid .. ':' .. k
if redis.call('HGET', P .. 'owners', chunk) ~= owner then return -1 end
redis.call('HDEL', P .. 'owners', chunk)
redis.call('ZREM', P .. 'leases', chunk)
local s = redis.call('GET', skey(cid, k))
if not s then return 0 end
local back = redis.call('HGET', ckey(cid), 'status') == 'cancelled' and 'X' or 'q'
local s2, nc = string.gsub(s, 'c', back)
local s3, nf = string.gsub(s2, 'f', 'U')
if nc + nf > 0 then
  redis.call('SET', skey(cid, k), s3, 'KEEPTTL')
  move(cid, 'c', back, nc)
  move(cid, 'f', 'U', nf)
end
local _, nq = string.gsub(s3, 'q', 'q')
if nq > 0 then redis.call('ZADD', P .. 'pending', now(), chunk) end
return nq
"""
)

# The sweeper: leases that expired belong to dead or stuck workers. Claimed
# messages go back to queued; in-flight ones become 'unknown' (they may have
# been delivered). ARGV: prefix, limit. Returns chunk ids to signal again.
SWEEP: Final = (
    PRELUDE
    + r"""
local t = now()
local expired = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', t, 'LIMIT', 0, tonumber(ARGV[2]))
local again = {}
for _, chunk in ipairs(expired) do
  local cid, k = string.match(chunk, '^(.*):(%d+)$')
  redis.call('ZREM', P .. 'leases', chunk)
  redis.call('HDEL', P .. 'owners', chunk)
  local s = redis.call('GET', skey(cid, k))
  if s then
    local s2, nc = string.gsub(s, 'c', 'q')
    local s3, nf = string.gsub(s2, 'f', 'U')
    if nc + nf > 0 then
      redis.call('SET', skey(cid, k), s3, 'KEEPTTL')
      move(cid, 'c', 'q', nc)
      move(cid, 'f', 'U', nf)
    end
    if string.find(s3, 'q', 1, true) then
      redis.call('ZADD', P .. 'pending', t, chunk)
      again[#again + 1] = chunk
    end
  end
end
return again
"""
)

# The scheduler: due retries and scheduled sends become queued. Two
# schedulers never take the same entry (ZRANGEBYSCORE and ZREM in one step).
# Members are "cid:k:i" (one message) or "cid:k" (every scheduled message of
# a chunk). ARGV: prefix, limit, now (or '' for the server's clock).
# Returns the chunk ids to signal.
DUE: Final = (
    PRELUDE
    + r"""
local t = ARGV[3] ~= '' and tonumber(ARGV[3]) or now()
local due = redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', t, 'LIMIT', 0, tonumber(ARGV[2]))
local chunks, seen = {}, {}
for _, m in ipairs(due) do
  redis.call('ZREM', P .. 'due', m)
  local cid, k, i = string.match(m, '^(.*):(%d+):(%d+)$')
  local sk
  if cid then
    sk = skey(cid, k)
    local b = redis.call('GETRANGE', sk, tonumber(i), tonumber(i))
    if b == 'w' or b == 's' then set_state(cid, k, tonumber(i), 'q') end
  else
    cid, k = string.match(m, '^(.*):(%d+)$')
    sk = skey(cid, k)
    local s = redis.call('GET', sk)
    if s then
      local s2, n = string.gsub(s, 's', 'q')
      if n > 0 then
        redis.call('SET', sk, s2)
        move(cid, 's', 'q', n)
      end
    end
  end
  local chunk = cid .. ':' .. k
  if not seen[chunk] then
    seen[chunk] = true
    chunks[#chunks + 1] = chunk
    redis.call('ZADD', P .. 'pending', now(), chunk)  -- the signal's real time, not the test clock
  end
end
return chunks
"""
)

# Lost signals: a chunk with queued messages, no lease and no signal for a
# while is signalled again. Chunks with nothing queued leave the pending set.
# ARGV: prefix, stale seconds, limit. Returns chunk ids to signal.
STALE: Final = (
    PRELUDE
    + r"""
local t = now()
local stale = redis.call('ZRANGEBYSCORE', P .. 'pending', '-inf', t - tonumber(ARGV[2]),
                         'LIMIT', 0, tonumber(ARGV[3]))
local again = {}
for _, chunk in ipairs(stale) do
  local cid, k = string.match(chunk, '^(.*):(%d+)$')
  local s = redis.call('GET', skey(cid, k))
  if not s or not string.find(s, 'q', 1, true) then
    redis.call('ZREM', P .. 'pending', chunk)
    redis.call('HDEL', P .. 'resignals', chunk)
  else
    local c = ckey(cid)
    local probe = redis.call('HGET', P .. 'circuit:' .. (redis.call('HGET', c, 'provider') or ''), 'probe_at')
    local paused = probe and tonumber(probe) > t
    if not redis.call('HGET', P .. 'owners', chunk) and redis.call('HGET', c, 'status') == 'active'
       and not paused then
      -- The last signal may only be waiting behind a long queue: each re-signal of
      -- the same chunk waits one period longer (reset when a worker claims it), so a
      -- long backlog does not pile up duplicate signals.
      local n = redis.call('HINCRBY', P .. 'resignals', chunk, 1)
      redis.call('ZADD', P .. 'pending', t + tonumber(ARGV[2]) * math.min(n - 1, 30), chunk)
      again[#again + 1] = chunk
    else
      redis.call('ZADD', P .. 'pending', t, chunk)
    end
  end
end
return again
"""
)

# Take a permit of a capped provider: drop expired leases by the server's
# clock, then hold one if fewer than the cap remain.
# KEYS: permits zset. ARGV: cap, lease seconds, permit id. Returns 1 or 0.
PERMIT_ACQUIRE: Final = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  return 1
end
return 0
"""

# Keep permits that a process still holds (handed from send to send) from
# expiring. Only existing members are touched: a permit that already expired
# and was taken by someone else is not revived.
# KEYS: permits zset. ARGV: lease seconds, permit ids...
PERMIT_RENEW: Final = r"""
local t = redis.call('TIME')
local expiry = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
for j = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[j]) end
return 1
"""

# Give a permit back and wake one waiter. The wake list is trimmed to the cap,
# so tokens nobody waited for do not pile up.
# KEYS: permits zset, wake list. ARGV: permit id, cap. Returns 1 if it was held.
PERMIT_RELEASE: Final = r"""
local n = redis.call('ZREM', KEYS[1], ARGV[1])
if n == 1 then
  redis.call('LPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
end
return n
"""

# Cancel what has not been handed to a provider yet: queued, retry-waiting,
# scheduled and claimed messages become cancelled (a worker holding a claim
# then finds nothing to start). In flight, sent and unknown ones have gone;
# provider-scheduled ones lie with the provider.
# ARGV: prefix, cid, first chunk, last chunk, index ('' for every message).
# Returns {cancelled, gone, with_provider}.
CANCEL: Final = (
    PRELUDE
    + r"""
local cid, k0, k1, one = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local cancelled, gone, held = 0, 0, 0
local GONE = {f=true, S=true, U=true}
for k = k0, k1 do
  local sk = skey(cid, k)
  if one ~= '' then
    local i = tonumber(one)
    local b = redis.call('GETRANGE', sk, i, i)
    if b == 'q' or b == 'w' or b == 's' or b == 'c' then
      set_state(cid, k, i, 'X')
      cancelled = 1
    elseif GONE[b] then gone = 1
    elseif b == 'P' then held = 1 end
  else
    local s = redis.call('GET', sk)
    if s then
      for _, b in ipairs({'q', 'w', 's', 'c'}) do
        local n
        s, n = string.gsub(s, b, 'X')
        if n > 0 then
          redis.call('SET', sk, s, 'KEEPTTL')
          move(cid, b, 'X', n)
          cancelled = cancelled + n
        end
      end
      for _, b in ipairs({'f', 'S', 'U'}) do
        local _, n = string.gsub(s, b, b)
        gone = gone + n
      end
      local _, n = string.gsub(s, 'P', 'P')
      held = held + n
    end
  end
end
return {cancelled, gone, held}
"""
)

# Pause or resume a campaign. ARGV: prefix, cid, from status, to status.
# Returns the status it had. On resume, chunks with queued messages are
# marked for an immediate signal, and returned so the caller can signal them.
SET_STATUS: Final = (
    PRELUDE
    + r"""
local cid, from, to = ARGV[2], ARGV[3], ARGV[4]
local c = ckey(cid)
local st = redis.call('HGET', c, 'status')
if st ~= from then return {st or ''} end
redis.call('HSET', c, 'status', to)
local out = {st}
if to == 'active' then
  for k = 0, tonumber(redis.call('HGET', c, 'chunks') or '0') - 1 do
    local s = redis.call('GET', skey(cid, k))
    if s and string.find(s, 'q', 1, true) then
      redis.call('ZADD', P .. 'pending', 0, cid .. ':' .. k)
      out[#out + 1] = tostring(k)
    end
  end
end
return out
"""
)

# An operator re-queues a campaign's failed (and, if asked, unknown) messages.
# They get a fresh attempt budget; a finished campaign becomes active again and
# its keys lose the retention TTL they got when it finished.
# ARGV: prefix, cid, states to re-queue (e.g. "FU"). Returns {count, "k,k,..."}.
REQUEUE: Final = (
    PRELUDE
    + r"""
local cid, which = ARGV[2], ARGV[3]
local c = ckey(cid)
local st = redis.call('HGET', c, 'status')
if not st or st == 'cancelled' then return {-1, ''} end
local total, chunks = 0, {}
local n_chunks = tonumber(redis.call('HGET', c, 'chunks') or '0')
if st == 'done' then
  -- Nothing to re-queue: leave it done (reopened, it would stay active forever).
  local any = false
  for k = 0, n_chunks - 1 do
    local s = redis.call('GET', skey(cid, k)) or ''
    for b in string.gmatch(which, '.') do
      if string.find(s, b, 1, true) then any = true end
    end
    if any then break end
  end
  if not any then return {0, ''} end
end
redis.call('PERSIST', c)
redis.call('PERSIST', c .. ':n')
if st == 'done' then
  redis.call('HSET', c, 'status', 'active')
  redis.call('HDEL', c, 'finished_at')
end
for k = 0, n_chunks - 1 do
  local sk, ak = skey(cid, k), akey(cid, k)
  redis.call('PERSIST', sk)
  redis.call('PERSIST', rkey(cid, k))
  redis.call('PERSIST', ak)
  local s = redis.call('GET', sk)
  local here = 0
  if s then
    for b in string.gmatch(which, '.') do
      local pos = 1
      while true do
        local i = string.find(s, b, pos, true)
        if not i then break end
        set_state(cid, k, i - 1, 'q')
        redis.call('SETRANGE', ak, i - 1, string.char(0))
        here = here + 1
        pos = i + 1
      end
    end
  end
  if here > 0 then
    total = total + here
    chunks[#chunks + 1] = tostring(k)
    redis.call('ZADD', P .. 'pending', now(), cid .. ':' .. k)
  end
end
return {total, table.concat(chunks, ',')}
"""
)
