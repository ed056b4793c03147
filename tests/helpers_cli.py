"""Running the ``smsqueue`` command in-process in tests, and what it printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from smsqueue.cli import main


@dataclass
class Result:
    """What one command printed and its exit code."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.out)


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> Result:
    """Run ``smsqueue ARGS...`` in this process; its exit code and what it printed."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = exc.value.code
    return Result(code if isinstance(code, int) else (0 if code is None else 1), out, err)
