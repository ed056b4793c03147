from __future__ import annotations

import asyncio

import httpx
import pytest

from smsqueue.constants import SANDBOX_DOMAIN, SANDBOX_TOKEN
from smsqueue.testing.sandbox import Sandbox, SandboxConfig, SandboxState
from smsqueue.testing.sandbox.timings import Timings

LATENCY = 0.05


def _body(n: int) -> dict[str, object]:
    return {"domain": SANDBOX_DOMAIN, "phoneNumber": f"+1202555{n:04d}", "text": "hi"}


def test_timings_endpoint_records_arrival_and_leave_per_request() -> None:
    """GET /_sandbox/timings lists each Wooxy request's arrival and leave, a latency apart."""

    async def main() -> dict[str, object]:
        async with (
            Sandbox(config=SandboxConfig(latency=LATENCY)) as sandbox,
            httpx.AsyncClient(timeout=10) as http,
        ):
            url = sandbox.wooxy_url + "/sms/send"
            headers = {"Access-Token": SANDBOX_TOKEN}
            replies = await asyncio.gather(
                *(http.post(url, json=_body(200 + n), headers=headers) for n in range(3))
            )
            assert [r.status_code for r in replies] == [200] * 3
            got = (await http.get(f"{sandbox.url}/_sandbox/timings")).json()
            assert isinstance(got, dict)
            return got

    got = asyncio.run(main())
    wooxy = got["wooxy"]
    assert isinstance(wooxy, dict)
    arrived, left = wooxy["arrived"], wooxy["left"]
    assert len(arrived) == len(left) == 3
    assert arrived == sorted(arrived) and left == sorted(left)
    assert all(b - a >= LATENCY * 0.9 for a, b in zip(arrived, left, strict=True))
    assert wooxy["in_flight_at_start"] == 0 and wooxy["dropped"] == 0
    assert got["voip"] == {"arrived": [], "left": [], "in_flight_at_start": 0, "dropped": 0}
    assert float(str(got["clock"])) >= left[-1]


def test_reset_clears_timings_and_notes_what_is_in_flight() -> None:
    """A reset forgets the times and remembers how many requests were still in flight."""
    clock = iter(float(t) for t in range(100))
    state = SandboxState(balance=None, clock=lambda: next(clock))
    state.enter("wooxy")
    state.enter("wooxy")
    state.leave("wooxy")
    assert list(state.timings.arrived["wooxy"]) == [1.0, 2.0]
    assert list(state.timings.left["wooxy"]) == [3.0]
    state.reset(balance=None)
    state.leave("wooxy")
    assert list(state.timings.arrived["wooxy"]) == []
    assert list(state.timings.left["wooxy"]) == [5.0]
    assert state.timings.in_flight_at_start == {"wooxy": 1, "voip": 0}


@pytest.mark.parametrize("limit", [0, 2])
def test_timings_stop_at_their_limit_and_count_the_rest(limit: int) -> None:
    """Past the limit times are counted as dropped, not stored."""
    timings = Timings(limit=limit)
    for t in range(5):
        timings.arrive("voip", float(t))
    assert len(timings.arrived["voip"]) == limit
    assert timings.dropped["voip"] == 5 - limit
