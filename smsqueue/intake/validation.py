"""Campaign rows validated in parallel, in order, without holding the campaign in memory.

Checking a number with phonenumbers is most of the cost of enqueueing (about
10 µs a row), so past the first batch the rows go to helper processes, each
a fresh ``python -m smsqueue.intake.validation`` fed JSON lines on its stdin. Fresh
processes, not a multiprocessing pool: a pool would fork the caller's threads
and locks, or re-import the caller's ``__main__``, neither of which a library
may impose on the program that uses it.

Each helper holds at most one batch, and results are read in the order the
batches were sent, so rows come back in order (which duplicate counts as
"the first" never depends on timing) and a million-row generator is read
only as fast as the campaign is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Generator, Iterable, Mapping
from functools import lru_cache
from itertools import islice
from typing import IO, Any

from smsqueue.intake.rows import (
    REF_FIELD,
    ROW_ERRORS,
    raw_number,
    rejection_reason,
    validate_row,
)
from smsqueue.sms.template import Template

BATCH = 2000
# (row number, stored row or None, the number as given, why it was rejected)
Outcome = tuple[int, list[str] | None, str, str]
Item = str | Mapping[str, object]


@lru_cache(maxsize=8)
def _template(source: str) -> Template:
    return Template(source)


def validate_batch(
    batch: list[tuple[int, Item]], source: str, region: str | None, max_parts: int
) -> list[Outcome]:
    """Validate numbered rows; runs in a helper process or in this one."""
    tpl = _template(source)
    out: list[Outcome] = []
    for rowno, item in batch:
        try:
            out.append((rowno, validate_row(item, tpl, region=region, max_parts=max_parts), "", ""))
        except ROW_ERRORS as exc:
            out.append((rowno, None, raw_number(item), rejection_reason(exc)))
    return out


def _slim(item: Item, fields: tuple[str, ...]) -> Any:
    """Only what validation reads, as JSON can carry it."""
    if isinstance(item, str):
        return item
    if not isinstance(item, Mapping):
        # Rejected there as here ("must be a number or a mapping"): None and numbers cross
        # as they are, anything else as a list. Never as its repr: phonenumbers reads
        # "b'+12125551234'" or "['+12125551234']" as a valid number.
        return item if item is None or isinstance(item, int | float) else [repr(item)[:80]]
    keep = ("phone", REF_FIELD, *fields)
    return {k: _slim_value(k, v) for k, v in item.items() if k in keep}


def _slim_value(key: str, value: object) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value
    # A phone that is neither text nor a number is "no phone" here; None says so there too.
    return None if key == "phone" else str(value)


class _Helper:
    """One helper process and its pipes."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smsqueue.intake.validation"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1 << 20,
            # It imports smsqueue as this process did, even from a path set in code.
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )  # fmt: skip
        self._send(config)

    def _send(self, obj: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.proc.stdin.flush()

    def submit(self, batch: list[tuple[int, Any]]) -> None:
        self._send(batch)

    def result(self) -> list[Outcome]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("a validation helper process died")
        return [(n, row, number, reason) for n, row, number, reason in json.loads(line)]

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def validated(
    recipients: Iterable[Item],
    *,
    source: str,
    region: str | None,
    max_parts: int,
    processes: int,
) -> Generator[Outcome, None, None]:
    """Every row's outcome, in order. ``processes`` > 1 adds helpers after the first batch."""
    numbered = enumerate(recipients, start=1)
    seen = 0
    for numbered_item in islice(numbered, BATCH):  # row by row: a small campaign stays lazy
        seen += 1
        yield from validate_batch([numbered_item], source, region, max_parts)
    if seen < BATCH:
        return
    fields = _template(source).fields
    batches = (
        [(n, _slim(item, fields)) for n, item in batch]
        for batch in iter(lambda: list(islice(numbered, BATCH)), [])
    )
    if processes <= 1:
        for batch in batches:
            yield from validate_batch(batch, source, region, max_parts)
        return
    config = {"source": source, "region": region, "max_parts": max_parts}
    helpers = [_Helper(config) for _ in range(processes)]
    try:
        busy: list[_Helper] = []  # in the order their batches were sent
        for batch in batches:
            if len(busy) == len(helpers):
                helper = busy.pop(0)
                yield from helper.result()
            else:
                helper = helpers[len(busy)]
            helper.submit(batch)
            busy.append(helper)
        for helper in busy:
            yield from helper.result()
    finally:
        for helper in helpers:
            helper.close()


def default_processes(setting: int) -> int:
    """The helper count: the setting, or one per core when it is 0 (1 means none)."""
    return setting if setting > 0 else (os.cpu_count() or 1)


def _serve(stdin: IO[str], stdout: IO[str]) -> None:
    config = json.loads(stdin.readline())
    for line in stdin:
        batch = [(int(n), item) for n, item in json.loads(line)]
        out = validate_batch(batch, config["source"], config["region"], config["max_parts"])
        stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
        stdout.flush()


if __name__ == "__main__":
    _serve(sys.stdin, sys.stdout)
