"""Distinct, valid US/NANP numbers in E.164, generated (never held whole).

Number ``j`` is ``+1 <area> <exchange> <j % 10000>``: each block of 10,000
has its own area code, so a campaign spans many area codes as real lists do.
Every prefix is checked with ``smsqueue.sms.phone.normalise`` before use.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator

from smsqueue.errors import InvalidPhoneNumber
from smsqueue.sms import phone

BLOCK = 10_000
PROBE_BASE = 50_000_000  # single-send probes use numbers far from any campaign's


@functools.cache
def _candidates() -> tuple[tuple[int, int], ...]:
    # Area codes vary fastest; the ones phonenumbers does not know are skipped below.
    return tuple((area, exch) for exch in range(200, 1000) for area in range(201, 1000))


@functools.cache
def _prefix(block: int) -> str:
    """The valid ``+1AAAEEE`` for ``block`` (the ``block``-th valid candidate)."""
    return _valid_prefixes(block + 1)[block]


_found: list[str] = []
_scan = itertools.count()


def _valid_prefixes(count: int) -> list[str]:
    cands = _candidates()
    while len(_found) < count:
        area, exch = cands[next(_scan)]
        prefix = f"+1{area}{exch}"
        try:
            phone.normalise(prefix + "0000")
            phone.normalise(prefix + "9999")
        except InvalidPhoneNumber:
            continue
        _found.append(prefix)
    return _found


def numbers(n: int, *, start: int = 0) -> Iterator[str]:
    """``n`` distinct numbers, the ``start``-th onwards."""
    end = start + n
    block = start // BLOCK
    j = start
    while j < end:
        prefix = _prefix(block)
        stop = min(end, (block + 1) * BLOCK)
        for sub in range(j % BLOCK, j % BLOCK + (stop - j)):
            yield f"{prefix}{sub:04d}"
        j = stop
        block += 1


def probe_numbers(n: int, *, run: int) -> list[str]:
    """``n`` numbers for the single sends of one latency run (distinct across runs)."""
    return list(numbers(n, start=PROBE_BASE + run * 1000))
