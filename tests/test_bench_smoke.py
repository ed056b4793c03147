"""One quick run of the benchmark suite (tiny sizes), so that it cannot rot.

Benchmarks are not tests: nothing here checks a figure, only that the run
finishes and its table has a row for every scenario, measured for both systems.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = (
    # Issue #12's targets, one row each
    "Wooxy, L = 20 ms",
    "Wooxy, L = 100 ms",
    "Wooxy, L = 5 ms",
    "CPU per Wooxy message",
    "Permit idle time",
    "After kill -9",
    "VoIP campaign",
    "Enqueue of",
    "Idle single send",
    "Single send behind a",
    # Other checks
    "Provider sandbox capacity",
    "Redis memory per pending message",
)


def _rows(markdown: str) -> dict[str, list[str]]:
    """Scenario name -> the cells of its row in the scenario table."""
    out = {}
    for line in markdown.splitlines():
        if not line.startswith("| "):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        for name in SCENARIOS:
            if cells[0].startswith(name):
                out[name] = cells
    return out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_bench_reports_every_scenario_for_both_systems(tmp_path: Path) -> None:
    out = tmp_path / "latest.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-readme", "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=840,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = _rows(out.read_text())
    assert set(rows) == set(SCENARIOS), f"missing rows: {set(SCENARIOS) - set(rows)}"
    for name, cells in rows.items():
        # scenario | reference | smsqueue | peer | target | met?
        assert len(cells) == 6, (name, cells)
        assert cells[2] not in ("", "n/a"), f"{name}: no smsqueue figure"
        assert cells[3] not in ("", "n/a"), f"{name}: no peer figure"
        assert cells[5] in ("yes", "**no**", "—"), (name, cells[5])
    raw = json.loads(out.with_suffix(".json").read_text())
    assert raw["settings"]["quick"] is True
