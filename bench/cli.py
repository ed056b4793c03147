"""``python -m bench``: run every scenario, write the report and the README table."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from bench import notes, report
from bench.config import (
    DEFAULT_OUTPUT,
    DEFAULT_README,
    QUICK,
    QUICK_OUTPUT,
    ROOT,
    BenchConfig,
    Sizes,
)
from bench.runner import Runner


def _latency(text: str) -> float:
    """``20``, ``20ms`` -> 0.020 s; ``0.02s`` -> 0.020 s."""
    raw = text.strip().lower()
    try:
        if raw.endswith("ms"):
            return float(raw[:-2]) / 1000
        if raw.endswith("s"):
            return float(raw[:-1])
        return float(raw) / 1000
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a latency: {text!r} (say 20 or 20ms)") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="smsqueue against the calibrated ceiling and the one-task-per-SMS peer.",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, one run: a smoke test")
    p.add_argument("--runs", type=int, help="runs per cheap scenario (default 3; quick 1)")
    p.add_argument("--big-runs", type=int, help="runs of the largest enqueue (default 2)")
    p.add_argument("--latency", type=_latency, default=0.020, help="provider latency, ms")
    p.add_argument("--workers", type=int, default=3, help="smsqueue worker processes")
    p.add_argument("--wooxy", type=int, help="messages per Wooxy campaign")
    p.add_argument("--voip", type=int, help="recipients per VoIP campaign")
    p.add_argument("--enqueue", help="campaign sizes for enqueue, comma-separated (last: backlog)")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    where = f"default {DEFAULT_OUTPUT.relative_to(ROOT)}; quick: {QUICK_OUTPUT}"
    p.add_argument("--output", type=Path, help=f"the Markdown report ({where})")
    p.add_argument("--readme", type=Path, help=f"README to update (default {DEFAULT_README.name})")
    p.add_argument("--no-readme", action="store_true", help="leave the README alone")
    p.add_argument("--data-dir", type=Path, help="keep servers' data and logs here")
    return p


def config(args: argparse.Namespace, argv: Sequence[str]) -> BenchConfig:
    sizes = QUICK if args.quick else Sizes()
    changes: dict[str, object] = {}
    if args.wooxy:
        changes["wooxy"] = args.wooxy
    if args.voip:
        changes["voip"] = args.voip
    if args.enqueue:
        changes["enqueue"] = tuple(int(x.replace("_", "")) for x in args.enqueue.split(","))
    sizes = dataclasses.replace(sizes, **changes)  # type: ignore[arg-type]
    # --quick never touches the README or the committed report unless they are named.
    readme = (
        None
        if args.no_readme or (args.quick and not args.readme)
        else (args.readme or DEFAULT_README)
    )
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    return BenchConfig(
        latency=args.latency,
        runs=args.runs or (1 if args.quick else 3),
        big_runs=args.big_runs or (1 if args.quick else 2),
        workers=args.workers,
        sizes=sizes,
        quick=args.quick,
        profile=not args.no_profile,
        output=output,
        readme=readme,
        data_dir=args.data_dir,
        command=shlex.join(["python", "-m", "bench", *argv]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    try:
        cfg = config(args, argv)
    except ValueError as exc:
        parser().error(str(exc))
    res = Runner(cfg).run()
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    cfg.output.write_text(report.document(res, notes.notes(res)))
    res.save_json(cfg.output.with_suffix(".json"))
    if cfg.readme is not None:
        report.update_readme(cfg.readme, res)
    print("\n".join(report.summary(res)))
    print(f"\nwritten: {cfg.output}" + (f" and {cfg.readme}" if cfg.readme else ""))
    return 0
