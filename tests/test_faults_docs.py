"""docs/reliability.md cites tests by name: every one it names must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `tests/test_x.py::test_name`, `tests/test_x.py` alone, or `::test_name` (same file as before).
CITE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def test_every_test_named_in_docs_reliability_md_exists() -> None:
    """Each file::test the reliability page cites is a test function in that file."""
    text = (ROOT / "docs" / "reliability.md").read_text()
    current: str | None = None
    cited = 0
    for match in CITE.finditer(text):
        path, name = match.groups()
        if path is None and name is None:
            continue
        if path is not None:
            current = path
            assert (ROOT / path).is_file(), f"{path} does not exist"
        if name is None:
            continue
        assert current is not None, f"::{name} without a file before it"
        tree = ast.parse((ROOT / current).read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        assert name in names, f"{current}::{name} is not a test"
        cited += 1
    assert cited >= 30
