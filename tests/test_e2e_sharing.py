"""A worker serving both providers shares its threads: a Wooxy backlog does not hold VoIP back."""

from __future__ import annotations

from typing import Any

import pytest

from smsqueue import constants as c
from tests.conftest import FAST_ENV
from tests.helpers_e2e import numbers, wait_done

pytestmark = pytest.mark.slow


def test_a_voip_campaign_behind_a_wooxy_backlog_is_sent_while_wooxy_still_sends(
    cluster_factory: Any, record_property: Any
) -> None:
    """With two threads busy on Wooxy chunks, a later VoIP campaign still gets a thread."""
    cl = cluster_factory(
        workers=1,
        worker_concurrency=2,
        sandbox_args=("--latency", "0.05"),
        env={**FAST_ENV, "SMSQUEUE_CHUNK_SIZE": "200"},
    )
    q = cl.queue()
    wooxy = q.send_campaign(numbers("711", 3000), text="Hi", provider=c.WOOXY)
    voip = q.send_campaign(numbers("712", 1000), text="Hi", provider=c.VOIP)
    wait_done(q, voip.id, timeout=300)
    sent = q.campaign(wooxy.id).counts.get("sent", 0)
    record_property("figures", {"wooxy_sent_when_voip_done": sent, "wooxy_total": 3000})
    # Before sharing, VoIP waited until Wooxy's queue held fewer chunks than threads, two
    # thirds of the campaign in; now it goes within a slice of being signalled.
    assert sent < 1500, sent
    wait_done(q, wooxy.id, timeout=300)
