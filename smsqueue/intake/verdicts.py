"""Each validated campaign row's verdict: accepted, rejected, or a duplicate number.

``send_campaign`` and the dry run (``smsqueue.intake.dryrun``) both judge rows
here, so "which copy of a number is the duplicate" is decided in one place: the
first valid row with a number is accepted, every later one is a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final, Literal

from smsqueue.intake.validation import Outcome

Verdict = Literal["accepted", "rejected", "duplicate"]
ACCEPTED: Final = "accepted"
REJECTED: Final = "rejected"
DUPLICATE: Final = "duplicate"


def judged(outcomes: Iterable[Outcome]) -> Iterator[tuple[Verdict, Outcome]]:
    """Each outcome of ``validation.validated`` with its verdict, in the same order."""
    seen: set[str] = set()
    for outcome in outcomes:
        row = outcome[1]
        if row is None:
            yield REJECTED, outcome
        elif row[0] in seen:
            yield DUPLICATE, outcome
        else:
            seen.add(row[0])
            yield ACCEPTED, outcome
