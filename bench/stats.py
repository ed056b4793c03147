"""Figures over several runs (median, min, max) and percentiles within one run."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Figure:
    """One measured quantity, one value per run."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(float(value))

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    @property
    def min(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def max(self) -> float:
        return max(self.values) if self.values else math.nan

    def fmt(self, spec: str = ",.0f", unit: str = "") -> str:
        """``412 msg/s (405–418)``; one run: no range; no run: ``n/a``."""
        if not self.values:
            return "n/a"
        head = f"{self.median:{spec}}{unit}"
        if self.n == 1:
            return head
        return f"{head} ({self.min:{spec}}–{self.max:{spec}})"

    def as_json(self) -> dict[str, object]:
        return {"values": self.values, "median": self.median, "min": self.min, "max": self.max}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between closest ranks."""
    if not values:
        return math.nan
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def figure(values: Iterable[float]) -> Figure:
    """A Figure holding ``values``."""
    return Figure(list(values))
