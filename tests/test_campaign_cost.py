"""A campaign's cost: the sum of its messages' costs, kept exactly, shown and announced."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from smsqueue import constants as c
from smsqueue.intake.core import cost_of
from smsqueue.store import keys
from smsqueue.testing.sandbox import SandboxConfig
from tests.helpers_cli import Result, run_cli
from tests.test_engine import World, numbers, run, world_factory  # noqa: F401 (a fixture)


async def drain(w: World, *cids: str) -> None:
    """Run one engine until the campaigns are done."""
    engine = await w.engine()
    try:
        await w.drain(engine, cids=list(cids))
    finally:
        await engine.aclose()


def test_cost_units_read_back_exactly() -> None:
    """The integer cost units read back as the exact Decimal, without exponent notation."""
    assert cost_of(None) == 0
    assert str(cost_of("30000000")) == "0.03"
    assert str(cost_of("10000000000")) == "10"
    assert cost_of("123456789") == Decimal("0.123456789")


@pytest.mark.parametrize("provider", [c.WOOXY, c.VOIP])
def test_done_when_campaign_cost_is_the_sum_of_its_messages(
    world_factory: Any,  # noqa: F811
    provider: str,
) -> None:
    """q.campaign(id).cost and the campaign.finished event equal the sum of the per-message
    costs (one- and two-part texts, a failed message costing nothing)."""
    nums = numbers(30)
    w: World = world_factory(SandboxConfig(latency=0.005, blacklist={nums[7]}))
    rows = [{"phone": n, "name": "x" * (200 if j % 3 == 0 else 3)} for j, n in enumerate(nums)]
    rc = w.queue.send_campaign(rows, text="Hello {name}", provider=provider)
    run(drain(w, rc.id))
    camp = w.queue.campaign(rc.id)
    assert camp.counts["sent"] == 29
    per_message = [r.cost for r in w.queue.export_rows(rc.id) if r.cost is not None]
    assert len(per_message) == 29
    total = sum(per_message, Decimal(0))
    assert total > 0 and camp.cost == total
    assert sum((m.cost for m in w.sandbox.state.messages), Decimal(0)) == total
    finished = [e for e in w.queue.events(limit=1000) if e.type == c.EVENT_CAMPAIGN_FINISHED]
    assert [e.cost for e in finished] == [total]
    assert finished[0].payload()["cost"] == str(finished[0].cost)


def test_a_campaign_with_nothing_sent_costs_zero(world_factory: Any) -> None:  # noqa: F811
    """A campaign whose every message failed costs 0, and its event says so."""
    nums = numbers(2)
    w: World = world_factory(SandboxConfig(latency=0.005, blacklist=set(nums)))
    rc = w.queue.send_campaign(nums, text="Hi", provider=c.WOOXY)
    run(drain(w, rc.id))
    assert w.queue.campaign(rc.id).cost == 0
    (event,) = [e for e in w.queue.events() if e.type == c.EVENT_CAMPAIGN_FINISHED]
    assert event.cost == 0


def test_status_shows_a_campaigns_cost(
    world_factory: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """smsqueue status CAMPAIGN prints its cost, in text and in JSON."""
    w: World = world_factory()
    rc = w.queue.send_campaign(numbers(4), text="Hi", provider=c.WOOXY)
    run(drain(w, rc.id))
    cost = w.queue.campaign(rc.id).cost
    assert cost > 0
    monkeypatch.setenv("SMSQUEUE_REDIS_URL", w.settings.redis_url)
    status: Callable[..., Result] = lambda *a: run_cli(capsys, "status", rc.id, *a)  # noqa: E731
    assert f"cost: {cost}" in status().out
    data = status("--json").json()
    assert Decimal(data["cost"]) == cost and data["status"] == keys.CAMPAIGN_DONE
