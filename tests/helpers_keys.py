"""A producer process for the campaign-key tests, and the rows it sends.

``python -m tests.helpers_keys REDIS_URL KEY`` runs ``SmsQueue.send_campaign`` (real Celery
publishing, real validation) over ``campaign_rows()`` with that key, and stops reading its
rows for good at row ``STOP_AT``: it never finishes by itself, so a test can kill it while
it is enqueueing, whatever the speed of the machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from smsqueue import constants as c

ROWS = 3000
STOP_AT = 2000  # the producer never reads this row: at least ROWS - STOP_AT stay unwritten
CHUNK_SIZE = 100
TEXT = "Hi {name}"
PROVIDER = c.WOOXY


def number(i: int) -> str:
    return f"+1202555{i:04d}"


def campaign_rows() -> list[dict[str, Any]]:
    """Valid rows (half with a ref), with invalid numbers and repeated numbers mixed in."""
    rows: list[dict[str, Any]] = []
    for i in range(ROWS):
        if i % 50 == 49:
            rows.append({"phone": "12345", "name": f"bad {i}"})
        elif i % 70 == 69:
            rows.append({"phone": number(i - 10), "name": f"again {i}"})
        else:
            rows.append({"phone": number(i), "name": f"n{i}", "ref": f"order-{i}" if i % 2 else ""})
    return rows


def accepted_rows() -> list[dict[str, Any]]:
    """The rows of campaign_rows() that are enqueued, in order: each valid number's first."""
    seen: set[str] = set()
    out = []
    for row in campaign_rows():
        if row["phone"] != "12345" and row["phone"] not in seen:
            seen.add(row["phone"])
            out.append(row)
    return out


def stalled(rows: Iterable[dict[str, Any]], stop_at: int) -> Iterator[dict[str, Any]]:
    """``rows`` until row ``stop_at``, which never comes."""
    for n, row in enumerate(rows, start=1):
        while n >= stop_at:
            time.sleep(3600)
        yield row


def main(url: str, key: str) -> None:
    from smsqueue.intake.producer import SmsQueue
    from smsqueue.settings import Settings

    q = SmsQueue(settings=Settings(redis_url=url, chunk_size=CHUNK_SIZE))
    q.send_campaign(stalled(campaign_rows(), STOP_AT), text=TEXT, provider=PROVIDER, key=key)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
