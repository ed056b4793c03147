"""Draw the panels of deploy/grafana/smsqueue.json from a real run, without Grafana.

Neither Grafana nor Prometheus can run on the development machine (no container engine,
no binaries, no network), so for docs/dashboard.png this script plays both parts:

1. It starts the demo's pool as real processes (``smsqueue.testing.embedded.Cluster``:
   Valkey, the provider sandbox with the demo's latency, faults and blacklist, three
   workers and the scheduler) and ``smsqueue metrics``, sends a Wooxy campaign and then a
   VoIP one, and scrapes the exporter's /metrics every second, as Prometheus would.
2. It evaluates each panel's queries, read from the dashboard JSON, over those scrapes,
   with the subset of PromQL the dashboard uses: selectors, ``rate``, ``increase``,
   ``sum by``, ``histogram_quantile``, ``vector`` and arithmetic with numbers, following
   Prometheus's own rules (rate's extrapolation, histogram_quantile's interpolation).
3. It draws the panels where their gridPos puts them, titled as in the JSON, with
   matplotlib, and says in a caption how the picture was made.

    .venv/bin/python tools/render_dashboard.py --out docs/dashboard.png
    .venv/bin/python tools/render_dashboard.py --save-scrapes run.jsonl   # keep the scrapes
    .venv/bin/python tools/render_dashboard.py --from-scrapes run.jsonl   # redraw, no run
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "smsqueue.json"

Labels: TypeAlias = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
Vector: TypeAlias = dict[Labels, float]
Value: TypeAlias = Vector | float  # an instant vector or a scalar


# --- scrapes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scrape:
    """One scrape of /metrics: when it was taken and every sample, by name and labels."""

    t: float
    samples: dict[tuple[str, Labels], float]


def parse_scrape(t: float, text: str) -> Scrape:
    """A scrape from Prometheus's text format, as the exporter serves it."""
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return Scrape(t=t, samples=samples)


# --- PromQL: the subset the dashboard uses --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    value: float


@dataclass(frozen=True, slots=True)
class Selector:
    name: str
    matchers: tuple[tuple[str, str, str], ...] = ()  # (label, op, value)
    range: float | None = None  # seconds, for a range vector


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Sum:
    by: tuple[str, ...] | None  # None: sum everything into one series
    expr: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    lhs: Node
    rhs: Node


Node: TypeAlias = Number | Selector | Call | Sum | Binary

FUNCTIONS = frozenset({"rate", "increase", "histogram_quantile", "vector"})
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<duration>(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+)(?![\w.])
    | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<op>=~|!~|!=|[-+*/(){}\[\],=])
    )""",
    re.VERBOSE,
)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration(text: str) -> float:
    """A PromQL duration (``4s``, ``1m30s``, ``250ms``) in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def tokens(expr: str) -> list[tuple[str, str]]:
    """(kind, text) of each token of ``expr``; ValueError on anything else."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read {expr[pos:]!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over the tokens: ``+ -`` below ``* /`` below terms."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.toks = tokens(expr)
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("end", "")

    def take(self, text: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok[0] == "end" or (text is not None and tok[1] != text):
            raise ValueError(f"{self.expr!r}: expected {text or 'more'}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.sum_expr()
        if self.peek()[0] != "end":
            raise ValueError(f"{self.expr!r}: unexpected {self.peek()[1]!r}")
        return node

    def sum_expr(self) -> Node:
        node = self.product()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            node = Binary(op, node, self.product())
        return node

    def product(self) -> Node:
        node = self.term()
        while self.peek() in (("op", "*"), ("op", "/")):
            op = self.take()[1]
            node = Binary(op, node, self.term())
        return node

    def labels(self) -> tuple[str, ...]:
        self.take("(")
        names: list[str] = []
        while self.peek() != ("op", ")"):
            names.append(self.take()[1])
            if self.peek() == ("op", ","):
                self.take(",")
        self.take(")")
        return tuple(names)

    def term(self) -> Node:
        kind, text = self.peek()
        if kind == "number":
            self.take()
            return Number(float(text))
        if (kind, text) == ("op", "("):
            self.take("(")
            node = self.sum_expr()
            self.take(")")
            return node
        if kind != "ident":
            raise ValueError(f"{self.expr!r}: unexpected {text!r}")
        self.take()
        if text == "sum":
            by = None
            if self.peek() == ("ident", "by"):
                self.take()
                by = self.labels()
            self.take("(")
            inner = self.sum_expr()
            self.take(")")
            if by is None and self.peek() == ("ident", "by"):
                self.take()
                by = self.labels()
            return Sum(by, inner)
        if text in FUNCTIONS:
            self.take("(")
            args = [self.sum_expr()]
            while self.peek() == ("op", ","):
                self.take(",")
                args.append(self.sum_expr())
            self.take(")")
            return Call(text, tuple(args))
        if self.peek() == ("op", "("):
            raise ValueError(f"{self.expr!r}: {text}() is not in the subset this script knows")
        return self.selector(text)

    def selector(self, name: str) -> Selector:
        matchers: list[tuple[str, str, str]] = []
        if self.peek() == ("op", "{"):
            self.take("{")
            while self.peek() != ("op", "}"):
                label = self.take()[1]
                op = self.take()[1]
                if op not in ("=", "!=", "=~", "!~"):
                    raise ValueError(f"{self.expr!r}: bad matcher {op!r}")
                kind, value = self.take()
                if kind != "string":
                    raise ValueError(f"{self.expr!r}: a matcher's value must be a string")
                matchers.append((label, op, json.loads(value)))
                if self.peek() == ("op", ","):
                    self.take(",")
            self.take("}")
        window = None
        if self.peek() == ("op", "["):
            self.take("[")
            window = duration(self.take()[1])
            self.take("]")
        return Selector(name, tuple(matchers), window)


def parse(expr: str) -> Node:
    """The expression tree of ``expr`` (Grafana's variables already substituted)."""
    return _Parser(expr).parse()


def substitute(expr: str, variables: dict[str, str]) -> str:
    """``$name`` and ``${name}`` replaced by their values; KeyError for an unknown one."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables[m[1] or m[2]], expr)


def _matches(labels: Labels, matchers: tuple[tuple[str, str, str], ...]) -> bool:
    have = dict(labels)
    for label, op, value in matchers:
        got = have.get(label, "")
        ok = {
            "=": got == value,
            "!=": got != value,
            "=~": re.fullmatch(value, got) is not None,
            "!~": re.fullmatch(value, got) is None,
        }[op]
        if not ok:
            return False
    return True


def extrapolated_delta(
    points: Sequence[tuple[float, float]], start: float, end: float, *, as_rate: bool
) -> float | None:
    """Prometheus's ``increase`` (or ``rate`` with ``as_rate``) of one counter's points in
    the window (start, end]: counter resets made good, then extrapolated towards the
    window's edges by its rules. None with fewer than two points, as Prometheus."""
    if len(points) < 2:
        return None
    (first_t, first_v), (last_t, last_v) = points[0], points[-1]
    delta = last_v - first_v
    prev = first_v
    for _, v in points[1:]:
        if v < prev:  # a reset: the counter restarted from zero
            delta += prev
        prev = v
    sampled = last_t - first_t
    if sampled <= 0:
        return None
    average = sampled / (len(points) - 1)
    threshold = average * 1.1
    to_start, to_end = first_t - start, end - last_t
    # A series that starts or ends inside the window is extrapolated by half an interval.
    if to_start >= threshold:
        to_start = average / 2
    if delta > 0 and first_v >= 0:
        # A counter is never below zero: do not extrapolate back past where it was zero.
        to_start = min(to_start, sampled * (first_v / delta))
    if to_end >= threshold:
        to_end = average / 2
    delta *= (sampled + to_start + to_end) / sampled
    return delta / (end - start) if as_rate else delta


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus's ``histogram_quantile`` of one histogram: (upper bound, cumulative count)
    pairs, +Inf among them. NaN without observations or without the +Inf bucket."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    # Counts read at slightly different moments may dip: make them monotonic, as Prometheus.
    fixed: list[tuple[float, float]] = []
    for bound, count in ordered:
        fixed.append((bound, max(count, fixed[-1][1]) if fixed else count))
    observations = fixed[-1][1]
    if observations <= 0:
        return math.nan
    rank = q * observations
    b = next(i for i, (_, count) in enumerate(fixed) if count >= rank)
    if b == len(fixed) - 1:
        return fixed[-2][0]
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start, end, count = 0.0, fixed[b][0], fixed[b][1]
    if b > 0:
        start = fixed[b - 1][0]
        count -= fixed[b - 1][1]
        rank -= fixed[b - 1][1]
    return start + (end - start) * (rank / count)


class Evaluator:
    """Evaluates expression trees over a run's scrapes, at any of their times."""

    def __init__(self, scrapes: Sequence[Scrape]) -> None:
        self.scrapes = sorted(scrapes, key=lambda s: s.t)
        self.times = [s.t for s in self.scrapes]

    def latest(self, t: float) -> Scrape | None:
        """The last scrape at or before ``t``: series missing from it are stale."""
        before = [s for s in self.scrapes if s.t <= t]
        return before[-1] if before else None

    def points(self, sel: Selector, t: float) -> dict[Labels, list[tuple[float, float]]]:
        """The range vector ``sel`` at ``t``: each series' samples in (t - range, t]."""
        assert sel.range is not None
        out: defaultdict[Labels, list[tuple[float, float]]] = defaultdict(list)
        for scrape in self.scrapes:
            if t - sel.range < scrape.t <= t:
                for (name, labels), v in scrape.samples.items():
                    if name == sel.name and _matches(labels, sel.matchers):
                        out[labels].append((scrape.t, v))
        return dict(out)

    def at(self, node: Node, t: float) -> Value:
        """The value of ``node`` at time ``t``: an instant vector or a number."""
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Selector):
            if node.range is not None:
                raise ValueError(f"a range vector ({node.name}) needs rate() or increase()")
            scrape = self.latest(t)
            if scrape is None:
                return {}
            return {
                labels: v
                for (name, labels), v in scrape.samples.items()
                if name == node.name and _matches(labels, node.matchers)
            }
        if isinstance(node, Sum):
            inner = self._vector(self.at(node.expr, t), "sum")
            groups: defaultdict[Labels, float] = defaultdict(float)
            for labels, v in inner.items():
                key = tuple((k, w) for k, w in labels if node.by is not None and k in node.by)
                groups[key] += v
            return dict(groups)
        if isinstance(node, Binary):
            return self._binary(node.op, self.at(node.lhs, t), self.at(node.rhs, t))
        return self._call(node, t)

    def _call(self, node: Call, t: float) -> Value:
        if node.func in ("rate", "increase"):
            (sel,) = node.args
            if not isinstance(sel, Selector) or sel.range is None:
                raise ValueError(f"{node.func}() takes a range selector")
            out: Vector = {}
            for labels, pts in self.points(sel, t).items():
                got = extrapolated_delta(pts, t - sel.range, t, as_rate=node.func == "rate")
                if got is not None:
                    out[labels] = got
            return out
        if node.func == "histogram_quantile":
            q_node, inner_node = node.args
            q = self.at(q_node, t)
            if not isinstance(q, float):
                raise ValueError("histogram_quantile's first argument must be a number")
            inner = self._vector(self.at(inner_node, t), "histogram_quantile")
            histograms: defaultdict[Labels, list[tuple[float, float]]] = defaultdict(list)
            for labels, v in inner.items():
                le = dict(labels).get("le")
                if le is not None:
                    rest = tuple((k, w) for k, w in labels if k != "le")
                    histograms[rest].append((float(le), v))
            return {labels: bucket_quantile(q, b) for labels, b in histograms.items()}
        if node.func == "vector":
            value = self.at(node.args[0], t)
            if not isinstance(value, float):
                raise ValueError("vector() takes a number")
            return {(): value}
        raise ValueError(f"{node.func}() is not in the subset this script knows")

    @staticmethod
    def _vector(value: Value, where: str) -> Vector:
        if isinstance(value, float):
            raise ValueError(f"{where}() takes a vector, not a number")
        return value

    @staticmethod
    def _binary(op: str, lhs: Value, rhs: Value) -> Value:
        fn: Callable[[float, float], float] = {
            "+": lambda a, b: a + b,
            "-": lambda a, b: a - b,
            "*": lambda a, b: a * b,
            "/": lambda a, b: a / b if b else math.copysign(math.inf, a) if a else math.nan,
        }[op]
        if isinstance(lhs, float) and isinstance(rhs, float):
            return fn(lhs, rhs)
        if isinstance(lhs, float):
            assert not isinstance(rhs, float)
            return {labels: fn(lhs, v) for labels, v in rhs.items()}
        if isinstance(rhs, float):
            return {labels: fn(v, rhs) for labels, v in lhs.items()}
        # Vector with vector: one-to-one on identical label sets, as without on()/ignoring().
        return {labels: fn(v, rhs[labels]) for labels, v in lhs.items() if labels in rhs}


def query_range(ev: Evaluator, expr: str, times: Sequence[float]) -> dict[Labels, list[float]]:
    """Each series ``expr`` gives at each of ``times`` (NaN where it has no value)."""
    node = parse(expr)
    series: dict[Labels, list[float]] = {}
    for n, t in enumerate(times):
        value = ev.at(node, t)
        if isinstance(value, float):
            value = {(): value}
        for labels, v in value.items():
            series.setdefault(labels, [math.nan] * len(times))[n] = v
    return series


def legend(fmt: str, labels: Labels) -> str:
    """Grafana's legend for a series: ``{{label}}`` replaced, else the label set."""
    have = dict(labels)
    if fmt:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: have.get(m[1], ""), fmt).strip()
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def variables(
    board: dict[str, Any], *, interval: float, span: float, rate_interval: float | None = None
) -> dict[str, str]:
    """The dashboard's variables, and Grafana's own for a run scraped every ``interval``
    seconds over ``span`` seconds. ``$__rate_interval`` is Grafana's max(4 scrapes, a step
    plus a scrape), with a step of one scrape, unless ``rate_interval`` is given."""

    def ms(seconds: float) -> str:
        return f"{max(1, round(seconds * 1000))}ms"

    found = {"__interval": ms(interval), "__range": ms(span)}
    found["__rate_interval"] = ms(rate_interval or max(4 * interval, 2 * interval))
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") in ("textbox", "custom", "constant"):
            current = var.get("current", {}).get("value")
            found[var["name"]] = str(current if current not in (None, "") else var.get("query"))
    return found


# --- panels --------------------------------------------------------------------------------


@dataclass(slots=True)
class Panel:
    """One panel of the dashboard, with the series its queries gave over the run."""

    spec: dict[str, Any]
    series: list[tuple[str, list[float]]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.spec.get("type", "timeseries"))

    @property
    def title(self) -> str:
        return str(self.spec.get("title", ""))

    @property
    def grid(self) -> tuple[int, int, int, int]:
        g = self.spec["gridPos"]
        return int(g["x"]), int(g["y"]), int(g["w"]), int(g["h"])

    @property
    def defaults(self) -> dict[str, Any]:
        return dict(self.spec.get("fieldConfig", {}).get("defaults", {}))


def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel with queries, rows' nested panels included, in the JSON's order."""
    for panel in panels:
        if panel.get("targets"):
            yield panel
        yield from walk_panels(panel.get("panels", []))


def evaluate(
    board: dict[str, Any],
    scrapes: Sequence[Scrape],
    *,
    interval: float,
    rate_interval: float | None = None,
) -> list[Panel]:
    """Each panel's series, its queries evaluated at every scrape's time."""
    ev = Evaluator(scrapes)
    times = ev.times
    span = times[-1] - times[0] + interval if times else interval
    names = variables(board, interval=interval, span=span, rate_interval=rate_interval)
    panels = []
    for spec in walk_panels(board["panels"]):
        panel = Panel(spec)
        for target in spec["targets"]:
            if target.get("hide") or not target.get("expr"):
                continue
            expr = substitute(target["expr"], names)
            for labels, values in sorted(query_range(ev, expr, times).items()):
                panel.series.append((legend(target.get("legendFormat", ""), labels), values))
        panels.append(panel)
    return panels


# --- drawing -------------------------------------------------------------------------------

# Grafana's dark theme, near enough.
PAGE, PANEL, BORDER, TEXT, MUTED = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9a"
PALETTE = (  # Grafana's classic palette
    "#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A6", "#705DA0",
    "#508642", "#CCA300", "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477",
)  # fmt: skip
NAMED = {
    "green": "#73BF69", "red": "#F2495C", "blue": "#5794F2", "yellow": "#FADE2A",
    "orange": "#FF9830", "purple": "#B877D9", "text": TEXT, "transparent": PANEL,
}  # fmt: skip
CELL, GAP = 30, 8  # Grafana's grid: a row is 30 px, panels 8 px apart
WIDTH = 1600  # px across the 24 columns


def color(name: str) -> str:
    return NAMED.get(name, name)


def fmt_value(v: float, unit: str, decimals: int | None = None) -> str:
    """A value as Grafana shows it in ``unit`` (``s``, ``reqps``, ``short``...)."""
    if math.isnan(v):
        return "No data"
    if unit == "s":
        if v == 0:
            return "0 s"
        if abs(v) < 1:
            return f"{v * 1000:.{1 if decimals is None else decimals}f} ms".replace(".0 ms", " ms")
        return f"{v:.{2 if decimals is None else decimals}f} s"
    suffix = " req/s" if unit == "reqps" else ""
    for scale, mark in ((1e9, " B"), (1e6, " Mil"), (1e3, " K")):
        if abs(v) >= scale:
            digits = f".{decimals}f" if decimals is not None else ".3g"
            return f"{v / scale:{digits}}{mark}{suffix}"
    if decimals is not None:
        return f"{v:.{decimals}f}{suffix}"
    return f"{v:.3g}{suffix}" if v != int(v) else f"{int(v)}{suffix}"


def stat_style(v: float, defaults: dict[str, Any]) -> tuple[str, str]:
    """(text, colour) of a stat value: a value mapping first, else the thresholds."""
    for mapping in defaults.get("mappings", []):
        if mapping.get("type") == "value" and not math.isnan(v):
            hit = mapping.get("options", {}).get(fmt_value(v, "short", 0).strip())
            if hit:
                return str(hit.get("text", v)), color(hit.get("color", "text"))
    steps = defaults.get("thresholds", {}).get("steps", [{"color": "green", "value": None}])
    shade = steps[0]["color"]
    for step in steps:
        if step.get("value") is None or (not math.isnan(v) and v >= float(step["value"])):
            shade = step["color"]
    text = fmt_value(v, str(defaults.get("unit", "short")), defaults.get("decimals"))
    return text, color(shade)


def _last(values: list[float]) -> float:
    return next((v for v in reversed(values) if not math.isnan(v)), math.nan)


class Canvas:
    """A figure laid out in Grafana's grid, placed in pixels from the top left."""

    def __init__(self, rows: int, *, header: int, footer: int) -> None:
        from matplotlib.figure import Figure

        self.unit = (WIDTH - GAP) / 24
        self.header = header
        self.height = header + rows * (CELL + GAP) + footer
        self.fig: Figure = Figure(figsize=(WIDTH / 100, self.height / 100), dpi=100)
        self.fig.patch.set_facecolor(PAGE)

    def box(
        self, left: float, top: float, width: float, height: float
    ) -> tuple[float, float, float, float]:
        """Figure coordinates (left, bottom, width, height) of a box placed in pixels."""
        return left / WIDTH, 1 - (top + height) / self.height, width / WIDTH, height / self.height

    def text(self, x: float, y: float, s: str, **kw: Any) -> None:
        self.fig.text(x / WIDTH, 1 - y / self.height, s, **kw)

    def panel_box(self, panel: Panel) -> tuple[float, float, float, float]:
        x, y, w, h = panel.grid
        left = GAP + x * self.unit
        top = self.header + y * (CELL + GAP)
        return left, top, w * self.unit - GAP, h * (CELL + GAP) - GAP


def _legend_rows(labels: list[str], width: float) -> list[list[tuple[float, int]]]:
    """Where each legend entry goes: rows of (x offset, entry index), flowing left to right."""
    rows: list[list[tuple[float, int]]] = [[]]
    x = 0.0
    for n, label in enumerate(labels):
        need = 24 + 6.3 * len(label) + 14
        if x and x + need > width:
            rows.append([])
            x = 0.0
        rows[-1].append((x, n))
        x += need
    return rows


def draw_timeseries(canvas: Canvas, panel: Panel, times: list[float]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

    left, top, width, height = canvas.panel_box(panel)
    labels = [name for name, _ in panel.series]
    rows = _legend_rows(labels, width - 24)
    legend_h = 16 * len(rows) + 6
    ax: Axes = canvas.fig.add_axes(
        canvas.box(left + 74, top + 32, width - 88, height - 32 - 24 - legend_h)
    )
    ax.set_facecolor(PANEL)
    defaults = panel.defaults
    unit = str(defaults.get("unit", "short"))
    custom = defaults.get("custom", {})
    stacked = custom.get("stacking", {}).get("mode") == "normal"
    fill = float(custom.get("fillOpacity", 0)) / 100
    below = [0.0] * len(times)
    low = peak = 0.0
    for n, (_, values) in enumerate(panel.series):
        shade = PALETTE[n % len(PALETTE)]
        if stacked:
            top_line = [
                b + (0.0 if math.isnan(v) else v) for b, v in zip(below, values, strict=True)
            ]
            ax.fill_between(times, below, top_line, color=shade, alpha=fill, linewidth=0)
            ax.plot(times, top_line, color=shade, linewidth=1.4)
            below = top_line
            low, peak = min(low, *top_line), max(peak, *top_line)
        else:
            seen = [v for v in values if not math.isnan(v)]
            low, peak = min(low, *seen, 0.0), max(peak, *seen, 0.0)
            ax.plot(times, values, color=shade, linewidth=1.4)
            if fill:
                ax.fill_between(times, 0, values, color=shade, alpha=fill, linewidth=0)
    ax.set_xlim(times[0], times[-1])
    # Headroom above the highest point, so a series at its cap is not drawn on the frame.
    ax.set_ylim(low * 1.1, peak * 1.1 if peak > 0 else 1.0)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, min_n_ticks=3))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(v, unit)))
    # Unix seconds on the x axis: multiples of 10 s fall on the clock's. None right at the
    # ends, where a label would run into the y axis's or out of the panel.
    first, last = times[0], times[-1]
    step = 15 if last - first > 75 else 10
    margin = 0.06 * (last - first)
    ticks = [t for t in range(math.ceil(first / step) * step, int(last) + 1, step)]
    ax.xaxis.set_major_locator(
        FixedLocator([t for t in ticks if first + margin <= t <= last - margin])
    )
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _: f"{datetime.fromtimestamp(v):%H:%M:%S}")
    )
    ax.tick_params(colors=MUTED, labelsize=8, length=0, pad=4)
    ax.grid(color=BORDER, linewidth=0.8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    # The legend, as Grafana's bottom list: a short line in the series' colour, then its name.
    base = top + height - legend_h + 4
    for r, row in enumerate(rows):
        for x, n in row:
            y = base + 16 * r + 8
            shade = PALETTE[n % len(PALETTE)]
            canvas.fig.add_artist(
                Line2D(
                    [(left + 12 + x) / WIDTH, (left + 26 + x) / WIDTH],
                    [1 - y / canvas.height] * 2,
                    color=shade,
                    linewidth=2.2,
                )
            )
            canvas.text(left + 31 + x, y, labels[n], color=TEXT, fontsize=8, va="center")


def draw_stat(canvas: Canvas, panel: Panel) -> None:
    from matplotlib.patches import FancyBboxPatch

    left, top, width, height = canvas.panel_box(panel)
    defaults = panel.defaults
    background = panel.spec.get("options", {}).get("colorMode", "value") == "background"
    shown = panel.series or [("", [math.nan])]
    inner_top, inner_h = top + 30, height - 36
    cell_w = (width - 12 - 6 * (len(shown) - 1)) / len(shown)
    for n, (name, values) in enumerate(shown):
        text, shade = stat_style(_last(values), defaults)
        x = left + 6 + n * (cell_w + 6)
        if background:
            box = canvas.box(x, inner_top, cell_w, inner_h)
            canvas.fig.add_artist(
                FancyBboxPatch(
                    (box[0], box[1]), box[2], box[3], boxstyle="round,pad=0,rounding_size=0.002",
                    transform=canvas.fig.transFigure, facecolor=shade, edgecolor="none",
                )
            )  # fmt: skip
        ink = "#ffffff" if background else shade
        big = min(30.0, inner_h * 0.32, cell_w / max(len(text), 3) * 1.2)
        has_name = len(shown) > 1 or bool(name and panel.series and name != panel.title)
        middle = inner_top + inner_h / 2 + (6 if has_name else 0)
        canvas.text(x + cell_w / 2, middle, text, color=ink, fontsize=big, weight="bold",
                    ha="center", va="center")  # fmt: skip
        if has_name:
            canvas.text(x + cell_w / 2, middle - big * 1.05 - 4, name, fontsize=9,
                        color=ink if background else TEXT, ha="center", va="center")  # fmt: skip


def render(
    board: dict[str, Any],
    scrapes: Sequence[Scrape],
    out: Path,
    *,
    interval: float,
    rate_interval: float | None = None,
    caption: str,
) -> None:
    """Draw every panel of ``board`` from ``scrapes`` into the PNG ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.patches import Rectangle

    panels = evaluate(board, scrapes, interval=interval, rate_interval=rate_interval)
    times = sorted(s.t for s in scrapes)
    span = times[-1] - times[0]
    rows = max(p.grid[1] + p.grid[3] for p in panels)
    lines = [line for para in caption.splitlines() for line in textwrap.wrap(para, 225)]
    canvas = Canvas(rows, header=44, footer=20 + 19 * len(lines))
    canvas.text(GAP + 4, 24, str(board.get("title", "dashboard")), color=TEXT, fontsize=15,
                weight="bold", va="center")  # fmt: skip
    canvas.text(
        WIDTH - GAP - 4, 24,
        f"{datetime.fromtimestamp(times[0]):%Y-%m-%d %H:%M:%S} to "
        f"{datetime.fromtimestamp(times[-1]):%H:%M:%S}  ({span:.0f} s, "
        f"one scrape every {interval:g} s)",
        color=MUTED, fontsize=10, ha="right", va="center",
    )  # fmt: skip
    for panel in panels:
        left, top, width, height = canvas.panel_box(panel)
        canvas.fig.add_artist(
            Rectangle(
                (canvas.box(left, top, width, height)[0], canvas.box(left, top, width, height)[1]),
                width / WIDTH, height / canvas.height, transform=canvas.fig.transFigure,
                facecolor=PANEL, edgecolor=BORDER, linewidth=1, zorder=-1,
            )
        )  # fmt: skip
        canvas.text(left + 10, top + 15, panel.title, color=TEXT, fontsize=10.5,
                    weight="bold", va="center")  # fmt: skip
        if panel.kind == "stat":
            draw_stat(canvas, panel)
        else:
            draw_timeseries(canvas, panel, times)
    canvas.text(GAP + 4, canvas.height - 10, "\n".join(lines), color=MUTED, fontsize=9.5,
                va="bottom", linespacing=1.45)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.fig.savefig(out, facecolor=PAGE)


# --- the run -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """What the run sends, and when (seconds from the first scrape)."""

    wooxy: int = 10_000
    voip: int = 30_000
    wooxy_at: float = 5.0
    voip_at: float = 25.0
    tail: float = 10.0  # scrapes after both campaigns finished
    blacklisted: int = 15
    invalid: int = 25
    seed: int = 7


class Scraper(threading.Thread):
    """GETs /metrics every ``interval`` seconds, keeping (time, text) of each answer."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.taken: list[tuple[float, str]] = []
        self.missed = 0
        self.done = threading.Event()

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=self.interval * 5) as client:
            tick = time.monotonic()
            while not self.done.is_set():
                at = time.time()
                try:
                    resp = client.get(self.url)
                    resp.raise_for_status()
                    self.taken.append((at, resp.text))
                except httpx.HTTPError:
                    self.missed += 1  # as Prometheus: no sample for this scrape
                tick += self.interval
                self.done.wait(max(0.0, tick - time.monotonic()))


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_pool(
    work: Workload, data_dir: Path, interval: float
) -> tuple[list[tuple[float, str]], dict[str, Any]]:
    """Start the pool and the exporter, send the campaigns, scrape all along; the scrapes and
    what the run did."""
    import httpx

    from smsqueue import constants as c
    from smsqueue.store import keys
    from smsqueue.testing.demo import demo_cluster, recipients
    from smsqueue.testing.redis_server import free_port

    rng = random.Random(work.seed)
    wooxy_rows = recipients(555, work.wooxy, work.invalid, rng)
    voip_rows = recipients(600, work.voip, work.invalid, rng)
    # The demo's own pool (sandbox faults, blacklist, retry settings), so the run is the demo's.
    cluster, _ = demo_cluster(
        data_dir, (wooxy_rows, voip_rows), blacklisted=work.blacklisted, rng=rng
    )
    exporter: subprocess.Popen[bytes] | None = None
    scraper: Scraper | None = None
    log = (data_dir / "metrics.log").open("ab")
    try:
        print("starting Valkey, the sandbox, 3 workers, the scheduler and `smsqueue metrics`")
        cluster.start()
        port = free_port()
        exporter = subprocess.Popen(
            [sys.executable, "-m", "smsqueue", "metrics",
             "--address", "127.0.0.1", "--port", str(port)],
            env=cluster.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or exporter.poll() is not None:
                raise RuntimeError(
                    f"`smsqueue metrics` did not answer; see {data_dir / 'metrics.log'}"
                )
            time.sleep(0.2)
        scraper = Scraper(url, interval)
        scraper.start()
        started = time.time()
        q = cluster.queue()
        receipts = {}
        for provider, rows, at in (
            (c.WOOXY, wooxy_rows, work.wooxy_at),
            (c.VOIP, voip_rows, work.voip_at),
        ):
            time.sleep(max(0.0, started + at - time.time()))
            text = (
                "Hi {name}, your order shipped."
                if provider == c.WOOXY
                else "Flash sale today only!"
            )
            receipts[provider] = q.send_campaign(rows, text=text, provider=provider)
            rc = receipts[provider]
            print(f"{provider}: campaign {rc.id}, {rc.accepted} accepted")
        deadline = time.monotonic() + 900
        while True:
            states = {p: q.campaign(rc.id) for p, rc in receipts.items()}
            if all(
                st.status in (keys.CAMPAIGN_DONE, keys.CAMPAIGN_CANCELLED) for st in states.values()
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the campaigns did not finish in 15 minutes")
            time.sleep(0.5)
        took = time.time() - started
        print(f"both campaigns done {took:.0f} s after the first scrape; {work.tail:g} s more")
        time.sleep(work.tail)
        scraper.done.set()
        scraper.join()
        sandbox = cluster.sandbox.state()
        meta = {
            "workload": asdict(work),
            "interval": interval,
            "counts": {p: st.counts for p, st in states.items()},
            "totals": {p: st.total for p, st in states.items()},
            "peak_in_flight": sandbox["peak_in_flight"],
            "faults": sandbox["faults"],
            "missed": scraper.missed,
        }
        q.close()
        return scraper.taken, meta
    finally:
        if scraper is not None:
            scraper.done.set()
        stop(exporter)
        log.close()
        cluster.stop()


def caption_for(meta: dict[str, Any], scrapes: int, *, rate_interval: float) -> str:
    """What the picture is, in two lines under it."""
    work, totals, peak = meta["workload"], meta["totals"], meta["peak_in_flight"]
    faults = sum(meta["faults"].values())
    return (
        f"Not a Grafana screenshot: tools/render_dashboard.py drew these panels of "
        f"deploy/grafana/smsqueue.json from {scrapes} scrapes of 'smsqueue metrics', one every "
        f"{meta['interval']:g} s, evaluating each panel's PromQL itself (rate, increase, sum by, "
        f"histogram_quantile) with $__rate_interval = {rate_interval:g} s (the workers add "
        f"their latency histograms to Redis every 5 s).\n"
        f"The run was real: Valkey, the provider sandbox (the demo's 20 ms latency, 3% 5xx, 2% "
        f"429, {work['blacklisted']} blacklisted numbers a provider; {faults} faults injected), 3 "
        f"workers and the scheduler sending {totals['wooxy']:,} Wooxy messages, then "
        f"{totals['voip']:,} VoIP ones; peak in flight at the sandbox: Wooxy {peak['wooxy']} "
        f"(cap 10), VoIP {peak['voip']}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between scrapes")
    parser.add_argument(
        "--rate-interval",
        type=float,
        default=10.0,
        help="seconds for $__rate_interval: cover the workers' 5 s histogram flushes",
    )
    parser.add_argument("--wooxy", type=int, default=Workload().wooxy, help="Wooxy recipients")
    parser.add_argument("--voip", type=int, default=Workload().voip, help="VoIP recipients")
    parser.add_argument("--data", type=Path, help="the pool's data and logs (default: a temp dir)")
    parser.add_argument(
        "--save-scrapes", type=Path, help="also write the scrapes here (JSON lines)"
    )
    parser.add_argument("--from-scrapes", type=Path, help="draw from saved scrapes, no run")
    args = parser.parse_args(argv)
    board = json.loads(args.dashboard.read_text())
    if args.from_scrapes:
        lines = args.from_scrapes.read_text().splitlines()
        meta = json.loads(lines[0])["meta"]
        raw = [(float(d["t"]), str(d["text"])) for d in map(json.loads, lines[1:])]
    else:
        work = Workload(wooxy=args.wooxy, voip=args.voip)
        if args.data:
            from smsqueue.testing.demo import claim_data_dir

            raw, meta = run_pool(work, claim_data_dir(args.data), args.interval)
        else:
            with tempfile.TemporaryDirectory(prefix="render-dashboard-") as tmp:
                raw, meta = run_pool(work, Path(tmp), args.interval)
        if args.save_scrapes:
            with args.save_scrapes.open("w") as f:
                f.write(json.dumps({"meta": meta}) + "\n")
                for t, text in raw:
                    f.write(json.dumps({"t": t, "text": text}) + "\n")
    scrapes = [parse_scrape(t, text) for t, text in raw]
    caption = caption_for(meta, len(scrapes), rate_interval=args.rate_interval)
    render(board, scrapes, args.out, interval=float(meta["interval"]),
           rate_interval=args.rate_interval, caption=caption)  # fmt: skip
    print(f"{args.out}: {len(scrapes)} scrapes drawn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
