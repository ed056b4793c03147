"""Every Lua script, one named constant each. Each is one atomic step of a message's life.

The Redis layout is not spelled here: ``HEADER`` is generated from
``smsqueue.store.keys`` and gives the scripts, as Lua locals,

* ``P``, the key prefix (ARGV[1]),
* ``key_<name>(...)`` for each key with ids in it (``key_state(cid, k)``) and
  ``KEY_<NAME>`` for each fixed key (``KEY_PENDING``), from ``keys.LAYOUT``,
* ``ST_*`` state letters, ``CAMPAIGN_*`` statuses and ``OUTCOME_*`` kinds, named
  and valued as in ``keys``,
* ``PUB`` (state letter -> public status), ``TERMINAL`` (set of state letters),
  ``DEFAULT_RETENTION``, ``EVENT_OF`` (final state letter -> event type, from
  ``EVENT_TYPES``) and ``EVENT_CAMPAIGN_FINISHED``,
* ``SUPPRESS_ON``, the name of the error class (``errors.Blacklisted``) whose failure puts
  the number on the suppression list, and ``COST_SCALE``, the integer units a campaign's
  running cost is kept in (10 ** ``constants.COST_SCALE_DIGITS`` to the currency unit).

``PRELUDE`` is that header plus the shared helpers, above all ``move()``, which
keeps a campaign's counts and its number of open messages in step with every
state change. Every script but the permit ones starts with it; the scripts'
own text uses only those names, never a key fragment, a state letter or a
status (tests/test_layout.py checks). Keys are built inside the scripts from
the prefix, so these scripts assume one Redis (or a Sentinel-managed primary),
not Redis Cluster. The permit scripts are given their keys in KEYS instead.
"""

from __future__ import annotations

import re
import string
from typing import Final

from smsqueue import constants, errors
from smsqueue.store import keys


def _quote(value: str) -> str:
    # Only plain words reach Lua source: nothing here may need escaping.
    if not re.fullmatch(r"[\w:.-]+", value):
        raise ValueError(f"not a plain word for a Lua string: {value!r}")
    return f"'{value}'"


def _key_lua(name: str, pattern: str) -> str:
    pieces, ids = ["P"], []
    for literal, field, _, _ in string.Formatter().parse(pattern):
        if literal:
            pieces.append(_quote(literal))
        if field is not None:
            pieces.append(field)
            ids.append(field)
    expr = " .. ".join(pieces)
    if ids:
        return f"local function key_{name}({', '.join(ids)}) return {expr} end"
    return f"local KEY_{name.upper()} = {expr}"


def _header() -> str:
    lines = ["", "local P = ARGV[1]"]
    lines += [_key_lua(name, pattern) for name, pattern in keys.LAYOUT.items()]
    for name, value in vars(keys).items():
        if name.startswith(("ST_", "CAMPAIGN_", "OUTCOME_")):
            # A state letter is used as a Lua pattern: only a letter is safe as one.
            if name.startswith("ST_") and not (len(value) == 1 and value.isalpha()):
                raise ValueError(f"state {name} must be one letter, not {value!r}")
            lines.append(f"local {name} = {_quote(value)}")
    pub = ", ".join(f"[{_quote(st)}]={_quote(name)}" for st, name in keys.PUBLIC_STATUS.items())
    lines.append(f"local PUB = {{{pub}}}")
    terminal = ", ".join(f"[{_quote(st)}]=true" for st in sorted(keys.TERMINAL))
    lines.append(f"local TERMINAL = {{{terminal}}}")
    lines.append(f"local DEFAULT_RETENTION = {int(constants.DEFAULT_RETENTION_SECONDS)}")
    events = ", ".join(f"[{_quote(st)}]={_quote(ty)}" for st, ty in EVENT_TYPES.items())
    lines.append(f"local EVENT_OF = {{{events}}}")
    lines.append(f"local EVENT_CAMPAIGN_FINISHED = {_quote(constants.EVENT_CAMPAIGN_FINISHED)}")
    lines.append(f"local SUPPRESS_ON = {_quote(errors.Blacklisted.__name__)}")
    lines.append(f"local COST_DIGITS = {int(constants.COST_SCALE_DIGITS)}")
    now = ", ".join(f"[{_quote(e.__name__)}]=true" for e in FAILOVER_AT_ONCE)
    lines.append(f"local FAILOVER_NOW = {{{now}}}")
    return "\n".join(lines) + "\n"


# The event each final state is announced with. A provider-scheduled message was accepted:
# its event is message.sent, with the status "scheduled".
EVENT_TYPES: Final = {
    keys.ST_SENT: constants.EVENT_MESSAGE_SENT,
    keys.ST_PROVIDER_SCHEDULED: constants.EVENT_MESSAGE_SENT,
    keys.ST_FAILED: constants.EVENT_MESSAGE_FAILED,
    keys.ST_UNKNOWN: constants.EVENT_MESSAGE_UNKNOWN,
    keys.ST_CANCELLED: constants.EVENT_MESSAGE_CANCELLED,
    keys.ST_EXPIRED: constants.EVENT_MESSAGE_EXPIRED,
    keys.ST_SUPPRESSED: constants.EVENT_MESSAGE_SUPPRESSED,
}


# Failover (docs/design.md#failover): a circuit opened by one of these account errors sends
# the campaigns that have a fallback through it at once; one opened by another error (a
# wrong URL) only once it has been open for the campaign's failover_after seconds.
FAILOVER_AT_ONCE: Final = (errors.AuthError, errors.InsufficientBalance, errors.ServiceNotActivated)


HEADER: Final = _header()

PRELUDE: Final = (
    HEADER
    + r"""
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
-- Failover (docs/design.md#failover): whether a provider's open circuit (its reason and
-- since) sends a campaign with a fallback through the fallback: at once when the account
-- was refused (FAILOVER_NOW), else once it has been open for failover_after seconds.
local function fails_over(reason, since, after, t)
  local class = string.match(reason or '', '^([%w_]+):')
  if class and FAILOVER_NOW[class] then return true end
  local from, wait = tonumber(since or ''), tonumber(after or '')
  return from ~= nil and wait ~= nil and t - from >= wait
end
-- The provider a chunk of campaign c (its hash key) goes through if claimed now: its own,
-- when its circuit is closed or due for a probe; else its fallback, when the campaign
-- has one, the circuit fails over and the fallback's own circuit does not hold it back.
-- nil (false) when neither may send now. Failing back: once the own circuit is closed,
-- or its probe is due, claims go to the own provider again.
local function route_of(c, t)
  local primary = redis.call('HGET', c, 'provider') or ''
  local circuit = redis.call('HMGET', key_circuit(primary), 'probe_at', 'reason', 'since')
  if not circuit[1] or tonumber(circuit[1]) <= t then return primary end
  local fb = redis.call('HGET', c, 'fallback')
  if not fb or fb == '' then return false end
  if not fails_over(circuit[2], circuit[3], redis.call('HGET', c, 'failover_after'), t) then
    return false
  end
  local fprobe = redis.call('HGET', key_circuit(fb), 'probe_at')
  if fprobe and tonumber(fprobe) > t then return false end
  return fb
end
local function split(s, sep)
  local out = {}
  if s == nil or s == '' then return out end
  for part in string.gmatch(s, '([^' .. sep .. ']+)') do out[#out + 1] = part end
  return out
end
-- Outcome events: one stream entry per final outcome, appended by the script that
-- records it (so neither exists without the other). Each append trims, approximately
-- (whole stream nodes, cheap), what is older than the retention time: cut is that
-- bound as a stream id, events_cut(ttl) computes it once per script.
local function events_cut(ttl)
  return string.format('%d', math.max(0, math.floor((now() - ttl) * 1000)))
end
local function emit_message(cut, b, mid, cid, provider, smsid, to, ref, err, attempts, parts,
                            cost, at)
  redis.call('XADD', KEY_EVENTS, 'MINID', '~', cut, '*', 'type', EVENT_OF[b],
    'message_id', mid, 'campaign_id', cid, 'provider', provider, 'status', PUB[b],
    'smsid', smsid, 'to', to, 'ref', ref, 'error', err, 'attempts', attempts,
    'parts', parts, 'cost', cost, 'at', at)
end
-- The events of the messages of chunk k that a bulk step makes final: each byte of s
-- (the states before the step) found in into (state letter -> final state letter)
-- gets one, errs (state letter -> error text) saying why where there is a why. The
-- rows are decoded once, for the numbers and refs: these steps are rare, never the
-- hot path (FINISH is given its numbers and refs instead).
local function emit_chunk(cid, k, s, into, errs, ttl)
  local c = key_campaign(cid)
  local provider = redis.call('HGET', c, 'provider') or ''
  local fb = redis.call('HGET', c, 'fallback')
  local nf = #cjson.decode(redis.call('HGET', c, 'fields') or '[]')
  local rows = cjson.decode(redis.call('GET', key_rows(cid, k)) or '[]')
  local a = redis.call('GET', key_attempts(cid, k)) or ''
  local cut, at = events_cut(ttl), tostring(now())
  for i = 1, #s do
    local from = string.sub(s, i, i)
    local b = into[from]
    if b then
      local row = rows[i] or {}
      local ref = row[nf + 2]
      if type(ref) ~= 'string' then ref = '' end
      local mid = cid .. '-' .. k .. '-' .. (i - 1)
      -- A campaign with a fallback: the provider its last request went to (START keeps it).
      local via = provider
      if fb and fb ~= '' then via = redis.call('HGET', key_message(mid), 'provider') or provider end
      emit_message(cut, b, mid, cid, via, '',
        row[1] or '', ref, errs[from] or '', string.byte(a, i) or 0, 0, '', at)
    end
  end
end
-- A campaign's retention time, in seconds.
local function retention_of(cid)
  return tonumber(redis.call('HGET', key_campaign(cid), 'retention') or DEFAULT_RETENTION)
end
-- Costs: a campaign's running total is an integer count of 10^-COST_DIGITS units of the
-- currency ('cost_units' in its hash), so adding thousands of 0.01s stays exact. A cost is
-- a plain decimal text ("0.0100"); digits past COST_DIGITS are dropped.
local COST_SCALE = 10 ^ COST_DIGITS
local function cost_units(cost)
  local int, frac = string.match(cost, '^(%d*)%.?(%d*)$')
  if not int then return math.floor((tonumber(cost) or 0) * COST_SCALE + 0.5) end
  frac = string.sub(frac .. string.rep('0', COST_DIGITS), 1, COST_DIGITS)
  return (tonumber(int) or 0) * COST_SCALE + tonumber(frac)
end
local function cost_text(units)
  units = tonumber(units or '0') or 0
  local int = math.floor(units / COST_SCALE)
  local text = string.format('%d.%0' .. COST_DIGITS .. 'd', int, units - int * COST_SCALE)
  return (string.gsub(string.gsub(text, '0+$', ''), '%.$', ''))
end
-- A campaign's validity end (Unix seconds, by Redis's clock), or nil when it has none.
local function expiry_of(c)
  local e = redis.call('HGET', c, 'expires_at')
  if not e or e == '' then return nil end
  return tonumber(e)
end
local EXPIRED_ERROR = 'expired: its validity period ended before it was handed to the provider'
-- The suppression record of a number (JSON [at, provider, reason]), as an error text.
local function suppressed_error(number)
  local rec = redis.call('HGET', KEY_SUPPRESSED, number)
  if not rec then return nil end
  local ok, got = pcall(cjson.decode, rec)
  local reason = ok and type(got) == 'table' and got[3] or ''
  if type(reason) ~= 'string' or reason == '' then return 'suppressed' end
  return 'suppressed: ' .. reason
end
-- Keep why message mid ended (its error and when), as a failure's is kept.
local function note_error(mid, err, t, ttl)
  local mk = key_message(mid)
  redis.call('HSET', mk, 'error', err, 'at', tostring(t))
  redis.call('EXPIRE', mk, ttl)
end
-- Policy endings: message i of chunk k, never handed to a provider, ends in b (expired,
-- suppressed) for the reason err, with its event. rs is what chunk_rows returned (the
-- chunk's rows decoded once per script, only when something ends this way: rare).
local function chunk_rows(cid, k)
  local c = key_campaign(cid)
  return {cjson.decode(redis.call('GET', key_rows(cid, k)) or '[]'),
    #cjson.decode(redis.call('HGET', c, 'fields') or '[]'), redis.call('HGET', c, 'provider') or ''}
end
local function end_unsent(cid, k, i, b, err, rs, t, ttl)
  local row = rs[1][i + 1] or {}
  local ref = row[rs[2] + 2]
  if type(ref) ~= 'string' then ref = '' end
  local a = redis.call('GETRANGE', key_attempts(cid, k), i, i)
  local mid = cid .. '-' .. k .. '-' .. i
  emit_message(events_cut(ttl), b, mid, cid, rs[3], '', row[1] or '', ref, err,
    a == '' and 0 or string.byte(a), 0, '', tostring(t))
  note_error(mid, err, t, ttl)
end
-- A finished campaign keeps its records for the retention time, then goes; its end is
-- an event, after the events of its messages.
local function finish_campaign(cid)
  local c = key_campaign(cid)
  local st = redis.call('HGET', c, 'status')
  if st == CAMPAIGN_ACTIVE or st == CAMPAIGN_PAUSED then
    st = CAMPAIGN_DONE
    redis.call('HSET', c, 'status', st)
  end
  local at = tostring(now())
  redis.call('HSET', c, 'finished_at', at)
  local ttl = tonumber(redis.call('HGET', c, 'retention') or DEFAULT_RETENTION)
  local counts = {}
  local raw = redis.call('HGETALL', key_counts(cid))
  for j = 1, #raw, 2 do
    local n = tonumber(raw[j + 1])
    if n ~= 0 then counts[raw[j]] = n end
  end
  redis.call('XADD', KEY_EVENTS, 'MINID', '~', events_cut(ttl), '*',
    'type', EVENT_CAMPAIGN_FINISHED, 'campaign_id', cid,
    'provider', redis.call('HGET', c, 'provider') or '', 'status', st or '',
    'counts', next(counts) and cjson.encode(counts) or '{}', 'at', at,
    'cost', cost_text(redis.call('HGET', c, 'cost_units')))
  local chunks = tonumber(redis.call('HGET', c, 'chunks') or '0')
  for k = 0, chunks - 1 do
    redis.call('EXPIRE', key_rows(cid, k), ttl)
    redis.call('EXPIRE', key_state(cid, k), ttl)
    redis.call('EXPIRE', key_attempts(cid, k), ttl)
    redis.call('ZREM', KEY_PENDING, cid .. ':' .. k)
    redis.call('HDEL', KEY_RESIGNALS, cid .. ':' .. k)
  end
  redis.call('EXPIRE', c, ttl)
  redis.call('EXPIRE', key_counts(cid), ttl)
  -- The campaigns index is scored by when a campaign's records go: the sweeper
  -- drops entries past it, so the index never outlives what it points at.
  redis.call('ZADD', KEY_CAMPAIGNS, now() + ttl, cid)
end
-- n messages of campaign cid went from state a to state b.
local function move(cid, a, b, n)
  if n == 0 then return end
  local pa, pb = PUB[a], PUB[b]
  if pa ~= pb then
    redis.call('HINCRBY', key_counts(cid), pa, -n)
    redis.call('HINCRBY', key_counts(cid), pb, n)
  end
  local ta, tb = TERMINAL[a] or false, TERMINAL[b] or false
  if ta ~= tb then
    local open = redis.call('HINCRBY', key_campaign(cid), 'open', tb and -n or n)
    if open == 0 and redis.call('HGET', key_campaign(cid), 'sealed') == '1' then
      finish_campaign(cid)
    end
  end
end
-- Set byte i (0-based) of a state string and account for it.
-- One chunk of campaign c (cid) written: its rows, n state bytes st, the counts, and
-- its entry in the due set at `due` or, when due is '', in the pending set at t.
local function write_chunk(c, cid, k, rows, st, n, due, t)
  redis.call('SET', key_rows(cid, k), rows)
  redis.call('SET', key_state(cid, k), string.rep(st, n))
  redis.call('HINCRBY', key_counts(cid), PUB[st], n)
  redis.call('HINCRBY', c, 'total', n)
  redis.call('HINCRBY', c, 'open', n)
  redis.call('HSET', c, 'chunks', k + 1)
  if due ~= '' then
    redis.call('ZADD', KEY_DUE, due, cid .. ':' .. k)
  else
    redis.call('ZADD', KEY_PENDING, t, cid .. ':' .. k)
  end
end

local function set_state(cid, k, i, b)
  local key = key_state(cid, k)
  local a = redis.call('GETRANGE', key, i, i)
  if a == '' or a == b then return a end
  redis.call('SETRANGE', key, i, b)
  move(cid, a, b, 1)
  return a
end
"""
)

# Start a campaign: its hash (status included), its entry in the campaigns
# index and the name its campaign key gives it, in one step, so no reader sees
# one without the others and two producers with one key never make two. Its
# chunks follow. The index entry is scored +inf while the campaign is open
# (finish_campaign gives it the time its records expire). A key naming a
# campaign that still exists creates nothing: the caller completes that one.
# ARGV: prefix, cid, campaign key ('' for none), then campaign hash field/value
# pairs. Returns {the campaign's id, 1 if created here}.
CREATE_CAMPAIGN: Final = (
    PRELUDE
    + r"""
local cid, ckey = ARGV[2], ARGV[3]
if ckey ~= '' then
  local found = redis.call('GET', key_campaign_key(ckey))
  if found and redis.call('EXISTS', key_campaign(found)) == 1 then return {found, 0} end
end
local c = key_campaign(cid)
for j = 4, #ARGV, 2 do redis.call('HSET', c, ARGV[j], ARGV[j + 1]) end
redis.call('HSET', c, 'total', 0, 'open', 0)
if ckey ~= '' then
  redis.call('HSET', c, 'key', ckey)
  -- No TTL yet: a campaign cut off while being written stays completable by its key.
  redis.call('SET', key_campaign_key(ckey), cid)
end
redis.call('ZADD', KEY_CAMPAIGNS, 'inf', cid)
return {cid, 1}
"""
)

# Seal a campaign once all its chunks are written: from now on, reaching zero
# open messages finishes it, and its campaign key lasts the retention time.
# ARGV: prefix, cid.
SEAL: Final = (
    PRELUDE
    + r"""
local cid = ARGV[2]
local c = key_campaign(cid)
redis.call('HSET', c, 'sealed', '1')
local ckey = redis.call('HGET', c, 'key')
if ckey and redis.call('GET', key_campaign_key(ckey)) == cid then
  local ttl = tonumber(redis.call('HGET', c, 'retention') or DEFAULT_RETENTION)
  redis.call('EXPIRE', key_campaign_key(ckey), ttl)
end
if tonumber(redis.call('HGET', c, 'open') or '0') == 0 then finish_campaign(cid) end
return 1
"""
)

# Write chunk k of a campaign being enqueued: its rows and state bytes, the
# counts, and its pending (or due) entry, in one step. Only if k is the next
# chunk: a second producer completing the same campaign (same key) finds its
# chunk taken and stops, so no row is written twice. A keyed campaign also
# records how far into the caller's rows its written chunks reach ('read', a
# row number) and a digest of their numbers, so a call that completes it
# after a crash knows which rows to skip.
# ARGV: prefix, cid, k, rows json, state byte, rows in the chunk, due time ('' for
# now), signal time, read ('' when not recorded), digest. Returns 1, or 0 (not the next chunk).
WRITE_CHUNK: Final = (
    PRELUDE
    + r"""
local cid, k, rows, st, n = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6])
local due, t, read, digest = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local c = key_campaign(cid)
if redis.call('EXISTS', c) == 0 or tonumber(redis.call('HGET', c, 'chunks') or '0') ~= k then
  return 0
end
write_chunk(c, cid, k, rows, st, n, due, t)
if read ~= '' then redis.call('HSET', c, 'read', read, 'digest', digest) end
return 1
"""
)

# Several chunks of one campaign in one step (a campaign with a send window: rows open
# now and rows waiting for their opening go in separate chunks, each with its own state
# and due time). Atomic, so a keyed campaign's ``read``/``digest`` (set once, after the
# last chunk) never counts rows of a chunk that was not written.
# ARGV: prefix, cid, t (pending score), read ('' for none), digest, then groups of
#       k, rows json, state byte, n, due ('' for now). Returns 1, or 0 (nothing written)
#       when the first k is not the campaign's next chunk or the ks are not consecutive.
WRITE_CHUNKS: Final = (
    PRELUDE
    + r"""
local cid, t, read, digest = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local c = key_campaign(cid)
if redis.call('EXISTS', c) == 0 then return 0 end
local next_k = tonumber(redis.call('HGET', c, 'chunks') or '0')
for j = 6, #ARGV, 5 do
  if tonumber(ARGV[j]) ~= next_k + (j - 6) / 5 then return 0 end
end
for j = 6, #ARGV, 5 do
  local k, rows, st, n, due = tonumber(ARGV[j]), ARGV[j+1], ARGV[j+2], tonumber(ARGV[j+3]), ARGV[j+4]
  write_chunk(c, cid, k, rows, st, n, due, t)
end
if read ~= '' then redis.call('HSET', c, 'read', read, 'digest', digest) end
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
  local existing = redis.call('GET', key_idempotency(idem))
  if existing then return existing end
end
local c = key_campaign(cid)
for j = 8, #ARGV, 2 do redis.call('HSET', c, ARGV[j], ARGV[j + 1]) end
redis.call('HSET', c, 'total', 1, 'open', 1, 'chunks', 1, 'sealed', '1')
redis.call('HSET', key_counts(cid), PUB[st], 1)
redis.call('SET', key_rows(cid, 0), row)
redis.call('SET', key_state(cid, 0), st)
redis.call('ZADD', KEY_CAMPAIGNS, 'inf', cid)
if due ~= '' then
  redis.call('ZADD', KEY_DUE, tonumber(due), cid .. ':0')
else
  redis.call('ZADD', KEY_PENDING, now(), cid .. ':0')
end
local mid = cid .. '-0-0'
if idem ~= '' then redis.call('SET', key_idempotency(idem), mid, 'EX', ttl) end
return mid
"""
)

# Claim every queued recipient of a chunk for one owner, under a lease.
# Refused (negative) when the campaign is not active, the provider's circuit is
# open, or another owner's lease stands (even expired: the sweeper must first
# turn its in-flight messages into unknown). A campaign whose validity period has
# ended (Redis's clock) has its queued messages expired instead, each with its
# event, and nothing is claimed ({0}).
# Failover: the chunk goes through the provider route_of names (the campaign's own, or
# its fallback while the own circuit fails over); when the caller says which providers
# it serves and that one is not among them, nothing is claimed: {-6, provider} (the
# caller signals the chunk on that provider's queue).
# ARGV: prefix, cid, k, owner, lease seconds, and optionally the providers the caller
# serves ("a,b"). Returns {n, "i,i,...", "a,a,..."} (the claimed indices and the requests
# each has had so far; with the providers given, a fourth element: the provider to send
# them through) or {code}.
CLAIM: Final = (
    PRELUDE
    + r"""
local cid, k, owner, lease, serves = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local chunk = cid .. ':' .. k
local c = key_campaign(cid)
local status = redis.call('HGET', c, 'status')
if status ~= CAMPAIGN_ACTIVE then return {-1} end
local t = now()
local exp = expiry_of(c)
if exp and exp <= t then
  local s = redis.call('GET', key_state(cid, k))
  local s2, n = string.gsub(s or '', ST_QUEUED, ST_EXPIRED)
  if n > 0 then
    local ttl = retention_of(cid)
    emit_chunk(cid, k, s, {[ST_QUEUED] = ST_EXPIRED}, {[ST_QUEUED] = EXPIRED_ERROR}, ttl)
    local pos = 1
    while true do
      local i = string.find(s, ST_QUEUED, pos, true)
      if not i then break end
      note_error(cid .. '-' .. k .. '-' .. (i - 1), EXPIRED_ERROR, t, ttl)
      pos = i + 1
    end
    redis.call('SET', key_state(cid, k), s2, 'KEEPTTL')
    move(cid, ST_QUEUED, ST_EXPIRED, n)
  end
  return {0}
end
local route = route_of(c, t)
if not route then return {-2} end
if serves and not string.find(',' .. serves .. ',', ',' .. route .. ',', 1, true) then
  return {-6, route}
end
local holder = redis.call('HGET', KEY_OWNERS, chunk)
if holder and holder ~= owner then return {-3} end
local s = redis.call('GET', key_state(cid, k))
if not s then return {-1} end
local idx = {}
local pos = 1
while true do
  local i = string.find(s, ST_QUEUED, pos, true)
  if not i then break end
  idx[#idx + 1] = i - 1
  pos = i + 1
end
if #idx == 0 then return {0} end
redis.call('SET', key_state(cid, k), (string.gsub(s, ST_QUEUED, ST_CLAIMED)))
move(cid, ST_QUEUED, ST_CLAIMED, #idx)
redis.call('ZADD', KEY_LEASES, t + lease, chunk)
redis.call('HSET', KEY_OWNERS, chunk, owner)
redis.call('HDEL', KEY_RESIGNALS, chunk)
local a = redis.call('GET', key_attempts(cid, k)) or ''
local tried = {}
for j, i in ipairs(idx) do
  local b = string.byte(a, i + 1)
  tried[j] = b or 0
end
if serves then return {#idx, table.concat(idx, ','), table.concat(tried, ','), route} end
return {#idx, table.concat(idx, ','), table.concat(tried, ',')}
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
  if redis.call('HGET', KEY_OWNERS, ARGV[j]) == owner then
    redis.call('ZADD', KEY_LEASES, 'XX', t + lease, ARGV[j])
  else
    lost[#lost + 1] = ARGV[j]
  end
end
return lost
"""
)

# Just before the HTTP request: claimed -> in flight, only if the lease is
# still ours, the campaign still active and the provider not paused. A crash
# before this point re-queues the message; after it, the message is unknown.
# While the circuit is open, one request per probe interval goes through as
# the probe. Delivery policies are checked here last of all, by Redis's clock:
# past the campaign's validity end every message of the list ends expired; a
# message whose number is on the suppression list ends suppressed; neither is
# started (each gets its event).
# Failover: the request goes to the provider given (the campaign's own, or its fallback,
# as CLAIM routed the chunk); its circuit is the one checked. A campaign with a fallback
# keeps on each message started the provider it went to ('provider' in m:{mid}), for
# its status and for the event of an unknown ending (RELEASE, SWEEP).
# ARGV: prefix, cid, k, owner, probe seconds, "i,i,...", and optionally
# "number,number,..." (the same messages' numbers, for the suppression check; '' for
# none) and the provider ('' or absent: the campaign's own).
# Returns {code, "i:attempt,..."}: 1 started, -1 lease lost, -2 not active,
# -4 provider paused, -5 not a provider of this campaign.
START: Final = (
    PRELUDE
    + r"""
local cid, k, owner, probe_s, list = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local chunk = cid .. ':' .. k
if redis.call('HGET', KEY_OWNERS, chunk) ~= owner then return {-1, ''} end
local c = key_campaign(cid)
if redis.call('HGET', c, 'status') ~= CAMPAIGN_ACTIVE then return {-2, ''} end
local primary, fb = redis.call('HGET', c, 'provider'), redis.call('HGET', c, 'fallback')
local via = ARGV[8]
if not via or via == '' then via = primary end
if via ~= primary and via ~= fb then return {-5, ''} end
local sk, ak = key_state(cid, k), key_attempts(cid, k)
local idx = split(list, ',')
local t = now()
-- Policies first: what they end is never sent, probe or not.
local ending, rs = {}, nil
local exp = expiry_of(c)
local numbers = split(ARGV[7] or '', ',')
for j, si in ipairs(idx) do
  local i = tonumber(si)
  if redis.call('GETRANGE', sk, i, i) == ST_CLAIMED then
    local b, err = nil, nil
    if exp and exp <= t then
      b, err = ST_EXPIRED, EXPIRED_ERROR
    elseif numbers[j] then
      err = suppressed_error(numbers[j])
      if err then b = ST_SUPPRESSED end
    end
    if b then
      rs = rs or chunk_rows(cid, k)
      end_unsent(cid, k, i, b, err, rs, t, retention_of(cid))
      ending[i] = b
    end
  end
end
for i, b in pairs(ending) do set_state(cid, k, i, b) end
if next(ending) then
  -- A state change above may have finished the campaign: nothing is left to start.
  if redis.call('HGET', c, 'status') ~= CAMPAIGN_ACTIVE then return {1, ''} end
end
local circuit = key_circuit(via)
local probe = redis.call('HGET', circuit, 'probe_at')
if probe then
  if tonumber(probe) > t then return {-4, ''} end
  redis.call('HSET', circuit, 'probe_at', tostring(t + probe_s))
end
local started = {}
for _, si in ipairs(idx) do
  local i = tonumber(si)
  if redis.call('GETRANGE', sk, i, i) == ST_CLAIMED then
    redis.call('SETRANGE', sk, i, ST_INFLIGHT)
    local a = redis.call('GETRANGE', ak, i, i)
    local n = (a == '' and 0 or string.byte(a)) + 1
    if n > 255 then n = 255 end
    redis.call('SETRANGE', ak, i, string.char(n))
    started[#started + 1] = si .. ':' .. n
    if fb and fb ~= '' then
      local mk = key_message(cid .. '-' .. k .. '-' .. si)
      redis.call('HSET', mk, 'provider', via)
      redis.call('EXPIRE', mk, retention_of(cid))
    end
  end
end
return {1, table.concat(started, ',')}
"""
)

# The provider's answer for one or more messages of a chunk.
# ARGV: prefix, cid, k, retention, the provider the request went to ('' for the
# campaign's own; its fallback's name when CLAIM routed the chunk there: the result,
# message, event, stats and circuit then name the fallback), then groups of 9:
#   i, kind, smsid, cost, parts, error, delay seconds, to, ref
# ref: the message's ref ('' for none), which its event carries; the worker has it in
# the row already, so FINISH never decodes the chunk's rows on this hot path.
# kind (keys.OUTCOME_*): sent | scheduled (provider-scheduled) | failed | retry |
#   unknown | paused (account error: back to claimed, attempt not counted, circuit opened)
# A late answer to a message the sweeper marked unknown still records the truth.
# A final outcome (sent, scheduled, failed, unknown) appends its event in this step.
# Delivery policies: an accepted message's cost is added to its campaign's total
# ('cost_units'); a failure of class SUPPRESS_ON (Blacklisted) puts the number on the
# suppression list (kept if already there); a retry due at or after the campaign's
# validity end ends the message expired instead.
FINISH: Final = (
    PRELUDE
    + r"""
local cid, k, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local c = key_campaign(cid)
local provider = redis.call('HGET', c, 'provider')
local via = ARGV[5]
if via ~= '' and via == redis.call('HGET', c, 'fallback') then provider = via end
local sk = key_state(cid, k)
local t = now()
local at = tostring(t)
local cut = string.format('%d', math.max(0, math.floor((t - ttl) * 1000)))
local exp = expiry_of(c)
local suppress_prefix = SUPPRESS_ON .. ':'
local done = 0
for j = 6, #ARGV, 9 do
  local i, kind, smsid, cost, parts = tonumber(ARGV[j]), ARGV[j+1], ARGV[j+2], ARGV[j+3], ARGV[j+4]
  local err, delay, to = ARGV[j+5], tonumber(ARGV[j+6]), ARGV[j+7]
  local ref = ARGV[j+8]
  local cur = redis.call('GETRANGE', sk, i, i)
  local mid = cid .. '-' .. k .. '-' .. i
  local mk = key_message(mid)
  local a = redis.call('GETRANGE', key_attempts(cid, k), i, i)
  local attempts = a == '' and 0 or string.byte(a)
  local ok = cur == ST_INFLIGHT or (cur == ST_UNKNOWN and (kind == OUTCOME_SENT
    or kind == OUTCOME_SCHEDULED or kind == OUTCOME_FAILED))
  if ok then
    done = done + 1
    if kind == OUTCOME_SENT or kind == OUTCOME_SCHEDULED then
      local b = kind == OUTCOME_SENT and ST_SENT or ST_PROVIDER_SCHEDULED
      -- The event goes first: the state change may finish the campaign, whose event follows.
      emit_message(cut, b, mid, cid, provider, smsid, to, ref, '', attempts, parts, cost, at)
      -- The campaign's running cost, before the state change that may finish it (its event
      -- carries the total).
      if cost ~= '' then redis.call('HINCRBY', c, 'cost_units', string.format('%d', cost_units(cost))) end
      set_state(cid, k, i, b)
      local rk = key_result(smsid)
      redis.call('HSET', rk, 'id', mid, 'campaign', cid, 'provider', provider, 'to', to,
        'status', PUB[b], 'attempts', attempts, 'parts', parts,
        'cost', cost, 'created_at', redis.call('HGET', c, 'created_at') or '', 'sent_at', tostring(t),
        'smsid', smsid, 'error', '')
      redis.call('EXPIRE', rk, ttl)
      redis.call('HSET', mk, 'smsid', smsid)
      redis.call('HDEL', mk, 'error')
      redis.call('EXPIRE', mk, ttl)
      redis.call('DEL', key_circuit(provider))
      redis.call('HINCRBY', key_stats(provider), 'sent', 1)
      -- The running cost by provider, in the provider's currency (the exporter's cost counter).
      if cost ~= '' then redis.call('HINCRBYFLOAT', key_stats(provider), 'cost', cost) end
    elseif kind == OUTCOME_FAILED or kind == OUTCOME_UNKNOWN then
      local b = kind == OUTCOME_FAILED and ST_FAILED or ST_UNKNOWN
      emit_message(cut, b, mid, cid, provider, '', to, ref, err, attempts, parts, '', at)
      set_state(cid, k, i, b)
      redis.call('HSET', mk, 'error', err, 'at', tostring(t))
      redis.call('EXPIRE', mk, ttl)
      redis.call('HINCRBY', key_stats(provider), kind, 1)
      if kind == OUTCOME_FAILED and to ~= '' and string.sub(err, 1, #suppress_prefix) == suppress_prefix then
        redis.call('HSETNX', KEY_SUPPRESSED, to, cjson.encode({t, provider, err}))
      end
    elseif kind == OUTCOME_RETRY and exp and t + delay >= exp then
      local e = EXPIRED_ERROR .. ' (its next attempt would come after it; last error: ' .. err .. ')'
      emit_message(cut, ST_EXPIRED, mid, cid, provider, '', to, ref, e, attempts, parts, '', at)
      set_state(cid, k, i, ST_EXPIRED)
      redis.call('HSET', mk, 'error', e, 'at', tostring(t))
      redis.call('EXPIRE', mk, ttl)
      redis.call('HINCRBY', key_stats(provider), 'expired', 1)
    elseif kind == OUTCOME_RETRY then
      set_state(cid, k, i, ST_RETRY)
      redis.call('ZADD', KEY_DUE, t + delay, cid .. ':' .. k .. ':' .. i)
      redis.call('HSET', mk, 'error', err, 'at', tostring(t))
      redis.call('EXPIRE', mk, ttl)
      redis.call('HINCRBY', key_stats(provider), 'retried', 1)
    elseif kind == OUTCOME_PAUSED then
      set_state(cid, k, i, ST_CLAIMED)
      if attempts > 0 then redis.call('SETRANGE', key_attempts(cid, k), i, string.char(attempts - 1)) end
      -- 'since' is when the circuit opened: a failed probe leaves it (failover_after
      -- counts from it).
      redis.call('HSET', key_circuit(provider), 'reason', err, 'probe_at', tostring(t + delay))
      redis.call('HSETNX', key_circuit(provider), 'since', tostring(t))
    end
  end
end
return done
"""
)

# Claimed messages whose send window is closed now (the worker judges it: Lua has no
# time-zone data) wait again as scheduled, each in the due set at its next opening,
# so a backlog released at an opening never sends past the window's end. Only if the
# lease is still ours, and only messages still claimed. ARGV: prefix, cid, k, owner,
# then pairs of index, due time. Returns how many were deferred, or -1 (lease lost).
DEFER: Final = (
    PRELUDE
    + r"""
local cid, k, owner = ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', KEY_OWNERS, cid .. ':' .. k) ~= owner then return -1 end
local sk, n = key_state(cid, k), 0
for j = 5, #ARGV, 2 do
  local i = tonumber(ARGV[j])
  if redis.call('GETRANGE', sk, i, i) == ST_CLAIMED then
    set_state(cid, k, i, ST_SCHEDULED)
    redis.call('ZADD', KEY_DUE, tonumber(ARGV[j + 1]), cid .. ':' .. k .. ':' .. i)
    n = n + 1
  end
end
return n
"""
)

# A worker is done with a chunk (slice over, or the campaign stopped): what it
# claimed and did not start goes back to queued (cancelled if the campaign was
# cancelled); an in-flight message left behind is unknown. The lease goes.
# ARGV: prefix, cid, k, owner. Returns the number of queued messages left
# (the caller then signals the chunk again), or -1 if the lease was not ours.
RELEASE: Final = (
    PRELUDE
    + r"""
local cid, k, owner = ARGV[2], ARGV[3], ARGV[4]
local chunk = cid .. ':' .. k
if redis.call('HGET', KEY_OWNERS, chunk) ~= owner then return -1 end
redis.call('HDEL', KEY_OWNERS, chunk)
redis.call('ZREM', KEY_LEASES, chunk)
local s = redis.call('GET', key_state(cid, k))
if not s then return 0 end
local back = redis.call('HGET', key_campaign(cid), 'status') == CAMPAIGN_CANCELLED and ST_CANCELLED or ST_QUEUED
local s2, nc = string.gsub(s, ST_CLAIMED, back)
local s3, nf = string.gsub(s2, ST_INFLIGHT, ST_UNKNOWN)
if nc + nf > 0 then
  -- Events for what becomes final here: in flight -> unknown, claimed -> cancelled.
  local into = {[ST_INFLIGHT] = ST_UNKNOWN}
  if back == ST_CANCELLED then into[ST_CLAIMED] = ST_CANCELLED end
  if nf > 0 or back == ST_CANCELLED then
    emit_chunk(cid, k, s, into,
      {[ST_INFLIGHT] = 'released while in flight: no answer recorded'}, retention_of(cid))
  end
  redis.call('SET', key_state(cid, k), s3, 'KEEPTTL')
  move(cid, ST_CLAIMED, back, nc)
  move(cid, ST_INFLIGHT, ST_UNKNOWN, nf)
end
local _, nq = string.gsub(s3, ST_QUEUED, ST_QUEUED)
if nq > 0 then redis.call('ZADD', KEY_PENDING, now(), chunk) end
return nq
"""
)

# The sweeper: leases that expired belong to dead or stuck workers. Claimed
# messages go back to queued; in-flight ones become unknown (they may have
# been delivered), each with its event. ARGV: prefix, limit, and optionally the
# retention seconds: events older than it are trimmed even when none is appended.
# Returns chunk ids to signal again.
SWEEP: Final = (
    PRELUDE
    + r"""
local t = now()
redis.call('ZREMRANGEBYSCORE', KEY_CAMPAIGNS, '-inf', t)
if ARGV[3] and ARGV[3] ~= '' then
  redis.call('XTRIM', KEY_EVENTS, 'MINID', '~', events_cut(tonumber(ARGV[3])))
end
local expired = redis.call('ZRANGEBYSCORE', KEY_LEASES, '-inf', t, 'LIMIT', 0, tonumber(ARGV[2]))
local again = {}
for _, chunk in ipairs(expired) do
  local cid, k = string.match(chunk, '^(.*):(%d+)$')
  redis.call('ZREM', KEY_LEASES, chunk)
  redis.call('HDEL', KEY_OWNERS, chunk)
  local s = redis.call('GET', key_state(cid, k))
  if s then
    local s2, nc = string.gsub(s, ST_CLAIMED, ST_QUEUED)
    local s3, nf = string.gsub(s2, ST_INFLIGHT, ST_UNKNOWN)
    if nc + nf > 0 then
      if nf > 0 then
        emit_chunk(cid, k, s, {[ST_INFLIGHT] = ST_UNKNOWN},
          {[ST_INFLIGHT] = 'lease expired while in flight: no answer recorded'}, retention_of(cid))
      end
      redis.call('SET', key_state(cid, k), s3, 'KEEPTTL')
      move(cid, ST_CLAIMED, ST_QUEUED, nc)
      move(cid, ST_INFLIGHT, ST_UNKNOWN, nf)
    end
    if string.find(s3, ST_QUEUED, 1, true) then
      redis.call('ZADD', KEY_PENDING, t, chunk)
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
local due = redis.call('ZRANGEBYSCORE', KEY_DUE, '-inf', t, 'LIMIT', 0, tonumber(ARGV[2]))
local chunks, seen = {}, {}
for _, m in ipairs(due) do
  redis.call('ZREM', KEY_DUE, m)
  local cid, k, i = string.match(m, '^(.*):(%d+):(%d+)$')
  local sk
  if cid then
    sk = key_state(cid, k)
    local b = redis.call('GETRANGE', sk, tonumber(i), tonumber(i))
    if b == ST_RETRY or b == ST_SCHEDULED then set_state(cid, k, tonumber(i), ST_QUEUED) end
  else
    cid, k = string.match(m, '^(.*):(%d+)$')
    sk = key_state(cid, k)
    local s = redis.call('GET', sk)
    if s then
      local s2, n = string.gsub(s, ST_SCHEDULED, ST_QUEUED)
      if n > 0 then
        redis.call('SET', sk, s2)
        move(cid, ST_SCHEDULED, ST_QUEUED, n)
      end
    end
  end
  local chunk = cid .. ':' .. k
  if not seen[chunk] then
    seen[chunk] = true
    chunks[#chunks + 1] = chunk
    redis.call('ZADD', KEY_PENDING, now(), chunk)  -- the signal's real time, not the test clock
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
local stale = redis.call('ZRANGEBYSCORE', KEY_PENDING, '-inf', t - tonumber(ARGV[2]),
                         'LIMIT', 0, tonumber(ARGV[3]))
local again = {}
for _, chunk in ipairs(stale) do
  local cid, k = string.match(chunk, '^(.*):(%d+)$')
  local s = redis.call('GET', key_state(cid, k))
  if not s or not string.find(s, ST_QUEUED, 1, true) then
    redis.call('ZREM', KEY_PENDING, chunk)
    redis.call('HDEL', KEY_RESIGNALS, chunk)
  else
    local c = key_campaign(cid)
    local paused = not route_of(c, t)
    if not redis.call('HGET', KEY_OWNERS, chunk) and redis.call('HGET', c, 'status') == CAMPAIGN_ACTIVE
       and not paused then
      -- The last signal may only be waiting behind a long queue: each re-signal of
      -- the same chunk waits one period longer (reset when a worker claims it), so a
      -- long backlog does not pile up duplicate signals.
      local n = redis.call('HINCRBY', KEY_RESIGNALS, chunk, 1)
      redis.call('ZADD', KEY_PENDING, t + tonumber(ARGV[2]) * math.min(n - 1, 30), chunk)
      again[#again + 1] = chunk
    else
      redis.call('ZADD', KEY_PENDING, t, chunk)
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

# The heartbeat: extend the leases of the permits a process still holds. A permit
# whose lease already ended is swept, as ACQUIRE would, and never revived, even if
# nobody has taken its place yet: by then its holder has stopped starting requests
# on it (its own, earlier, deadline passed), so "expired" always means "gone".
# KEYS: permits zset. ARGV: lease seconds, permit ids...
# Returns one flag per id: 1 renewed, 0 gone (its holder must not use it any more).
PERMIT_RENEW: Final = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local expiry = now + tonumber(ARGV[1])
local kept = {}
for j = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[j]) then
    redis.call('ZADD', KEYS[1], expiry, ARGV[j])
    kept[j - 1] = 1
  else
    kept[j - 1] = 0
  end
end
return kept
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

# Put numbers on the suppression list (hand-made entries: no provider), by Redis's
# clock. ARGV: prefix, then number, reason pairs (numbers in E.164). A number already
# there keeps its record, unless a reason is given: then the record is replaced.
# Returns how many were not there before.
SUPPRESS: Final = (
    PRELUDE
    + r"""
local t, added = now(), 0
for j = 2, #ARGV, 2 do
  local rec = cjson.encode({t, '', ARGV[j + 1]})
  if ARGV[j + 1] == '' then
    added = added + redis.call('HSETNX', KEY_SUPPRESSED, ARGV[j], rec)
  else
    added = added + redis.call('HSET', KEY_SUPPRESSED, ARGV[j], rec)
  end
end
return added
"""
)

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
local CANCELLABLE = {ST_QUEUED, ST_RETRY, ST_SCHEDULED, ST_CLAIMED}
local GONE = {ST_INFLIGHT, ST_SENT, ST_UNKNOWN}
local is_cancellable, is_gone = {}, {}
for _, b in ipairs(CANCELLABLE) do is_cancellable[b] = ST_CANCELLED end
for _, b in ipairs(GONE) do is_gone[b] = true end
local ttl = retention_of(cid)
for k = k0, k1 do
  local sk = key_state(cid, k)
  if one ~= '' then
    local i = tonumber(one)
    local b = redis.call('GETRANGE', sk, i, i)
    if is_cancellable[b] then
      -- Its event, as emit_chunk words it, for this one byte.
      emit_chunk(cid, k, string.rep(' ', i) .. b, is_cancellable, {}, ttl)
      set_state(cid, k, i, ST_CANCELLED)
      redis.call('ZREM', KEY_DUE, cid .. ':' .. k .. ':' .. i)
      cancelled = 1
    elseif is_gone[b] then gone = 1
    elseif b == ST_PROVIDER_SCHEDULED then held = 1 end
  else
    local s = redis.call('GET', sk)
    if s then
      -- Their due entries go too: a cancelled message has nothing left to wait for.
      redis.call('ZREM', KEY_DUE, cid .. ':' .. k)
      for _, st in ipairs({ST_RETRY, ST_SCHEDULED}) do
        local pos = 1
        while true do
          local i = string.find(s, st, pos, true)
          if not i then break end
          redis.call('ZREM', KEY_DUE, cid .. ':' .. k .. ':' .. (i - 1))
          pos = i + 1
        end
      end
      -- One event per message cancelled, the rows decoded once for the chunk.
      if string.find(s, '[' .. table.concat(CANCELLABLE) .. ']') then
        emit_chunk(cid, k, s, is_cancellable, {}, ttl)
      end
      for _, b in ipairs(CANCELLABLE) do
        local n
        s, n = string.gsub(s, b, ST_CANCELLED)
        if n > 0 then
          redis.call('SET', sk, s, 'KEEPTTL')
          move(cid, b, ST_CANCELLED, n)
          cancelled = cancelled + n
        end
      end
      for _, b in ipairs(GONE) do
        local _, n = string.gsub(s, b, b)
        gone = gone + n
      end
      local _, n = string.gsub(s, ST_PROVIDER_SCHEDULED, ST_PROVIDER_SCHEDULED)
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
local c = key_campaign(cid)
local st = redis.call('HGET', c, 'status')
if st ~= from then return {st or ''} end
redis.call('HSET', c, 'status', to)
local out = {st}
if to == CAMPAIGN_ACTIVE then
  for k = 0, tonumber(redis.call('HGET', c, 'chunks') or '0') - 1 do
    local s = redis.call('GET', key_state(cid, k))
    if s and string.find(s, ST_QUEUED, 1, true) then
      redis.call('ZADD', KEY_PENDING, 0, cid .. ':' .. k)
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
local c = key_campaign(cid)
local st = redis.call('HGET', c, 'status')
if not st or st == CAMPAIGN_CANCELLED then return {-1, ''} end
local total, chunks = 0, {}
local n_chunks = tonumber(redis.call('HGET', c, 'chunks') or '0')
if st == CAMPAIGN_DONE then
  -- Nothing to re-queue: leave it done (reopened, it would stay active forever).
  local any = false
  for k = 0, n_chunks - 1 do
    local s = redis.call('GET', key_state(cid, k)) or ''
    for b in string.gmatch(which, '.') do
      if string.find(s, b, 1, true) then any = true end
    end
    if any then break end
  end
  if not any then return {0, ''} end
end
redis.call('PERSIST', c)
redis.call('PERSIST', key_counts(cid))
redis.call('ZADD', KEY_CAMPAIGNS, 'inf', cid)
if st == CAMPAIGN_DONE then
  redis.call('HSET', c, 'status', CAMPAIGN_ACTIVE)
  redis.call('HDEL', c, 'finished_at')
end
for k = 0, n_chunks - 1 do
  local sk, ak = key_state(cid, k), key_attempts(cid, k)
  redis.call('PERSIST', sk)
  redis.call('PERSIST', key_rows(cid, k))
  redis.call('PERSIST', ak)
  local s = redis.call('GET', sk)
  local here = 0
  if s then
    for b in string.gmatch(which, '.') do
      local pos = 1
      while true do
        local i = string.find(s, b, pos, true)
        if not i then break end
        set_state(cid, k, i - 1, ST_QUEUED)
        redis.call('SETRANGE', ak, i - 1, string.char(0))
        here = here + 1
        pos = i + 1
      end
    end
  end
  if here > 0 then
    total = total + here
    chunks[#chunks + 1] = tostring(k)
    redis.call('ZADD', KEY_PENDING, now(), cid .. ':' .. k)
  end
end
return {total, table.concat(chunks, ',')}
"""
)
