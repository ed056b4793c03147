"""The package's folders are its layers: imports flow one way, from the outside in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "smsqueue"

# Lower numbers are inner layers; a module may import its own layer and inner ones only.
# intake and delivery share a rank but are peers: neither imports the other.
RANKS = {
    "base": 0,  # errors, constants, models, settings, _version
    "sms": 1,
    "providers": 2,
    "store": 3,
    "intake": 4,
    "delivery": 4,
    "operations": 5,
    "testing": 6,
    "api": 7,  # smsqueue/__init__ (the public API), cli, __main__
}
TOP = {"__init__": "api", "cli": "api", "__main__": "api"}


def layer_of(module: str) -> str | None:
    """The layer of a dotted smsqueue module name, or None outside smsqueue."""
    parts = module.split(".")
    if parts[0] != "smsqueue":
        return None
    if len(parts) == 1:
        return "api"
    if parts[1] in RANKS:
        return parts[1]
    return TOP.get(parts[1], "base")


def imports_of(source: str) -> list[tuple[int, str]]:
    """Every smsqueue module ``source`` imports, at any depth (lazy imports count too)."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "smsqueue":
                found += [(node.lineno, f"smsqueue.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] == "smsqueue"]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts)


def violations(module: str, source: str) -> list[str]:
    """The imports in ``source`` (module ``module``) that climb outward or cross to a peer."""
    here = layer_of(module)
    assert here is not None
    out = []
    for line, name in imports_of(source):
        there = layer_of(name)
        if there is None or there == here:
            continue
        climbs = RANKS[there] > RANKS[here]
        peer = RANKS[there] == RANKS[here]
        if climbs or peer:
            out.append(f"{module}:{line}: {here} imports {name} ({there})")
    return out


def test_imports_flow_inward() -> None:
    """No module of smsqueue imports a module of an outer layer or of a peer layer."""
    found = [
        v
        for path in sorted(PACKAGE.rglob("*.py"))
        for v in violations(module_name(path), path.read_text())
    ]
    assert found == []


def test_workers_never_import_testing_tools() -> None:
    """The Celery entry point uses the library, never the sandbox or the embedded servers."""
    found = [
        f"{path.name}:{line}: {name}"
        for path in sorted((ROOT / "workers").rglob("*.py"))
        for line, name in imports_of(path.read_text())
        if layer_of(name) == "testing"
    ]
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from smsqueue.intake.producer import SmsQueue\n", ["intake"]),
        ("def f():\n    from smsqueue.testing import demo\n", ["testing"]),
        ("from smsqueue import errors\n", []),
    ],
)
def test_the_check_sees_climbing_imports(source: str, expected: list[str]) -> None:
    """The checker flags an import that climbs (lazy ones too) and allows inward ones."""
    got = violations("smsqueue.sms.probe", source)
    assert [v.rsplit("(", 1)[1].rstrip(")") for v in got] == expected


def test_readme_layout_names_every_layer_folder() -> None:
    """README's 'Project layout' lists each folder of smsqueue/ and no folder that is gone."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Project layout", 1)[1].split("```")[1]
    listed = {line.split()[0].rstrip("/") for line in block.splitlines() if line.startswith("  ")}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert listed == folders
