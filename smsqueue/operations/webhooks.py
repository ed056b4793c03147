"""Webhook delivery: the outcome events stream, POSTed to ``SMSQUEUE_WEBHOOK_URL``.

No process of its own: every scheduler (``smsqueue scheduler``, or a worker doing its
duties) runs a ``Deliverer`` thread, and the one holding a Redis lease delivers; the
others wait to take over. So events go out in order, from one place at a time.

- **Cursor.** ``webhook:cursor`` holds the id of the last event done with (answered
  2xx, filtered out, or too old). The holder reads up to ``WEBHOOK_MAX_EVENTS`` events
  after it, POSTs the ones of the chosen types as one signed body, and on a 2xx moves the
  cursor with a compare-and-set that also checks it still holds the lease: a deliverer
  that lost its lease (paused, cut off) can never move it, and it only moves forward. The
  cursor lives in Redis, so delivery survives the restart of any process and of Redis.
- **Lease.** ``webhook:lease`` (SET NX PX), renewed before every POST; a holder that
  finds another token there stops delivering. A killed holder's lease runs out and
  another process takes over where the cursor says.
- **Retries.** A non-2xx answer, a timeout or a refused connection leaves the cursor
  where it is: the same events (same ids) are posted again after an exponential backoff
  (``webhook_retry_base`` doubling up to ``webhook_retry_cap``). After
  ``WEBHOOK_SUSPEND_AFTER`` failures in a row the endpoint is **suspended**: only a probe
  (the same batch) every ``webhook_probe_seconds``; the first 2xx resumes it. Events
  older than ``webhook_max_age`` are skipped (a warning, and counted).
- **State.** ``webhook:state`` (failures, retry_at, error; suspended_since, probe_at)
  exists only while posts fail, so ``smsqueue health`` and the exporter read it;
  ``webhook:stats`` keeps lifetime counters.

Logs name the endpoint by ``Settings.safe_webhook_url`` (no credentials, no query) and
never carry the secret, the body or a phone number.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import redis
import structlog

from smsqueue import __version__
from smsqueue import constants as c
from smsqueue.intake.core import parse_event
from smsqueue.models import Event
from smsqueue.settings import Settings, safe_url
from smsqueue.store import clock, keys, redisconn
from smsqueue.webhooks import sign


def _log() -> Any:
    """The logger, fetched at each use (so a reconfiguration, or a test capture, applies)."""
    return structlog.get_logger("smsqueue.operations.webhooks")


# The lease outlives one POST (connect + write + read timeouts) by this much, s.
LEASE_MARGIN: Final = 5.0
# How long an idle holder blocks on the stream for new events before renewing, s.
IDLE_SECONDS: Final = 1.0
# After an unexpected error (a bug, a Redis outage), wait this long before the next step, s.
ERROR_PAUSE: Final = 1.0
# The longest error text kept in the state hash and logs.
ERROR_CHARS: Final = 200

# Take the lease, or renew it when it is already ours: 1 when held after the call.
_ACQUIRE: Final = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Move the cursor from ARGV[2] to ARGV[3], only while holding the lease and only if the
# cursor is still ARGV[2]; ARGV[4] '1' (a 2xx) clears the failure state; then counters.
# -1: lease lost; 0: the cursor moved meanwhile; 1: moved; 2: moved and resumed.
_ADVANCE: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = redis.call('GET', KEYS[2]) or ''
if cur ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] ~= '0' then redis.call('HINCRBY', KEYS[4], ARGV[i], ARGV[i + 1]) end
end
if ARGV[4] == '1' then
  local was = redis.call('HEXISTS', KEYS[3], 'suspended_since')
  redis.call('DEL', KEYS[3])
  if was == 1 then return 2 end
end
return 1
"""

# Record a failed POST (field/value pairs from ARGV[3]), only while holding the lease; the
# state expires after ARGV[2] ms, so a webhook no process delivers any more is forgotten.
_FAIL: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'posts_failed', 1)
return 1
"""


def lease_seconds(settings: Settings) -> float:
    """How long a deliverer's lease lasts: one whole POST and a margin."""
    return 3 * settings.webhook_timeout + LEASE_MARGIN


def backoff(settings: Settings, failures: int) -> float:
    """The wait after ``failures`` (1 or more) failed POSTs in a row, before suspension."""
    exponent = min(max(failures - 1, 0), 30)
    return float(min(settings.webhook_retry_cap, settings.webhook_retry_base * 2**exponent))


def event_ms(event_id: str) -> int:
    """The millisecond time of a stream id ``"<ms>-<seq>"``."""
    return int(event_id.partition("-")[0])


def body_of(events: list[Event]) -> bytes:
    """The POST body: ``{"events": [...]}``, compact JSON."""
    data = {"events": [event.payload() for event in events]}
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def lag_seconds(client: redis.Redis) -> float:
    """How old the oldest event not yet done with is, by Redis's clock; 0 when there is
    none, or when no deliverer ever ran (no cursor)."""
    cursor = client.get(keys.K_WEBHOOK_CURSOR)
    if cursor is None:
        return 0.0
    first = client.xrange(keys.K_EVENTS, min=f"({_text(cursor)}", max="+", count=1)
    if not first:
        return 0.0
    return max(0.0, clock.redis_now(client) - event_ms(str(first[0][0])) / 1000)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Mapping[bytes | str, bytes | str] | None) -> dict[str, str]:
    """A hash or stream entry's fields as text (the client decodes; this satisfies types)."""
    return {_text(k): _text(v) for k, v in (raw or {}).items()}


class Deliverer:
    """Delivers the events stream to the webhook URL while it holds the lease."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: redis.Redis | None = None,
        owner: str | None = None,
    ) -> None:
        if not settings.webhook_url or settings.webhook_secret is None:
            raise ValueError("webhooks need SMSQUEUE_WEBHOOK_URL and SMSQUEUE_WEBHOOK_SECRET")
        self.settings = settings
        self.url = settings.webhook_url
        self.safe_url = safe_url(self.url)
        self._secret = settings.webhook_secret.get_secret_value()
        self.types = settings.webhook_event_types
        self._own_client = client is None
        self.redis = client or redisconn.sync_client(
            settings.redis_url,
            master=settings.redis_sentinel_master,
            decode_responses=True,
            health_check_interval=30,
            socket_connect_timeout=5,
            socket_timeout=IDLE_SECONDS + 10,
        )
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = lease_seconds(settings)
        self.holding = False
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._release = self.redis.register_script(_RELEASE)
        self._advance = self.redis.register_script(_ADVANCE)
        self._fail = self.redis.register_script(_FAIL)
        self.http = httpx.Client(
            timeout=httpx.Timeout(settings.webhook_timeout),
            follow_redirects=False,
            headers={"User-Agent": f"smsqueue/{__version__}"},
        )
        parts = urlsplit(self.url)
        # What an error text must never show: the URL's user, password and query.
        self._hidden = [s for s in (parts.password, parts.username, parts.query) if s]

    # --- one step ---------------------------------------------------------------------

    def step(self) -> float:
        """One unit of work; returns how long to wait before the next (0: at once)."""
        if not self._hold():
            return min(self.lease / 3, 2.0)
        cursor = self._cursor()
        now = clock.redis_now(self.redis)
        state = _fields(self.redis.hgetall(keys.K_WEBHOOK_STATE))
        wait = float(state.get("retry_at") or 0) - now
        if wait > 0:
            return min(wait, self.lease / 3)
        entries = self.redis.xrange(
            keys.K_EVENTS, min=f"({cursor}", max="+", count=c.WEBHOOK_MAX_EVENTS
        )
        if not entries:
            # Nothing new: wait on the stream (returns as soon as an event is appended).
            self.redis.xread({keys.K_EVENTS: cursor}, count=1, block=int(IDLE_SECONDS * 1000))
            return 0.0
        # Ids grow with time, so the events too old to deliver come first.
        too_old = [
            str(eid)
            for eid, _ in entries
            if now - event_ms(str(eid)) / 1000 > self.settings.webhook_max_age
        ]
        if too_old:
            _log().warning(
                "webhook events too old: skipped",
                url=self.safe_url,
                events=len(too_old),
                first=too_old[0],
                last=too_old[-1],
                max_age=self.settings.webhook_max_age,
            )
            self._move(cursor, too_old[-1], ok=False, expired=len(too_old))
            return 0.0
        events = [parse_event(_text(eid), _fields(fields)) for eid, fields in entries]
        chosen = [event for event in events if event.type in self.types]
        last = events[-1].id
        if not chosen:
            self._move(cursor, last, ok=False, filtered=len(events))
            return 0.0
        if not self._hold():  # renewed just before the POST, so the lease covers it
            return 0.0
        status, error = self._post(body_of(chosen))
        if error is None:
            moved = self._move(
                cursor, last, ok=True, delivered=len(chosen), filtered=len(events) - len(chosen),
                posts_ok=1,
            )  # fmt: skip
            _log().info(
                "webhook delivered",
                url=self.safe_url,
                status=status,
                events=len(chosen),
                first=chosen[0].id,
                last=chosen[-1].id,
            )
            if moved == 2:
                _log().warning("webhook endpoint resumed", url=self.safe_url)
            return 0.0
        return self._failed(state, now, status, error, len(chosen))

    def _failed(
        self, state: Mapping[str, str], now: float, status: int | None, error: str, n: int
    ) -> float:
        failures = int(state.get("failures") or 0) + 1
        suspended = failures >= c.WEBHOOK_SUSPEND_AFTER
        probe = self.settings.webhook_probe_seconds
        wait = probe if suspended else backoff(self.settings, failures)
        fields: dict[str, str] = {
            "failures": str(failures), "retry_at": repr(now + wait), "error": error,
        }  # fmt: skip
        if suspended:
            fields["suspended_since"] = state.get("suspended_since") or repr(now)
            fields["probe_at"] = repr(now + wait)
        ttl = 2 * max(self.settings.webhook_probe_seconds, self.settings.webhook_retry_cap)
        ttl_ms = int((ttl + 2 * self.lease) * 1000)
        args: list[str] = [self.owner, str(ttl_ms)]
        for name, value in fields.items():
            args += [name, value]
        got = self._fail(keys=[keys.K_WEBHOOK_LEASE, keys.K_WEBHOOK_STATE, keys.K_WEBHOOK_STATS],
                         args=args)  # fmt: skip
        if got == -1:
            self._lost()
            return 0.0
        _log().warning(
            "webhook post failed",
            url=self.safe_url,
            status=status,
            error=error,
            events=n,
            failures=failures,
            retry_in=round(wait, 3),
        )
        if suspended and "suspended_since" not in state:
            _log().error(
                "webhook endpoint suspended",
                url=self.safe_url,
                failures=failures,
                probe_every=self.settings.webhook_probe_seconds,
                error=error,
            )
        return min(wait, self.lease / 3)

    # --- pieces -----------------------------------------------------------------------

    def _hold(self) -> bool:
        """Take or renew the lease; log when it is gained or lost."""
        ms = int(self.lease * 1000)
        held = bool(self._acquire(keys=[keys.K_WEBHOOK_LEASE], args=[self.owner, ms]))
        if held and not self.holding:
            _log().info("webhook deliverer active", url=self.safe_url, owner=self.owner)
        elif not held and self.holding:
            self._lost()
        self.holding = held
        return held

    def _lost(self) -> None:
        if self.holding:
            _log().warning("webhook lease lost: another process delivers", owner=self.owner)
        self.holding = False

    def _cursor(self) -> str:
        """The cursor; the first deliverer ever starts it at the stream's newest event."""
        cursor = self.redis.get(keys.K_WEBHOOK_CURSOR)
        if cursor is None:
            newest = self.redis.xrevrange(keys.K_EVENTS, max="+", min="-", count=1)
            start = str(newest[0][0]) if newest else "0-0"
            self.redis.set(keys.K_WEBHOOK_CURSOR, start, nx=True)
            cursor = self.redis.get(keys.K_WEBHOOK_CURSOR)
        return str(cursor)

    def _move(self, old: str, new: str, *, ok: bool, **counts: int) -> int:
        args: list[str | int] = [self.owner, old, new, "1" if ok else "0"]
        for name, n in counts.items():
            args += [name, n]
        got = int(
            self._advance(
                keys=[
                    keys.K_WEBHOOK_LEASE, keys.K_WEBHOOK_CURSOR,
                    keys.K_WEBHOOK_STATE, keys.K_WEBHOOK_STATS,
                ],
                args=args,
            )
        )  # fmt: skip
        if got == -1:
            self._lost()
        elif got == 0:
            _log().warning("webhook cursor moved by another process", owner=self.owner)
        return got

    def _post(self, body: bytes) -> tuple[int | None, str | None]:
        """POST ``body``, signed: (status, None) on a 2xx, else (status or None, why)."""
        headers = {
            "Content-Type": "application/json",
            c.WEBHOOK_SIGNATURE_HEADER: sign(self._secret, body),
        }
        try:
            response = self.http.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return None, self._clean(f"timeout ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return None, self._clean(f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    def _clean(self, text: str) -> str:
        """An error text without the URL's credentials or query, at most ERROR_CHARS long."""
        text = text.replace(self.url, self.safe_url)
        for hidden in self._hidden:
            text = text.replace(hidden, "***")
        return text[:ERROR_CHARS]

    # --- the thread -------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Deliver while holding the lease, until ``stop`` is set; Redis outages are waited
        out. Releases the lease at the end, so another process takes over at once."""
        _log().info("webhook deliverer started", url=self.safe_url, events=sorted(self.types))
        try:
            while not stop.is_set():
                try:
                    wait = self.step()
                except (redis.RedisError, OSError) as exc:
                    _log().debug("webhook deliverer waits for Redis", error=str(exc))
                    wait = ERROR_PAUSE
                except Exception:  # a bug must not end delivery for the life of the process
                    _log().exception("webhook deliverer error")
                    wait = ERROR_PAUSE
                if wait > 0:
                    stop.wait(wait)
        finally:
            self.close()

    def close(self) -> None:
        """Release the lease (if held) and the connections."""
        with contextlib.suppress(redis.RedisError, OSError):
            self._release(keys=[keys.K_WEBHOOK_LEASE], args=[self.owner])
        self.holding = False
        self.http.close()
        if self._own_client:
            self.redis.close()


def start(settings: Settings, stop: threading.Event) -> threading.Thread | None:
    """A daemon thread delivering webhooks until ``stop`` is set; None (and no thread) when
    no webhook URL is configured."""
    if not settings.webhook_url:
        return None
    deliverer = Deliverer(settings=settings)
    thread = threading.Thread(
        target=deliverer.run, args=(stop,), name="smsqueue-webhooks", daemon=True
    )
    thread.start()
    return thread
