"""Parallel validation gives exactly the in-process answer, in order, reading the input lazily."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from smsqueue.intake.validation import BATCH, validated


def rows(n: int) -> Iterator[object]:
    """Valid, invalid, duplicate, missing-field and wrong-type rows, mixed."""
    for i in range(n):
        kind = i % 9
        if kind == 0:
            yield {"phone": "+1 212 555 0000", "name": "dup"}  # the same number again and again
        elif kind == 1:
            yield {"phone": f"+1000{i}", "name": "bad"}
        elif kind == 2:
            yield {"phone": f"+1212555{i % 10000:04d}"}  # no name
        elif kind == 3:
            yield 12345  # not a number or a mapping
        else:
            yield {"phone": f"+1212{556 + i % 3}{i % 10000:04d}", "name": f"N{i}", "extra": [i]}


def test_helpers_give_the_same_outcomes_as_in_process() -> None:
    """Row numbers, stored rows, numbers and reasons match one for one, in order."""
    n = BATCH * 4 + 123
    kw = {"source": "Hi {name}", "region": None, "max_parts": 10}
    alone = list(validated(rows(n), processes=1, **kw))  # type: ignore[arg-type]
    helped = list(validated(rows(n), processes=2, **kw))  # type: ignore[arg-type]
    assert [o[0] for o in helped] == list(range(1, n + 1))
    assert helped == alone
    assert {o[3].split(":")[0] for o in alone if o[1] is None} >= {
        "invalid number", "missing field 'name' for the template",
        "a recipient must be a number or a mapping, not int",
    }  # fmt: skip


def test_the_input_is_read_as_results_are_taken() -> None:
    """Taking the first results pulls only a few batches, not the whole generator."""
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield f"+1212555{i % 10000:04d}"

    out = validated(endless(), source="Hi", region=None, max_parts=10, processes=2)
    first = list(itertools.islice(out, BATCH * 3))
    out.close()  # stops the helpers
    assert len(first) == BATCH * 3
    assert pulled <= BATCH * 6
